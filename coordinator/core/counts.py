"""Aggregate counts for analysts, with small-number suppression.

Counting works on which datasets each entity appears in, never on records'
contents. A count from 1 up to the project's threshold is withheld, because a
cell that small can point at one family; an empty cell points at nobody and
is released as 0.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CountCell:
    """One released cell: the exact datasets an entity set appears in, and its count."""

    datasets: tuple[str, ...]
    value: int | None
    suppressed: bool


@dataclass(frozen=True)
class CountTable:
    """A table of released cells and the disclosure rule that was applied."""

    cells: tuple[CountCell, ...]
    rule: str

    @property
    def withheld(self) -> int:
        return sum(1 for c in self.cells if c.suppressed)


def overlap(
    entity_datasets: Iterable[frozenset[str]], datasets: Sequence[str]
) -> dict[tuple[str, ...], int]:
    """Entities per exact combination of datasets (A only, A and B only, …), zeros included."""
    order = {name: i for i, name in enumerate(datasets)}
    tally: Counter[tuple[str, ...]] = Counter(
        tuple(sorted(members, key=order.__getitem__)) for members in entity_datasets if members
    )
    table: dict[tuple[str, ...], int] = {}
    for size in range(1, len(datasets) + 1):
        for combo in itertools.combinations(datasets, size):
            table[combo] = tally.get(combo, 0)
    return table


def suppress_small(counts: dict[tuple[str, ...], int], threshold: int) -> CountTable:
    """Withhold every count from 1 to threshold - 1; the exact figure never leaves this function."""
    cells = tuple(
        CountCell(combo, None, True) if 0 < value < threshold else CountCell(combo, value, False)
        for combo, value in counts.items()
    )
    rule = f"counts from 1 to {threshold - 1} are suppressed" if threshold > 1 else "no suppression"
    return CountTable(cells, rule)
