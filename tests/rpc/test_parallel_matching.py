"""Where a run's comparisons happen must not change what it links.

The same uploads of synthetic children (three organisations, hardened clkhash
encodings made the node's way) are matched by a coordinator comparing in this
thread, one comparing in worker processes, and one comparing on a Dask
LocalCluster reached over Dask's TLS with certificates; all three must group
every organisation's records into the same entities. Real SQLite, real
clkhash and anonlink, a real Dask cluster.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from importlib import resources
from pathlib import Path

import pytest

from coordinator.core import incremental, pinned_blocking
from coordinator.core.candidates import Engine, InlineEngine, Session
from coordinator.core.model import ConsentSummary, IncomingRecord, Project
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.parallel import DaskEngine, DaskSettings, ProcessEngine, dask_security
from coordinator.projects import load_project
from hublink import pki, synthetic
from hublink.identity import Identity, Role
from hublink.spec import LinkageSpec, UploadDigest
from node.encoder import Encoder
from node.synthetic_input import prepared_records

PROJECT = "scale-check"
ADMIN = Identity("hub-admin", Role.ADMIN)
RECORDS_PER_ORGANISATION = 400
CHUNK = 200


def write_project(folder: Path, blocking: str, field_scoring: bool = False) -> Path:
    schema = resources.files("hublink").joinpath("schemas", "early-years.json")
    with resources.as_file(schema) as source:
        shutil.copy(source, folder / "early-years.json")
    organisations = ", ".join(f'"{layout.organisation}"' for layout in synthetic.DEFAULT_LAYOUTS)
    path = folder / f"project-{blocking}.toml"
    # A fixed threshold the salted record CLK's one-error pairs reach (about 0.76-0.8): the
    # engines and blocking are compared on the same links, not on the threshold estimate
    # (a blocked run estimates from its sample, and with three peaks of true-pair scores the
    # two may differ; see docs/benchmarks.md).
    path.write_text(
        f'id = "{PROJECT}"\npurpose = "Check matching engines agree"\n'
        f'organisations = [{organisations}]\nschema = "early-years.json"\n'
        f"field_scoring = {str(field_scoring).lower()}\n"
        'admins = ["hub-admin"]\n'
        f'blocking = "{blocking}"\nestimate_sample = 300\n'
        "threshold = 0.7\nauto_threshold = false\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[IncomingRecord]]:
    """Each organisation's records as its node would send them."""
    folder = tmp_path_factory.mktemp("synthetic")
    data = synthetic.generate(folder, RECORDS_PER_ORGANISATION, seed=11)
    spec = LinkageSpec.default()
    encoder = Encoder(spec, b"engine-test secret, synthetic data only")
    out: dict[str, list[IncomingRecord]] = {}
    for organisation, prepared in prepared_records(data, spec).items():
        packed = encoder.encode([p.values for p in prepared])
        out[organisation] = [
            IncomingRecord(f"{organisation}-{p.local_id}", [("clk", bits)])
            for p, bits in zip(prepared, packed, strict=True)
        ]
    return out


def upload_all(core: Coordinator, project: Project, sent: dict[str, list[IncomingRecord]]) -> None:
    for organisation, records in sent.items():
        node = Identity(organisation, Role.NODE)
        upload_id = f"upload-{organisation}"
        core.begin_upload(
            node, project.id, upload_id, project.encoding_sha256, len(records), ConsentSummary()
        )
        digest = UploadDigest()
        chunks = [records[i : i + CHUNK] for i in range(0, len(records), CHUNK)]
        for index, chunk in enumerate(chunks):
            core.put_chunk(node, upload_id, index, chunk)
            for record in chunk:
                digest.add(record.token, [bits for _, bits in record.encodings])
        core.commit_upload(node, upload_id, len(chunks), len(records), digest.hexdigest())


def groupings(
    folder: Path,
    engine: Engine,
    sent: dict[str, list[IncomingRecord]],
    blocking: str = "none",
    field_scoring: bool = False,
) -> frozenset[frozenset[str]]:
    """Match the uploads with ``engine``; the entities as sets of record tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    project = load_project(write_project(folder, blocking, field_scoring))
    core = Coordinator(Store(folder / "coordinator.db"), [project], engine=engine)
    upload_all(core, project, sent)
    run = core.start_run(ADMIN, project.id, background=False)
    assert run.state == "completed", run.message
    # Progress as a status call shows it: every chunk done, comparisons counted.
    assert run.done == run.total > 2
    assert run.comparisons >= len(sent) and run.stage == ""
    entities: dict[str, set[str]] = {}
    for organisation in sent:
        for batch in core.linkage_keys(Identity(organisation, Role.NODE), project.id):
            for token, key in batch.keys:
                entities.setdefault(key, set()).add(token)
    basis = incremental.load_basis(core.store, project.id)
    if blocking == "lsh" and field_scoring:
        # A field-scoring salted project blocks by part: a plan per part of the record CLK.
        assert basis is not None
        assert pinned_blocking.Pinned.from_json(basis.pinned).part_pass is not None
    core.store.close()
    return frozenset(frozenset(group) for group in entities.values())


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, uploads: dict[str, list[IncomingRecord]]
) -> frozenset[frozenset[str]]:
    return groupings(tmp_path_factory.mktemp("inline"), InlineEngine(), uploads)


def test_reference_links_across_organisations(reference: frozenset[frozenset[str]]) -> None:
    organisations_in = [{token.split("-")[0] for token in group} for group in reference]
    assert sum(1 for orgs in organisations_in if len(orgs) > 1) > 100
    assert sum(len(group) for group in reference) > 3 * RECORDS_PER_ORGANISATION * 0.9


def test_worker_processes_group_records_as_one_process_does(
    tmp_path: Path,
    uploads: dict[str, list[IncomingRecord]],
    reference: frozenset[frozenset[str]],
) -> None:
    # Small enough to run in-process by default; made to use workers all the same.
    engine = ProcessEngine(workers=2, min_comparisons=0)
    assert groupings(tmp_path, engine, uploads) == reference
    assert engine.tasks_in_workers > 0


def test_blocked_run_keeps_nearly_every_link(
    tmp_path: Path,
    uploads: dict[str, list[IncomingRecord]],
    reference: frozenset[frozenset[str]],
) -> None:
    blocked = groupings(tmp_path, InlineEngine(), uploads, blocking="lsh")
    pairs = {frozenset((a, b)) for g in reference for a in g for b in g if a < b}
    kept = {frozenset((a, b)) for g in blocked for a in g for b in g if a < b}
    assert len(pairs & kept) / len(pairs) >= 0.97
    assert len(kept - pairs) / len(kept) <= 0.03


@pytest.fixture(scope="module")
def field_uploads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[IncomingRecord]]:
    """The same people as the nodes send them with field scoring on: the salted record CLK
    and the per-field filters."""
    data = synthetic.generate(tmp_path_factory.mktemp("fields"), RECORDS_PER_ORGANISATION, seed=11)
    spec = LinkageSpec.from_json(LinkageSpec.default().json_text, field_scoring=True)
    encoder = Encoder(spec, b"engine-test secret, synthetic data only")
    names = [e.name for e in spec.encodings]
    out: dict[str, list[IncomingRecord]] = {}
    for organisation, prepared in prepared_records(data, spec).items():
        tokens = [f"{organisation}-{p.local_id}" for p in prepared]
        encoded = encoder.encode_all([p.values for p in prepared], tokens)
        out[organisation] = [
            IncomingRecord(token, list(zip(names, parts, strict=True)))
            for token, parts in zip(tokens, encoded, strict=True)
        ]
    return out


def test_a_field_scoring_blocked_run_keeps_nearly_every_link(
    tmp_path: Path, field_uploads: dict[str, list[IncomingRecord]]
) -> None:
    every = groupings(tmp_path / "all", InlineEngine(), field_uploads, field_scoring=True)
    blocked = groupings(
        tmp_path / "lsh", InlineEngine(), field_uploads, blocking="lsh", field_scoring=True
    )
    pairs = {frozenset((a, b)) for g in every for a in g for b in g if a < b}
    kept = {frozenset((a, b)) for g in blocked for a in g for b in g if a < b}
    assert len(pairs) > 300
    assert len(pairs & kept) / len(pairs) >= 0.97
    assert len(kept - pairs) / len(kept) <= 0.03


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskSettings]:
    """A Dask LocalCluster of two worker processes speaking TLS only, certificates from our CA."""
    distributed = pytest.importorskip("distributed")
    folder = tmp_path_factory.mktemp("dask-pki")
    authority = pki.create_authority(folder / "ca", name="dask test CA")
    cluster_cert = pki.issue_certificate(
        authority, Identity("dask-cluster", Role.COORDINATOR), folder / "cluster"
    )
    client_cert = pki.issue_certificate(
        authority, Identity("coordinator", Role.COORDINATOR), folder / "client"
    )
    security = distributed.security.Security(
        tls_ca_file=str(authority.ca),
        tls_scheduler_cert=str(cluster_cert.cert),
        tls_scheduler_key=str(cluster_cert.key),
        tls_worker_cert=str(cluster_cert.cert),
        tls_worker_key=str(cluster_cert.key),
        tls_client_cert=str(client_cert.cert),
        tls_client_key=str(client_cert.key),
        require_encryption=True,
    )
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        protocol="tls://",
        host="127.0.0.1",
        security=security,
        # The scheduler serves HTTP (health, metrics) even with no dashboard; a random port
        # keeps it clear of any other cluster on 8787.
        dashboard_address="127.0.0.1:0",
    )
    try:
        yield DaskSettings(
            cluster.scheduler_address, ca=authority.ca, cert=client_cert.cert, key=client_cert.key
        )
    finally:
        cluster.close()


def test_dask_cluster_groups_records_as_local_workers_do(
    tmp_path: Path,
    uploads: dict[str, list[IncomingRecord]],
    reference: frozenset[frozenset[str]],
    dask_cluster: DaskSettings,
) -> None:
    assert dask_cluster.scheduler.startswith("tls://")
    engine = DaskEngine(dask_cluster)
    assert groupings(tmp_path, engine, uploads) == reference
    assert engine.workers == 2


def refresh(core: Coordinator, project: Project, sent: dict[str, list[IncomingRecord]]) -> None:
    """Next month at the first organisation: a few records changed, removed and added."""
    organisation, records = next(iter(sent.items()))
    other = list(sent.values())[1]

    def moved(bits: bytes, shift: int) -> bytes:
        array = bytearray(bits)
        array[shift], array[shift + 1] = array[shift + 1], array[shift]  # a few bits move
        return bytes(array)

    changed = [
        IncomingRecord(r.token, [(name, moved(bits, 8 * n)) for name, bits in r.encodings])
        for n, r in enumerate(records[:4])
    ]
    added = [
        IncomingRecord(f"{organisation}-new-{n}", [(name, moved(b, 40)) for name, b in r.encodings])
        for n, r in enumerate(other[:3])
    ]
    removed = [r.token for r in records[10:13]]
    node = Identity(organisation, Role.NODE)
    delta = changed + added
    core.begin_upload(
        node,
        project.id,
        f"refresh-{organisation}",
        project.encoding_sha256,
        len(delta),
        ConsentSummary(),
        refresh=True,
    )
    core.put_chunk(node, f"refresh-{organisation}", 0, delta)
    digest = UploadDigest()
    for record in delta:
        digest.add(record.token, [bits for _, bits in record.encodings])
    core.commit_upload(node, f"refresh-{organisation}", 1, len(delta), digest.hexdigest(), removed)


def test_dask_serves_incremental_runs_with_a_full_runs_entities(
    tmp_path: Path,
    uploads: dict[str, list[IncomingRecord]],
    dask_cluster: DaskSettings,
) -> None:
    project = load_project(write_project(tmp_path, "none"))
    engine = DaskEngine(dask_cluster)
    core = Coordinator(Store(tmp_path / "coordinator.db"), [project], engine=engine)
    upload_all(core, project, uploads)
    assert core.start_run(ADMIN, project.id, background=False).state == "completed"
    refresh(core, project, uploads)

    quick = core.start_run(ADMIN, project.id, background=False, full=False)
    assert quick.state == "completed", quick.message
    done = [e for e in core.store.audit_entries() if e.event.action == "run.completed"][-1]
    assert done.event.details["matching"]["incremental"] is True
    assert done.event.details["matching"]["engine"] == "dask"
    assert done.event.details["matching"]["compared_afresh"] == 7  # 4 changed, 3 added
    assert quick.done == quick.total > 1  # its comparison tasks ran on the cluster
    incremental = entities_of(core, project)
    core.engine = InlineEngine()
    assert core.start_run(ADMIN, project.id, background=False, full=True).state == "completed"
    assert entities_of(core, project) == incremental
    core.store.close()


def entities_of(core: Coordinator, project: Project) -> set[frozenset[int]]:
    groups: dict[str, set[int]] = {}
    for record_id, entity_id in core.store.iterate(
        "SELECT record_id, entity_id FROM entities WHERE project_id = ?", (project.id,)
    ):
        groups.setdefault(entity_id, set()).add(int(record_id))
    return {frozenset(g) for g in groups.values()}


def test_dask_refuses_to_run_without_tls_files() -> None:
    with pytest.raises(ValueError, match="in the clear"):
        dask_security(DaskSettings("tls://127.0.0.1:8786"))


class _CancelOnStart:
    """An engine that cancels its run through the core's own call as the run starts comparing."""

    name = "cancelling"
    workers = 1

    def __init__(self, core: Coordinator, project_id: str) -> None:
        self.core = core
        self.project_id = project_id
        self.cancelled_run = ""

    def session(self) -> AbstractContextManager[Session]:
        self.cancelled_run = self.core.run_status(ADMIN, self.project_id).run_id
        self.core.cancel_run(ADMIN, self.project_id, self.cancelled_run)
        return InlineEngine().session()


def test_a_cancelled_run_keeps_the_previous_keys(
    tmp_path: Path, uploads: dict[str, list[IncomingRecord]]
) -> None:
    project = load_project(write_project(tmp_path, "none"))
    core = Coordinator(Store(tmp_path / "coordinator.db"), [project])
    upload_all(core, project, uploads)
    first = core.start_run(ADMIN, project.id, background=False)
    assert first.state == "completed"
    node = Identity(next(iter(uploads)), Role.NODE)
    before = [k for batch in core.linkage_keys(node, project.id) for k in batch.keys]
    engine = _CancelOnStart(core, project.id)
    core.engine = engine
    second = core.start_run(ADMIN, project.id, background=False)
    assert second.state == "cancelled"
    assert engine.cancelled_run == second.run_id != first.run_id
    after = [k for batch in core.linkage_keys(node, project.id) for k in batch.keys]
    assert after == before
    core.store.close()
