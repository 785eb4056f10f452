"""Uploads: begin, chunks, commit; each record checked, each upload's digest verified.

A node opens an upload under the project's encoding hash and secret epoch,
sends its records in chunks (a repeated chunk is acknowledged, not stored
twice) and commits with the count and digest it computed; the coordinator
checks them against what it holds and keeps the upload, or erases it and
says why. Each organisation has at most one committed upload a project.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from coordinator.core import upload_limits
from coordinator.core.attributes import ATTRIBUTES_OF_RECORD, parse_attributes, store_attributes
from coordinator.core.errors import (
    AlreadyExists,
    CoordinatorError,
    InvalidRequest,
    NotFound,
    NotReady,
    OverLimit,
    SchemaMismatch,
)
from coordinator.core.guard import SYSTEM, Guard, event
from coordinator.core.model import (
    ChunkReceipt,
    ConsentSummary,
    IncomingRecord,
    Project,
    UploadReceipt,
    UploadState,
)
from coordinator.core.opening import record_opening
from coordinator.core.record_checks import (
    checked_attributes,
    name_bad_layout,
    name_bad_token,
)
from coordinator.core.secret_relay import current_epoch
from coordinator.core.store import Store, utc_now
from coordinator.core.upload_ids import UPLOAD_ID, id_for_new, own_row, public
from hublink.identity import Identity, Role
from hublink.spec import EncodingLayout, UploadDigest

log = logging.getLogger("hublink.coordinator")

#: A chunk's tokens joined by newlines, all good (checked in one match).
_TOKENS = re.compile(r"[A-Za-z0-9_-]{8,64}(?:\n[A-Za-z0-9_-]{8,64})*")


class Uploads:
    """Receiving uploads: the stage between a node's encoder and a matching run."""

    def __init__(self, store: Store, guard: Guard) -> None:
        self.store = store
        self.guard = guard
        # Digests of open uploads whose chunks came in order, so a commit need not re-read them.
        self._running: dict[str, _RunningDigest] = {}
        self._running_lock = threading.Lock()

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
        """Open an upload; a retried call with the same id returns the same upload.

        ``secret_epoch`` is the epoch of the linkage secret the node encoded
        with (0: a secret exchanged by the organisations' own means); it must be
        the project's current epoch, so encodings of two epochs never meet.
        An id another organisation holds is answered as a free one would be
        (``coordinator.core.upload_ids``).
        """
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "upload.begin", project, Role.NODE)
        if not UPLOAD_ID.fullmatch(upload_id):
            raise InvalidRequest("upload id must be 8 to 64 letters, digits or hyphens")
        existing = own_row(self.store, caller, upload_id)
        if existing is not None and existing["project_id"] != project.id:
            # The caller's own id, used in another project: a fresh id tells it nothing new.
            upload_id, existing = f"u-{uuid.uuid4()}", None
        if existing is not None:
            if int(existing["secret_epoch"]) != secret_epoch:
                # Resuming would mix encodings under two secrets in one upload.
                raise SchemaMismatch(
                    f"upload {upload_id} was begun under linkage-secret epoch "
                    f"{existing['secret_epoch']}, not {secret_epoch}; it cannot be resumed: "
                    "start a new upload"
                )
            return self.status(caller, upload_id)
        if encoding_sha256 != project.encoding_sha256:
            raise self._rejected(
                caller,
                project.id,
                upload_id,
                SchemaMismatch(
                    f"the node's encoding specification {encoding_sha256[:12]}… differs from "
                    f"project {project.id!r}'s {project.encoding_sha256[:12]}…; fetch the "
                    "project's "
                    "schema and use the same hublink version"
                ),
            )
        epoch = current_epoch(self.store, project.id)
        if secret_epoch != epoch:
            raise self._rejected(
                caller,
                project.id,
                upload_id,
                SchemaMismatch(
                    f"the node encoded with linkage-secret epoch {secret_epoch} but project "
                    f"{project.id!r} is at epoch {epoch}; fetch the current secret "
                    "(hublink node secret fetch) and encode again"
                ),
            )
        if expected_records > project.max_records:
            raise self._rejected(
                caller,
                project.id,
                upload_id,
                InvalidRequest(
                    f"{expected_records} records exceed project {project.id!r}'s limit of "
                    f"{project.max_records}"
                ),
            )
        for stale in upload_limits.expired(self.store, project):
            # Any organisation's stale upload: the coordinator erases it, not this caller.
            self._erase_upload(SYSTEM, project, stale, upload_limits.expiry_reason(project))
        try:
            upload_limits.admit(self.store, project, caller.organisation, consent, expected_records)
        except (InvalidRequest, OverLimit) as exc:
            raise self._rejected(caller, project.id, upload_id, exc) from None
        committed = self.store.query_one(
            "SELECT id FROM uploads WHERE project_id = ? AND organisation = ? "
            "AND state = 'committed'",
            (project.id, caller.organisation),
        )
        if committed is not None:
            raise self._rejected(
                caller,
                project.id,
                upload_id,
                AlreadyExists(
                    f"organisation {caller.organisation!r} already has a committed upload in "
                    "project "
                    f"{project.id!r}; a second upload never silently replaces the first"
                ),
            )
        with self.store.transaction() as tx:
            record_opening(
                tx,
                caller,
                project.id,
                id_for_new(self.store, caller, upload_id),
                encoding_sha256,
                expected_records,
                consent,
                secret_epoch,
            )
        log.info(
            "upload started: %d records expected",
            expected_records,
            extra=_ids(caller, project.id, upload_id),
        )
        return UploadState(upload_id, project.id, "open", (), 0)

    def _rejected(
        self, caller: Identity, project_id: str, upload_id: str, error: CoordinatorError
    ) -> CoordinatorError:
        with self.store.transaction() as tx:
            tx.audit(
                event(
                    caller,
                    "upload.rejected",
                    project_id,
                    {"upload_id": upload_id, "reason": str(error)},
                )
            )
        log.warning(
            "upload refused: %s", type(error).__name__, extra=_ids(caller, project_id, upload_id)
        )
        return error

    def own(self, caller: Identity, upload_id: str, action: str) -> tuple[Project, str, str]:
        """The caller's upload named ``upload_id``: its project, the id it is stored under,
        and its state. Refused (and audited) alike whether the id is another
        organisation's or no one's."""
        row = own_row(self.store, caller, upload_id)
        if caller.role is not Role.NODE:
            self.guard.authorise(caller, action, None, Role.NODE)  # refused, audited
        if row is None:
            named = upload_id if UPLOAD_ID.fullmatch(upload_id) else "with that id"
            error = NotFound(f"no upload {named} for organisation {caller.organisation!r}")
            raise self.guard.refused(caller, action, "", error)
        project = self.guard.project(row["project_id"])
        self.guard.authorise(caller, action, project, Role.NODE)
        return project, str(row["id"]), str(row["state"])

    def stored_id(self, caller: Identity, upload_id: str) -> str | None:
        """The id the caller's upload ``upload_id`` is stored under (None: it has none)."""
        row = own_row(self.store, caller, upload_id)
        return None if row is None else str(row["id"])

    def status(self, caller: Identity, upload_id: str) -> UploadState:
        """What the coordinator holds of an upload, so a node can resume it."""
        project, stored, state = self.own(caller, upload_id, "upload.status")
        chunks = self.store.query(
            "SELECT chunk_index FROM chunks WHERE upload_id = ? ORDER BY chunk_index", (stored,)
        )
        row = self.store.query_one("SELECT records_received FROM uploads WHERE id = ?", (stored,))
        assert row is not None
        return UploadState(
            upload_id, project.id, state, tuple(c[0] for c in chunks), int(row["records_received"])
        )

    def put_chunk(
        self, caller: Identity, upload_id: str, chunk_index: int, records: Sequence[IncomingRecord]
    ) -> ChunkReceipt:
        """Store one chunk; a repeat with the same content is acknowledged, not stored twice."""
        project, stored, state = self.own(caller, upload_id, "upload.chunk")
        if state != "open":
            raise NotReady(f"upload {upload_id} is {state}; it takes no more chunks")
        self._refuse_if_superseded(caller, project, stored)
        if not records:
            raise InvalidRequest(f"chunk {chunk_index} of upload {upload_id} has no records")
        if len(records) > project.max_chunk_records:
            raise InvalidRequest(
                f"chunk {chunk_index} has {len(records)} records; project {project.id!r} takes "
                f"at most {project.max_chunk_records} a chunk"
            )
        attributes: dict[str, tuple[tuple[str, str], ...]] = {}
        rows, digest = self._validate_chunk(project, chunk_index, records, attributes)
        with self.store.transaction() as tx:
            previous = tx.execute(
                "SELECT digest_sha256 FROM chunks WHERE upload_id = ? AND chunk_index = ?",
                (stored, chunk_index),
            ).fetchone()
            received = tx.execute(
                "SELECT records_received FROM uploads WHERE id = ?", (stored,)
            ).fetchone()[0]
            if previous is not None:
                if previous[0] != digest:
                    raise AlreadyExists(
                        f"chunk {chunk_index} of upload {upload_id} was already received with "
                        "different content"
                    )
                return ChunkReceipt(upload_id, chunk_index, True, int(received))
            if received + len(rows) > project.max_records:
                raise InvalidRequest(
                    f"upload {upload_id} would exceed project {project.id!r}'s limit of "
                    f"{project.max_records} records"
                )
            # Ids above the largest so far are this chunk's (the transaction holds the lock).
            floor = tx.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0]
            try:
                tx.executemany(
                    "INSERT INTO records (upload_id, chunk_index, token, encodings) "
                    "VALUES (?, ?, ?, ?)",
                    [(stored, chunk_index, token, blob) for token, blob in rows],
                )
            except sqlite3.IntegrityError:
                raise InvalidRequest(
                    f"chunk {chunk_index} repeats a record token already received in "
                    f"upload {upload_id}"
                ) from None
            if attributes:
                store_attributes(tx, stored, int(floor), attributes)
            tx.execute(
                "INSERT INTO chunks VALUES (?, ?, ?, ?)",
                (stored, chunk_index, len(rows), digest),
            )
            tx.execute(
                "UPDATE uploads SET records_received = records_received + ? WHERE id = ?",
                (len(rows), stored),
            )
        self._extend_digest(stored, chunk_index, records)
        return ChunkReceipt(upload_id, chunk_index, False, int(received) + len(rows))

    def _extend_digest(
        self, upload_id: str, chunk_index: int, records: Sequence[IncomingRecord]
    ) -> None:
        """Carry the upload's digest on by a stored chunk, if every earlier chunk came first."""
        with self._running_lock:
            running = self._running.get(upload_id)
            if running is None and chunk_index == 0:
                running = self._running[upload_id] = _RunningDigest()
            if running is None or running.chunks != chunk_index:
                self._running.pop(upload_id, None)  # out of order: the commit re-reads
                return
            running.digest.add_all(
                (record.token, [bits for _, bits in record.encodings], record.attributes)
                for record in records
            )
            running.chunks += 1
            running.records += len(records)

    def _validate_chunk(
        self,
        project: Project,
        chunk_index: int,
        records: Sequence[IncomingRecord],
        attributes: dict[str, tuple[tuple[str, str], ...]] | None = None,
    ) -> tuple[list[tuple[str, bytes]], str]:
        """Check a chunk's records; fills ``attributes`` (token -> released attributes, for
        records that have any).

        The common case (good tokens, the project's one encoding, no attributes)
        is checked a chunk at a time; a chunk that fails is walked record by
        record to name the first bad one.
        """
        attributes = {} if attributes is None else attributes
        expected = [(e.name, e.nbytes) for e in project.encodings]
        tokens = [record.token for record in records]
        joined = "\n".join(tokens)
        # A newline inside a token would pass the match as two good tokens: count them too.
        if (
            not _TOKENS.fullmatch(joined)
            or joined.count("\n") != len(tokens) - 1
            or len(set(tokens)) != len(tokens)
        ):
            name_bad_token(chunk_index, tokens)
        released = set(project.released_attributes)
        rows: list[tuple[str, bytes]] = []
        pieces: list[bytes] = []
        for position, record in enumerate(records):
            encodings = record.encodings
            if len(encodings) != len(expected) or any(
                name != want or len(bits) != length
                for (name, bits), (want, length) in zip(encodings, expected, strict=False)
            ):
                name_bad_layout(project, f"chunk {chunk_index}, record {position}", encodings)
            blob = encodings[0][1] if len(encodings) == 1 else b"".join(b for _, b in encodings)
            piece = record.token.encode() + b"\0" + blob
            if record.attributes:
                pairs = checked_attributes(
                    project, released, f"chunk {chunk_index}, record {position}", record
                )
                # Part of the chunk's digest: a changed attribute is not a repeat.
                piece += b"".join(
                    b"\0" + name.encode() + b"=" + value.encode() for name, value in pairs
                )
                attributes[record.token] = pairs
            pieces.append(piece)
            rows.append((record.token, blob))
        return rows, hashlib.sha256(b"".join(pieces)).hexdigest()

    def commit(
        self,
        caller: Identity,
        upload_id: str,
        chunk_count: int,
        record_count: int,
        digest_sha256: str,
    ) -> UploadReceipt:
        """Close an upload after checking it is whole; a bad one is rejected and erased."""
        project, stored, state = self.own(caller, upload_id, "upload.commit")
        if state == "committed":
            return self._receipt(stored)
        if state != "open":
            raise NotReady(f"upload {upload_id} is {state}")
        if upload_limits.is_expired(self.store, project, stored):
            self._erase_upload(caller, project, stored, upload_limits.expiry_reason(project))
            raise NotReady(f"upload {upload_id} expired before it was committed; start it again")
        self._refuse_if_superseded(caller, project, stored)
        chunks = [
            r[0]
            for r in self.store.query(
                "SELECT chunk_index FROM chunks WHERE upload_id = ? ORDER BY chunk_index",
                (stored,),
            )
        ]
        problem = ""
        if record_count == 0 or not chunks:
            problem = "the upload is empty"
        elif chunks != list(range(chunk_count)):
            missing = sorted(set(range(chunk_count)) - set(chunks))
            if missing:
                raise NotReady(
                    f"upload {upload_id} is missing chunks {missing[:10]}; send them "
                    "before committing"
                )
            problem = f"the coordinator holds chunks beyond the {chunk_count} the node declared"
        if not problem:
            with self._running_lock:
                running = self._running.pop(stored, None)
            if running is not None and running.chunks == chunk_count:
                received, ours = running.records, running.digest.hexdigest()
            else:  # chunks came out of order or across a restart: read them back
                received, ours = self._upload_digest(stored)
            if received != record_count:
                problem = f"the node declared {record_count} records but sent {received}"
            elif ours != digest_sha256:
                problem = "the records' digest differs from the node's; they changed in transit"
        if problem:
            self._erase_upload(caller, project, stored, problem)
            raise InvalidRequest(f"upload {upload_id} rejected: {problem}; nothing was kept")
        try:
            with self.store.transaction() as tx:
                tx.execute(
                    "UPDATE uploads SET state = 'committed', digest_sha256 = ?, "
                    "committed_at = ? WHERE id = ?",
                    (ours, utc_now(), stored),
                )
                entry = tx.audit(
                    event(
                        caller,
                        "upload.committed",
                        project.id,
                        {
                            "upload_id": upload_id,
                            "records": record_count,
                            "chunks": chunk_count,
                            "digest_sha256": ours,
                        },
                    )
                )
                tx.execute(
                    "UPDATE uploads SET commit_audit_index = ? WHERE id = ?",
                    (entry.index, stored),
                )
        except sqlite3.IntegrityError:
            # Another upload of this organisation was committed in the meantime.
            self._refuse_if_superseded(caller, project, stored)
            raise
        log.info(
            "upload committed: %d records",
            record_count,
            extra=_ids(caller, project.id, upload_id),
        )
        return self._receipt(stored)

    def _refuse_if_superseded(self, caller: Identity, project: Project, stored: str) -> None:
        """Erase and refuse an open upload once its organisation has committed another.

        Only one upload per organisation is ever used; an open one left behind
        would hold encodings that can never be matched. A refresh
        (``coordinator.core.refreshes``) is meant to meet the committed upload.
        """
        if self.store.query_one("SELECT 1 FROM refreshes WHERE upload_id = ?", (stored,)):
            return
        other = self.store.query_one(
            "SELECT id FROM uploads WHERE project_id = ? AND organisation = ? "
            "AND state = 'committed' AND id != ?",
            (project.id, caller.organisation, stored),
        )
        if other is None:
            return
        reason = "the organisation committed another upload to the project first"
        self._erase_upload(caller, project, stored, reason)
        raise AlreadyExists(
            f"upload {public(stored)} refused: organisation {caller.organisation!r} already has a "
            f"committed upload in project {project.id!r}; nothing of this upload was kept"
        )

    def _upload_digest(self, upload_id: str) -> tuple[int, str]:
        digest = UploadDigest()
        layout = self.guard.project(self._upload_project(upload_id)).encodings
        count = 0
        for token, blob, attributes in self.store.iterate(
            f"SELECT token, encodings, {ATTRIBUTES_OF_RECORD} FROM records r "
            "WHERE upload_id = ? ORDER BY chunk_index, id",
            (upload_id,),
        ):
            digest.add(token, _split(blob, layout), parse_attributes(attributes))
            count += 1
        return count, digest.hexdigest()

    def _upload_project(self, upload_id: str) -> str:
        row = self.store.query_one("SELECT project_id FROM uploads WHERE id = ?", (upload_id,))
        assert row is not None
        return str(row["project_id"])

    def _erase_upload(self, caller: Identity, project: Project, stored: str, reason: str) -> None:
        with self._running_lock:
            self._running.pop(stored, None)
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM records WHERE upload_id = ?", (stored,))
            tx.execute("DELETE FROM chunks WHERE upload_id = ?", (stored,))
            tx.execute(
                "UPDATE uploads SET state = 'rejected', records_received = 0 WHERE id = ?",
                (stored,),
            )
            tx.audit(
                event(
                    caller,
                    "upload.rejected",
                    project.id,
                    {"upload_id": public(stored), "reason": reason},
                )
            )
        log.warning(
            "upload rejected and erased: %s", reason, extra=_ids(caller, project.id, public(stored))
        )

    def _receipt(self, stored: str) -> UploadReceipt:
        row = self.store.query_one("SELECT * FROM uploads WHERE id = ?", (stored,))
        assert row is not None
        index = int(row["commit_audit_index"])
        [entry] = self.store.audit_entries(index, index)
        checkpoint = self.store.audit_checkpoint_at(index + 1) or self.store.audit_checkpoint()
        return UploadReceipt(
            public(stored),
            row["project_id"],
            row["organisation"],
            int(row["records_received"]),
            row["digest_sha256"],
            index,
            entry,
            tuple(self.store.audit_inclusion_proof(index, checkpoint.size)),
            checkpoint.note,
            self.store.signer.verifier.vkey(),
        )


def _ids(caller: Identity, project_id: str, upload_id: str) -> dict[str, str]:
    """A log line's ``extra``: the ids it is about, as fields (``hublink.logformat``)."""
    return {"caller": str(caller), "project": project_id, "upload": upload_id}


def _split(blob: bytes, layout: Sequence[EncodingLayout]) -> list[bytes]:
    parts = []
    offset = 0
    for encoding in layout:
        parts.append(blob[offset : offset + encoding.nbytes])
        offset += encoding.nbytes
    return parts


@dataclass
class _RunningDigest:
    """An open upload's digest so far, over its chunks 0 … ``chunks`` - 1 in order."""

    digest: UploadDigest = field(default_factory=UploadDigest)
    chunks: int = 0
    records: int = 0
