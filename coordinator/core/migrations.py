"""Bringing an older coordinator database up to the schema this code expects.

Why: a linkage unit upgrades hublink in place, and its database holds
uploads it cannot ask the organisations to send again, plus an audit log
whose value is that it was never rewritten. So an upgrade changes the
schema, never an audit entry, and never half-way.

How: ``meta.schema_version`` says which layout a database has. ``STEPS``
is an ordered list of steps, step N taking version N to N + 1. When a
store opens a database older than ``current``:

1. a consistent copy of the file is written beside it first
   (``coordinator.db.v1-backup``, through SQLite's online backup API),
   so an operator can always go back to the old release;
2. every step from the stored version to ``current`` runs inside the one
   IMMEDIATE transaction that also applies the current ``CREATE ... IF NOT
   EXISTS`` schema, and records ``store.migrated`` in the audit log. If any
   step fails, the transaction rolls back and the database is untouched.

A database newer than the code is refused (``SchemaTooNew``): older code
would misread columns it does not know, so it must not write to it.

Changing the schema: a new table (or index) goes into ``store._SCHEMA`` as
``CREATE ... IF NOT EXISTS`` and, like anything else an older database lacks,
is a new version: append a ``Step`` here for what ``IF NOT EXISTS`` cannot do
(a column added to an existing table, data rewritten; it may do nothing
else) and bump ``store.SCHEMA_VERSION``. tests/unit/test_store_migration.py
checks the steps run 1, 2, … up to the current version.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from coordinator.core.audit import AuditEntry, AuditEvent
from hublink.private import private_sqlite

log = logging.getLogger("hublink.coordinator")


class MigrationError(RuntimeError):
    """The database cannot be brought up to date; the message says why and what to do."""


class SchemaTooNew(MigrationError):
    """The database was written by a newer hublink than this one."""


class StepTransaction(Protocol):
    """What a step may use: the store's open transaction (``coordinator.core.store``)."""

    def execute(self, sql: str, parameters: tuple[object, ...] = ...) -> sqlite3.Cursor: ...

    def audit(self, event: AuditEvent) -> AuditEntry: ...


@dataclass(frozen=True)
class Step:
    """Takes a database from ``from_version`` to ``from_version + 1``."""

    from_version: int
    summary: str
    apply: Callable[[StepTransaction], None]


def _columns(tx: StepTransaction, table: str) -> set[str]:
    return {str(row[1]) for row in tx.execute(f"PRAGMA table_info({table})").fetchall()}


def _v1_to_v2(tx: StepTransaction) -> None:
    """Version 2 adds run quality reports (the ``run_quality`` table).

    A new table needs no step of its own: the current schema's ``CREATE
    TABLE IF NOT EXISTS`` runs right after the steps, in the same
    transaction. Steps are for what that cannot do (new columns, changed
    data). This one checks what it can upgrade: a version-1 file from before
    the Merkle audit log (its ``audit`` table still has a ``previous_hash``
    column) holds a hash chain that cannot become the Merkle log without
    rewriting every entry, so it is refused rather than silently re-sealed.
    """
    if "previous_hash" in _columns(tx, "audit"):
        raise MigrationError(
            "the database's audit log is the early hash chain (hublink before the Merkle log); "
            "it cannot be upgraded in place: export it with the old release's "
            "`hublink audit export`, then start a new database"
        )


def _v2_to_v3(tx: StepTransaction) -> None:
    """Version 3 changes two indexes so large runs read and write in order.

    It adds ``records_by_upload`` (each upload's records in arrival order:
    before it, loading a run or reading keys went through the token index and
    sorted every record of the upload) and replaces the index of entities by
    (project, entity id), which took each of a run's rows at a random place,
    with one by (project, record id). New indexes come from the current
    schema's ``CREATE INDEX IF NOT EXISTS`` in the same transaction; the old
    one is dropped here.
    """
    tx.execute("DROP INDEX IF EXISTS entities_by_project")


def _v3_to_v4(tx: StepTransaction) -> None:
    """Version 4 adds the tables of a living linkage (``coordinator.core.living_schema``):
    refreshes, changes awaiting a run, key lineage, releases and stored pairs. All new
    tables, made by the current schema in the same transaction; nothing to rewrite."""


def _v4_to_v5(tx: StepTransaction) -> None:
    """Version 5 indexes key changes by run (``key_changes_by_run``), so each run reads and
    settles its own changes in time that follows the change, not the project's history. The
    index comes from the current schema in the same transaction; nothing to rewrite."""


def _v5_to_v6(tx: StepTransaction) -> None:
    """Version 6 keeps a run's pairs, estimate sample and entity map for the next run as a
    base and each run's change (``kept_rows``), not rewritten whole every run. The whole
    copies of version 5 go: the next run is a full one and writes the new base (its
    entities come from the entity rows, as before any run was kept)."""
    tx.execute("DROP TABLE IF EXISTS run_pairs")
    tx.execute("DROP TABLE IF EXISTS run_entities")
    tx.execute("DELETE FROM meta WHERE key LIKE 'sample:%'")


STEPS: tuple[Step, ...] = (
    Step(1, "add run quality reports", _v1_to_v2),
    Step(2, "index records and entities in arrival order", _v2_to_v3),
    Step(3, "add refreshes, key lineage and releases", _v3_to_v4),
    Step(4, "index key changes by run", _v4_to_v5),
    Step(5, "keep run pairs, sample and entities as changes", _v5_to_v6),
)
"""Every step, oldest first; ``STEPS[i].from_version == i + 1``."""


class _Reads(Protocol):
    def execute(self, sql: str, parameters: tuple[object, ...] = ...) -> sqlite3.Cursor: ...


def stored_version(db: _Reads) -> int | None:
    """The database's schema version, or None for a new (empty) database."""
    has_meta = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta is None:
        return None
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else int(row[0])


def prepare(connection: sqlite3.Connection, path: Path | str, current: int) -> Path | None:
    """Before the upgrading transaction: refuse a newer database, back up an older one.

    Returns the backup written (None if the database is new, up to date or in memory).
    """
    found = stored_version(connection)
    if found is not None and found > current:
        raise SchemaTooNew(
            f"{path}: the database has schema version {found} but this hublink knows versions "
            f"up to {current}; run the newer hublink that wrote it (or restore a backup)"
        )
    if found is None or found == current or not isinstance(path, Path):
        return None
    return back_up(connection, path, found)


def backup_path(path: Path, version: int) -> Path:
    """Where the pre-upgrade copy goes: beside the database, never over an earlier copy."""
    candidate = path.with_name(f"{path.name}.v{version}-backup")
    number = 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}.v{version}-backup.{number}")
    return candidate


def back_up(connection: sqlite3.Connection, path: Path, version: int) -> Path:
    """A consistent copy of the database as it is now (online backup), before upgrading."""
    target = private_sqlite(backup_path(path, version))
    copy = sqlite3.connect(str(target))
    try:
        connection.backup(copy)
    finally:
        copy.close()
    log.info("database %s is at schema version %d; copied it to %s first", path, version, target)
    return target


def migrate(
    tx: StepTransaction,
    current: int,
    *,
    backup: Path | None = None,
    steps: tuple[Step, ...] | None = None,
) -> int | None:
    """Apply every step from the stored version to ``current`` inside ``tx``.

    Reads the version inside the transaction, so two processes opening the
    same file do not both migrate it. Returns the version migrated from, or
    None if there was nothing to do (a new or up-to-date database).
    """
    found = stored_version(tx)
    if found is None or found >= current:
        return None
    by_version = {step.from_version: step for step in (STEPS if steps is None else steps)}
    for version in range(found, current):
        step = by_version.get(version)
        if step is None:
            raise MigrationError(f"no migration from schema version {version} to {version + 1}")
        step.apply(tx)
        log.info("database schema %d -> %d: %s", version, version + 1, step.summary)
    tx.audit(
        AuditEvent(
            action="store.migrated",
            actor_organisation="coordinator",
            actor_role="coordinator",
            details={
                "from_version": found,
                "to_version": current,
                "backup": "" if backup is None else backup.name,
            },
        )
    )
    return found
