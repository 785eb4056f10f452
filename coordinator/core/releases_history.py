"""Each completed run as a dated release: which services knew each entity, then.

A run's entities replace the previous run's, so counts "as of" an older
release need what that release was. ``record`` keeps, per run, each entity's
set of organisations (not its records: the counts need nothing more), and
``combinations`` reads it back as entity id -> organisations for any
completed run. Entity ids are the stable internal ids, so the same child is
the same entity in every release, which is what lets a time series count who
is new and who left, and lets cell-key noise give the same set the same
noise in every month (``coordinator.core.disclosure``).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from coordinator.core.entities import Entities
from coordinator.core.store import Store, Transaction


def record(
    tx: Transaction, project_id: str, run_id: str, record_ids: np.ndarray, assignment: Entities
) -> None:
    """Keep the run's entities and the organisations each is known to."""
    organisation_of = dict(
        tx.execute(
            "SELECT r.id, u.organisation FROM records r JOIN uploads u ON u.id = r.upload_id "
            "WHERE u.project_id = ? AND u.state = 'committed'",
            (project_id,),
        ).fetchall()
    )
    known: dict[str, set[str]] = defaultdict(set)
    for record_id, entity_id in assignment.rows(record_ids):
        organisation = organisation_of.get(record_id)
        if organisation is not None:
            known[entity_id].add(str(organisation))
    tx.executemany(
        "INSERT INTO release_entities VALUES (?, ?, ?, ?)",
        ((run_id, project_id, entity, ",".join(sorted(orgs))) for entity, orgs in known.items()),
    )


def releases(store: Store, project_id: str) -> list[tuple[str, str]]:
    """(run id, finished at) of every completed run that left a release, oldest first."""
    return [
        (str(r["id"]), str(r["finished_at"]))
        for r in store.query(
            "SELECT id, finished_at FROM runs WHERE project_id = ? AND state = 'completed' "
            "AND EXISTS (SELECT 1 FROM release_entities e WHERE e.run_id = runs.id) "
            "ORDER BY finished_at, rowid",
            (project_id,),
        )
    ]


def combinations(store: Store, run_id: str) -> dict[str, frozenset[str]]:
    """Entity id -> the organisations it was known to in the release of ``run_id``."""
    return {
        str(entity): frozenset(str(orgs).split(","))
        for entity, orgs in store.iterate(
            "SELECT entity_id, organisations FROM release_entities WHERE run_id = ?", (run_id,)
        )
    }
