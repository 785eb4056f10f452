"""What a completed run leaves beside its entities: key lineage and a dated release.

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
    lineage.record(tx, caller, project.id, run_id, record_ids, assignment)
    releases_history.record(tx, project, run_id, record_ids, assignment)
