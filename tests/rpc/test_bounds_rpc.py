"""Every request is bounded: what a caller sends cannot grow the coordinator without limit.

Issue 21 found a threshold of 0.5 that took the coordinator to 7.4 GB, consent
summaries holding names and a 7 MB entry written to the permanent audit log,
unlimited open uploads, a ``tree_size`` of 2^63 answered with INTERNAL and a
chunk index of 2^32-1 accepted. Each is refused here with INVALID_ARGUMENT (or
RESOURCE_EXHAUSTED for the open-upload quota) and a sentence, and nothing of
the request is stored.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from hublink.v1 import audit_pb2, audit_pb2_grpc, records_pb2, runs_pb2, runs_pb2_grpc, upload_pb2
from tests.rpc.test_coordinator_rpc import (
    ADMIN,
    AUDITOR,
    DEADLINE,
    FLYING_START,
    HEALTH_VISITING,
    SPEC,
    Uploads,
    made_up_records,
    new_upload_id,
    refused,
)

POLICY_HASH = "5" * 64


def begin(coordinator: Any, consent: Any, *, expected: int = 10, upload_id: str = "") -> Any:
    stub = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id).stub
    return stub.BeginUpload(
        upload_pb2.BeginUploadRequest(
            project_id=coordinator.project_id,
            upload_id=upload_id or new_upload_id(),
            encoding_sha256=SPEC.sha256,
            expected_records=expected,
            consent=consent,
        ),
        timeout=DEADLINE,
    )


def summary(policy: str = POLICY_HASH, **counts: int) -> Any:
    return records_pb2.ConsentSummary(
        policy_sha256=policy,
        counts=[records_pb2.ConsentRuleCount(rule=r, count=c) for r, c in counts.items()],
    )


def summary_of(pairs: list[tuple[str, int]], policy: str = POLICY_HASH) -> Any:
    return records_pb2.ConsentSummary(
        policy_sha256=policy,
        counts=[records_pb2.ConsentRuleCount(rule=r, count=c) for r, c in pairs],
    )


def nothing_stored(coordinator: Any, marker: str) -> None:
    store = coordinator.core.store
    assert store.query("SELECT id FROM uploads WHERE consent_json LIKE ?", (f"%{marker}%",)) == []
    for entry in store.audit_entries():
        assert marker not in str(entry.event.details)


# ------------------------------------------------------------------ finding 2: thresholds
def test_a_run_below_the_projects_min_threshold_is_refused(coordinator: Any) -> None:
    runs = runs_pb2_grpc.RunServiceStub(coordinator.channel(ADMIN))
    details = refused(
        lambda: runs.StartRun(
            runs_pb2.StartRunRequest(project_id=coordinator.project_id, threshold=0.5),
            timeout=DEADLINE,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["min_threshold", "0.6"],
    )
    assert "0.5" in details
    assert coordinator.core.store.query("SELECT id FROM runs") == []


def test_a_threshold_that_is_not_a_number_is_refused(coordinator: Any) -> None:
    runs = runs_pb2_grpc.RunServiceStub(coordinator.channel(ADMIN))
    refused(
        lambda: runs.StartRun(
            runs_pb2.StartRunRequest(project_id=coordinator.project_id, threshold=float("nan")),
            timeout=DEADLINE,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["StartRunRequest.threshold", "finite"],
    )


# ------------------------------------------------------------ finding 4: consent summaries
def test_a_well_formed_consent_summary_is_stored(coordinator: Any) -> None:
    begin(coordinator, summary(included=10, withdrawn=0, **{"national-data-opt-out": 3}))
    [row] = coordinator.core.store.query("SELECT consent_json FROM uploads")
    assert "national-data-opt-out" in row["consent_json"]


@pytest.mark.parametrize(
    ("consent", "mentions", "marker"),
    [
        (summary("not-a-hash", included=1), ["policy_sha256", "64"], "not-a-hash"),
        (summary("A" * 64, included=1), ["policy_sha256"], "A" * 64),
        (summary_of([("Ada Lovelace 1815-12-10", 1)]), ["rule name", "lower-case"], "Lovelace"),
        (summary_of([("zz" + "x" * 1_000_000, 1)]), ["rule name"], "x" * 1000),
        (summary(included=11), ["11 records included", "10"], '"included": 11'),
        (summary(**{"opted-out": 5_000_001}), ["max_records"], "5000001"),
        (
            summary_of([(f"rule-{n}", 1) for n in range(40)]),
            ["40 decisions", "32"],
            "rule-39",
        ),
    ],
    ids=["hash", "upper-hash", "name-as-rule", "megabyte-rule", "included", "count", "rules"],
)
def test_a_consent_summary_out_of_bounds_is_refused_and_nothing_stored(
    coordinator: Any, consent: Any, mentions: list[str], marker: str
) -> None:
    details = refused(
        lambda: begin(coordinator, consent), grpc.StatusCode.INVALID_ARGUMENT, mentions=mentions
    )
    assert "Lovelace" not in details
    assert coordinator.core.store.query("SELECT id FROM uploads") == []
    nothing_stored(coordinator, marker)


def test_a_node_without_a_consent_policy_counts_without_a_hash(coordinator: Any) -> None:
    begin(coordinator, summary("", included=10))
    row = coordinator.core.store.query_one("SELECT consent_json FROM uploads")
    assert row is not None and '"included":10' in row["consent_json"]


def test_a_refresh_is_held_to_the_same_consent_bounds(coordinator: Any) -> None:
    """A refresh of a committed upload opens through its own path (coordinator.core.refreshes):
    the consent summary it carries is checked as a first upload's is, and nothing is kept."""
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    uploads.upload(new_upload_id(), [made_up_records(4, seed=3)])
    stub = uploads.stub
    details = refused(
        lambda: stub.BeginUpload(
            upload_pb2.BeginUploadRequest(
                project_id=coordinator.project_id,
                upload_id=new_upload_id(),
                encoding_sha256=SPEC.sha256,
                expected_records=4,
                consent=summary_of([("Ada Lovelace 1815-12-10", 1)]),
                refresh=True,
            ),
            timeout=DEADLINE,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["rule name"],
    )
    assert "Lovelace" not in details
    assert len(coordinator.core.store.query("SELECT id FROM uploads")) == 1
    nothing_stored(coordinator, "Lovelace")


# --------------------------------------------------------------- finding 4: open uploads
def test_open_uploads_are_limited_per_organisation_and_expire(coordinator: Any) -> None:
    limit = coordinator.project.max_open_uploads
    opened = [new_upload_id() for _ in range(limit)]
    for upload_id in opened:
        begin(coordinator, records_pb2.ConsentSummary(), upload_id=upload_id)
    refused(
        lambda: begin(coordinator, records_pb2.ConsentSummary()),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        mentions=["max_open_uploads", str(limit)],
    )
    # A retried BeginUpload of an upload already open is not a new one.
    begin(coordinator, records_pb2.ConsentSummary(), upload_id=opened[0])
    store = coordinator.core.store
    with store.transaction() as tx:
        tx.execute(
            "UPDATE uploads SET created_at = '2000-01-01T00:00:00.000Z' WHERE id = ?",
            (opened[0],),
        )
    begin(coordinator, records_pb2.ConsentSummary())
    [row] = store.query("SELECT state FROM uploads WHERE id = ?", (opened[0],))
    assert row["state"] == "rejected"
    reasons = [
        e.event.details.get("reason", "")
        for e in store.audit_entries()
        if e.event.action == "upload.rejected"
    ]
    assert any("expired" in str(r) for r in reasons)


def test_another_organisations_expired_upload_is_erased_by_the_coordinator(
    coordinator: Any,
) -> None:
    """A BeginUpload sweeps every organisation's expired uploads; the audit log names the
    coordinator as the one who erased them, not the organisation whose call it was."""
    stale = new_upload_id()
    begin(coordinator, records_pb2.ConsentSummary(), upload_id=stale)
    with coordinator.core.store.transaction() as tx:
        tx.execute(
            "UPDATE uploads SET created_at = '2000-01-01T00:00:00.000Z' WHERE id = ?", (stale,)
        )
    Uploads.over(coordinator.channel(FLYING_START), coordinator.project_id).begin(new_upload_id())
    [erased] = [
        e.event
        for e in coordinator.core.store.audit_entries()
        if e.event.action == "upload.rejected" and e.event.details["upload_id"] == stale
    ]
    assert (erased.actor_organisation, erased.actor_role) == ("coordinator", "coordinator")


def test_an_expired_upload_cannot_be_committed(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    records = made_up_records(2, seed=4)
    uploads.begin(upload_id, expected=2)
    uploads.put(upload_id, 0, records)
    with coordinator.core.store.transaction() as tx:
        tx.execute(
            "UPDATE uploads SET created_at = '2000-01-01T00:00:00.000Z' WHERE id = ?",
            (upload_id,),
        )
    refused(
        lambda: uploads.commit(upload_id, 1, 2, "0" * 64),
        grpc.StatusCode.FAILED_PRECONDITION,
        mentions=["expired"],
    )
    assert (
        coordinator.core.store.query("SELECT id FROM records WHERE upload_id = ?", (upload_id,))
        == []
    )


# ---------------------------------------------------------------- finding 7: integer ranges
def test_a_chunk_index_beyond_any_upload_is_refused(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    uploads.begin(upload_id, expected=1)
    records = made_up_records(1, seed=7)
    refused(
        lambda: uploads.put(upload_id, 2**32 - 1, records),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["PutChunkRequest.chunk_index", str(2**32 - 1)],
        records=records,
    )
    assert coordinator.core.store.query("SELECT * FROM chunks") == []


def test_a_commit_with_too_many_chunks_is_refused(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    refused(
        lambda: uploads.commit(new_upload_id(), 2**32 - 1, 1, "0" * 64),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["CommitUploadRequest.chunk_count"],
    )


def test_expected_records_beyond_a_signed_64_bit_integer_are_refused(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    refused(
        lambda: uploads.begin(new_upload_id(), expected=2**64 - 1),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["BeginUploadRequest.expected_records"],
    )


def test_a_secret_epoch_beyond_32_signed_bits_is_refused(coordinator: Any) -> None:
    stub = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id).stub
    refused(
        lambda: stub.BeginUpload(
            upload_pb2.BeginUploadRequest(
                project_id=coordinator.project_id,
                upload_id=new_upload_id(),
                encoding_sha256=SPEC.sha256,
                secret_epoch=2**32 - 1,
            ),
            timeout=DEADLINE,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["BeginUploadRequest.secret_epoch"],
    )


@pytest.mark.parametrize("field", ["index", "tree_size"])
def test_an_audit_index_of_2_to_the_63_is_refused_not_internal(
    coordinator: Any, field: str
) -> None:
    audit = audit_pb2_grpc.AuditServiceStub(coordinator.channel(AUDITOR))
    refused(
        lambda: audit.GetInclusionProof(
            audit_pb2.GetInclusionProofRequest(**{field: 2**63}), timeout=DEADLINE
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=[f"GetInclusionProofRequest.{field}"],
    )


def test_a_consistency_proof_size_of_2_to_the_63_is_refused(coordinator: Any) -> None:
    audit = audit_pb2_grpc.AuditServiceStub(coordinator.channel(AUDITOR))
    refused(
        lambda: audit.GetConsistencyProof(
            audit_pb2.GetConsistencyProofRequest(old_size=1, new_size=2**63), timeout=DEADLINE
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["GetConsistencyProofRequest.new_size"],
    )


def test_a_consent_count_of_2_to_the_64_minus_1_is_refused(coordinator: Any) -> None:
    refused(
        lambda: begin(coordinator, summary(included=2**64 - 1)),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["ConsentRuleCount.count"],
    )
