"""A run's grouping after a refresh: which records to solve again, from what they were.

Two steps of the run chain (``coordinator.core.runs``) that build on the last
run: reading the entities the run starts from (the packed copy the last run
kept, ``kept_rows`` 'entities', or the rows), and solving either every record or only
the part of the linking graph a refresh can have changed (``partial_solve``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from coordinator.core import entities, incremental, kept_rows, matching, partial_solve
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
    at, known = previous.rows_of(everyone)
    _, code = previous.codes
    before = np.where(known, code[at] if len(code) else -1, -1)
    return partial_solve.solve(
        linking,
        sizes,
        np.isin(everyone, seeds),
        before,
        lambda part: matching.solve(
            part, merge_threshold=project.merge_threshold if project.within_threshold else None
        ),
    )


def read_beside(
    store: Store, project: Project, everyone: np.ndarray
) -> Callable[[], entities.Previous]:
    """Start reading the entities the run starts from, and looking ``everyone`` up in them,
    in a thread (the run has a core to spare while it links); the call returned waits for
    them (and raises what the read raised)."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="previous")
    future = pool.submit(lambda: read_previous(store, project).warmed(everyone))
    pool.shutdown(wait=False)  # its one task still runs to the end
    return future.result


def read_previous(store: Store, project: Project) -> entities.Previous:
    """The entity rows the run starts from (read once: for partial solving, ids and lineage):
    the last run's kept map when it is the latest completed run's, else row by row."""
    kept = kept_rows.read(store.query, project.id, "entities", entities.KEPT_COLUMNS)
    last = store.query_one(
        "SELECT id FROM runs WHERE project_id = ? AND state = 'completed' "
        "ORDER BY finished_at DESC, rowid DESC LIMIT 1",
        (project.id,),
    )
    if kept is not None and last is not None and kept.run_id == last["id"]:
        return entities.Previous(kept.columns[0], kept.columns[1], kept=kept)
    return entities.Previous.from_blobs(
        list(
            store.iterate(
                "SELECT record_id, CAST(entity_id AS BLOB) FROM entities WHERE project_id = ?",
                (project.id,),
                batch=50_000,
            )
        )
    )
