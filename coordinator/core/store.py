"""The coordinator's SQLite store.

One database file (WAL mode) holds projects, uploads, packed encodings,
matching runs, entity assignments and the audit chain. Every change happens
inside ``Store.transaction()``, and the audit entry recording it is written
in that same transaction, so a crash never leaves an action without its entry
or an entry without its action.

What is stored about a record: the random token the node chose, its packed
encodings and which upload it came in. Never an identifier, never a linkage
key (keys are derived when they are served).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coordinator.core.audit import GENESIS, AuditEntry, AuditEvent, seal
from hublink.spec import canonical_json

SCHEMA_VERSION = 1

_SCHEMA = """
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
    commit_audit_index INTEGER
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
CREATE TABLE IF NOT EXISTS entities (
    record_id INTEGER PRIMARY KEY REFERENCES records(id),
    project_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    run_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entities_by_project ON entities(project_id, entity_id);
CREATE TABLE IF NOT EXISTS audit (
    idx INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor_organisation TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    action TEXT NOT NULL,
    project_id TEXT NOT NULL,
    details_json TEXT NOT NULL,
    previous_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
"""


def utc_now() -> str:
    """The current time as RFC 3339 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Transaction:
    """An open write transaction; ``audit`` appends to the chain inside it."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(
        self, sql: str, parameters: tuple[Any, ...] | dict[str, Any] = ()
    ) -> sqlite3.Cursor:
        return self._connection.execute(sql, parameters)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        return self._connection.executemany(sql, rows)

    def audit(self, event: AuditEvent) -> AuditEntry:
        """Append ``event`` to the audit chain, committed or rolled back with the action."""
        last = self._connection.execute(
            "SELECT idx, entry_hash FROM audit ORDER BY idx DESC LIMIT 1"
        ).fetchone()
        index, previous = (0, GENESIS) if last is None else (last[0] + 1, last[1])
        entry = seal(index, utc_now(), event, previous)
        self._connection.execute(
            "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.index,
                entry.time,
                event.actor_organisation,
                event.actor_role,
                event.action,
                event.project_id,
                canonical_json(dict(event.details)),
                entry.previous_hash,
                entry.entry_hash,
            ),
        )
        return entry


class Store:
    """A thread-safe handle on the coordinator's database.

    gRPC serves calls from a thread pool and matching runs in a thread of its
    own, so all access goes through one connection guarded by a lock: SQLite
    serialises writers anyway, and this keeps every transaction whole.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        self._lock = threading.RLock()
        self._connection = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA foreign_keys=ON")
        self._connection.execute("PRAGMA synchronous=FULL")
        with self.transaction() as tx:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    tx.execute(statement)
            tx.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """An IMMEDIATE transaction: committed if the block returns, rolled back if it raises."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._connection)
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

    def iterate(
        self, sql: str, parameters: tuple[Any, ...] = (), *, batch: int = 5000
    ) -> Iterator[tuple[Any, ...]]:
        """Stream a read in batches, releasing the lock between batches."""
        offset = 0
        while True:
            with self._lock:
                rows = self._connection.execute(
                    f"{sql} LIMIT ? OFFSET ?", (*parameters, batch, offset)
                ).fetchall()
            yield from rows
            if len(rows) < batch:
                return
            offset += batch

    def audit_entries(self) -> list[AuditEntry]:
        """The whole audit chain, oldest first."""
        rows = self.query("SELECT * FROM audit ORDER BY idx")
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
                previous_hash=row["previous_hash"],
                entry_hash=row["entry_hash"],
            )
            for row in rows
        ]
