"""Exact count tables over linked entities: overlaps, breakdowns and cross-tabulations.

A query counts entities (children), not records. It may keep only entities
known to every dataset in ``datasets_in`` and to none in ``datasets_out``
("in A but not in B"), and breaks the rest down by up to three dimensions:
``datasets`` (the exact combination of datasets an entity appears in, as in
an overlap table) and any attribute the project releases. Every table comes
with all its margins (each dimension in turn summed over, down to the grand
total), counted from the entities themselves.

Nothing here protects anything: the exact table goes straight to
``coordinator.core.disclosure`` and never leaves the coordinator.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from coordinator.core import disclosure

DATASETS = "datasets"
"""The dimension that splits entities by the exact combination of datasets they appear in."""

UNKNOWN = "unknown"
"""The category of an entity no organisation gave a value for."""

MAX_DIMENSIONS = 3


class QueryError(ValueError):
    """A query that cannot be answered as asked; the message says why."""


@dataclass(frozen=True)
class Entity:
    """What counting needs of one entity: where it appears, its attributes and record key."""

    datasets: frozenset[str]
    attributes: Mapping[str, str]
    record_key: int = 0


@dataclass(frozen=True)
class CountQuery:
    """Which entities to count and how to break them down."""

    by: tuple[str, ...] = (DATASETS,)
    datasets_in: tuple[str, ...] = ()
    datasets_out: tuple[str, ...] = ()
    margins: bool = True

    def describe(self) -> str:
        """The query in words, for the audit log and captions."""
        words = "entities"
        if self.datasets_in:
            words += " in " + " and ".join(self.datasets_in)
        if self.datasets_out:
            words += " but not in " + " or ".join(self.datasets_out)
        if self.by:
            words += " by " + " and ".join(self.by)
        return words


@dataclass(frozen=True)
class TableCell:
    """One cell: its value in each dimension (None where the dimension is totalled)."""

    coordinates: tuple[str | None, ...]
    exact: disclosure.ExactCell

    @property
    def is_margin(self) -> bool:
        return any(c is None for c in self.coordinates)


@dataclass(frozen=True)
class ExactTable:
    dimensions: tuple[str, ...]
    cells: tuple[TableCell, ...]
    constraints: tuple[disclosure.Constraint, ...]


def resolve(
    values: Sequence[tuple[str, str]], precedence: Sequence[str], order: Sequence[str]
) -> str:
    """One value for an entity from its organisations' (organisation, value) pairs.

    With a ``precedence`` list, the first organisation in it that gave a value
    wins; otherwise (or if none of them did) the most common value wins, ties
    going to the organisation that comes first in the project.
    """
    if not values:
        return UNKNOWN
    for organisation in precedence:
        for org, value in values:
            if org == organisation:
                return value
    rank = {org: i for i, org in enumerate(order)}
    tally = Counter(value for _, value in values)
    first_seen: dict[str, int] = {}
    for org, value in values:
        first_seen[value] = min(first_seen.get(value, len(rank)), rank.get(org, len(rank)))
    return min(tally, key=lambda v: (-tally[v], first_seen[v], v))


def check(query: CountQuery, organisations: Sequence[str], released: Sequence[str]) -> None:
    """Refuse a query that names an unknown dataset or an attribute the project does not release."""
    if len(query.by) > MAX_DIMENSIONS:
        raise QueryError(f"a table has at most {MAX_DIMENSIONS} dimensions, not {len(query.by)}")
    if len(set(query.by)) != len(query.by):
        raise QueryError("a dimension is named twice")
    for name in query.by:
        if name != DATASETS and name not in released:
            raise QueryError(
                f"{name!r} is not an attribute this project releases "
                f"(it releases: {', '.join(released) or 'none'})"
            )
    for name in (*query.datasets_in, *query.datasets_out):
        if name not in organisations:
            raise QueryError(
                f"{name!r} is not a dataset of this project ({', '.join(organisations)})"
            )
    if set(query.datasets_in) & set(query.datasets_out):
        raise QueryError("a dataset cannot be both required and excluded")


def categories(
    entities: Iterable[Entity], dimension: str, organisations: Sequence[str]
) -> tuple[str, ...]:
    """The values a dimension takes: every combination of datasets, or every attribute value seen.

    Taken from all the project's entities, not only those a query keeps, so
    that a filter cannot reveal which values its population lacks.
    """
    if dimension == DATASETS:
        return tuple(
            "+".join(combo)
            for size in range(1, len(organisations) + 1)
            for combo in itertools.combinations(organisations, size)
        )
    seen = {e.attributes.get(dimension, UNKNOWN) for e in entities}
    known = sorted(seen - {UNKNOWN})
    return (*known, UNKNOWN) if UNKNOWN in seen else tuple(known)


def coordinate(entity: Entity, dimension: str, organisations: Sequence[str]) -> str:
    if dimension == DATASETS:
        return "+".join(o for o in organisations if o in entity.datasets)
    return entity.attributes.get(dimension, UNKNOWN)


def count(
    entities: Sequence[Entity], query: CountQuery, organisations: Sequence[str]
) -> ExactTable:
    """The exact table a query asks for, with every margin and each cell's key."""
    dims = query.by
    axes = [categories(entities, d, organisations) for d in dims]
    kept = [
        e
        for e in entities
        if all(d in e.datasets for d in query.datasets_in)
        and not any(d in e.datasets for d in query.datasets_out)
        and e.datasets
    ]
    value: Counter[tuple[str | None, ...]] = Counter()
    keys: dict[tuple[str | None, ...], int] = defaultdict(int)
    patterns = [
        mask
        for mask in itertools.product((False, True), repeat=len(dims))
        if query.margins or not any(mask)
    ]
    # Inner cells first (one pass over the entities), then each margin from them.
    inner_value: Counter[tuple[str, ...]] = Counter()
    inner_keys: dict[tuple[str, ...], int] = defaultdict(int)
    for entity in kept:
        coords = tuple(coordinate(entity, d, organisations) for d in dims)
        inner_value[coords] += 1
        inner_keys[coords] += entity.record_key
    for coords, n in inner_value.items():
        for mask in patterns:
            cell = tuple(None if total else c for c, total in zip(coords, mask, strict=True))
            value[cell] += n
            keys[cell] += inner_keys[coords]
    cells: list[TableCell] = []
    index: dict[tuple[str | None, ...], int] = {}
    # Inner cells first in axis order, then margins from the finest to the grand total.
    for mask in sorted(patterns, key=lambda m: (sum(m), m)):
        ranges = [[None] if total else list(axis) for axis, total in zip(axes, mask, strict=True)]
        for cell in itertools.product(*ranges):
            index[cell] = len(cells)
            cells.append(
                TableCell(
                    cell,
                    disclosure.ExactCell(value[cell], keys[cell] % disclosure.CELL_KEY_MODULUS),
                )
            )
    constraints = []
    if query.margins:
        for cell, position in index.items():
            for d, c in enumerate(cell):
                if c is not None:
                    continue
                parts = tuple(index[(*cell[:d], v, *cell[d + 1 :])] for v in axes[d])
                constraints.append(disclosure.Constraint(position, parts))
    return ExactTable(dims, tuple(cells), tuple(constraints))


TOTAL = "Total"
"""How a totalled dimension is written in labels and outputs."""


@dataclass(frozen=True)
class ReleasedCell:
    """A cell as an analyst receives it: coordinates (None = totalled), value or None, and why."""

    coordinates: tuple[str | None, ...]
    value: int | None
    suppressed: bool
    reason: str = ""

    @property
    def label(self) -> str:
        """The cell's coordinates in one string, for the audit log ("W1|0-1|Total")."""
        return "|".join(TOTAL if c is None else c for c in self.coordinates)


@dataclass(frozen=True)
class ReleasedTable:
    """A protected table: what leaves the coordinator, with the rule applied in words."""

    dimensions: tuple[str, ...]
    cells: tuple[ReleasedCell, ...]
    rule: str
    query: str


def release(table: ExactTable, rule: disclosure.Rule, query: CountQuery) -> ReleasedTable:
    """Protect an exact table under ``rule``; the exact values stay behind."""
    protected = disclosure.protect([c.exact for c in table.cells], rule, table.constraints)
    return ReleasedTable(
        table.dimensions,
        tuple(
            ReleasedCell(cell.coordinates, out.value, out.suppressed, out.reason)
            for cell, out in zip(table.cells, protected, strict=True)
        ),
        rule.describe(),
        query.describe(),
    )
