"""What a completed run stores beside its figures: its entity rows (only those that differ
from the last run's), key lineage and a dated release.

Called once, inside the transaction that stores the run's entities and
before they replace the previous run's, so each of these is there exactly
when the run is.
"""

from __future__ import annotations

import numpy as np

from coordinator.core import kept_rows, lineage, releases_history
from coordinator.core.entities import ID_DTYPE, KEPT_COLUMNS, Entities, Previous
from coordinator.core.model import Project
from coordinator.core.store import Transaction
from hublink.identity import Identity


def record(
    tx: Transaction,
    caller: Identity,
    project: Project,
    run_id: str,
    record_ids: np.ndarray,
    assignment: Entities,
    previous: Previous | None = None,
) -> None:
    rewrite = lineage.record(tx, caller, project.id, run_id, record_ids, assignment, previous)
    # The map the next run starts from: this run's change to the kept one when it builds on
    # it (``kept_rows``), else whole.
    record_ids = np.ascontiguousarray(record_ids, dtype=np.int64)
    entity_ids = assignment.ids[assignment.entity]
    on = previous.kept if previous is not None else None
    change = previous.change_to(record_ids, entity_ids) if previous and on else None
    kept_rows.write(
        tx, project.id, "entities", run_id, KEPT_COLUMNS, lambda: (record_ids, entity_ids),
        on=on, change=change,
    )  # fmt: skip
    releases_history.record(
        tx,
        project,
        run_id,
        record_ids,
        assignment,
        _touched(tx, project.id, run_id, record_ids, assignment, rewrite),
    )
    # Only the entity rows that differ are written: a month's run touches few of them.
    tx.executemany("DELETE FROM entities WHERE record_id = ?", ((int(i),) for i in rewrite.orphans))
    changed = np.flatnonzero(rewrite.changed)
    ids = assignment.ids[assignment.entity[changed]] if len(changed) else []
    tx.executemany(
        "INSERT OR REPLACE INTO entities VALUES (?, ?, ?, ?)",
        (
            (int(record_ids[i]), project.id, bytes(e).decode("ascii"), run_id)
            for i, e in zip(changed.tolist(), ids, strict=True)
        ),
    )


def _touched(
    tx: Transaction,
    project_id: str,
    run_id: str,
    record_ids: np.ndarray,
    assignment: Entities,
    rewrite: lineage.Rewrite,
) -> releases_history.Touched:
    """The entities whose release row may differ from the last release's: those that gained
    or lost records (lineage, and the records removed or withdrawn since, which lineage
    noted under this run) and those holding a record whose data changed (its attributes)."""
    changed_data = [
        int(r[0])
        for r in tx.execute(
            "SELECT record_id FROM pending_changes WHERE project_id = ? AND change = 'changed'",
            (project_id,),
        ).fetchall()
    ]
    records = rewrite.changed | np.isin(record_ids, np.array(changed_data, dtype=np.int64))
    removed = [
        str(r[0]).encode("ascii")
        for r in tx.execute(
            "SELECT DISTINCT old_entity_id FROM key_changes WHERE project_id = ? AND run_id = ? "
            "AND old_entity_id != ''",
            (project_id, run_id),
        ).fetchall()
    ]
    left = np.union1d(rewrite.left, np.array(removed, dtype=ID_DTYPE))
    return releases_history.Touched(np.unique(assignment.entity[records]), left)
