"""Solving only the affected part of the linking graph gives what solving all of it gives."""

from __future__ import annotations

import numpy as np

from coordinator.core import matching, partial_solve
from coordinator.core.comparison import from_arrays


def grouped(grouping_group: np.ndarray) -> set[frozenset[int]]:
    out: dict[int, set[int]] = {}
    for record, group in enumerate(grouping_group.tolist()):
        if group >= 0:
            out.setdefault(group, set()).add(record)
    return {frozenset(g) for g in out.values()}


def test_components_join_what_edges_join() -> None:
    labels = partial_solve.components(7, np.array([0, 1, 5]), np.array([1, 2, 6]))
    assert labels.tolist() == [0, 0, 0, 3, 4, 5, 5]


def test_unaffected_records_keep_last_runs_groups_and_the_rest_are_solved() -> None:
    rng = np.random.default_rng(1)
    sizes = [60, 60]
    # Pairs across the two datasets: record i of each is a match, with a few rivals.
    rows = np.arange(60)
    left = np.concatenate([rows, rng.integers(0, 60, 20)])
    right = np.concatenate([rows, rng.integers(0, 60, 20)])
    sims = np.concatenate([rng.uniform(0.9, 1.0, 60), rng.uniform(0.8, 0.9, 20)])
    order = np.lexsort((right, left, -sims))
    linking = from_arrays(
        sims[order], np.zeros(80)[order], np.ones(80)[order], left[order], right[order]
    )

    def solver(part: matching.Candidates) -> list[tuple[matching.RecordRef, ...]]:
        return matching.solve(part)

    everything, _ = partial_solve.solve(
        linking, sizes, np.ones(120, bool), np.full(120, -1), solver
    )
    whole = grouped(everything.group)
    # Last run's groups as entity numbers; one record changed: only its part is solved.
    previous = np.full(120, -1)
    for number, group in enumerate(sorted(whole, key=min)):
        previous[list(group)] = number
    seeds = np.zeros(120, bool)
    seeds[7] = True
    grouping, solved = partial_solve.solve(linking, sizes, seeds, previous, solver)
    assert grouped(grouping.group) == whole
    assert 2 <= solved < 20
    # A wrong "last run" outside the affected part is kept as it was: the part solved is local.
    previous[[30, 90]] = 999
    grouping, _ = partial_solve.solve(linking, sizes, seeds, previous, solver)
    assert frozenset({30, 90}) in grouped(grouping.group)


def test_changed_links_name_both_records_of_every_pair_linked_differently() -> None:
    # Last run linked (1, 2), (3, 4) and (5, 6); this run's threshold moved a hair, so
    # (5, 6) dropped out, (7, 8) came in, and the field model scored (3, 4) otherwise.
    before = (np.array([1, 3, 5]), np.array([2, 4, 6]), np.array([0.95, 0.91, 0.86]))
    now = (np.array([1, 3, 7]), np.array([2, 4, 8]), np.array([0.95, 0.92, 0.87]))
    assert partial_solve.changed_links(now, before).tolist() == [3, 4, 5, 6, 7, 8]
    assert partial_solve.changed_links(before, before).tolist() == []
