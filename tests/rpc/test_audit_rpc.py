"""The audit log over gRPC with real mutual TLS: auditors query and verify, others are refused.

A node uploads through its real client and gets a signed receipt; an
auditor lists entries, fetches checkpoints and proofs and checks each one
against the coordinator's public key; other roles get PERMISSION_DENIED for
the entries and the refusal itself lands in the log.
"""

from __future__ import annotations

import random
import secrets
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner

from hublink.audit import merkle
from hublink.audit.checkpoint import Verifier, write_public_key
from hublink.audit.log import check_receipt
from hublink.cli import main
from hublink.clients import RequestRefused
from hublink.clients.audit import AuditClient, Filters
from hublink.identity import Identity, Role
from hublink.v1 import audit_pb2, audit_pb2_grpc
from node.encoder import EncodedRecord
from node.receipts import ReceiptRefused, keep_receipt
from node.uploader import NodeClient

AUDITOR = Identity("information-governance", Role.AUDITOR)
HEALTH_VISITING = Identity("health-visiting", Role.NODE)
ANALYST = Identity("public-health", Role.ANALYST)
ADMIN = Identity("family-hub", Role.ADMIN)
DEADLINE = 10


def upload_some(coordinator: Any, identity: Identity, count: int = 12) -> Any:
    client = NodeClient(coordinator.channel(identity), timeout=DEADLINE)
    project = client.project(coordinator.project_id)
    rng = random.Random(identity.organisation)
    records = [
        EncodedRecord(
            secrets.token_urlsafe(16),
            f"local-{i}",
            tuple(rng.randbytes(e.nbytes) for e in coordinator.project.encodings),
        )
        for i in range(count)
    ]
    return client.upload(project, coordinator.project.encoding_sha256, records, chunk_records=5)


@pytest.fixture
def verifier(coordinator: Any) -> Verifier:
    """The coordinator's public key, as an auditor would hold it (pinned out of band)."""
    return Verifier.from_vkey(coordinator.core.store.signer.verifier.vkey())


def test_a_node_gets_a_signed_receipt_it_can_check_and_keep(
    coordinator: Any, verifier: Verifier, tmp_path: Path
) -> None:
    receipt = upload_some(coordinator, HEALTH_VISITING)
    assert receipt.audit is not None
    checkpoint = check_receipt(receipt.audit, verifier)
    assert checkpoint.size == receipt.audit_index + 1
    assert receipt.audit.entry.details["records"] == 12
    assert receipt.coordinator_key == verifier.vkey()

    # Trust on first use: the offered key is recorded, then pinned.
    kept = keep_receipt(tmp_path / "state", None, receipt.audit, receipt.coordinator_key)
    assert kept.trusted_on_first_use
    assert (tmp_path / "state" / "coordinator.pub").read_text().strip() == verifier.vkey()
    assert keep_receipt(tmp_path / "state", None, receipt.audit, "").trusted_on_first_use is False

    # A pinned key that is not the coordinator's refuses the receipt (and still keeps it).
    other = tmp_path / "other.pub"
    from hublink.audit.checkpoint import Signer

    write_public_key(Signer.generate().verifier, other)
    with pytest.raises(ReceiptRefused, match="not signed by the key"):
        keep_receipt(tmp_path / "pinned", other, receipt.audit, receipt.coordinator_key)
    assert (tmp_path / "pinned" / "receipts" / f"{receipt.upload_id}.json").exists()
    assert len((tmp_path / "pinned" / "checkpoints.jsonl").read_text().splitlines()) == 1


def test_the_auditor_lists_entries_and_checks_proofs(coordinator: Any, verifier: Verifier) -> None:
    first = upload_some(coordinator, HEALTH_VISITING)
    auditor = AuditClient(coordinator.channel(AUDITOR), timeout=DEADLINE)

    entries = list(auditor.entries())
    assert [e.index for e in entries] == list(range(len(entries)))
    assert all(e.leaf().hex() == e.entry_hash for e in entries)
    uploads = list(auditor.entries(Filters(action="upload", organisation="health-visiting")))
    assert [e.action for e in uploads] == ["upload.started", "upload.committed"]

    latest = auditor.checkpoint()
    signed = verifier.open_checkpoint(latest.note)
    assert signed.size == len(entries)
    assert signed.root == merkle.root_of([e.leaf() for e in entries])

    entry, at, proof = auditor.inclusion_proof(first.audit_index)
    assert entry.action == "upload.committed"
    checkpoint = verifier.open_checkpoint(at.note)
    merkle.verify_inclusion(
        first.audit_index, checkpoint.size, entry.leaf(), proof, checkpoint.root
    )

    assert first.audit is not None
    old = verifier.open_checkpoint(first.audit.checkpoint)
    newer, older, proof = auditor.consistency_proof(old.size)
    assert older is not None and older.note == first.audit.checkpoint
    new = verifier.open_checkpoint(newer.note)
    merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)


@pytest.mark.parametrize("identity", [HEALTH_VISITING, ANALYST, ADMIN], ids=lambda i: i.role.value)
def test_other_roles_may_not_read_entries_and_the_refusal_is_audited(
    coordinator: Any, identity: Identity
) -> None:
    stub = audit_pb2_grpc.AuditServiceStub(coordinator.channel(identity))
    for call in (
        lambda: list(stub.ListEntries(audit_pb2.ListEntriesRequest(), timeout=DEADLINE)),
        lambda: stub.GetInclusionProof(
            audit_pb2.GetInclusionProofRequest(index=0), timeout=DEADLINE
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "may not read the audit log" in (caught.value.details() or "")
    refusals = [
        e for e in coordinator.core.store.audit_entries() if e.event.action == "access.refused"
    ]
    assert len(refusals) == 2
    assert refusals[0].event.actor_organisation == identity.organisation
    assert refusals[0].event.details["attempted"] == "audit.read"
    # Any role may fetch a checkpoint: comparing them is how forks are caught.
    checkpoint = stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(), timeout=DEADLINE)
    assert checkpoint.tree_size == len(coordinator.core.store.audit_entries())


def test_a_node_cannot_read_entries_through_the_client(coordinator: Any) -> None:
    client = AuditClient(coordinator.channel(HEALTH_VISITING), timeout=DEADLINE)
    with pytest.raises(RequestRefused, match="PERMISSION_DENIED"):
        list(client.entries())


def test_audit_show_and_verify_over_mtls_from_the_cli(
    coordinator: Any, verifier: Verifier, tmp_path: Path
) -> None:
    upload_some(coordinator, HEALTH_VISITING)
    tls = coordinator.pki.issue(AUDITOR)
    config = tmp_path / "auditor.toml"
    config.write_text(
        f'coordinator = "{coordinator.address}"\n\n[tls]\n'
        f'ca = "{tls.ca}"\ncert = "{tls.cert}"\nkey = "{tls.key}"\n'
    )
    key = tmp_path / "coordinator.pub"
    write_public_key(verifier, key)
    runner = CliRunner()
    shown = runner.invoke(main, ["audit", "show", "--config", str(config), "--action", "upload"])
    assert shown.exit_code == 0, shown.output
    assert "Upload completed" in shown.output and "upload.committed" not in shown.output
    assert "health-visiting" in shown.output and " UTC " in shown.output
    as_json = runner.invoke(main, ["audit", "show", "--config", str(config), "--json"])
    assert '"action": "upload.committed"' in as_json.output
    checked = runner.invoke(main, ["audit", "verify", "--config", str(config), "--key", str(key)])
    assert checked.exit_code == 0, checked.output
    assert "audit verify passed" in checked.output
    kept = tmp_path / "kept.note"
    keep = ["audit", "checkpoint", "--config", str(config), "--key", str(key), "--out", str(kept)]
    result = runner.invoke(main, keep)
    assert result.exit_code == 0, result.output
    size = verifier.open_checkpoint(kept.read_text()).size
    assert size == len(coordinator.core.store.audit_entries())
    assert f"kept the checkpoint of {size} entries, signed 20" in result.output


@pytest.mark.parametrize("identity", [HEALTH_VISITING, ANALYST, ADMIN], ids=lambda i: i.role.value)
def test_an_auditor_lists_a_checkpoint_for_every_entry_and_others_may_not(
    coordinator: Any, verifier: Verifier, identity: Identity
) -> None:
    upload_some(coordinator, HEALTH_VISITING)
    client = AuditClient(coordinator.channel(AUDITOR), timeout=DEADLINE)
    entries = list(client.entries())
    listed = client.checkpoints()
    opened = [verifier.open_checkpoint(c.note) for c in listed]
    assert [c.size for c in opened] == list(range(1, len(entries) + 1))
    assert [c.time for c in opened] == [c.time for c in listed]  # the time is signed
    some = [verifier.open_checkpoint(c.note).size for c in client.checkpoints(2, 3)]
    assert len(entries) >= 3 and some == [2, 3]
    with pytest.raises(RequestRefused, match="PERMISSION_DENIED"):
        AuditClient(coordinator.channel(identity), timeout=DEADLINE).checkpoints()
