"""Record id <-> (dataset, row) for a run's records, in load order."""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np

#: Record ids are looked up in a table when they span at most this many times the run's
#: records (else by binary search).
_DENSE = 4


class RecordIndex:
    """Record id <-> (dataset, row) for the run's records, in load order."""

    def __init__(self, record_ids: Sequence[array[int]]) -> None:
        ids = [np.frombuffer(r, dtype=np.int64) for r in record_ids]
        sizes = [len(i) for i in ids]
        self.everyone = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))])
        self.dataset = np.repeat(np.arange(len(ids)), sizes)
        self.row = np.arange(len(self.everyone)) - self.offsets[self.dataset]
        # Record ids are mostly one dense range: a table by id answers in one gather, where
        # a binary search costs a log factor on every kept pair.
        self.low = int(self.everyone.min()) if len(self.everyone) else 0
        span = int(self.everyone.max()) - self.low + 1 if len(self.everyone) else 0
        self.table: np.ndarray | None = None
        if span <= _DENSE * max(1, len(self.everyone)):
            self.table = np.full(span + 1, -1, dtype=np.int64)  # the last slot: "not held"
            self.table[self.everyone - self.low] = np.arange(len(self.everyone))
        else:
            self.order = np.argsort(self.everyone, kind="stable")
            self.sorted = self.everyone[self.order]

    def where(self, record_ids: np.ndarray) -> np.ndarray:
        """Each record id's place in load order, -1 if the run does not hold it."""
        record_ids = np.asarray(record_ids, dtype=np.int64)
        if not len(self.everyone):
            return np.full(len(record_ids), -1, np.int64)
        if self.table is not None:
            slot = record_ids - self.low
            slot[(slot < 0) | (slot >= len(self.table))] = len(self.table) - 1
            out: np.ndarray = self.table[slot]
            return out
        at = np.minimum(np.searchsorted(self.sorted, record_ids), len(self.sorted) - 1)
        return np.where(self.sorted[at] == record_ids, self.order[at], -1)

    def holds(self, record_ids: np.ndarray) -> np.ndarray:
        return self.where(record_ids) >= 0

    def marks(self, record_ids: np.ndarray) -> np.ndarray:
        """A flag per record of the run (load order): whether it is among ``record_ids``."""
        flags = np.zeros(len(self.everyone), dtype=bool)
        where = self.where(record_ids)
        flags[where[where >= 0]] = True
        return flags

    def place(self, record_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dataset, row) of each record id (the run must hold them)."""
        where = self.where(record_ids)
        return self.dataset[where], self.row[where]

    def ids(self, datasets: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Record ids at (dataset, row)."""
        out: np.ndarray = self.everyone[self.offsets[datasets] + rows]
        return out
