"""A run's grouping after a refresh: which records to solve again, from what they were.

Two steps of the run chain (``coordinator.core.runs``) that build on the last
run: reading the entities the run starts from (the packed copy the last run
kept, ``run_entities``, or the rows), and solving either every record or only
the part of the linking graph a refresh can have changed (``partial_solve``).
"""

from __future__ import annotations

import numpy as np

from coordinator.core import entities, incremental, matching, partial_solve
from coordinator.core.model import Project
from coordinator.core.store import Store


def solve(project: Project, linking: matching.Candidates, sizes: list[int]) -> entities.Grouping:
    """Group the run's records (datasets of ``sizes``) into entities."""
    solution = matching.solve(
        linking,
        merge_threshold=project.merge_threshold if project.within_threshold else None,
    )
    return entities.Grouping.from_solution(solution, sizes)


def solve_changed(
    project: Project,
    linking: matching.Candidates,
    sizes: list[int],
    everyone: np.ndarray,
    previous: entities.Previous,
    delta: incremental.Delta | None,
    settings: partial_solve.Settings,
    links: partial_solve.Links | None = None,
) -> tuple[entities.Grouping, int]:
    """The grouping, and how many records were solved: after a refresh, only the part of
    the linking graph it can have changed (``partial_solve``: the changed records and
    those of every pair ``links``, this run's by record id, holds unlike last run's),
    when the solver's rules are last run's; otherwise everything."""
    last = delta.links if delta is not None else None
    if (
        delta is None
        or delta.settings is None
        or last is None
        or links is None
        or (delta.settings.within, delta.settings.merge) != (settings.within, settings.merge)
    ):
        return solve(project, linking, sizes), len(everyone)
    seeds = np.union1d(delta.seeds, partial_solve.changed_links(links, last))
    sorter = np.argsort(previous.record_ids, kind="stable")
    at = np.searchsorted(previous.record_ids, everyone, sorter=sorter)
    at = sorter[np.minimum(at, max(0, len(sorter) - 1))] if len(sorter) else at
    known = previous.record_ids[at] == everyone if len(sorter) else np.zeros(len(everyone), bool)
    _, code = previous.codes
    before = np.where(known, code[at] if len(sorter) else -1, -1)
    return partial_solve.solve(
        linking,
        sizes,
        np.isin(everyone, seeds),
        before,
        lambda part: matching.solve(
            part, merge_threshold=project.merge_threshold if project.within_threshold else None
        ),
    )


def read_previous(store: Store, project: Project) -> entities.Previous:
    """The entity rows the run starts from (read once: for partial solving, ids and lineage):
    the last run's packed copy when it is the latest completed run's, else row by row."""
    packed = store.query_one(
        "SELECT p.record_ids, p.entity_ids FROM run_entities p WHERE p.project_id = ? "
        "AND p.run_id = (SELECT id FROM runs WHERE project_id = ? AND state = 'completed' "
        "ORDER BY finished_at DESC, rowid DESC LIMIT 1)",
        (project.id, project.id),
    )
    if packed is not None:
        return entities.Previous(
            np.frombuffer(packed["record_ids"], dtype=np.int64),
            np.frombuffer(packed["entity_ids"], dtype=entities.ID_DTYPE),
        )
    return entities.Previous.from_blobs(
        list(
            store.iterate(
                "SELECT record_id, CAST(entity_id AS BLOB) FROM entities WHERE project_id = ?",
                (project.id,),
                batch=50_000,
            )
        )
    )
