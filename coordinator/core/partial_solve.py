"""Re-solving only the entities a refresh can have changed.

The solver (``matching.solve``) walks the pairs it links from the most similar
down and decides each from pairs among the records involved only, so the
groups of one connected part of the linking graph depend on that part alone.
After a refresh, a part whose records and pairs are all as they were last run
gets the groups it got last run: those are the entities of the last run. So
an incremental run solves only the *affected* parts: those holding a record
added or changed, or one that lost a pair (its partner changed or left), and
everything joined to them by a pair or by a shared entity last run (the
closure keeps the rule safe even if last run's entities were not exactly
this graph's). Every other record keeps last run's group.

The pairs the solver gets can differ from last run's beyond the changed
records: a threshold estimated again from a refreshed sample links a few pairs
more or fewer, and the per-field model, fitted to every pair, may score some
differently. So the seeds also hold both records of every pair linked this run
and not last run, or last run and not this, or with another score
(``changed_links``, against the pairs last run kept). The solver's own rules
(within and merge thresholds) must be last run's (``Settings``); otherwise the
caller solves everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from coordinator.core import entities, matching


@dataclass(frozen=True)
class Settings:
    """What decides which pairs the solver gets and how it groups them."""

    threshold: float
    within: float
    merge: float


Links = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Pairs by record id: (record a, record b, score)."""


def by_id(linking: matching.Candidates, sizes: list[int], everyone: np.ndarray) -> Links:
    """The solver's pairs by record id (``everyone``: the run's record ids in load order)."""
    offsets = np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))])
    sims, d0, d1, r0, r1 = matching.arrays(linking)
    a = everyone[offsets[d0.astype(np.int64)] + r0]
    b = everyone[offsets[d1.astype(np.int64)] + r1]
    return np.minimum(a, b), np.maximum(a, b), np.asarray(sims, dtype=np.float64)


def changed_links(now: Links, before: Links) -> np.ndarray:
    """Record ids of both records of each pair in one of ``now`` and ``before`` but not the
    other, or in both with different scores."""
    a = np.concatenate([now[0], before[0]])
    b = np.concatenate([now[1], before[1]])
    s = np.concatenate([now[2], before[2]])
    order = np.lexsort((s, b, a))
    a, b, s = a[order], b[order], s[order]
    same = (a[1:] == a[:-1]) & (b[1:] == b[:-1]) & (s[1:] == s[:-1])
    matched = np.zeros(len(a), dtype=bool)
    matched[1:] |= same
    matched[:-1] |= same
    return np.unique(np.concatenate([a[~matched], b[~matched]]))


def solve(
    linking: matching.Candidates,
    sizes: list[int],
    seeds: np.ndarray,
    previous: np.ndarray,
    solver: Callable[[matching.Candidates], list[tuple[matching.RecordRef, ...]]],
) -> tuple[entities.Grouping, int]:
    """The run's grouping, solving only the affected part; and how many records that was.

    ``seeds`` marks (load order) the records added, changed or that lost a pair;
    ``previous`` gives each record's entity last run as a number (-1: none).
    """
    offsets = np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))])
    n = int(offsets[-1])
    _, d0, d1, r0, r1 = matching.arrays(linking)
    u = offsets[d0.astype(np.int64)] + r0
    v = offsets[d1.astype(np.int64)] + r1
    # Records that shared an entity last run are joined too: each to its entity's first
    # record (a star per entity, found by a table, not a sort).
    held = np.flatnonzero(previous >= 0)
    first = np.zeros(int(previous.max()) + 1 if len(held) else 0, dtype=np.int64)
    first[previous[held][::-1]] = held[::-1]  # the last write is the first record
    hub = first[previous[held]]
    joins = hub != held
    labels = components(n, np.concatenate([u, held[joins]]), np.concatenate([v, hub[joins]]))
    # Labels and entity numbers are below n and the entity count: tables, not sorts.
    reached = np.zeros(n, dtype=bool)
    reached[labels[seeds]] = True
    affected = reached[labels]
    # Groups: last run's for the records not affected, the solver's for the rest, numbered
    # in the order of last run's entity numbers.
    group = np.full(n, -1, dtype=np.int64)
    kept = ~affected & (previous >= 0)
    number = previous[kept]
    count = np.bincount(number) if len(number) else np.zeros(0, dtype=np.int64)
    together = count[number] > 1
    renumber = np.cumsum(count > 1) - 1
    group[np.flatnonzero(kept)[together]] = renumber[number[together]]
    groups = int(np.count_nonzero(count > 1))
    inside = affected[u] if len(u) else np.zeros(0, dtype=bool)
    solution = solver(matching.select(linking, inside))
    for members in solution:
        if len(members) < 2:
            continue
        for dataset, row in members:
            group[offsets[dataset] + row] = groups
        groups += 1
    return entities.Grouping(tuple(int(s) for s in sizes), group, groups), int(affected.sum())


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each of ``n`` nodes' component, as its smallest member, for edges (u, v): labels
    spread along edges by minimum, with pointer jumping, until nothing changes."""
    labels = np.arange(n, dtype=np.int64)
    if not len(u):
        return labels
    while True:
        lowest = np.minimum(labels[u], labels[v])
        spread = labels.copy()
        np.minimum.at(spread, u, lowest)
        np.minimum.at(spread, v, lowest)
        spread = spread[spread]
        if np.array_equal(spread, labels):
            return labels
        labels = spread
