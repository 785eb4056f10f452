"""Refreshes: next month's extract, sent as the changes since the last one.

A node that has a committed upload sends a refresh: an upload (begun with
``refresh``) whose chunks hold only records added or changed since, plus, at
commit, the tokens of records gone. Chunks travel, are acknowledged and
resumed exactly as an upload's (``coordinator.core.uploads``); only the
commit differs. It is one transaction that checks the refresh is whole and
then merges it into the organisation's committed upload:

* a record under a token already held is *changed*: the held row keeps its
  id (so its entity, and the child's key, stay while the evidence does) and
  takes the new encodings;
* a record under a new token is *added*;
* a removed token's record is deleted with its entity row, as a withdrawal is;
* everything else is *unchanged*.

Either all of that lands, with one ``upload.committed`` audit entry holding
the counts, or none of it. The coordinator learns that a token's encoding
changed, never what changed. Records touched are remembered in
``pending_changes`` for the next incremental run.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from coordinator.core import lineage, upload_limits
from coordinator.core.errors import (
    CoordinatorError,
    InvalidRequest,
    NotReady,
    OverLimit,
    SchemaMismatch,
)
from coordinator.core.guard import SYSTEM, event
from coordinator.core.model import ConsentSummary, UploadReceipt, UploadState
from coordinator.core.opening import record_opening
from coordinator.core.record_checks import TOKEN
from coordinator.core.secret_relay import current_epoch
from coordinator.core.store import Store, Transaction, utc_now
from coordinator.core.upload_ids import UPLOAD_ID, id_for_new, own_row, public
from coordinator.core.uploads import Uploads
from hublink.identity import Identity, Role

log = logging.getLogger("hublink.coordinator")

#: Removed tokens one commit may carry (they travel in the commit message).
MAX_REMOVED = 150_000


@dataclass(frozen=True)
class RefreshCounts:
    """What a refresh did to the records held: counts only."""

    added: int
    changed: int
    removed: int
    unchanged: int


class Refreshes:
    """Beginning and committing refreshes; chunks go through ``Uploads`` unchanged."""

    def __init__(self, store: Store, uploads: Uploads) -> None:
        self.store = store
        self.uploads = uploads
        self.guard = uploads.guard

    def is_refresh(self, upload_id: str) -> bool:
        return (
            self.store.query_one("SELECT 1 FROM refreshes WHERE upload_id = ?", (upload_id,))
            is not None
        )

    def begin(
        self,
        caller: Identity,
        project_id: str,
        upload_id: str,
        encoding_sha256: str,
        expected_records: int,
        consent: ConsentSummary,
        secret_epoch: int = 0,
    ) -> UploadState:
        """Open a refresh of the caller's committed upload; a retried call returns the same one.

        Refused, with nothing changed, when the schema or the linkage-secret
        epoch differs from the project's, or from the upload it would refresh
        (encodings under two secrets never match).
        """
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "upload.begin", project, Role.NODE)
        if not UPLOAD_ID.fullmatch(upload_id):
            raise InvalidRequest("upload id must be 8 to 64 letters, digits or hyphens")
        # Only the caller's own uploads exist for it (coordinator.core.upload_ids).
        existing = own_row(self.store, caller, upload_id)
        if existing is not None and existing["project_id"] != project.id:
            upload_id, existing = f"u-{uuid.uuid4()}", None  # its own id, in another project
        if existing is not None:
            if not self.is_refresh(str(existing["id"])):
                raise InvalidRequest(f"upload {upload_id} is not a refresh")
            # Same checks as a resumed upload (owner, epoch), then its status.
            return self.uploads.begin(
                caller,
                project_id,
                upload_id,
                encoding_sha256,
                expected_records,
                consent,
                secret_epoch,
            )
        base = self.store.query_one(
            "SELECT id, secret_epoch FROM uploads WHERE project_id = ? AND organisation = ? "
            "AND state = 'committed'",
            (project.id, caller.organisation),
        )
        if base is None:
            raise NotReady(
                f"organisation {caller.organisation!r} has no committed upload in project "
                f"{project.id!r} to refresh; send a first upload"
            )
        problem: CoordinatorError | None = None
        if encoding_sha256 != project.encoding_sha256:
            problem = SchemaMismatch(
                f"the node's encoding specification {encoding_sha256[:12]}… differs from "
                f"project {project.id!r}'s {project.encoding_sha256[:12]}…; nothing was changed"
            )
        elif secret_epoch != current_epoch(self.store, project.id) or secret_epoch != int(
            base["secret_epoch"]
        ):
            problem = SchemaMismatch(
                f"a refresh under linkage-secret epoch {secret_epoch} cannot be merged with "
                f"records encoded under epoch {base['secret_epoch']} (project {project.id!r} is "
                f"at epoch {current_epoch(self.store, project.id)}); nothing was changed"
            )
        elif expected_records > project.max_records:
            problem = InvalidRequest(
                f"{expected_records} records exceed project {project.id!r}'s limit of "
                f"{project.max_records}"
            )
        if problem is not None:
            raise self.uploads._rejected(caller, project.id, upload_id, problem)
        # The same bounds as a first upload: a checked consent summary, few open uploads. The
        # summary counts the whole extract while a refresh declares only its changes, so its
        # "included" is held to the project's record limit, not to the refresh's size.
        for stale in upload_limits.expired(self.store, project):
            self.uploads._erase_upload(SYSTEM, project, stale, upload_limits.expiry_reason(project))
        try:
            upload_limits.admit(
                self.store, project, caller.organisation, consent, project.max_records
            )
        except (InvalidRequest, OverLimit) as exc:
            raise self.uploads._rejected(caller, project.id, upload_id, exc) from None
        stored = id_for_new(self.store, caller, upload_id)
        with self.store.transaction() as tx:
            record_opening(
                tx,
                caller,
                project.id,
                stored,
                encoding_sha256,
                expected_records,
                consent,
                secret_epoch,
                refresh=True,
            )
            tx.execute(
                "INSERT INTO refreshes (upload_id, base_upload_id, project_id, organisation) "
                "VALUES (?, ?, ?, ?)",
                (stored, base["id"], project.id, caller.organisation),
            )
        return UploadState(upload_id, project.id, "open", (), 0)

    def commit(
        self,
        caller: Identity,
        upload_id: str,
        chunk_count: int,
        record_count: int,
        digest_sha256: str,
        removed_tokens: Sequence[str],
    ) -> UploadReceipt:
        """Check the refresh is whole and merge it into the committed upload, in one transaction.

        Someone else's id and no id at all are refused alike, and audited
        (``Uploads.own``)."""
        project, stored, state = self.uploads.own(caller, upload_id, "upload.commit")
        row = self.store.query_one(
            "SELECT base_upload_id FROM refreshes WHERE upload_id = ?", (stored,)
        )
        if row is None:
            raise InvalidRequest(f"upload {upload_id} is not a refresh")
        if state == "applied":
            return self.uploads._receipt(stored)
        if state != "open":
            raise NotReady(f"refresh {upload_id} is {state}")
        if len(removed_tokens) > MAX_REMOVED:
            raise InvalidRequest(f"a refresh removes at most {MAX_REMOVED} records")
        for position, token in enumerate(removed_tokens):
            if not TOKEN.fullmatch(token):
                raise InvalidRequest(
                    f"removed token {position}: must be 8 to 64 URL-safe characters"
                )
        chunks = [
            int(r[0])
            for r in self.store.query(
                "SELECT chunk_index FROM chunks WHERE upload_id = ? ORDER BY chunk_index",
                (stored,),
            )
        ]
        if chunks != list(range(chunk_count)):
            missing = sorted(set(range(chunk_count)) - set(chunks))
            if missing:
                raise NotReady(f"refresh {upload_id} is missing chunks {missing[:10]}")
            raise InvalidRequest(
                f"refresh {upload_id} holds chunks beyond the {chunk_count} declared"
            )
        received, ours = self.uploads._upload_digest(stored)
        if received != record_count or ours != digest_sha256:
            self.uploads._erase_upload(caller, project, stored, "the refresh's digest differs")
            raise InvalidRequest(
                f"refresh {upload_id} rejected: what arrived is not what the node sent; "
                "nothing was changed"
            )
        base = str(row["base_upload_id"])
        with self.store.transaction() as tx:
            counts = _merge(tx, project.id, base, stored, sorted(set(removed_tokens)))
            tx.execute(
                "UPDATE uploads SET state = 'applied', digest_sha256 = ?, committed_at = ? "
                "WHERE id = ?",
                (ours, utc_now(), stored),
            )
            tx.execute(
                "UPDATE refreshes SET added = ?, changed = ?, removed = ?, unchanged = ?, "
                "applied_at = ? WHERE upload_id = ?",
                (
                    counts.added,
                    counts.changed,
                    counts.removed,
                    counts.unchanged,
                    utc_now(),
                    stored,
                ),
            )
            entry = tx.audit(
                event(
                    caller,
                    "upload.committed",
                    project.id,
                    {
                        "upload_id": public(stored),
                        "records": record_count,
                        "chunks": chunk_count,
                        "digest_sha256": ours,
                        "refresh": {
                            "base_upload_id": public(base),
                            "added": counts.added,
                            "changed": counts.changed,
                            "removed": counts.removed,
                            "unchanged": counts.unchanged,
                        },
                    },
                )
            )
            tx.execute(
                "UPDATE uploads SET commit_audit_index = ? WHERE id = ?", (entry.index, stored)
            )
        log.info(
            "refresh applied: %d added, %d changed, %d removed, %d unchanged",
            counts.added,
            counts.changed,
            counts.removed,
            counts.unchanged,
            extra={"caller": str(caller), "project": project.id, "upload": public(stored)},
        )
        return self.uploads._receipt(stored)

    def counts(self, upload_id: str) -> RefreshCounts | None:
        row = self.store.query_one(
            "SELECT added, changed, removed, unchanged FROM refreshes WHERE upload_id = ?",
            (upload_id,),
        )
        if row is None:
            return None
        return RefreshCounts(*(int(v) for v in row))


def _merge(
    tx: Transaction, project_id: str, base: str, refresh: str, removed: Sequence[str]
) -> RefreshCounts:
    """Fold the refresh's records into the base upload and delete the removed ones."""
    held = int(
        tx.execute("SELECT COUNT(*) FROM records WHERE upload_id = ?", (base,)).fetchone()[0]
    )
    pairs = tx.execute(
        "SELECT n.id, o.id FROM records n LEFT JOIN records o "
        "ON o.upload_id = ? AND o.token = n.token WHERE n.upload_id = ? ORDER BY n.id",
        (base, refresh),
    ).fetchall()
    changed = [(int(new), int(old)) for new, old in pairs if old is not None]
    added = [int(new) for new, old in pairs if old is None]
    # Changed: the held row keeps its id (and entity) and takes the new encodings.
    tx.executemany(
        "UPDATE records SET encodings = (SELECT encodings FROM records WHERE id = ?) WHERE id = ?",
        changed,
    )
    tx.executemany("DELETE FROM record_attributes WHERE record_id = ?", ((o,) for _, o in changed))
    tx.executemany(
        "UPDATE record_attributes SET record_id = ? WHERE record_id = ?",
        ((o, n) for n, o in changed),
    )
    tx.executemany("DELETE FROM records WHERE id = ?", ((n,) for n, _ in changed))
    tx.execute("UPDATE records SET upload_id = ? WHERE upload_id = ?", (base, refresh))
    gone: list[int] = []
    for start in range(0, len(removed), 500):
        part = list(removed[start : start + 500])
        marks = ",".join("?" * len(part))
        gone.extend(
            int(r[0])
            for r in tx.execute(
                f"SELECT id FROM records WHERE upload_id = ? AND token IN ({marks})",
                (base, *part),
            ).fetchall()
        )
    lineage.removed(tx, project_id, gone, lineage.LEFT)
    tx.executemany("DELETE FROM entities WHERE record_id = ?", ((i,) for i in gone))
    tx.executemany("DELETE FROM records WHERE id = ?", ((i,) for i in gone))
    tx.executemany(
        "INSERT OR REPLACE INTO pending_changes VALUES (?, ?, ?)",
        [
            *((project_id, o, "changed") for _, o in changed),
            *((project_id, n, "added") for n in added),
        ],
    )
    pending_removed(tx, project_id, gone)
    return RefreshCounts(
        added=len(added),
        changed=len(changed),
        removed=len(gone),
        unchanged=held - len(changed) - len(gone),
    )


def pending_removed(tx: Transaction, project_id: str, record_ids: Sequence[int]) -> None:
    """Note records removed since the last run (withdrawn or gone), for an incremental run."""
    tx.executemany(
        "INSERT OR REPLACE INTO pending_changes VALUES (?, ?, 'removed')",
        ((project_id, i) for i in record_ids),
    )
