"""What a completed run stores beside its figures: its entity rows (only those that differ
from the last run's), key lineage and a dated release.

Called once, inside the transaction that stores the run's entities and
before they replace the previous run's, so each of these is there exactly
when the run is.
"""

from __future__ import annotations

import numpy as np

from coordinator.core import lineage, releases_history
from coordinator.core.entities import Entities
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
) -> None:
    rewrite = lineage.record(tx, caller, project.id, run_id, record_ids, assignment)
    releases_history.record(tx, project, run_id, record_ids, assignment)
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
