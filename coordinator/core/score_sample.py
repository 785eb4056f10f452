"""The threshold estimate's sample in a blocked run: its exact pairs, the best scores they give,
and how an incremental run brings them up to date without comparing the sample again.

Blocking finds chance pairs below the threshold only now and then, so a
blocked run takes the estimate's scores from a sample of records compared
with every record of the other datasets (``candidates.find``). The sample is
fixed per project and data (``pinned_blocking.sample_picks``), so an
incremental run can keep last run's pairs for sampled records the refresh did
not touch, drop the pairs of records it changed or removed, compare the
sample with the touched records, and compare afresh only the sampled records
that are new to the sample or were changed: the same pairs, hence the same
scores and threshold, a full run would compute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core import kernel
from coordinator.core.comparison import Candidates, from_arrays
from coordinator.core.record_index import RecordIndex
from coordinator.core.sketch_screen import in_threads

_EMPTY_I = np.zeros(0, np.int64)


@dataclass(frozen=True)
class SamplePairs:
    """The sample's exact cross-dataset pairs from a sampled record, at or above the floor,
    in the run's dataset and row numbers, in one canonical order (``ordered``)."""

    picked: tuple[np.ndarray, ...]
    """Each dataset's sampled rows, ascending."""
    sample_d: np.ndarray
    sample_r: np.ndarray
    other_d: np.ndarray
    other_r: np.ndarray
    sims: np.ndarray

    @classmethod
    def ordered(
        cls,
        picked: Sequence[np.ndarray],
        sample_d: np.ndarray,
        sample_r: np.ndarray,
        other_d: np.ndarray,
        other_r: np.ndarray,
        sims: np.ndarray,
    ) -> SamplePairs:
        """The pairs sorted by (sample dataset, other dataset, sample row, score descending,
        other row): the order does not depend on how they were found."""
        sample_d, other_d, sample_r = (
            np.asarray(x, np.int64) for x in (sample_d, other_d, sample_r)
        )
        order = _canonical_order(sample_d, other_d, sample_r, np.asarray(other_r), sims)
        return cls(
            tuple(np.asarray(p, np.int64) for p in picked),
            np.asarray(sample_d, np.int64)[order],
            np.asarray(sample_r, np.int64)[order],
            np.asarray(other_d, np.int64)[order],
            np.asarray(other_r, np.int64)[order],
            np.asarray(sims, np.float64)[order],
        )

    @property
    def sampled(self) -> int:
        return int(sum(len(p) for p in self.picked))

    def scores(self) -> np.ndarray:
        """Each sampled record's best score against each other dataset (where it has a pair),
        ordered by (sample dataset, other dataset, sample row)."""
        if not len(self.sims):
            return np.zeros(0)
        key = np.stack([self.sample_d, self.other_d, self.sample_r], axis=1)
        first = np.ones(len(key), dtype=bool)
        first[1:] = (key[1:] != key[:-1]).any(axis=1)
        best: np.ndarray = self.sims[first]  # the best comes first within a key
        return best

    def in_run_rows(self) -> Candidates:
        """The pairs as candidates, the lower dataset first (``candidates.Found.sample_pairs``)."""
        low_first = self.sample_d < self.other_d
        return from_arrays(
            self.sims,
            np.where(low_first, self.sample_d, self.other_d),
            np.where(low_first, self.other_d, self.sample_d),
            np.where(low_first, self.sample_r, self.other_r),
            np.where(low_first, self.other_r, self.sample_r),
        )


def from_tasks(
    parts: Sequence[Candidates], picked: Sequence[np.ndarray], ndata: int
) -> SamplePairs:
    """The sample tasks' pairs (sample ``s`` is dataset ``ndata + s``, its rows the picks'
    places) in the run's own dataset and row numbers."""
    arrays = [
        np.concatenate(
            [np.zeros(0, np.int64)]
            + [np.frombuffer(p[k][j], dtype=np.uint32).astype(np.int64) for p in parts]
        )
        for k, j in ((1, 0), (1, 1), (2, 0), (2, 1))
    ]
    sims = np.concatenate([np.zeros(0)] + [np.frombuffer(p[0], dtype=np.float64) for p in parts])
    d0, d1, r0, r1 = arrays
    first_is_sample = d0 >= ndata
    sample_d = np.where(first_is_sample, d0, d1) - ndata
    sample_r = np.where(first_is_sample, r0, r1)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in picked])]).astype(np.int64)
    flat = np.concatenate([np.zeros(0, np.int64), *picked]).astype(np.int64)
    own = flat[offsets[sample_d] + sample_r] if len(sims) else _EMPTY_I
    return SamplePairs.ordered(
        picked,
        sample_d,
        own,
        np.where(first_is_sample, d1, d0),
        np.where(first_is_sample, r1, r0),
        sims,
    )


def exact_pairs(
    left: np.ndarray, right: np.ndarray, low: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (left row, right row, Dice) with Dice at or above ``low``, compared exactly
    (2|A∩B| / (|A| + |B|), as a full run computes it), the smaller side a row at a time."""
    if not len(left) or not len(right):
        return _EMPTY_I, _EMPTY_I, np.zeros(0)
    if kernel.usable(left) and kernel.usable(right):
        return _native_pairs(np.ascontiguousarray(left), np.ascontiguousarray(right), low)
    flip = len(left) > len(right)
    few, many = (right, left) if flip else (left, right)
    words = few.shape[1] % 8 == 0
    few_w = few.view(np.uint64) if words else few
    many_w = np.ascontiguousarray(many).view(np.uint64) if words else many
    # Against many rows, word by word over contiguous columns (three times quicker than
    # one (rows x words) temporary a row); against few, the temporary.
    columns = (
        [np.ascontiguousarray(many_w[:, w]) for w in range(many_w.shape[1])]
        if words and len(many) >= _COLUMNS_FROM
        else None
    )
    ones_many = (
        _common(columns, None) if columns else np.bitwise_count(many_w).sum(axis=1, dtype=np.int32)
    )

    def scan(first: int, last: int) -> list[np.ndarray]:
        found: list[list[np.ndarray]] = [[_EMPTY_I], [_EMPTY_I], [np.zeros(0)]]
        for k in range(first, last):
            row = few_w[k]
            both = (
                _common(columns, row)
                if columns
                else np.bitwise_count(many_w & row).sum(axis=1, dtype=np.int32)
            )
            total = (ones_many + int(np.bitwise_count(row).sum())).astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                sims = np.where(total > 0, 2.0 * both / total, 0.0)
            hit = np.flatnonzero(sims >= low)
            found[0].append(np.full(len(hit), k, np.int64))
            found[1].append(hit)
            found[2].append(sims[hit])
        return [np.concatenate(x) for x in found]

    parts = in_threads(len(few), scan)
    i, j, s = (np.concatenate([p[n] for p in parts]) for n in range(3))
    return (j, i, s) if flip else (i, j, s)


def _canonical_order(
    sample_d: np.ndarray,
    other_d: np.ndarray,
    sample_r: np.ndarray,
    other_r: np.ndarray,
    sims: np.ndarray,
) -> np.ndarray:
    """The order of a five-key sort (sample dataset, other dataset, sample row, score
    descending, other row), by as few sorting passes as the keys allow: when they fit,
    one code of 63 bits, the score by its rank among the distinct scores (one sort of
    the scores and one of the codes, about half the time of a lexsort's three)."""
    if not len(sims):
        return np.zeros(0, dtype=np.int64)
    datasets = int(max(sample_d.max(), other_d.max())) + 1
    rows = int(sample_r.max()) + 1
    others = int(other_r.max()) + 1
    if datasets * datasets * rows * len(sims) * others < 1 << 63:
        group = (sample_d * datasets + other_d) * rows + sample_r
        distinct, rank = np.unique(sims, return_inverse=True)
        code = (group * len(distinct) + (len(distinct) - 1 - rank)) * others + other_r
        return np.argsort(code, kind="stable")
    if datasets * datasets * rows < 1 << 62:
        return np.lexsort((other_r, -sims, (sample_d * datasets + other_d) * rows + sample_r))
    return np.lexsort((other_r, -sims, sample_r, other_d, sample_d))


def _native_pairs(
    left: np.ndarray, right: np.ndarray, low: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``exact_pairs`` by the native kernel (the same Dice, bit for bit: tested against
    anonlink's), the left rows shared out to threads."""

    def scan(first: int, last: int) -> list[np.ndarray]:
        sims, i, j = kernel.dice_block(left[first:last], right, low)
        return [i.astype(np.int64) + first, j.astype(np.int64), sims]

    parts = in_threads(len(left), scan)
    i, j, s = (np.concatenate([p[n] for p in parts]) for n in range(3))
    return i, j, s


#: Rows on the many side from which ``exact_pairs`` counts bits column by column.
_COLUMNS_FROM = 4096


def _common(columns: list[np.ndarray], row: np.ndarray | None) -> np.ndarray:
    """Per row of ``columns`` (64-bit words, one array each), the bits it shares with ``row``
    (None: its own bits), summed word by word in preallocated buffers."""
    scratch = np.empty(len(columns[0]), dtype=np.uint64)
    counted = np.empty(len(columns[0]), dtype=np.uint8)
    total = np.zeros(len(columns[0]), dtype=np.int32)
    for w, column in enumerate(columns):
        if row is None:
            np.bitwise_count(column, out=counted)
        else:
            np.bitwise_and(column, row[w], out=scratch)
            np.bitwise_count(scratch, out=counted)
        total += counted
    return total


@dataclass(frozen=True)
class Kept:
    """A run's sample as kept for the next: sampled record ids, and pairs by record id."""

    ids: np.ndarray
    a: np.ndarray
    """The sampled record of each pair."""
    b: np.ndarray
    sims: np.ndarray


@dataclass(frozen=True)
class Refreshed:
    """A refreshed sample, and how its pairs by record id differ from the kept ones: the
    positions of kept pairs it dropped, and the pairs it found afresh (record ids a and b,
    similarity), which come after the rest (``kept_rows.Change``)."""

    sample: SamplePairs
    dropped: np.ndarray
    added: tuple[np.ndarray, np.ndarray, np.ndarray]


def sampled_ids(
    sample: SamplePairs, ids_at: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """The sampled records by record id (``ids_at(datasets, rows)``), kept for the next run."""
    d = np.concatenate(
        [np.full(len(p), n, np.int64) for n, p in enumerate(sample.picked)] or [_EMPTY_I]
    )
    r = np.concatenate([*sample.picked] or [_EMPTY_I])
    return ids_at(d, r)


def pairs_by_id(
    sample: SamplePairs, ids_at: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sample's pairs by record id (sampled record, partner, similarity)."""
    return (
        ids_at(sample.sample_d, sample.sample_r),
        ids_at(sample.other_d, sample.other_r),
        np.asarray(sample.sims, dtype=np.float64),
    )


def refresh(
    encodings: Sequence[np.ndarray],
    picked: Sequence[np.ndarray],
    kept: Kept,
    *,
    index: RecordIndex,
    pending: np.ndarray,
    touched: np.ndarray,
    low: float,
) -> Refreshed:
    """This run's sample pairs (``picked``: its sampled rows) from last run's (``kept``).

    A sampled record that was sampled last run and not changed since keeps its
    pairs with records neither changed nor removed (``pending``) and gains its
    pairs with the ``touched`` records (added or changed); any other sampled
    record is compared with every record of the other datasets. Membership is read
    from flags over the run's records (``index``), not searched pair by pair.
    """
    n = len(index.everyone)
    pending_flag = index.marks(pending)
    was_sampled = index.marks(kept.ids)
    sampled_now = np.zeros(n + 1, dtype=bool)  # the last slot: a record the run lacks
    for d, rows in enumerate(picked):
        sampled_now[index.offsets[d] + rows] = True
    parts: list[tuple[np.ndarray, ...]] = []
    t_d, t_r = index.place(touched)
    for d, rows in enumerate(picked):
        if not len(rows):
            continue
        at = index.offsets[d] + rows
        reusable = was_sampled[at] & ~pending_flag[at]
        old_rows, new_rows = rows[reusable], rows[~reusable]
        for other in range(len(encodings)):
            if other == d:
                continue
            for these, against in ((new_rows, None), (old_rows, np.sort(t_r[t_d == other]))):
                right = encodings[other] if against is None else encodings[other][against]
                i, j, s = exact_pairs(encodings[d][these], right, low)
                j = j if against is None else against[j]
                parts.append((np.full(len(i), d), these[i], np.full(len(i), other), j, s))
    fresh = _by_id(parts, index.ids)
    # Last run's pairs of the records sampled then and now and unchanged, with unchanged
    # partners.
    where_a, where_b = index.where(kept.a), index.where(kept.b)
    flags = np.append(was_sampled & ~pending_flag, False)  # by place; -1: not held
    old = flags[where_a] & sampled_now[where_a] & np.append(~pending_flag, False)[where_b]
    if old.any():
        at_a, at_b = where_a[old], where_b[old]
        ends = (index.dataset[at_a], index.row[at_a], index.dataset[at_b], index.row[at_b])
        parts.append((*ends, kept.sims[old]))
    dropped = np.flatnonzero(~old)
    if not parts:
        return Refreshed(SamplePairs.ordered(picked, *(_EMPTY_I,) * 4, np.zeros(0)), dropped, fresh)
    sd, sr, od, orow, sims = (np.concatenate(x) for x in zip(*parts, strict=True))
    sample = SamplePairs.ordered(
        picked, sd.astype(np.int64), sr.astype(np.int64), od.astype(np.int64), orow, sims
    )
    return Refreshed(sample, dropped, fresh)


def _by_id(
    parts: Sequence[tuple[np.ndarray, ...]],
    ids_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs found afresh (dataset, row, dataset, row, similarity parts) by record id."""
    if not parts:
        return _EMPTY_I, _EMPTY_I, np.zeros(0)
    sd, sr, od, orow, sims = (np.concatenate(x) for x in zip(*parts, strict=True))
    return (
        ids_at(sd.astype(np.int64), sr.astype(np.int64)),
        ids_at(od.astype(np.int64), orow.astype(np.int64)),
        sims.astype(np.float64),
    )
