"""Link and duplicate rates by released attribute, per organisation, under disclosure control.

A linkage that misses more children in one area (or one age band) than in
another biases every count built on it, and an overall link rate hides that.
So a run's quality report breaks each organisation's records down by the
value of each attribute the project releases (as the nodes sent it with the
record), counting records, records linked to another organisation, and
records in an entity with another record of their own organisation.

These are counts of people, so they leave the coordinator only as the
project's counts do (coordinator.core.disclosure): small cells withheld,
rounded rules perturbed by cell key and rounded. Each organisation's totals
are already shown exactly in the report (``quality.DatasetRates``), so under
an unrounded rule a column with a single withheld cell would give it away by
subtraction: a second cell, the smallest other non-zero one, is withheld too.
Nothing here is per record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from coordinator.core import disclosure
from coordinator.core.entities import Entities
from coordinator.core.store import Store

#: The three counts of a cell, in this order everywhere.
MEASURES = ("records", "linked", "duplicates")


@dataclass(frozen=True)
class AttributeRate:
    """One organisation's records with one value of one released attribute.

    A count is None when disclosure control withheld it.
    """

    organisation: str
    attribute: str
    value: str
    records: int | None
    linked: int | None
    duplicates: int | None


def load_attributes(store: Store, project_id: str) -> Iterable[tuple[int, str, str]]:
    """(record id, attribute, value) of every committed record of the project, streamed."""
    return store.iterate(
        "SELECT a.record_id, a.name, a.value FROM record_attributes a "
        "JOIN records r ON r.id = a.record_id JOIN uploads u ON u.id = r.upload_id "
        "WHERE u.project_id = ? AND u.state = 'committed'",
        (project_id,),
    )


def record_status(
    groups: Sequence[Sequence[tuple[int, int]]], record_ids: Sequence[Sequence[int]]
) -> tuple[dict[int, int], set[int], set[int]]:
    """Each record's dataset, and which records are linked elsewhere or duplicated."""
    dataset_of = {rid: d for d, ids in enumerate(record_ids) for rid in ids}
    linked: set[int] = set()
    duplicated: set[int] = set()
    for group in groups:
        per: dict[int, int] = defaultdict(int)
        for d, _ in group:
            per[d] += 1
        for d, r in group:
            if len(per) > 1:
                linked.add(record_ids[d][r])
            if per[d] > 1:
                duplicated.add(record_ids[d][r])
    return dataset_of, linked, duplicated


def attribute_rates(
    rows: Iterable[tuple[int, str, str]],
    *,
    dataset_of: Mapping[int, int],
    names: Sequence[str],
    linked: Container[int],
    duplicated: Container[int],
    record_key: Callable[[int], int],
    released: Sequence[str],
    rule: disclosure.Rule,
) -> tuple[AttributeRate, ...]:
    """Protected counts per (organisation, released attribute, value), sorted."""
    # (dataset, attribute) -> value -> [records, linked, duplicates] counts and cell keys.
    exact: dict[tuple[int, str], dict[str, list[int]]] = defaultdict(dict)
    wanted = set(released)
    for record_id, name, value in rows:
        dataset = dataset_of.get(int(record_id))
        if dataset is None or name not in wanted:
            continue
        cell = exact[(dataset, name)].setdefault(value, [0, 0, 0, 0, 0, 0])
        key = record_key(int(record_id))
        for i, counted in enumerate((True, record_id in linked, record_id in duplicated)):
            if counted:
                cell[i] += 1
                cell[3 + i] += key
    out: list[AttributeRate] = []
    for (dataset, name), values in sorted(
        exact.items(), key=lambda kv: (names[kv[0][0]], kv[0][1])
    ):
        order = sorted(values)
        columns = [
            _protect_column([values[v][i] for v in order], [values[v][3 + i] for v in order], rule)
            for i in range(len(MEASURES))
        ]
        for row, value in enumerate(order):
            records, linked_n, duplicates = (column[row] for column in columns)
            out.append(AttributeRate(names[dataset], name, value, records, linked_n, duplicates))
    return tuple(out)


def _protect_column(
    values: Sequence[int], keys: Sequence[int], rule: disclosure.Rule
) -> list[int | None]:
    """One count per value of an attribute, protected as the project's counts are."""
    cells = [
        disclosure.ExactCell(v, k % disclosure.CELL_KEY_MODULUS)
        for v, k in zip(values, keys, strict=True)
    ]
    released: list[int | None] = [p.value for p in disclosure.protect(cells, rule)]
    if rule.secondary and sum(1 for v in released if v is None) == 1:
        # The column's total is shown exactly elsewhere: protect the lone withheld cell.
        others = [i for i, v in enumerate(released) if v]
        if others:
            released[min(others, key=lambda i: (values[i], i))] = None
    return released


class RecordStatus(Mapping[int, int]):
    """A run's records by id, over its arrays (``coordinator.core.entities``): each record's
    dataset (as a mapping), whether it is linked or duplicated, and its entity id.

    Lookups search the sorted record ids, so a run of millions of records needs
    no dict or set per record.
    """

    def __init__(
        self,
        record_ids: np.ndarray,
        dataset: np.ndarray,
        linked: np.ndarray,
        duplicated: np.ndarray,
        entities: Entities,
    ) -> None:
        self._order = np.argsort(record_ids, kind="stable")
        self._sorted = record_ids[self._order]
        self._dataset = dataset
        self._entities = entities
        self.linked = _Flagged(self, linked)
        self.duplicated = _Flagged(self, duplicated)

    def index(self, record_id: int) -> int:
        """The record's place in load order, or -1 if the run does not hold it."""
        at = int(np.searchsorted(self._sorted, record_id))
        if at < len(self._sorted) and self._sorted[at] == record_id:
            return int(self._order[at])
        return -1

    def __getitem__(self, record_id: int) -> int:
        at = self.index(record_id)
        if at < 0:
            raise KeyError(record_id)
        return int(self._dataset[at])

    def __iter__(self) -> Iterator[int]:
        return iter(int(r) for r in self._sorted)

    def __len__(self) -> int:
        return len(self._sorted)

    def entity_id(self, record_id: int) -> str:
        return self._entities.id_of(self.index(record_id))


class _Flagged(Container[int]):
    """Record ids whose flag is set, as a container over a per-record boolean array."""

    def __init__(self, status: RecordStatus, flags: np.ndarray) -> None:
        self._status = status
        self._flags = flags

    def __contains__(self, record_id: object) -> bool:
        if not isinstance(record_id, int):
            return False
        at = self._status.index(record_id)
        return at >= 0 and bool(self._flags[at])


def for_run(
    store: Store,
    project_id: str,
    *,
    status: RecordStatus,
    names: Sequence[str],
    released: Sequence[str],
    rule: disclosure.Rule,
    project_key: bytes,
) -> tuple[AttributeRate, ...]:
    """A run's breakdown, from its records' status and entity ids and their stored attributes."""
    if not released:
        return ()

    @lru_cache(maxsize=1 << 16)
    def entity_key(entity_id: str) -> int:
        return disclosure.record_key(project_key, entity_id)

    return attribute_rates(
        load_attributes(store, project_id),
        dataset_of=status,
        names=names,
        linked=status.linked,
        duplicated=status.duplicated,
        record_key=lambda record_id: entity_key(status.entity_id(record_id)),
        released=released,
        rule=rule,
    )


def audit_summary(cells: Sequence[AttributeRate]) -> dict[str, int]:
    """What a read of the breakdown released, for the audit log: how many cells and counts
    were shown and how many counts were withheld (never the counts themselves)."""
    counts = [c for cell in cells for c in (cell.records, cell.linked, cell.duplicates)]
    return {
        "attribute_cells": len(cells),
        "attribute_counts_withheld": sum(1 for c in counts if c is None),
    }
