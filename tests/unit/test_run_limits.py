"""A run cannot take the coordinator down: it stops itself over budget and stops when asked.

Issue 21 started a run at threshold 0.5 on about 14,000 records; the
coordinator grew to 7.4 GB and ignored a cancel for two minutes. Here records
that all look alike (every pair is a candidate, as at too low a threshold)
meet a small ``max_candidates`` and the run fails within a task or two with
the reason in its status and the audit log; and a run comparing on worker
processes is cancelled mid-comparison and is recorded as cancelled in a
few seconds, its workers gone and its shared memory removed.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from importlib import resources
from pathlib import Path

import pytest

from coordinator.core.candidates import Engine, InlineEngine
from coordinator.core.errors import InvalidRequest
from coordinator.core.model import ConsentSummary, IncomingRecord, Project
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.parallel import SHM_DIR, ProcessEngine, segment_name, sweep_stale_segments
from coordinator.projects import load_project
from hublink.identity import Identity, Role
from hublink.spec import LinkageSpec, UploadDigest

ADMIN = Identity("hub-admin", Role.ADMIN)
ORGANISATIONS = ("health-visiting", "flying-start")
CLK_BYTES = LinkageSpec.default().record_bytes


def project_file(folder: Path, extra: str = "") -> Path:
    schema = resources.files("hublink").joinpath("schemas", "early-years.json")
    with resources.as_file(schema) as source:
        shutil.copy(source, folder / "early-years.json")
    path = folder / "project.toml"
    path.write_text(
        'id = "limits"\npurpose = "Check runs stay within bounds"\n'
        f"organisations = {list(ORGANISATIONS)!r}\n".replace("'", '"')
        + 'schema = "early-years.json"\nfield_scoring = false\nblocking = "none"\n'
        + "auto_threshold = false\n"
        'within_threshold = 0\nadmins = ["hub-admin"]\n' + extra,
        encoding="utf-8",
    )
    return path


def alike(rng: random.Random, base: bytes, flips: int) -> bytes:
    """``base`` with ``flips`` random bits changed: Dice with ``base`` stays near 1."""
    bits = bytearray(base)
    for _ in range(flips):
        position = rng.randrange(len(bits) * 8)
        bits[position // 8] ^= 1 << (position % 8)
    return bytes(bits)


def upload(core: Coordinator, project: Project, records: dict[str, list[bytes]]) -> None:
    for organisation, encodings in records.items():
        node = Identity(organisation, Role.NODE)
        upload_id = f"upload-{organisation}"
        sent = [
            IncomingRecord(f"{organisation}-{n:06d}", [("clk", bits)])
            for n, bits in enumerate(encodings)
        ]
        core.begin_upload(
            node, project.id, upload_id, project.encoding_sha256, len(sent), ConsentSummary()
        )
        digest = UploadDigest()
        chunks = [sent[i : i + 2000] for i in range(0, len(sent), 2000)]
        for index, chunk in enumerate(chunks):
            core.put_chunk(node, upload_id, index, chunk)
            for record in chunk:
                digest.add(record.token, [bits for _, bits in record.encodings])
        core.commit_upload(node, upload_id, len(chunks), len(sent), digest.hexdigest())


def coordinator(folder: Path, engine: Engine, extra: str = "") -> tuple[Coordinator, Project]:
    project = load_project(project_file(folder, extra))
    return Coordinator(Store(folder / "coordinator.db"), [project], engine=engine), project


def test_a_run_over_its_candidate_budget_stops_itself_and_says_why(tmp_path: Path) -> None:
    rng = random.Random(2)
    base = rng.randbytes(CLK_BYTES)
    # Every record is the same child with a little noise: all 360,000 cross pairs are
    # candidates, as nearly every pair is at a threshold far too low.
    records = {org: [alike(rng, base, 60) for _ in range(600)] for org in ORGANISATIONS}
    core, project = coordinator(tmp_path, InlineEngine(), "max_candidates = 50000\n")
    upload(core, project, records)
    run = core.start_run(ADMIN, project.id, background=False)
    assert run.state == "failed"
    assert "max_candidates (50,000)" in run.message
    assert "stopped itself" in run.message
    [entry] = [e for e in core.store.audit_entries() if e.event.action == "run.failed"]
    assert entry.event.details["message"] == run.message
    # Nothing of the failed run was written: no entities, no quality report.
    assert core.store.query("SELECT * FROM entities") == []
    core.store.close()


def test_the_same_run_within_budget_completes(tmp_path: Path) -> None:
    rng = random.Random(2)
    base = rng.randbytes(CLK_BYTES)
    records = {org: [alike(rng, base, 60) for _ in range(100)] for org in ORGANISATIONS}
    core, project = coordinator(tmp_path, InlineEngine(), "max_candidates = 50000\n")
    upload(core, project, records)
    assert core.start_run(ADMIN, project.id, background=False).state == "completed"
    core.store.close()


def test_a_threshold_below_the_projects_bound_is_refused(tmp_path: Path) -> None:
    core, project = coordinator(tmp_path, InlineEngine(), "min_threshold = 0.75\n")
    with pytest.raises(InvalidRequest, match=r"below project .limits..s min_threshold 0\.75"):
        core.start_run(ADMIN, project.id, threshold=0.74)
    core.store.close()


def test_a_project_threshold_below_its_own_bound_does_not_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"threshold 0\.55 is below min_threshold 0\.6"):
        load_project(project_file(tmp_path, "threshold = 0.55\n"))


def children_of(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status and "resource_tracker" not in _cmdline(entry):
                out.add(int(entry.name))
    return out


def _cmdline(entry: Path) -> str:
    try:
        return (entry / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def own_segments() -> set[str]:
    prefix = segment_name().rsplit(".", 1)[0] + "."
    return {p.name for p in SHM_DIR.iterdir() if p.name.startswith(prefix)}


@pytest.mark.skipif(not SHM_DIR.is_dir(), reason="needs Linux /dev/shm")
def test_a_run_cancelled_mid_comparison_stops_within_seconds(tmp_path: Path) -> None:
    rng = random.Random(3)
    # Unrelated records: nothing is a candidate, so the run is all comparison work.
    records = {org: [rng.randbytes(CLK_BYTES) for _ in range(12000)] for org in ORGANISATIONS}
    engine = ProcessEngine(2, min_comparisons=0)
    core, project = coordinator(tmp_path, engine)
    upload(core, project, records)
    # Other tests in the session may have children of their own (a browser driver, say).
    before = children_of(os.getpid())
    started = core.start_run(ADMIN, project.id)
    deadline = time.monotonic() + 60
    while True:
        state = core.run_status(ADMIN, project.id, started.run_id)
        if state.stage == "comparing" and children_of(os.getpid()) - before and own_segments():
            break
        assert state.state == "running", state.message
        assert time.monotonic() < deadline
        time.sleep(0.02)
    workers = children_of(os.getpid()) - before
    asked = time.monotonic()
    core.cancel_run(ADMIN, project.id, started.run_id)
    core.wait_for_run(started.run_id, timeout=30)
    latency = time.monotonic() - asked
    state = core.run_status(ADMIN, project.id, started.run_id)
    assert state.state == "cancelled", state.message
    assert latency < 3.0, f"cancel took {latency:.2f} s"
    print(f"cancel latency {latency:.2f} s")
    assert not (workers & children_of(os.getpid()))
    assert own_segments() == set()
    core.store.close()


@pytest.mark.skipif(not SHM_DIR.is_dir(), reason="needs Linux /dev/shm")
def test_segments_of_a_dead_coordinator_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    dead = SHM_DIR / "hublink.999999999.0123456789ab.0"  # no such pid
    reused = SHM_DIR / f"hublink.{os.getpid()}.ba9876543210.0"  # our pid, another instance
    live = SHM_DIR / segment_name()
    for path in (dead, reused, live):
        path.write_bytes(b"\0" * 16)
    try:
        removed = sweep_stale_segments()
        assert dead.name in removed and reused.name in removed
        assert not dead.exists() and not reused.exists()
        assert live.exists()
    finally:
        for path in (dead, reused, live):
            path.unlink(missing_ok=True)
