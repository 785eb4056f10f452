"""The Coordinator domain service on a real SQLite store, driven the way the rpc layer drives it.

The project has three organisations; health visiting and childcare upload, family
support does not, so its cells of the overlap table are zeros. Every child is made up.
Linked across the two uploads: Amelia (a typo in her family name), Oliver (a wrong
year of birth) and Isla (moved house). Health visiting alone: Cai, Freya, Noah, Evie.
Childcare alone: Harri.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import pytest

from coordinator.core.audit import verify
from coordinator.core.errors import (
    AlreadyExists,
    InvalidRequest,
    NotAllowed,
    NotAMember,
    NotFound,
    SchemaMismatch,
)
from coordinator.core.model import ConsentSummary, IncomingRecord, Project, UploadState
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.projects import load_project
from hublink.identity import Identity, Role
from hublink.spec import LinkageSpec, UploadDigest
from node.encoder import Encoder

PROJECT = "early-years"
HEALTH_VISITING = Identity("health-visiting", Role.NODE)
CHILDCARE = Identity("childcare", Role.NODE)
FAMILY_SUPPORT = Identity("family-support", Role.NODE)
OUTSIDER = Identity("housing", Role.NODE)
ADMIN = Identity("hub-admin", Role.ADMIN)
ANALYST = Identity("hub-analytics", Role.ANALYST)
AUDITOR = Identity("information-governance", Role.AUDITOR)

SUPPRESSION_THRESHOLD = 4
MAX_CHUNK_RECORDS = 5

HEALTH_VISITING_CHILDREN = [
    ("amelia", "pryce", "03042021", "F", "CF10 1AA", ""),
    ("oliver", "jenkins", "15112020", "M", "SA1 1DP", ""),
    ("isla", "morgan", "22072022", "F", "NP20 4AB", ""),
    ("cai", "rowlands", "09012023", "M", "LL57 2PW", ""),
    ("freya", "hughes", "30062021", "F", "CF10 1AA", ""),
    ("noah", "evans", "01022022", "M", "SA2 8PP", ""),
    ("evie", "thomas", "12122020", "F", "CF5 2QA", ""),
]
CHILDCARE_CHILDREN = [
    ("amelia", "price", "03042021", "F", "CF10 1AA", ""),
    ("oliver", "jenkins", "15112021", "M", "SA1 1DP", ""),
    ("isla", "morgan", "22072022", "F", "NP19 7XY", ""),
    ("harri", "lewis", "05052021", "M", "LL11 1AB", ""),
]

_ENCODER = Encoder(LinkageSpec.default(), b"a-secret-of-16+chars")
_CLKS = _ENCODER.encode(HEALTH_VISITING_CHILDREN + CHILDCARE_CHILDREN)
HEALTH_VISITING_CLKS = _CLKS[: len(HEALTH_VISITING_CHILDREN)]
CHILDCARE_CLKS = _CLKS[len(HEALTH_VISITING_CHILDREN) :]


def records(prefix: str, clks: Sequence[bytes]) -> list[IncomingRecord]:
    return [IncomingRecord(f"{prefix}-tok-{i:04d}", [("clk", bits)]) for i, bits in enumerate(clks)]


HV_RECORDS = records("hv", HEALTH_VISITING_CLKS)
CC_RECORDS = records("cc", CHILDCARE_CLKS)


def digest_of(sent: Sequence[IncomingRecord]) -> str:
    digest = UploadDigest()
    for record in sent:
        digest.add(record.token, [bits for _, bits in record.encodings])
    return digest.hexdigest()


def write_project(folder: Path) -> Path:
    schema = resources.files("hublink").joinpath("schemas", "early-years.json")
    with resources.as_file(schema) as source:
        shutil.copy(source, folder / "early-years.json")
    path = folder / "project.toml"
    path.write_text(
        f"""
id = "{PROJECT}"
purpose = "Find children known to one early-years service but not the others"
organisations = ["health-visiting", "childcare", "family-support"]
schema = "early-years.json"
# Record-level: these tests send the record CLK alone.
field_scoring = false
threshold = 0.7
within_threshold = 0.75
suppression_threshold = {SUPPRESSION_THRESHOLD}
disclosure = "unrounded"
admins = ["hub-admin"]
auditors = ["information-governance"]
analysts = ["hub-analytics"]
max_chunk_records = {MAX_CHUNK_RECORDS}
released_attributes = ["ward"]
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Hub:
    """A coordinator on a fresh database, with its store and project at hand."""

    coordinator: Coordinator
    store: Store
    project: Project

    def begin(self, caller: Identity, upload_id: str, expected: int = 0) -> None:
        self.coordinator.begin_upload(
            caller,
            PROJECT,
            upload_id,
            self.project.encoding_sha256,
            expected,
            ConsentSummary("c0ffee" * 8 + "0" * 16, {"consented": expected}),
        )

    def upload(self, caller: Identity, upload_id: str, sent: Sequence[IncomingRecord]) -> None:
        """Begin, send in chunks of the project's maximum, and commit with the right digest."""
        self.begin(caller, upload_id, len(sent))
        chunks = [sent[i : i + MAX_CHUNK_RECORDS] for i in range(0, len(sent), MAX_CHUNK_RECORDS)]
        for index, chunk in enumerate(chunks):
            self.coordinator.put_chunk(caller, upload_id, index, chunk)
        self.coordinator.commit_upload(caller, upload_id, len(chunks), len(sent), digest_of(sent))

    def stored_records(self, upload_id: str) -> int:
        row = self.store.query_one(
            "SELECT COUNT(*) AS n FROM records WHERE upload_id = ?", (upload_id,)
        )
        assert row is not None
        return int(row["n"])

    def upload_state(self, upload_id: str) -> str:
        row = self.store.query_one("SELECT state FROM uploads WHERE id = ?", (upload_id,))
        assert row is not None
        return str(row["state"])

    def keys(self, caller: Identity) -> dict[str, str]:
        return {
            token: key
            for batch in self.coordinator.linkage_keys(caller, PROJECT, batch_size=3)
            for token, key in batch.keys
        }

    def last_audit(self) -> dict[str, object]:
        return self.store.audit_entries()[-1].content()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    project = load_project(write_project(tmp_path))
    store = Store(tmp_path / "c.db")
    try:
        yield Hub(Coordinator(store, [project]), store, project)
    finally:
        store.close()


@pytest.fixture
def matched(hub: Hub) -> Hub:
    """Both uploads committed and matched once."""
    hub.upload(HEALTH_VISITING, "upload-hv-1", HV_RECORDS)
    hub.upload(CHILDCARE, "upload-cc-1", CC_RECORDS)
    run = hub.coordinator.start_run(ADMIN, PROJECT, background=False)
    assert run.state == "completed", run.message
    return hub


# --- the project ----------------------------------------------------------------------------


def test_the_project_loads_from_its_toml(hub: Hub) -> None:
    assert hub.project.organisations == ("health-visiting", "childcare", "family-support")
    assert hub.project.encoding_sha256 == LinkageSpec.default().sha256
    assert hub.project.record_bytes == 384  # three salted 512-bit parts, balanced: 3072 bits
    assert hub.project.released_attributes == ("ward",)
    assert hub.store.audit_entries()[0].event.action == "project.created"


# --- uploads --------------------------------------------------------------------------------


def test_begin_put_commit(hub: Hub) -> None:
    state = hub.coordinator.begin_upload(
        HEALTH_VISITING, PROJECT, "upload-hv-1", hub.project.encoding_sha256, 7, ConsentSummary()
    )
    assert (state.state, state.received_chunks, state.records_received) == ("open", (), 0)

    first = hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, HV_RECORDS[:5])
    second = hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 1, HV_RECORDS[5:])
    assert (first.duplicate, first.records_received) == (False, 5)
    assert (second.duplicate, second.records_received) == (False, 7)

    receipt = hub.coordinator.commit_upload(
        HEALTH_VISITING, "upload-hv-1", 2, 7, digest_of(HV_RECORDS)
    )

    assert receipt.organisation == "health-visiting"
    assert receipt.record_count == 7
    assert receipt.digest_sha256 == digest_of(HV_RECORDS)
    committed = hub.store.audit_entries()[receipt.audit_index]
    assert committed.event.action == "upload.committed"
    assert receipt.entry == committed
    assert receipt.checkpoint.startswith("hublink.audit/")
    assert hub.coordinator.upload_status(HEALTH_VISITING, "upload-hv-1").state == "committed"
    assert hub.stored_records("upload-hv-1") == 7


def test_a_released_attribute_is_accepted(hub: Hub) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1")
    record = IncomingRecord("hv-tok-0000", [("clk", HEALTH_VISITING_CLKS[0])], [("ward", "W05")])
    receipt = hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, [record])
    assert receipt.records_received == 1


def test_a_repeated_chunk_is_acknowledged_and_not_stored_twice(hub: Hub) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1")
    hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, HV_RECORDS[:5])

    again = hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, HV_RECORDS[:5])

    assert again.duplicate is True
    assert again.records_received == 5
    assert hub.stored_records("upload-hv-1") == 5
    status = hub.coordinator.upload_status(HEALTH_VISITING, "upload-hv-1")
    assert (status.received_chunks, status.records_received) == ((0,), 5)


def test_the_same_chunk_index_with_different_content_is_refused(hub: Hub) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1")
    hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, HV_RECORDS[:5])

    with pytest.raises(AlreadyExists, match="different content"):
        hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, HV_RECORDS[1:6])
    assert hub.stored_records("upload-hv-1") == 5


def test_a_token_already_sent_in_another_chunk_is_refused(hub: Hub) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1")
    hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, HV_RECORDS[:2])
    with pytest.raises(InvalidRequest, match="repeats a record token"):
        hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 1, HV_RECORDS[1:3])
    assert hub.stored_records("upload-hv-1") == 2


CLK = HEALTH_VISITING_CLKS[0]
GOOD = IncomingRecord("hv-tok-good", [("clk", CLK)])

BAD_CHUNKS = {
    "encoding too short": [GOOD, IncomingRecord("hv-tok-short", [("clk", CLK[:127])])],
    "encoding too long": [IncomingRecord("hv-tok-long", [("clk", CLK + b"\x00")])],
    "wrong encoding name": [IncomingRecord("hv-tok-name", [("bloom", CLK)])],
    "no encodings": [IncomingRecord("hv-tok-none", [])],
    "an encoding too many": [IncomingRecord("hv-tok-two", [("clk", CLK), ("clk", CLK)])],
    "attribute not released": [
        IncomingRecord("hv-tok-attr", [("clk", CLK)], [("postcode_district", "CF10")])
    ],
    "token too short": [IncomingRecord("tok", [("clk", CLK)])],
    "token not url-safe": [IncomingRecord("hv tok 0001", [("clk", CLK)])],
    "token too long": [IncomingRecord("t" * 65, [("clk", CLK)])],
    "token twice in the chunk": [GOOD, GOOD],
    "empty chunk": [],
    "too many records": records("many", [CLK] * (MAX_CHUNK_RECORDS + 1)),
}


@pytest.mark.parametrize("chunk", BAD_CHUNKS.values(), ids=BAD_CHUNKS.keys())
def test_a_malformed_chunk_is_refused_and_nothing_is_stored(
    hub: Hub, chunk: list[IncomingRecord]
) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1")

    with pytest.raises(InvalidRequest):
        hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, chunk)

    status = hub.coordinator.upload_status(HEALTH_VISITING, "upload-hv-1")
    assert (status.received_chunks, status.records_received) == ((), 0)
    assert hub.stored_records("upload-hv-1") == 0


def test_an_encoding_length_error_says_what_was_expected(hub: Hub) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1")
    with pytest.raises(InvalidRequest, match="1016 bits; project 'early-years' expects 3072"):
        hub.coordinator.put_chunk(
            HEALTH_VISITING, "upload-hv-1", 0, [IncomingRecord("hv-tok-0", [("clk", CLK[:127])])]
        )


def test_a_token_ending_in_a_newline_is_refused(hub: Hub) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1")
    record = IncomingRecord("hv-tok-0000\n", [("clk", CLK)])
    with pytest.raises(InvalidRequest, match="token"):
        hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, [record])


def test_an_upload_id_ending_in_a_newline_is_refused(hub: Hub) -> None:
    with pytest.raises(InvalidRequest, match="upload id"):
        hub.begin(HEALTH_VISITING, "upload-hv-1\n")


def test_a_different_encoding_hash_is_a_schema_mismatch(hub: Hub) -> None:
    other = LinkageSpec.from_json(LinkageSpec.default().json_text, normalisation="other-rules")

    with pytest.raises(SchemaMismatch, match="differs from project 'early-years'"):
        hub.coordinator.begin_upload(
            HEALTH_VISITING, PROJECT, "upload-hv-1", other.sha256, 7, ConsentSummary()
        )

    rejected = hub.last_audit()
    assert rejected["action"] == "upload.rejected"
    assert rejected["details"]["upload_id"] == "upload-hv-1"  # type: ignore[index]
    with pytest.raises(NotFound):
        hub.coordinator.upload_status(HEALTH_VISITING, "upload-hv-1")


def test_a_commit_with_the_wrong_digest_erases_the_upload(hub: Hub) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1")
    hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, HV_RECORDS[:5])
    hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 1, HV_RECORDS[5:])
    tampered = digest_of([*HV_RECORDS[:6], CC_RECORDS[0]])

    with pytest.raises(InvalidRequest, match="digest differs"):
        hub.coordinator.commit_upload(HEALTH_VISITING, "upload-hv-1", 2, 7, tampered)

    assert hub.upload_state("upload-hv-1") == "rejected"
    assert hub.stored_records("upload-hv-1") == 0
    assert hub.coordinator.upload_status(HEALTH_VISITING, "upload-hv-1").received_chunks == ()
    assert hub.last_audit()["action"] == "upload.rejected"


def test_a_commit_with_chunks_sent_out_of_order_still_verifies(hub: Hub) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1")
    hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 1, HV_RECORDS[5:])
    hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, HV_RECORDS[:5])

    receipt = hub.coordinator.commit_upload(
        HEALTH_VISITING, "upload-hv-1", 2, 7, digest_of(HV_RECORDS)
    )
    assert receipt.record_count == 7


def test_a_second_upload_after_a_commit_is_refused(hub: Hub) -> None:
    hub.upload(HEALTH_VISITING, "upload-hv-1", HV_RECORDS)

    with pytest.raises(AlreadyExists, match="already has a committed upload"):
        hub.begin(HEALTH_VISITING, "upload-hv-2")
    assert hub.stored_records("upload-hv-1") == 7


# --- who may do what ------------------------------------------------------------------------


def test_an_organisation_outside_the_project_is_not_a_member(hub: Hub) -> None:
    with pytest.raises(NotAMember, match="'housing' does not take part"):
        hub.begin(OUTSIDER, "upload-housing-1")

    refused = hub.last_audit()
    assert refused["action"] == "access.refused"
    assert refused["actor_organisation"] == "housing"
    assert refused["details"]["attempted"] == "upload.begin"  # type: ignore[index]


def test_refusals_are_audited(matched: Hub) -> None:
    coordinator = matched.coordinator
    attempts = [
        (ANALYST, "upload.begin", lambda: matched.begin(ANALYST, "upload-an-1")),
        (HEALTH_VISITING, "run.start", lambda: coordinator.start_run(HEALTH_VISITING, PROJECT)),
        (HEALTH_VISITING, "counts.overlap", lambda: coordinator.overlap(HEALTH_VISITING, PROJECT)),
        (AUDITOR, "counts.overlap", lambda: coordinator.overlap(AUDITOR, PROJECT)),
        (ANALYST, "keys.read", lambda: matched.keys(ANALYST)),
        (ADMIN, "audit.read", lambda: coordinator.audit_entries(ADMIN)),
    ]
    for caller, action, attempt in attempts:
        with pytest.raises(NotAllowed, match=f"the {caller.role.value} role may not"):
            attempt()
        refused = matched.last_audit()
        assert refused["action"] == "access.refused", action
        assert refused["actor_organisation"] == caller.organisation
        assert refused["actor_role"] == caller.role.value
        assert refused["details"]["attempted"] == action  # type: ignore[index]


def test_a_node_cannot_touch_another_organisations_upload(hub: Hub) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1")
    with pytest.raises(NotFound) as theirs:
        hub.coordinator.put_chunk(CHILDCARE, "upload-hv-1", 0, CC_RECORDS[:1])
    with pytest.raises(NotFound) as nobodys:
        hub.coordinator.put_chunk(CHILDCARE, "upload-nobody", 0, CC_RECORDS[:1])
    assert str(theirs.value) == str(nobodys.value).replace("upload-nobody", "upload-hv-1")
    refused = [e.event for e in hub.store.audit_entries() if e.event.action == "access.refused"]
    assert [(e.actor_organisation, e.details["attempted"]) for e in refused] == [
        ("childcare", "upload.chunk"),
        ("childcare", "upload.chunk"),
    ]


def test_an_id_another_organisation_holds_is_answered_as_a_free_one(hub: Hub) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1", 2)
    hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, HV_RECORDS[:2])

    def begin(upload_id: str) -> UploadState:
        return hub.coordinator.begin_upload(
            CHILDCARE, PROJECT, upload_id, hub.project.encoding_sha256, 0, ConsentSummary()
        )

    taken, free = begin("upload-hv-1"), begin("upload-nobody")
    assert taken == replace(free, upload_id="upload-hv-1")
    assert taken.state == "open" and taken.received_chunks == ()
    # The id goes on naming childcare's own upload, and health visiting's is untouched.
    hub.coordinator.put_chunk(CHILDCARE, "upload-hv-1", 0, CC_RECORDS[:1])
    receipt = hub.coordinator.commit_upload(
        CHILDCARE, "upload-hv-1", 1, 1, digest_of(CC_RECORDS[:1])
    )
    assert (receipt.upload_id, receipt.organisation) == ("upload-hv-1", "childcare")
    assert receipt.entry.event.details["upload_id"] == "upload-hv-1"
    ours = hub.coordinator.upload_status(HEALTH_VISITING, "upload-hv-1")
    assert (ours.state, ours.received_chunks, ours.records_received) == ("open", (0,), 2)
    assert hub.stored_records("upload-hv-1") == 2
    assert not any(e.event.action == "access.refused" for e in hub.store.audit_entries())


# --- matching, keys and counts --------------------------------------------------------------


def test_each_node_gets_one_key_per_record_it_uploaded_and_no_others(matched: Hub) -> None:
    hv_keys = matched.keys(HEALTH_VISITING)
    cc_keys = matched.keys(CHILDCARE)

    assert set(hv_keys) == {r.token for r in HV_RECORDS}
    assert set(cc_keys) == {r.token for r in CC_RECORDS}
    assert matched.last_audit()["action"] == "keys.released"
    # The three children both services know share a key; nobody else does.
    hv = [hv_keys[r.token] for r in HV_RECORDS]
    cc = [cc_keys[r.token] for r in CC_RECORDS]
    assert hv[:3] == cc[:3]
    assert len(set(hv) | set(cc)) == 8


def test_a_duplicate_below_the_threshold_to_the_other_service_joins_its_group(hub: Hub) -> None:
    # Health visiting holds Amelia twice, the second time with a double-barrelled surname
    # (0.763 to the first: the salted record CLK keeps two parts of three); childcare holds
    # her once, after a move: 0.783 to the first record, 0.616 to the second (surname and
    # postcode both differ, one part of three agrees). At a threshold of 0.77 only the first
    # links across (within threshold 0.75), and a pair must be a candidate for most of a
    # group's pairs to join it.
    amelia = ("amelia", "pryce", "03042021", "F", "CF10 1AA", "")
    renamed = ("amelia", "pryce jones", "03042021", "F", "CF10 1AA", "")
    moved = ("amelia", "pryce", "03042021", "F", "CF10 2BB", "")
    clks = _ENCODER.encode([amelia, renamed, moved])
    hub.upload(HEALTH_VISITING, "upload-hv-1", records("hv", clks[:2]))
    hub.upload(CHILDCARE, "upload-cc-1", records("cc", clks[2:]))

    run = hub.coordinator.start_run(ADMIN, PROJECT, 0.77, background=False)

    assert run.state == "completed", run.message
    assert (run.entities, run.linked_entities) == (1, 1)
    keys = {*hub.keys(HEALTH_VISITING).values(), *hub.keys(CHILDCARE).values()}
    assert len(keys) == 1


def test_a_run_reports_what_it_matched(matched: Hub) -> None:
    state = matched.coordinator.run_status(ADMIN, PROJECT)
    assert (state.state, state.records, state.entities, state.linked_entities) == (
        "completed",
        11,
        8,
        3,
    )
    assert state.done == state.total


def test_overlap_counts_with_small_cells_suppressed(matched: Hub) -> None:
    run_id, table = matched.coordinator.overlap(ANALYST, PROJECT)

    assert run_id == matched.coordinator.run_status(ADMIN, PROJECT).run_id
    released = {"+".join(c.datasets): (c.value, c.suppressed) for c in table.cells}
    assert released == {
        "health-visiting": (4, False),
        "childcare": (None, True),  # Harri alone: 1
        "family-support": (0, False),
        "health-visiting+childcare": (None, True),  # 3 linked children
        "health-visiting+family-support": (0, False),
        "childcare+family-support": (0, False),
        "health-visiting+childcare+family-support": (0, False),
    }
    assert "counts from 1 to 3 are suppressed" in table.rule
    audit = matched.last_audit()
    assert audit["action"] == "counts.released"
    assert audit["details"]["suppressed"] == 2  # type: ignore[index]


def test_a_node_cannot_read_a_suppressed_overlap_from_run_status(matched: Hub) -> None:
    _, table = matched.coordinator.overlap(ANALYST, PROJECT)
    both = next(c for c in table.cells if c.datasets == ("health-visiting", "childcare"))
    assert both.suppressed

    state = matched.coordinator.run_status(HEALTH_VISITING, PROJECT)

    assert state.linked_entities not in range(1, SUPPRESSION_THRESHOLD)


def test_matching_the_same_data_again_keeps_every_key(matched: Hub) -> None:
    before = {**matched.keys(HEALTH_VISITING), **matched.keys(CHILDCARE)}
    entities_before = matched.store.query("SELECT record_id, entity_id FROM entities")

    again = matched.coordinator.start_run(ADMIN, PROJECT, background=False)

    assert again.state == "completed"
    after = {**matched.keys(HEALTH_VISITING), **matched.keys(CHILDCARE)}
    assert after == before
    entities_after = matched.store.query("SELECT record_id, entity_id FROM entities")
    assert sorted(map(tuple, entities_after)) == sorted(map(tuple, entities_before))


def test_the_audit_chain_verifies_after_all_of_it(matched: Hub) -> None:
    coordinator = matched.coordinator
    matched.keys(HEALTH_VISITING)
    coordinator.overlap(ANALYST, PROJECT)
    with pytest.raises(NotAllowed):
        coordinator.overlap(AUDITOR, PROJECT)
    with pytest.raises(NotAMember):
        matched.begin(OUTSIDER, "upload-housing-1")
    matched.begin(FAMILY_SUPPORT, "upload-fs-1")
    coordinator.put_chunk(FAMILY_SUPPORT, "upload-fs-1", 0, records("fs", [CLK]))
    with pytest.raises(InvalidRequest):
        coordinator.commit_upload(FAMILY_SUPPORT, "upload-fs-1", 1, 1, "0" * 64)

    entries = matched.store.audit_entries()
    assert verify(entries) is None
    assert verify(coordinator.audit_entries(AUDITOR)) is None
    actions = [e.event.action for e in entries]
    for expected in (
        "project.created",
        "upload.started",
        "upload.committed",
        "run.started",
        "run.completed",
        "keys.released",
        "counts.released",
        "access.refused",
        "upload.rejected",
    ):
        assert expected in actions


def test_the_audit_holds_no_tokens_or_keys(matched: Hub) -> None:
    keys = matched.keys(HEALTH_VISITING)
    rows = matched.store.query("SELECT details_json FROM audit")
    text = "\n".join(row["details_json"] for row in rows)
    for token, key in keys.items():
        assert token not in text
        assert key not in text


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("short", "token must be 8 to 64 URL-safe characters"),
        ("has space inside", "token must be 8 to 64 URL-safe characters"),
        ("hv-tok-9998\nhv-tok-9999", "token must be 8 to 64 URL-safe characters"),
        ("hv-tok-0000", "token repeated within the chunk"),  # the chunk's first token again
    ],
)
def test_a_bad_token_is_refused_and_its_place_named(hub: Hub, token: str, why: str) -> None:
    hub.begin(HEALTH_VISITING, "upload-hv-1", 3)
    chunk = [*HV_RECORDS[:2], IncomingRecord(token, [("clk", HEALTH_VISITING_CLKS[2])])]

    with pytest.raises(InvalidRequest, match=f"chunk 0, record 2: {why}"):
        hub.coordinator.put_chunk(HEALTH_VISITING, "upload-hv-1", 0, chunk)

    assert hub.stored_records("upload-hv-1") == 0
