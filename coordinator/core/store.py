"""The coordinator's SQLite store.

One database file (WAL mode) holds projects, uploads, packed encodings,
matching runs, entity assignments and the audit chain. Every change happens
inside ``Store.transaction()``, and the audit entry recording it is written
in that same transaction, so a crash never leaves an action without its entry
or an entry without its action.

What is stored about a record: the random token the node chose, its packed
encodings, which upload it came in, and the coarse attributes its project
releases (``record_attributes``: age band, area code…). Never an identifier,
never a linkage key (keys are derived when they are served).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coordinator.core import auditstore, kept_rows, living_schema, migrations
from coordinator.core.audit import AuditEntry, AuditEvent, seal
from hublink.audit import merkle
from hublink.audit.checkpoint import Signer, default_audit_key, load_or_create_key
from hublink.private import private_sqlite, tighten_sqlite
from hublink.spec import canonical_json

SCHEMA_VERSION = 6
"""Bumped with each step added to ``coordinator.core.migrations.STEPS`` (2: run quality;
4: refreshes, key lineage and releases)."""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    definition_sha256 TEXT NOT NULL,
    encoding_sha256 TEXT NOT NULL,
    project_key BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    organisation TEXT NOT NULL,
    state TEXT NOT NULL,
    encoding_sha256 TEXT NOT NULL,
    expected_records INTEGER NOT NULL,
    records_received INTEGER NOT NULL DEFAULT 0,
    consent_json TEXT NOT NULL,
    digest_sha256 TEXT,
    created_at TEXT NOT NULL,
    committed_at TEXT,
    commit_audit_index INTEGER,
    secret_epoch INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS one_committed_upload
    ON uploads(project_id, organisation) WHERE state = 'committed';
CREATE TABLE IF NOT EXISTS chunks (
    upload_id TEXT NOT NULL REFERENCES uploads(id),
    chunk_index INTEGER NOT NULL,
    record_count INTEGER NOT NULL,
    digest_sha256 TEXT NOT NULL,
    PRIMARY KEY (upload_id, chunk_index)
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    upload_id TEXT NOT NULL REFERENCES uploads(id),
    chunk_index INTEGER NOT NULL,
    token TEXT NOT NULL,
    encodings BLOB NOT NULL,
    UNIQUE (upload_id, token)
);
-- An upload's records in the order they arrived, without a sort: runs load them, keys read them.
CREATE INDEX IF NOT EXISTS records_by_upload ON records(upload_id, id);
CREATE TABLE IF NOT EXISTS record_attributes (
    record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (record_id, name)
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    state TEXT NOT NULL,
    threshold REAL NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    seconds REAL NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    entities INTEGER NOT NULL DEFAULT 0,
    linked_entities INTEGER NOT NULL DEFAULT 0,
    candidates INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT ''
);
-- A completed run's quality estimate (coordinator.core.quality.RunQuality as JSON):
-- aggregate figures, a histogram of best scores and a fitted curve (no record, no pair).
CREATE TABLE IF NOT EXISTS run_quality (
    run_id TEXT PRIMARY KEY REFERENCES runs(id),
    report TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entities (
    record_id INTEGER PRIMARY KEY REFERENCES records(id),
    project_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    run_id TEXT NOT NULL
);
-- By project in record order: entity ids are random, so an index on them would take every
-- row of a run at a random place, while record ids arrive in order and go in at one edge.
CREATE INDEX IF NOT EXISTS entities_by_project_record ON entities(project_id, record_id);
CREATE TABLE IF NOT EXISTS node_keys (
    project_id TEXT NOT NULL,
    organisation TEXT NOT NULL,
    public_key BLOB NOT NULL,
    certificate_pem TEXT NOT NULL,
    signature BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    published_at TEXT NOT NULL,
    PRIMARY KEY (project_id, organisation)
);
CREATE TABLE IF NOT EXISTS secret_envelopes (
    project_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    enc BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    signature BLOB NOT NULL,
    sender_certificate_pem TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, epoch, recipient)
);
CREATE TABLE IF NOT EXISTS audit (
    idx INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor_organisation TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    action TEXT NOT NULL,
    project_id TEXT NOT NULL,
    details_json TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
"""
    + auditstore.SCHEMA
    + living_schema.SCHEMA
    + kept_rows.SCHEMA
)


def utc_now() -> str:
    """The current time as RFC 3339 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Transaction:
    """An open write transaction; ``audit`` appends to the Merkle log inside it."""

    def __init__(self, connection: sqlite3.Connection, signer: Signer) -> None:
        self._connection = connection
        self._signer = signer

    def execute(
        self, sql: str, parameters: tuple[Any, ...] | dict[str, Any] = ()
    ) -> sqlite3.Cursor:
        return self._connection.execute(sql, parameters)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        return self._connection.executemany(sql, rows)

    def audit(self, event: AuditEvent) -> AuditEntry:
        """Append ``event`` to the audit log, committed or rolled back with the action.

        A checkpoint over the log including this entry is signed (its time
        with it) and stored in the same transaction, so the action is never
        acknowledged while its entry is an unsigned tail. It costs about
        0.1 ms an entry (bench/audit_log.py, docs/benchmarks.md).
        """
        last = self._connection.execute("SELECT MAX(idx) FROM audit").fetchone()[0]
        index = 0 if last is None else int(last) + 1
        entry = seal(index, utc_now(), event)
        self._connection.execute(
            "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.index,
                entry.time,
                event.actor_organisation,
                event.actor_role,
                event.action,
                event.project_id,
                canonical_json(dict(event.details)),
                entry.entry_hash,
            ),
        )
        auditstore.append_leaf(self._connection, index, bytes.fromhex(entry.entry_hash))
        auditstore.sign_checkpoint(self._connection, self._signer, index + 1, entry.time)
        return entry

    def checkpoint(self) -> auditstore.SignedCheckpoint:
        """A signed checkpoint over the whole log as it stands in this transaction."""
        size = auditstore.log_size(self._connection)
        return auditstore.sign_checkpoint(self._connection, self._signer, size, utc_now())

    def sign_unsigned_tail(self) -> None:
        """Sign a checkpoint over the whole log if it has entries and none covers the last."""
        if auditstore.log_size(self._connection) > 0:
            self.checkpoint()

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(auditstore.SqlSubtrees(self._connection), index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return merkle.consistency_proof(
            auditstore.SqlSubtrees(self._connection), old_size, new_size
        )


class Store:
    """A thread-safe handle on the coordinator's database.

    gRPC serves calls from a thread pool and matching runs in a thread of its
    own, so all access goes through one connection guarded by a lock: SQLite
    serialises writers anyway, and this keeps every transaction whole.
    """

    def __init__(self, path: Path | str, signer: Signer | None = None) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        if signer is None:
            in_memory = str(path) == ":memory:"
            signer = Signer.generate() if in_memory else load_or_create_key(default_audit_key(path))
        self.signer = signer
        self._lock = threading.RLock()
        if isinstance(self.path, Path):
            private_sqlite(self.path)  # owner-only; SQLite gives -wal and -shm the same mode
        self._connection = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        try:
            self._open()
        except BaseException:
            # A refused or failed migration must not leave the connection open.
            self._connection.close()
            raise

    def _open(self) -> None:
        """Settings, migration and schema on the new connection (raises before writing)."""
        self._connection.execute("PRAGMA journal_mode=WAL")
        if isinstance(self.path, Path):
            tighten_sqlite(self.path)
        self._connection.execute("PRAGMA foreign_keys=ON")
        self._connection.execute("PRAGMA synchronous=FULL")
        # Deleted content is overwritten, so erased encodings do not survive in free pages.
        self._connection.execute("PRAGMA secure_delete=ON")
        # An older database is copied aside, then upgraded in this one transaction
        # (coordinator.core.migrations); a newer one is refused before anything is written.
        backup = migrations.prepare(self._connection, self.path, SCHEMA_VERSION)
        with self.transaction() as tx:
            migrations.migrate(tx, SCHEMA_VERSION, backup=backup)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    tx.execute(statement)
            tx.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            # A log written by an earlier version may end in entries no checkpoint covers;
            # sign one over them now, dated now (signing never backdates).
            tx.sign_unsigned_tail()

    def compact(self) -> None:
        """Rebuild the file and empty the write-ahead log, after erasing personal data."""
        with self._lock:
            self._connection.execute("VACUUM")
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """An IMMEDIATE transaction: committed if the block returns, rolled back if it raises."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._connection, self.signer)
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Run a read and return every row (rows index by column name)."""
        with self._lock:
            cursor = self._connection.execute(sql, parameters)
            cursor.row_factory = sqlite3.Row
            return list(cursor.fetchall())

    def query_one(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, parameters)
        return rows[0] if rows else None

    def read_one(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        """One row of committed data, read without waiting for the writer's lock.

        For calls a person polls while a long write holds the lock (a run
        storing millions of entities): a file database is read through a
        connection of its own, which WAL lets read beside the writer.
        """
        if self.path == ":memory:":
            return self.query_one(sql, parameters)
        reader = sqlite3.connect(
            f"{Path(self.path).resolve().as_uri()}?mode=ro", uri=True, timeout=30
        )
        try:
            reader.row_factory = sqlite3.Row
            row: sqlite3.Row | None = reader.execute(sql, parameters).fetchone()
            return row
        finally:
            reader.close()

    def iterate(
        self, sql: str, parameters: tuple[Any, ...] = (), *, batch: int = 5000
    ) -> Iterator[tuple[Any, ...]]:
        """Stream a read in batches, in one consistent snapshot, without holding the lock.

        A file database is read through a connection of the iteration's own:
        in WAL mode it sees the database as it was when the read began while
        uploads and runs go on writing, and each row is visited once (no
        LIMIT/OFFSET, whose cost grows with the offset). An in-memory database
        has only the one connection, so it is read in OFFSET batches under the lock.
        """
        for rows in self.batches(sql, parameters, batch=batch):
            yield from rows

    def batches(
        self, sql: str, parameters: tuple[Any, ...] = (), *, batch: int = 5000
    ) -> Iterator[list[tuple[Any, ...]]]:
        """``iterate``, a batch of rows at a time: for readers that take each column of a
        batch whole (``zip(*rows)``) rather than row by row."""
        if self.path == ":memory:":
            yield from self._batches_in_memory(sql, parameters, batch)
            return
        reader = sqlite3.connect(
            f"{Path(self.path).resolve().as_uri()}?mode=ro", uri=True, timeout=30
        )
        try:
            cursor = reader.execute(sql, parameters)
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            reader.close()

    def _batches_in_memory(
        self, sql: str, parameters: tuple[Any, ...], batch: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        offset = 0
        while True:
            with self._lock:
                rows = self._connection.execute(
                    f"{sql} LIMIT ? OFFSET ?", (*parameters, batch, offset)
                ).fetchall()
            if rows:
                yield rows
            if len(rows) < batch:
                return
            offset += batch

    def audit_entries(self, first: int = 0, last: int | None = None) -> list[AuditEntry]:
        """The audit log's entries ``first`` to ``last`` (inclusive; default all), oldest first."""
        rows = self.query(
            "SELECT * FROM audit WHERE idx >= ? AND idx <= ? ORDER BY idx",
            (first, 2**62 if last is None else last),
        )
        return [
            AuditEntry(
                index=row["idx"],
                time=row["time"],
                event=AuditEvent(
                    action=row["action"],
                    actor_organisation=row["actor_organisation"],
                    actor_role=row["actor_role"],
                    project_id=row["project_id"],
                    details=json.loads(row["details_json"]),
                ),
                entry_hash=row["entry_hash"],
            )
            for row in rows
        ]

    # ------------------------------------------------------------ the Merkle log
    def audit_checkpoint(self) -> auditstore.SignedCheckpoint:
        """A signed checkpoint over the whole log now (signed on demand if the log grew)."""
        with self.transaction() as tx:
            signed = tx.checkpoint()
        return dataclasses.replace(signed, public_key=self.signer.verifier.vkey())

    def audit_checkpoints(self) -> list[auditstore.SignedCheckpoint]:
        """Every checkpoint the coordinator signed, smallest first."""
        with self._lock:
            return auditstore.all_checkpoints(self._connection)

    def audit_checkpoint_at(self, size: int) -> auditstore.SignedCheckpoint | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT size, time, root, note FROM checkpoints WHERE size = ?", (size,)
            ).fetchone()
        if row is None:
            return None
        return auditstore.SignedCheckpoint(
            int(row[0]), row[1], bytes(row[2]), row[3], self.signer.verifier.vkey()
        )

    def audit_size(self) -> int:
        with self._lock:
            return auditstore.log_size(self._connection)

    def audit_inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Proof that entry ``index`` is in the log of ``size`` entries (hashes from the store)."""
        with self._lock:
            return merkle.inclusion_proof(auditstore.SqlSubtrees(self._connection), index, size)

    def audit_consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Proof that the log of ``old_size`` entries is a prefix of the log of ``new_size``."""
        with self._lock:
            return merkle.consistency_proof(
                auditstore.SqlSubtrees(self._connection), old_size, new_size
            )
