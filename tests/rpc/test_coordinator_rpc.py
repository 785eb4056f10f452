"""The coordinator's gRPC surface, called over real mutual TLS on loopback.

Every test talks to a coordinator started by the ``coordinator`` fixture
(``conftest.py``): the real server, servicers, status table and core, with a
SQLite store in the test's temporary directory. Who a caller is comes only
from the certificate its channel presents. A refusal must leave with the
exact status code and a sentence that says what is wrong without echoing any
token or encoding; ``refused`` checks both.

People are made up here (invented syllable names, NHS numbers from the 999
test range); wire-level tests use random encodings of the default layout's length.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import grpc
import pytest

from hublink.clients import AdminClient, AnalystClient
from hublink.identity import Identity, Role
from hublink.nhs import check_digit
from hublink.spec import LinkageSpec, UploadDigest
from hublink.v1 import (
    analyst_pb2,
    analyst_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    records_pb2,
    runs_pb2,
    runs_pb2_grpc,
    upload_pb2,
    upload_pb2_grpc,
)
from node import encoder as node_encoder
from node import prepare as node_prepare
from node.source import SourceRow
from node.uploader import NodeClient

DEADLINE = 10.0
CLK_BYTES = LinkageSpec.default().record_bytes  # 384: a balanced 3072-bit CLK
GRPC_DEFAULT_LIMIT = 4 * 1024 * 1024

HEALTH_VISITING = Identity("health-visiting", Role.NODE)
FLYING_START = Identity("flying-start", Role.NODE)
OUTSIDER = Identity("youth-justice", Role.NODE)
ADMIN = Identity("family-hub", Role.ADMIN)
ANALYST = Identity("public-health", Role.ANALYST)
AUDITOR = Identity("information-governance", Role.AUDITOR)

SPEC = LinkageSpec.default()


# --------------------------------------------------------------------------- helpers
def made_up_records(count: int, *, seed: int, nbytes: int = CLK_BYTES) -> list[Any]:
    """``count`` wire records with random tokens and random encodings of ``nbytes``."""
    rng = random.Random(seed)
    return [wire_record(rng, nbytes) for _ in range(count)]


def wire_record(rng: random.Random, nbytes: int = CLK_BYTES) -> Any:
    token = base64.urlsafe_b64encode(rng.randbytes(16)).rstrip(b"=").decode()
    return records_pb2.EncodedRecord(
        token=token, encodings=[records_pb2.Encoding(name="clk", bits=rng.randbytes(nbytes))]
    )


def digest_of(records: Iterable[Any]) -> str:
    """The digest a node sends at commit, as ``UploadDigest`` computes it."""
    digest = UploadDigest()
    for record in records:
        digest.add(record.token, [e.bits for e in record.encodings])
    return digest.hexdigest()


def new_upload_id() -> str:
    return str(uuid.uuid4())


def refused(
    call: Callable[[], object],
    code: grpc.StatusCode,
    *,
    mentions: Sequence[str],
    records: Sequence[Any] = (),
) -> str:
    """Make ``call``, expect ``code``, and check the details sentence; returns it.

    The sentence must name what is wrong (every string of ``mentions``) and hold
    no token or encoding of ``records`` in any usual printed form.
    """
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    details = error.details() or ""
    assert error.code() == code, f"{error.code()}: {details}"
    for word in mentions:
        assert word in details, f"{word!r} not in {details!r}"
    assert details.isprintable() and len(details) < 400, details
    for record in records:
        assert record.token not in details
        for encoding in record.encodings:
            head = bytes(encoding.bits[:8])
            for form in (
                head.hex(),
                head.hex().upper(),
                base64.b64encode(encoding.bits).decode()[:12],
                base64.urlsafe_b64encode(encoding.bits).decode()[:12],
                repr(head)[2:-1],
            ):
                assert form not in details, f"details echo an encoding: {details!r}"
    return details


@dataclass
class Uploads:
    """A node's upload calls made with the raw generated stub."""

    stub: Any
    project_id: str

    @classmethod
    def over(cls, channel: grpc.Channel, project_id: str) -> Uploads:
        return cls(upload_pb2_grpc.UploadServiceStub(channel), project_id)

    def begin(
        self, upload_id: str, *, encoding_sha256: str = SPEC.sha256, expected: int = 0
    ) -> Any:
        return self.stub.BeginUpload(
            upload_pb2.BeginUploadRequest(
                project_id=self.project_id,
                upload_id=upload_id,
                encoding_sha256=encoding_sha256,
                expected_records=expected,
            ),
            timeout=DEADLINE,
        )

    def put(self, upload_id: str, index: int, records: Sequence[Any]) -> Any:
        return self.stub.PutChunk(
            upload_pb2.PutChunkRequest(upload_id=upload_id, chunk_index=index, records=records),
            timeout=DEADLINE,
        )

    def status(self, upload_id: str) -> Any:
        return self.stub.GetUploadStatus(
            upload_pb2.GetUploadStatusRequest(upload_id=upload_id), timeout=DEADLINE
        )

    def commit(self, upload_id: str, chunks: int, records: int, digest: str) -> Any:
        return self.stub.CommitUpload(
            upload_pb2.CommitUploadRequest(
                upload_id=upload_id, chunk_count=chunks, record_count=records, digest_sha256=digest
            ),
            timeout=DEADLINE,
        )

    def upload(self, upload_id: str, chunks: Sequence[Sequence[Any]]) -> Any:
        """Begin, send every chunk and commit; returns the receipt."""
        everything = [r for chunk in chunks for r in chunk]
        self.begin(upload_id, expected=len(everything))
        for index, chunk in enumerate(chunks):
            self.put(upload_id, index, chunk)
        return self.commit(upload_id, len(chunks), len(everything), digest_of(everything))


def stored_records(coordinator: Any, upload_id: str) -> int:
    row = coordinator.core.store.query_one(
        "SELECT COUNT(*) AS n FROM records WHERE upload_id = ?", (upload_id,)
    )
    return int(row["n"])


def upload_rows(coordinator: Any, upload_id: str) -> list[Any]:
    return coordinator.core.store.query("SELECT * FROM uploads WHERE id = ?", (upload_id,))


def audited(coordinator: Any, action: str) -> list[Any]:
    return [e for e in coordinator.core.store.audit_entries() if e.event.action == action]


def get_project(channel: grpc.Channel, project_id: str) -> Any:
    return project_pb2_grpc.ProjectServiceStub(channel).GetProject(
        project_pb2.GetProjectRequest(project_id=project_id), timeout=DEADLINE
    )


def linkage_keys(channel: grpc.Channel, project_id: str) -> list[tuple[str, str]]:
    batches = keys_pb2_grpc.KeyServiceStub(channel).GetLinkageKeys(
        keys_pb2.GetLinkageKeysRequest(project_id=project_id, batch_size=7), timeout=DEADLINE
    )
    return [(k.token, k.key) for batch in batches for k in batch.keys]


# --------------------------------------------------------------------------- GetProject
def test_member_node_gets_the_schema_and_encoding_hash(coordinator: Any) -> None:
    for node in (HEALTH_VISITING, FLYING_START):
        project = get_project(coordinator.channel(node), coordinator.project_id)
        assert project.project_id == coordinator.project_id
        assert tuple(project.organisations) == ("health-visiting", "flying-start", "childcare")
        assert project.schema_json == LinkageSpec.from_file(coordinator.schema_path).json_text
        # The node computes the same hash from the schema hublink ships.
        assert project.encoding_sha256 == SPEC.sha256
        assert [(e.name, e.bits) for e in project.encodings] == [("clk", 3072)]
        assert project.max_chunk_records == 2000


def test_node_of_an_organisation_outside_the_project_is_denied(coordinator: Any) -> None:
    channel = coordinator.channel(OUTSIDER)
    refused(
        lambda: get_project(channel, coordinator.project_id),
        grpc.StatusCode.PERMISSION_DENIED,
        mentions=["'youth-justice'", "does not take part", f"'{coordinator.project_id}'"],
    )
    [entry] = audited(coordinator, "access.refused")
    assert (entry.event.actor_organisation, entry.event.actor_role) == ("youth-justice", "node")
    assert entry.event.details["attempted"] == "project.read"


def test_unknown_project_is_not_found(coordinator: Any) -> None:
    channel = coordinator.channel(HEALTH_VISITING)
    refused(
        lambda: get_project(channel, "no-such-project"),
        grpc.StatusCode.NOT_FOUND,
        mentions=["'no-such-project'", "not served"],
    )


# --------------------------------------------------------------------------- upload rejections
def test_wrong_encoding_hash_is_a_failed_precondition_and_stores_nothing(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    refused(
        lambda: uploads.begin(upload_id, encoding_sha256="ab" * 32),
        grpc.StatusCode.FAILED_PRECONDITION,
        mentions=["encoding specification", "differs", "fetch the project's schema"],
    )
    assert upload_rows(coordinator, upload_id) == []
    assert stored_records(coordinator, upload_id) == 0
    [entry] = audited(coordinator, "upload.rejected")
    assert entry.event.details["upload_id"] == upload_id
    # The refused upload was never opened, so it takes no chunks either.
    records = made_up_records(3, seed=1)
    refused(
        lambda: uploads.put(upload_id, 0, records),
        grpc.StatusCode.NOT_FOUND,
        mentions=[upload_id],
        records=records,
    )
    assert stored_records(coordinator, upload_id) == 0


def test_encoding_of_the_wrong_length_is_invalid_and_stores_nothing(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    uploads.begin(upload_id)
    rng = random.Random(2)
    # Two good records, then one of 512 bits: the whole chunk is refused.
    records = [wire_record(rng), wire_record(rng), wire_record(rng, nbytes=64)]
    refused(
        lambda: uploads.put(upload_id, 0, records),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["record 2", "'clk'", "512 bits", "3072"],
        records=records,
    )
    assert stored_records(coordinator, upload_id) == 0
    status = uploads.status(upload_id)
    assert (list(status.received_chunks), status.records_received) == ([], 0)


def test_empty_chunk_is_invalid_and_stores_nothing(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    uploads.begin(upload_id)
    refused(
        lambda: uploads.put(upload_id, 0, []),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["chunk 0", "no records"],
    )
    assert stored_records(coordinator, upload_id) == 0
    assert list(uploads.status(upload_id).received_chunks) == []


def test_chunk_over_max_chunk_records_is_invalid_and_stores_nothing(coordinator: Any) -> None:
    assert coordinator.project.max_chunk_records == 2000
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    uploads.begin(upload_id)
    records = made_up_records(2001, seed=3)
    refused(
        lambda: uploads.put(upload_id, 0, records),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["2001 records", "at most 2000"],
        records=records,
    )
    assert stored_records(coordinator, upload_id) == 0


def test_commit_of_an_empty_upload_is_invalid(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    uploads.begin(upload_id)
    refused(
        lambda: uploads.commit(upload_id, 0, 0, UploadDigest().hexdigest()),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=[upload_id, "empty", "nothing was kept"],
    )
    assert stored_records(coordinator, upload_id) == 0
    assert uploads.status(upload_id).state == "rejected"


def test_second_upload_after_a_commit_already_exists(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    first = new_upload_id()
    uploads.upload(first, [made_up_records(5, seed=4)])
    second = new_upload_id()
    refused(
        lambda: uploads.begin(second, expected=5),
        grpc.StatusCode.ALREADY_EXISTS,
        mentions=["'health-visiting'", "already has a committed upload", "never silently"],
    )
    assert upload_rows(coordinator, second) == []
    assert stored_records(coordinator, second) == 0
    assert stored_records(coordinator, first) == 5


def test_second_upload_opened_before_the_first_commit_is_refused_and_erased(
    coordinator: Any,
) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    first, second = new_upload_id(), new_upload_id()
    first_records, second_records = made_up_records(5, seed=5), made_up_records(6, seed=6)
    uploads.begin(first)
    uploads.begin(second)
    uploads.put(first, 0, first_records)
    uploads.put(second, 0, second_records)
    uploads.commit(first, 1, 5, digest_of(first_records))
    refused(
        lambda: uploads.commit(second, 1, 6, digest_of(second_records)),
        grpc.StatusCode.ALREADY_EXISTS,
        mentions=["'health-visiting'", "already has a committed upload"],
        records=second_records,
    )
    # Like every other refused commit, this one should keep nothing and close the upload.
    assert stored_records(coordinator, second) == 0
    assert uploads.status(second).state == "rejected"


def test_commit_with_a_wrong_digest_is_invalid_and_erases_the_records(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    chunks = [made_up_records(10, seed=7), made_up_records(10, seed=8)]
    uploads.begin(upload_id, expected=20)
    for index, chunk in enumerate(chunks):
        uploads.put(upload_id, index, chunk)
    assert stored_records(coordinator, upload_id) == 20
    tampered = [*chunks[0], *chunks[1][:-1], wire_record(random.Random(9))]
    wrong = digest_of(tampered)
    details = refused(
        lambda: uploads.commit(upload_id, 2, 20, wrong),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=[upload_id, "digest differs", "nothing was kept"],
        records=[*chunks[0], *chunks[1], *tampered],
    )
    assert wrong not in details and digest_of([*chunks[0], *chunks[1]]) not in details
    assert stored_records(coordinator, upload_id) == 0
    status = uploads.status(upload_id)
    assert (status.state, list(status.received_chunks), status.records_received) == (
        "rejected",
        [],
        0,
    )
    [entry] = audited(coordinator, "upload.rejected")
    assert entry.event.details["upload_id"] == upload_id


# --------------------------------------------------------------------------- idempotency
def test_repeated_chunk_is_acknowledged_as_a_duplicate_and_not_stored_twice(
    coordinator: Any,
) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    first, second = made_up_records(10, seed=10), made_up_records(5, seed=11)
    uploads.begin(upload_id, expected=15)
    ack = uploads.put(upload_id, 0, first)
    assert (ack.chunk_index, ack.duplicate, ack.records_received) == (0, False, 10)
    ack = uploads.put(upload_id, 1, second)
    assert (ack.chunk_index, ack.duplicate, ack.records_received) == (1, False, 15)

    again = uploads.put(upload_id, 1, second)
    assert (again.upload_id, again.chunk_index, again.duplicate) == (upload_id, 1, True)
    assert again.records_received == 15
    assert stored_records(coordinator, upload_id) == 15

    status = uploads.status(upload_id)
    assert (status.upload_id, status.project_id, status.state) == (
        upload_id,
        coordinator.project_id,
        "open",
    )
    assert list(status.received_chunks) == [0, 1]
    assert status.records_received == 15

    receipt = uploads.commit(upload_id, 2, 15, digest_of([*first, *second]))
    assert (receipt.organisation, receipt.record_count) == ("health-visiting", 15)
    assert receipt.digest_sha256 == digest_of([*first, *second])


def test_different_content_under_a_received_chunk_number_is_refused(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    uploads.begin(upload_id)
    uploads.put(upload_id, 0, made_up_records(4, seed=12))
    other = made_up_records(4, seed=13)
    refused(
        lambda: uploads.put(upload_id, 0, other),
        grpc.StatusCode.ALREADY_EXISTS,
        mentions=["chunk 0", "different content"],
        records=other,
    )
    assert stored_records(coordinator, upload_id) == 4


def test_full_chunk_of_max_records_fits_under_grpc_default_limit(coordinator: Any) -> None:
    records = made_up_records(2000, seed=14)
    upload_id = new_upload_id()
    request = upload_pb2.PutChunkRequest(upload_id=upload_id, chunk_index=0, records=records)
    assert request.ByteSize() < GRPC_DEFAULT_LIMIT
    # A channel held to gRPC's default 4 MiB both ways still carries the chunk.
    channel = coordinator.channel(
        HEALTH_VISITING,
        **{
            "grpc.max_send_message_length": GRPC_DEFAULT_LIMIT,
            "grpc.max_receive_message_length": GRPC_DEFAULT_LIMIT,
        },
    )
    uploads = Uploads.over(channel, coordinator.project_id)
    uploads.begin(upload_id, expected=2000)
    ack = uploads.put(upload_id, 0, records)
    assert (ack.duplicate, ack.records_received) == (False, 2000)
    assert stored_records(coordinator, upload_id) == 2000
    receipt = uploads.commit(upload_id, 1, 2000, digest_of(records))
    assert receipt.record_count == 2000


# --------------------------------------------------------------------------- roles
def _begin_upload(channel: grpc.Channel, project_id: str) -> object:
    return Uploads.over(channel, project_id).begin(new_upload_id())


def _get_overlap(channel: grpc.Channel, project_id: str) -> object:
    return analyst_pb2_grpc.AnalystServiceStub(channel).GetOverlap(
        analyst_pb2.GetOverlapRequest(project_id=project_id), timeout=DEADLINE
    )


def _start_run(channel: grpc.Channel, project_id: str) -> object:
    return runs_pb2_grpc.RunServiceStub(channel).StartRun(
        runs_pb2.StartRunRequest(project_id=project_id), timeout=DEADLINE
    )


def _get_linkage_keys(channel: grpc.Channel, project_id: str) -> object:
    return linkage_keys(channel, project_id)


@pytest.mark.parametrize(
    ("caller", "call", "attempted", "verb", "needed"),
    [
        pytest.param(
            ANALYST, _begin_upload, "upload.begin", "upload records", "node", id="analyst-upload"
        ),
        pytest.param(
            HEALTH_VISITING,
            _get_overlap,
            "counts.overlap",
            "query counts",
            "analyst",
            id="node-overlap",
        ),
        pytest.param(
            HEALTH_VISITING, _start_run, "run.start", "start matching runs", "admin", id="node-run"
        ),
        pytest.param(
            AUDITOR, _get_overlap, "counts.overlap", "query counts", "analyst", id="auditor-overlap"
        ),
        pytest.param(
            ADMIN, _get_linkage_keys, "keys.read", "read linkage keys", "node", id="admin-keys"
        ),
    ],
)
def test_role_from_the_certificate_decides_and_refusals_are_audited(
    coordinator: Any,
    caller: Identity,
    call: Callable[[grpc.Channel, str], object],
    attempted: str,
    verb: str,
    needed: str,
) -> None:
    channel = coordinator.channel(caller)
    refused(
        lambda: call(channel, coordinator.project_id),
        grpc.StatusCode.PERMISSION_DENIED,
        mentions=[f"the {caller.role.value} role may not {verb}", f"needs the role {needed}"],
    )
    [entry] = audited(coordinator, "access.refused")
    assert entry.event.actor_organisation == caller.organisation
    assert entry.event.actor_role == caller.role.value
    assert entry.event.project_id == coordinator.project_id
    assert entry.event.details["attempted"] == attempted


def test_node_cannot_see_another_organisations_upload(coordinator: Any) -> None:
    own = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    own.begin(upload_id)
    other = Uploads.over(coordinator.channel(FLYING_START), coordinator.project_id)
    records = made_up_records(2, seed=15)
    refused(
        lambda: other.status(upload_id),
        grpc.StatusCode.NOT_FOUND,
        mentions=[upload_id, "'flying-start'"],
    )
    refused(
        lambda: other.put(upload_id, 0, records),
        grpc.StatusCode.NOT_FOUND,
        mentions=[upload_id, "'flying-start'"],
        records=records,
    )
    assert stored_records(coordinator, upload_id) == 0


def test_an_upload_id_another_organisation_holds_answers_as_a_free_one(coordinator: Any) -> None:
    """Issue 21: BeginUpload answered a taken id with a fresh one (so the id existed), a
    refresh with a taken id said "not a refresh", and committing another organisation's
    refresh said "no refresh" where an unknown id says "no upload". Now each organisation
    has its own ids: a taken one is answered exactly as a free one."""
    hv = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    fs = Uploads.over(coordinator.channel(FLYING_START), coordinator.project_id)
    hv_first, hv_refresh = new_upload_id(), new_upload_id()
    hv.upload(hv_first, [made_up_records(3, seed=21)])
    hv.stub.BeginUpload(refresh_request(coordinator, hv_refresh), timeout=DEADLINE)

    def without_id(status: Any) -> tuple[object, ...]:
        return (status.project_id, status.state, list(status.received_chunks))

    free = new_upload_id()
    assert (fs.begin(hv_first).upload_id, fs.begin(free).upload_id) == (hv_first, free)
    assert (
        without_id(fs.begin(hv_first))
        == without_id(fs.begin(free))
        == (
            coordinator.project_id,
            "open",
            [],
        )
    )
    # Flying start's upload under that id is its own, start to end.
    receipt = fs.upload(hv_first, [made_up_records(2, seed=22)])
    assert (receipt.upload_id, receipt.record_count) == (hv_first, 2)
    assert (hv.status(hv_first).state, hv.status(hv_first).records_received) == ("committed", 3)

    # Committing someone else's refresh and committing nothing answer in one sentence.
    nobody = new_upload_id()
    theirs = refused(
        lambda: fs.commit(hv_refresh, 1, 1, "0" * 64), grpc.StatusCode.NOT_FOUND, mentions=[]
    )
    unknown = refused(
        lambda: fs.commit(nobody, 1, 1, "0" * 64), grpc.StatusCode.NOT_FOUND, mentions=[]
    )
    assert theirs.replace(hv_refresh, nobody) == unknown
    # A refresh begun under another organisation's id opens as under a free one.
    for upload_id in (hv_refresh, new_upload_id()):
        opened = fs.stub.BeginUpload(refresh_request(coordinator, upload_id), timeout=DEADLINE)
        assert (opened.upload_id, opened.state) == (upload_id, "open")
    assert hv.status(hv_refresh).state == "open"


def refresh_request(coordinator: Any, upload_id: str) -> Any:
    return upload_pb2.BeginUploadRequest(
        project_id=coordinator.project_id,
        upload_id=upload_id,
        encoding_sha256=SPEC.sha256,
        expected_records=1,
        refresh=True,
    )


# --------------------------------------------------------------------------- keys and counts
SECRET = b"made-up linkage secret used only by these tests"
_SYLLABLES = ("ka", "zo", "rin", "vel", "mu", "tha", "qi", "dor", "lex", "ny", "pav", "sul")
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True)
class MadeUpPerson:
    """A person who does not exist: invented name, random date, 999-range NHS number."""

    person_id: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str
    postcode: str
    nhs_number: str

    def row(self, number: int, *, shouting: bool = False) -> SourceRow:
        family = self.family_name.upper() if shouting else self.family_name
        values = {
            "given_name": self.given_name,
            "family_name": family,
            "date_of_birth": self.date_of_birth.strftime("%d/%m/%Y"),
            "sex": self.sex,
            "postcode": self.postcode,
            "nhs_number": self.nhs_number,
        }
        return SourceRow(row=number, local_id=self.person_id, values=values)


def made_up_people(count: int, *, seed: int) -> list[MadeUpPerson]:
    rng = random.Random(seed)

    def name() -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).title()

    def nhs_number() -> str:
        while True:
            first_nine = "999" + "".join(rng.choice("0123456789") for _ in range(6))
            digit = check_digit(first_nine)
            if digit is not None:
                return f"{first_nine}{digit}"

    return [
        MadeUpPerson(
            person_id=f"person-{i}",
            given_name=name(),
            family_name=name(),
            date_of_birth=date(2021, 4, 1) + timedelta(days=rng.randrange(1800)),
            sex=rng.choice("FM"),
            postcode=f"CF{rng.randint(1, 48)} {rng.randint(1, 9)}"
            + "".join(rng.choice(_INWARD_LETTERS) for _ in range(2)),
            nhs_number=nhs_number(),
        )
        for i in range(count)
    ]


def encode(people: Sequence[MadeUpPerson], *, shouting: bool = False) -> list[Any]:
    """What a node sends for ``people``: normalised, hashed with clkhash, fresh tokens."""
    rules = node_prepare.normalisers()
    rows = [p.row(i + 2, shouting=shouting) for i, p in enumerate(people)]
    values = [node_prepare.normalise_row(row, SPEC.all_fields, rules) for row in rows]
    bits = node_encoder.Encoder(SPEC, SECRET).encode(values)
    return [
        node_encoder.EncodedRecord(node_encoder.new_token(), row.local_id, (clk,))
        for row, clk in zip(rows, bits, strict=True)
    ]


def test_keys_are_per_token_and_shared_people_share_them(coordinator: Any) -> None:
    people = made_up_people(50, seed=20)
    shared, only_hv, only_fs = people[:10], people[10:30], people[30:]
    encoded = {
        HEALTH_VISITING: encode([*shared, *only_hv]),
        FLYING_START: encode([*only_fs, *shared], shouting=True),
    }
    for node, records in encoded.items():
        client = NodeClient(coordinator.channel(node), timeout=DEADLINE)
        project = client.project(coordinator.project_id)
        receipt = client.upload(project, SPEC.sha256, records, chunk_records=7)
        assert receipt.record_count == 30

    admin = AdminClient(coordinator.channel(ADMIN), timeout=DEADLINE)
    started = admin.start_run(coordinator.project_id)
    report = admin.wait(coordinator.project_id, started.run_id, poll=0.05, timeout=20)
    assert report.state == "completed", report.message
    assert (report.records, report.entities, report.linked_entities) == (60, 50, 10)
    # Progress crosses the wire: every chunk done, 30 x 30 pairs across plus each side's own.
    assert report.done == report.total > 2
    assert report.comparisons == 30 * 30 + 2 * (30 * 29 // 2)

    keys: dict[Identity, dict[str, str]] = {}
    for node, records in encoded.items():
        pairs = list(NodeClient(coordinator.channel(node)).linkage_keys(coordinator.project_id))
        tokens = [token for token, _ in pairs]
        assert len(tokens) == len(set(tokens)) == 30, "exactly one key per token"
        assert set(tokens) == {r.token for r in records}
        keys[node] = dict(pairs)
    assert not set(keys[HEALTH_VISITING]) & set(keys[FLYING_START]), "a node saw others' tokens"

    def key_of(node: Identity) -> dict[str, str]:
        return {r.local_id: keys[node][r.token] for r in encoded[node]}

    hv, fs = key_of(HEALTH_VISITING), key_of(FLYING_START)
    for person in shared:
        assert hv[person.person_id] == fs[person.person_id]
    assert set(hv.values()) & set(fs.values()) == {hv[p.person_id] for p in shared}
    assert len(set(hv.values())) == len(set(fs.values())) == 30

    # Counts: 20 held by one organisation only are released, the 10 shared are
    # below the threshold of 15 and withheld; empty cells are released as 0.
    assert coordinator.project.suppression_threshold == 15
    analyst = coordinator.channel(ANALYST)
    overlap = AnalystClient(analyst, timeout=DEADLINE).overlap(coordinator.project_id)
    assert overlap.run_id == started.run_id
    assert {cell.datasets: cell.value for cell in overlap.cells} == {
        ("health-visiting",): 20,
        ("flying-start",): 20,
        ("childcare",): 0,
        ("health-visiting", "flying-start"): None,
        ("health-visiting", "childcare"): 0,
        ("flying-start", "childcare"): 0,
        ("health-visiting", "flying-start", "childcare"): 0,
    }
    assert "1 to 14" in overlap.rule
    table = _get_overlap(analyst, coordinator.project_id)
    assert isinstance(table, analyst_pb2.CountTable)
    [withheld] = [cell for cell in table.cells if cell.suppressed]
    assert withheld.value == 0, "the exact count of a suppressed cell left the coordinator"


def test_linkage_keys_before_any_run_is_a_failed_precondition(coordinator: Any) -> None:
    channel = coordinator.channel(HEALTH_VISITING)
    refused(
        lambda: linkage_keys(channel, coordinator.project_id),
        grpc.StatusCode.FAILED_PRECONDITION,
        mentions=["'health-visiting'", "no committed upload"],
    )
    records = made_up_records(6, seed=21)
    Uploads.over(channel, coordinator.project_id).upload(new_upload_id(), [records])
    refused(
        lambda: linkage_keys(channel, coordinator.project_id),
        grpc.StatusCode.FAILED_PRECONDITION,
        mentions=[f"'{coordinator.project_id}'", "no completed matching run"],
        records=records,
    )
    assert audited(coordinator, "keys.released") == []
