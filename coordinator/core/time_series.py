"""Counts over time: children known to each combination of services, release by release,
with those new since the last release and those who left.

Every completed run is a dated release (``coordinator.core.releases_history``).
For each, the series gives the number of entities in every combination of
the project's datasets, the number new since the previous release and the
number gone, each protected by the project's disclosure rule.

Why differencing two releases reveals nothing the rules forbid: entity ids
are stable, so a child's record key is the same in every release, a cell's
key is the sum of its entities' keys, and the noise comes from the key. The
same set of children gets the same noise and the same rounding every month,
so a count that did not change cannot appear to; a count that changed by one
child moves the released value only as often as rounding must (about one
time in the rounding base), the limit ``coordinator.core.disclosure``
explains. "New" and "left" are cells like any other: one child leaving is a
count of 1, withheld. A rule without rounding publishes exact counts, whose
differences name single children, so a series is refused under it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from coordinator.core import disclosure, queries
from coordinator.core.releases_history import entities, releases
from coordinator.core.store import Store

NEW = "new"
LEFT = "left"


@dataclass(frozen=True)
class SeriesCell:
    """One released count of a release: a combination of datasets, or "new" / "left"."""

    label: str
    datasets: tuple[str, ...]
    value: int | None
    suppressed: bool


@dataclass(frozen=True)
class ReleasePoint:
    """One release: its run, its date (RFC 3339) and its cells."""

    run_id: str
    date: str
    cells: tuple[SeriesCell, ...]

    def value(self, label: str) -> int | None:
        return next((c.value for c in self.cells if c.label == label), None)


class UnroundedSeries(ValueError):
    """A series under a rule that publishes exact counts would let differences name a child."""


def combinations(organisations: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty combination of the datasets, in the project's order."""
    return [
        combo
        for size in range(1, len(organisations) + 1)
        for combo in itertools.combinations(organisations, size)
    ]


def series(
    store: Store,
    project_id: str,
    organisations: Sequence[str],
    rule: disclosure.Rule,
    project_key: bytes,
) -> list[ReleasePoint]:
    """Every release of the project, oldest first, under ``rule``."""
    if not rule.perturbed:
        raise UnroundedSeries(
            f"the project's disclosure rule ({rule.name}) publishes exact counts; a series of "
            "them would let one month's count minus the last name a child: use a rounded rule"
        )
    combos = combinations(organisations)
    points: list[ReleasePoint] = []
    previous: dict[str, queries.Entity] = {}
    for run_id, date in releases(store, project_id):
        people = entities(store, run_id, project_key)
        groups: dict[tuple[str, ...], list[int]] = {combo: [] for combo in combos}
        order = {o: i for i, o in enumerate(organisations)}
        for person in people.values():
            combo = tuple(sorted(person.datasets, key=lambda o: order.get(o, len(order))))
            groups.setdefault(combo, []).append(person.record_key)
        new = [p.record_key for e, p in people.items() if e not in previous]
        left = [p.record_key for e, p in previous.items() if e not in people]
        labels = [*("+".join(c) for c in groups), NEW, LEFT]
        members = [*groups.values(), new, left]
        exact = [disclosure.ExactCell(len(keys), disclosure.cell_key(keys)) for keys in members]
        protected = disclosure.protect(exact, rule)
        datasets = [*groups, (), ()]
        points.append(
            ReleasePoint(
                run_id,
                date,
                tuple(
                    SeriesCell(label, tuple(ds), out.value, out.suppressed)
                    for label, ds, out in zip(labels, datasets, protected, strict=True)
                ),
            )
        )
        previous = people
    return points
