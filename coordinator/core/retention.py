"""Erasing what a project holds: at the end of its retention period, or when it is closed.

Encodings are personal data. Erasure removes the rows (encodings, entity
assignments and anything else keyed by record) and the store then vacuums,
with SQLite's secure_delete on, so the bytes do not linger in free pages. The
audit log keeps only counts of what was erased.
"""

from __future__ import annotations

from collections.abc import Sequence

from coordinator.core.store import Transaction


def _record_tables(tx: Transaction) -> list[str]:
    """Every table, other than ``records`` itself, whose rows hang off a record id."""
    tables = [
        row[0]
        for row in tx.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    ]
    return [
        name
        for name in tables
        if name != "records"
        and any(col[1] == "record_id" for col in tx.execute(f'PRAGMA table_info("{name}")'))
    ]


def erase_uploads(tx: Transaction, upload_ids: Sequence[str], new_state: str) -> int:
    """Delete the records of these uploads and everything keyed by them; return records erased."""
    erased = 0
    tables = _record_tables(tx)
    for upload_id in upload_ids:
        for table in tables:
            tx.execute(
                f'DELETE FROM "{table}" WHERE record_id IN '
                "(SELECT id FROM records WHERE upload_id = ?)",
                (upload_id,),
            )
        # Key changes name records by token (coordinator.core.lineage): they go with them.
        tx.execute(
            "DELETE FROM key_changes WHERE token IN "
            "(SELECT token FROM records WHERE upload_id = ?)",
            (upload_id,),
        )
        erased += tx.execute("DELETE FROM records WHERE upload_id = ?", (upload_id,)).rowcount
        tx.execute("DELETE FROM chunks WHERE upload_id = ?", (upload_id,))
        tx.execute("UPDATE uploads SET state = ? WHERE id = ?", (new_state, upload_id))
    return erased


def expired_uploads(tx: Transaction, project_id: str, committed_before: str) -> list[str]:
    """Committed or open uploads of the project older than the cut-off (RFC 3339 UTC)."""
    return [
        row[0]
        for row in tx.execute(
            "SELECT id FROM uploads WHERE project_id = ? AND state IN ('committed', 'open') "
            "AND COALESCE(committed_at, created_at) < ?",
            (project_id, committed_before),
        ).fetchall()
    ]


def project_uploads(tx: Transaction, project_id: str) -> list[str]:
    return [
        row[0]
        for row in tx.execute(
            "SELECT id FROM uploads WHERE project_id = ? AND state IN ('committed', 'open')",
            (project_id,),
        ).fetchall()
    ]
