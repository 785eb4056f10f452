"""Opening an upload: its row and its ``upload.started`` audit entry, written in one
transaction. Shared by a first upload (``uploads``) and a refresh (``refreshes``)."""

from __future__ import annotations

from coordinator.core import upload_limits
from coordinator.core.guard import event
from coordinator.core.model import ConsentSummary
from coordinator.core.store import Transaction, utc_now
from coordinator.core.upload_ids import public
from hublink.identity import Identity
from hublink.spec import canonical_json


def record_opening(
    tx: Transaction,
    caller: Identity,
    project_id: str,
    upload_id: str,
    encoding_sha256: str,
    expected_records: int,
    consent: ConsentSummary,
    secret_epoch: int,
    **details: object,
) -> None:
    """Insert an open upload stored as ``upload_id`` and audit ``upload.started`` (with
    ``details``, naming the id its node chose), in ``tx``."""
    tx.execute(
        "INSERT INTO uploads (id, project_id, organisation, state, encoding_sha256, "
        "expected_records, consent_json, created_at, secret_epoch) "
        "VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?)",
        (
            upload_id,
            project_id,
            caller.organisation,
            encoding_sha256,
            expected_records,
            canonical_json(upload_limits.details(consent)),
            utc_now(),
            secret_epoch,
        ),
    )
    started = {
        "upload_id": public(upload_id),
        "expected_records": expected_records,
        "consent": upload_limits.details(consent),
    }
    tx.audit(event(caller, "upload.started", project_id, {**started, **details}))
