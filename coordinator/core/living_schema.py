"""Tables of a living linkage: refreshes, changes awaiting a run, key lineage and releases.

Kept apart from ``coordinator.core.store``'s core schema because they belong
to one feature (monthly refreshes, incremental runs, keys over time) and are
created with ``IF NOT EXISTS`` in the same transaction as the rest
(schema version 4; the index of key changes by run, version 5; what a run keeps for the
next, version 6: ``coordinator.core.migrations``, ``coordinator.core.kept_rows``).

Nothing here holds an identifier or a linkage key: refresh counts, record
ids (the coordinator's own row numbers), entity ids (internal, never served)
and reasons.
"""

from __future__ import annotations

from typing import Any, Protocol


class _Writes(Protocol):
    def execute(self, sql: str, parameters: tuple[Any, ...] = ...) -> Any: ...


SCHEMA = """
-- A refresh: an upload merged into the organisation's committed upload when committed.
CREATE TABLE IF NOT EXISTS refreshes (
    upload_id TEXT PRIMARY KEY REFERENCES uploads(id),
    base_upload_id TEXT NOT NULL REFERENCES uploads(id),
    project_id TEXT NOT NULL,
    organisation TEXT NOT NULL,
    added INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    applied_at TEXT
);
-- Records added, changed or removed since the project's last completed run: what an
-- incremental run must compare again (removed ones only leave).
CREATE TABLE IF NOT EXISTS pending_changes (
    project_id TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    change TEXT NOT NULL,
    PRIMARY KEY (project_id, record_id)
);
-- How each completed run moved records between entities, per record of the organisation
-- that holds it, so a node fetches only what changed since its last fetch.
CREATE TABLE IF NOT EXISTS key_changes (
    seq INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    organisation TEXT NOT NULL,
    token TEXT NOT NULL,
    old_entity_id TEXT NOT NULL,
    new_entity_id TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS key_changes_by_org ON key_changes(project_id, organisation, seq);
-- A run's own key changes (and those waiting for it, run_id ''): read and settled by each
-- run, so its cost follows the change rather than the project's history.
CREATE INDEX IF NOT EXISTS key_changes_by_run ON key_changes(project_id, run_id);
-- Entity to entity: which old entities a run's entities came from, and why.
CREATE TABLE IF NOT EXISTS key_lineage (
    project_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    old_entity_id TEXT NOT NULL,
    new_entity_id TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS key_lineage_by_run ON key_lineage(project_id, run_id);
-- Each completed run's entities as a dated release: which organisations each entity was
-- known to, so counts can be asked as of any release.
CREATE TABLE IF NOT EXISTS release_entities (
    run_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    organisations TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, entity_id)
);
-- A release stored as changes against the one before it (``base_run_id``): rows of
-- release_entities only for entities that changed, '' organisations for one that is gone.
-- A release without a row here is stored whole. ``settings`` is a digest of what resolves
-- an entity's row (organisations, released attributes, precedence): another forces a whole one.
CREATE TABLE IF NOT EXISTS release_bases (
    run_id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    base_run_id TEXT NOT NULL,
    settings TEXT NOT NULL
);
-- The pairs the last run passed to the solver, packed (int64 record ids a and b, float64
-- similarity): the next run solves again only where the pairs it links differ
-- (partial_solve.changed_links). Its candidate pairs, estimate sample and entity map are
-- in kept_rows (coordinator.core.kept_rows), written as changes.
CREATE TABLE IF NOT EXISTS run_links (
    project_id TEXT PRIMARY KEY,
    a BLOB NOT NULL,
    b BLOB NOT NULL,
    score BLOB NOT NULL
);
"""


def erase_project(tx: _Writes, project_id: str) -> None:
    """A closed project's lineage, releases, stored pairs (with the plans and sample they
    were found with) and pending changes go too."""
    for table in (
        "key_changes",
        "key_lineage",
        "release_entities",
        "release_bases",
        "run_links",
        "pending_changes",
        "kept_rows",
    ):
        tx.execute(f"DELETE FROM {table} WHERE project_id = ?", (project_id,))
    # What the last run's pairs were found with: its band plans (``incremental.Basis``).
    tx.execute("DELETE FROM meta WHERE key = ?", (f"pairs:{project_id}",))
