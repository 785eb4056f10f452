"""Comparison work cut into tasks that can run anywhere: here, in worker processes, on Dask.

Matching a large project is one big job of pairwise Dice similarities. It is
cut into small, independent tasks so that every core (or every worker of a
Dask cluster) can take some:

* a :class:`PairChunk` compares every record of a range of one dataset with
  every record of a range of another (or of the same, to find duplicates),
  with anonlink's native Dice;
* a :class:`BandChunk` compares only the pairs that collide in a few
  locality-sensitive bands (``coordinator.core.blocking``), with the same Dice.

A task is a small frozen dataclass (cheap to send to a worker); the data it
reads is the project's encodings, shared once per run. Each task returns
candidates in anonlink's structure with dataset-level record indices, so the
results of every task merge into what one call over everything would give.
Nothing here knows about processes, Dask, SQLite or gRPC.
"""

from __future__ import annotations

import math
import warnings
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from bitarray import bitarray

from coordinator.core import kernel, part_keep
from coordinator.core.part_pass import PartPass, native_block, with_parts

with warnings.catch_warnings():
    # anonlink 0.15.3 imports pkg_resources, which warns on current setuptools.
    warnings.simplefilter("ignore")
    import anonlink

#: anonlink's candidate-pair structure (similarities, dataset indices, record indices).
Candidates = Any
#: A dataset's encodings: one row per record, packed bytes (most significant bit first).
Rows = np.ndarray

#: Pairs per all-pairs chunk: about a second of anonlink on one core at 2048 bits.
DEFAULT_CHUNK_COMPARISONS = 25_000_000


@dataclass(frozen=True)
class PairChunk:
    """Every pair between ``left_range`` of dataset ``left`` and ``right_range`` of ``right``.

    When ``left == right`` the chunk looks for duplicates inside one dataset
    and keeps each unordered pair once (left record before right record). With
    ``parts`` (a salted record CLK) it also keeps the pairs whose best part reaches
    the part floor (``coordinator.core.part_pass``), scored by their whole Dice.
    """

    left: int
    left_range: tuple[int, int]
    right: int
    right_range: tuple[int, int]
    threshold: float
    parts: PartPass | None = None

    @property
    def comparisons(self) -> int:
        """Pairs this chunk compares (a diagonal chunk of one dataset counts each pair once)."""
        a = self.left_range[1] - self.left_range[0]
        b = self.right_range[1] - self.right_range[0]
        if self.left == self.right and self.left_range == self.right_range:
            return a * (a - 1) // 2
        return a * b


@dataclass(frozen=True)
class BandChunk:
    """The pairs of datasets ``left`` and ``right`` that agree on every bit of some band.

    ``bands`` holds, for each band, the half-byte positions whose values form
    its key (see ``band_keys``). Colliding pairs are screened on a sketch
    (``sketch_words``: at most ``sketch_limit`` differing bits) before their full Dice
    is computed. Bands drawn inside one part of a salted record CLK carry that part's
    ``sketch`` words and the project's ``parts``, which then also keeps pairs whose best
    part reaches its floor (``coordinator.core.part_keep``).
    """

    left: int
    right: int
    bands: tuple[tuple[int, ...], ...]
    threshold: float
    sketch_limit: int
    sketch: tuple[int, ...] = ()
    """The row's 64-bit words that make the sketch (empty: ``sketch_columns`` of the row)."""
    parts: PartPass | None = None


Task = PairChunk | BandChunk

SKETCH_BYTES = 32


def sketch_columns(row_bytes: int) -> list[int]:
    """Which 64-bit words of a row make its sketch: ``SKETCH_BYTES`` of them spread evenly
    over the row rather than its first words. A salted record CLK is balanced part by part
    (``node.hardening``), so its first words all belong to one part, and a pair whose salt
    for that part differs would fail the screen whatever its other parts say."""
    total = row_bytes // 8
    words = min(SKETCH_BYTES // 8, total)
    if not words:
        return []
    return sorted({int(w) for w in np.linspace(0, total - 1, words).round()})


def sketch_words(rows: Rows, columns: Sequence[int] = ()) -> list[np.ndarray]:
    """The sketch of every row as 64-bit words (``columns``, else ``sketch_columns``), one
    contiguous array per word (gathering from flat arrays is fastest)."""
    return [
        np.ascontiguousarray(rows[:, 8 * w : 8 * w + 8]).view(np.uint64).ravel()
        for w in (columns or sketch_columns(rows.shape[1]))
    ]


def empty() -> Candidates:
    """No candidates, in anonlink's structure."""
    return (array("d"), (array("I"), array("I")), (array("I"), array("I")))


def from_arrays(
    sims: np.ndarray, d0: np.ndarray, d1: np.ndarray, r0: np.ndarray, r1: np.ndarray
) -> Candidates:
    """Candidates in anonlink's structure from numpy arrays (in whatever order)."""
    return (
        array("d", np.asarray(sims, dtype=np.float64).tobytes()),
        (
            array("I", np.asarray(d0, dtype=np.uint32).tobytes()),
            array("I", np.asarray(d1, dtype=np.uint32).tobytes()),
        ),
        (
            array("I", np.asarray(r0, dtype=np.uint32).tobytes()),
            array("I", np.asarray(r1, dtype=np.uint32).tobytes()),
        ),
    )


def merge(parts: Sequence[Candidates], *, unique: bool = False) -> Candidates:
    """One candidate structure from several, in anonlink's order (similarity descending).

    With ``unique``, a pair found by several tasks (blocking finds a close pair
    in many bands) is kept once.
    """
    if not parts:
        return empty()
    sims = np.concatenate([np.frombuffer(p[0], dtype=np.float64) for p in parts])
    d0, d1, r0, r1 = (
        np.concatenate([np.frombuffer(p[k][j], dtype=np.uint32) for p in parts])
        for k, j in ((1, 0), (1, 1), (2, 0), (2, 1))
    )
    order = descending_order(sims, d0, d1, r0, r1)
    sims, d0, d1, r0, r1 = sims[order], d0[order], d1[order], r0[order], r1[order]
    if unique and len(sims) > 1:
        # Equal pairs have equal similarity, so after the sort they are neighbours.
        fresh = np.ones(len(sims), dtype=bool)
        fresh[1:] = (
            (d0[1:] != d0[:-1]) | (d1[1:] != d1[:-1]) | (r0[1:] != r0[:-1]) | (r1[1:] != r1[:-1])
        )
        sims, d0, d1, r0, r1 = sims[fresh], d0[fresh], d1[fresh], r0[fresh], r1[fresh]
    return from_arrays(sims, d0, d1, r0, r1)


def descending_order(
    sims: np.ndarray, d0: np.ndarray, d1: np.ndarray, r0: np.ndarray, r1: np.ndarray
) -> np.ndarray:
    """``np.lexsort((r1, r0, d1, d0, -sims))``: similarity descending, then the pair. The
    pair's four numbers are one integer when they fit (two sorting passes, not five)."""
    if not len(sims):
        return np.zeros(0, dtype=np.int64)
    datasets = int(max(d0.max(), d1.max())) + 1
    width = int(max(r0.max(), r1.max())) + 1
    if datasets * datasets * width * width >= 1 << 62:
        return np.lexsort((r1, r0, d1, d0, -sims))
    code = ((d0.astype(np.int64) * datasets + d1) * width + r0) * width + r1
    order: np.ndarray = np.lexsort((code, -sims))
    return order


# ------------------------------------------------------------------ all pairs
def plan_pair_chunks(
    sizes: Sequence[int],
    threshold: float,
    within_threshold: float = 0.0,
    *,
    chunk_comparisons: int = DEFAULT_CHUNK_COMPARISONS,
    parts: PartPass | None = None,
) -> list[PairChunk]:
    """Cut all-pairs matching of datasets of ``sizes`` into chunks of about equal work.

    Pairs across datasets are cut with anonlink's own ``split_to_chunks``;
    with ``within_threshold``, each dataset's pairs with itself are cut into
    square blocks too (the blocks on the diagonal keep each pair once). ``parts``
    (a salted record CLK's part pass) goes with every chunk, across and within.
    """
    chunks = [
        PairChunk(
            left=int(a["datasetIndex"]),
            left_range=(int(a["range"][0]), int(a["range"][1])),
            right=int(b["datasetIndex"]),
            right_range=(int(b["range"][0]), int(b["range"][1])),
            threshold=threshold,
            parts=parts,
        )
        for a, b in anonlink.concurrency.split_to_chunks(chunk_comparisons, dataset_sizes=sizes)
    ]
    if within_threshold:
        side = max(1, int(math.sqrt(chunk_comparisons)))
        for index, size in enumerate(sizes):
            blocks = [(start, min(size, start + side)) for start in range(0, size, side)]
            for i, first in enumerate(blocks):
                for second in blocks[i:]:
                    within_parts = parts.for_pair(True) if parts else None
                    chunks.append(
                        PairChunk(index, first, index, second, within_threshold, within_parts)
                    )
    return chunks


def to_bitarrays(rows: Rows, start: int, stop: int) -> list[bitarray]:
    """Records ``start`` to ``stop`` of a dataset as anonlink's bitarrays."""
    out = []
    for raw in rows[start:stop]:
        bits = bitarray(endian="big")
        bits.frombytes(raw.tobytes())
        out.append(bits)
    return out


def compare_pairs(chunk: PairChunk, datasets: Sequence[Rows]) -> Candidates:
    """The pairs of a chunk whose Dice similarity reaches its threshold (hublink's native
    kernel where it is built, else anonlink's: the same scores either way)."""
    (a0, a1), (b0, b1) = chunk.left_range, chunk.right_range
    if kernel.usable(datasets[chunk.left]):
        return _compare_pairs_native(chunk, datasets)
    left = to_bitarrays(datasets[chunk.left], a0, a1)
    right = left if (chunk.left, a0, a1) == (chunk.right, b0, b1) else None
    if right is None:
        right = to_bitarrays(datasets[chunk.right], b0, b1)
    sims, _, (i, j) = anonlink.candidate_generation.find_candidate_pairs(
        [left, right], anonlink.similarities.dice_coefficient_accelerated, chunk.threshold
    )
    sims, i, j = with_parts(
        datasets[chunk.left][a0:a1],
        datasets[chunk.right][b0:b1],
        (
            np.frombuffer(sims, dtype=np.float64),
            np.frombuffer(i, dtype=np.uint32).astype(np.int64),
            np.frombuffer(j, dtype=np.uint32).astype(np.int64),
        ),
        chunk.parts,
    )
    return _chunk_pairs(chunk, sims, i + a0, j + b0, upper_only=chunk.left == chunk.right)


def _compare_pairs_native(chunk: PairChunk, datasets: Sequence[Rows]) -> Candidates:
    (a0, a1), (b0, b1) = chunk.left_range, chunk.right_range
    diagonal = (chunk.left, a0, a1) == (chunk.right, b0, b1)
    left, right = datasets[chunk.left][a0:a1], datasets[chunk.right][b0:b1]
    sims, i, j = native_block(left, right, chunk.threshold, chunk.parts, diagonal=diagonal)
    return _chunk_pairs(
        chunk,
        sims,
        i.astype(np.int64) + a0,
        j.astype(np.int64) + b0,
        upper_only=chunk.left == chunk.right and not diagonal,
    )


def _chunk_pairs(
    chunk: PairChunk, sims: np.ndarray, i: np.ndarray, j: np.ndarray, *, upper_only: bool
) -> Candidates:
    """A chunk's pairs as candidates (rows already offset into their datasets); inside one
    dataset, ``upper_only`` keeps each unordered pair once (i < j)."""
    if upper_only:
        keep = i < j
        sims, i, j = sims[keep], i[keep], j[keep]
    n = len(sims)
    return from_arrays(
        sims,
        np.full(n, chunk.left, dtype=np.uint32),
        np.full(n, chunk.right, dtype=np.uint32),
        i,
        j,
    )


# ------------------------------------------------------------------- blocked
#: Records whose bytes are transposed at once while band keys are built (a block fits in cache).
_KEY_BLOCK = 16384
#: Bands whose keys are built in one pass over a dataset.
_BANDS_AT_ONCE = 8


def band_keys(rows: Rows, bands: Sequence[Sequence[int]]) -> np.ndarray:
    """Each record's key in each band (one row of keys a band): its half-bytes at the band's
    positions, side by side.

    Half-byte ``u`` is the high four bits of byte ``u // 2`` when ``u`` is even,
    the low four when odd. The bytes the bands read are gathered and
    transposed a block of records at a time, so each half-byte is read from
    a short contiguous column in cache, without a transposed copy of the
    whole dataset (which would double the run's shared memory).
    """
    needed = sorted({unit // 2 for band in bands for unit in band})
    place_of = {byte: k for k, byte in enumerate(needed)}
    widest = max((len(band) for band in bands), default=0)
    dtype = np.uint32 if widest <= 8 else np.uint64
    keys: np.ndarray = np.zeros((len(bands), len(rows)), dtype=dtype)
    for start in range(0, len(rows), _KEY_BLOCK):
        stop = min(len(rows), start + _KEY_BLOCK)
        block = np.ascontiguousarray(rows[start:stop][:, needed].T)
        high, low = block >> np.uint8(4), block & np.uint8(15)
        for b, band in enumerate(bands):
            key = keys[b, start:stop]
            for place, unit in enumerate(band):
                half = (high if unit % 2 == 0 else low)[place_of[unit // 2]]
                key |= half.astype(dtype) << dtype(4 * place)
    return keys


def _differing(left: list[np.ndarray], right: list[np.ndarray], i: Any, j: Any) -> np.ndarray:
    """Bits in which the sketches of pairs (i, j) differ."""
    total = np.zeros(len(i), dtype=np.uint16)
    for a, b in zip(left, right, strict=True):
        total += np.bitwise_count(a[i] ^ b[j])
    return total


def _colliding(left: np.ndarray, right: np.ndarray, same: bool) -> Iterator[tuple[Any, Any]]:
    """Index pairs (left, right) with equal keys, in slices of bounded size.

    One sort does the join: each record becomes key, side and index packed
    in one 64-bit integer, so sorting them (numpy sorts plain integers far
    faster than it argsorts) puts every key's left records, then its right
    records, next to each other.
    """
    index_bits = max(1, (max(len(left), len(right)) - 1).bit_length())
    shift = np.uint64(index_bits + 1)
    mask = np.uint64((1 << index_bits) - 1)
    if same:
        packed = left.astype(np.uint64)
        packed <<= shift
        packed |= np.arange(len(left), dtype=np.uint64)
        packed.sort()
        keys = packed >> shift
        members = (packed & mask).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        sizes = np.diff(np.r_[starts, len(keys)])
        yield from _within_runs(members, starts, sizes)
        return
    side = np.uint64(1 << index_bits)
    # Built and sorted in place: at a million records a side, every copy is 16 MB.
    packed = np.empty(len(left) + len(right), dtype=np.uint64)
    for part, keys_of, flag in ((packed[: len(left)], left, 0), (packed[len(left) :], right, 1)):
        part[:] = keys_of
        part <<= shift
        part |= np.arange(len(part), dtype=np.uint64)
        if flag:
            part |= side
    packed.sort()
    keys = packed >> shift
    on_right = (packed & side) != 0
    packed &= mask
    members = packed.astype(np.intp)
    del packed
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    del keys
    # Within a run, left records come first (side bit clear); count them per run.
    lefts = np.add.reduceat((~on_right).astype(np.int64), starts) if len(starts) else starts
    rights = sizes - lefts
    both = (lefts > 0) & (rights > 0)
    starts, lefts, rights = starts[both], lefts[both], rights[both]
    yield from _cross_runs(members, starts, lefts, rights)


#: Most pairs expanded at once while joining a band (bounds the join's memory).
_PAIRS_AT_ONCE = 1 << 20


def _cross_runs(
    members: np.ndarray, starts: np.ndarray, lefts: np.ndarray, rights: np.ndarray
) -> Iterator[tuple[Any, Any]]:
    """Every (left, right) pair of each run, a bounded number of pairs at a time."""
    counts = lefts * rights
    for first, last in _slices(counts, _PAIRS_AT_ONCE):
        if last == first + 1 and counts[first] > _PAIRS_AT_ONCE:
            # One huge run (many records share a key): its left members a block at a time.
            at, on_left, on_right = int(starts[first]), int(lefts[first]), int(rights[first])
            right_members = members[at + on_left : at + on_left + on_right]
            step = max(1, _PAIRS_AT_ONCE // on_right)
            for block in range(0, on_left, step):
                left_members = members[at + block : at + min(on_left, block + step)]
                yield np.repeat(left_members, on_right), np.tile(right_members, len(left_members))
            continue
        s, a, b, c = starts[first:last], lefts[first:last], rights[first:last], counts[first:last]
        total = int(c.sum())
        # Pair number within its run → (left member, right member).
        run = np.repeat(np.arange(len(s)), c)
        within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
        i = members[s[run] + within // b[run]]
        j = members[s[run] + a[run] + within % b[run]]
        yield i, j


def _within_runs(
    members: np.ndarray, starts: np.ndarray, sizes: np.ndarray
) -> Iterator[tuple[Any, Any]]:
    """Every unordered pair inside each run of one dataset, as (lower index, higher index)."""
    keep = sizes > 1
    starts, sizes = starts[keep], sizes[keep]
    counts = sizes * sizes
    for first, last in _slices(counts, _PAIRS_AT_ONCE):
        if last == first + 1 and counts[first] > _PAIRS_AT_ONCE:
            at, size = int(starts[first]), int(sizes[first])
            run_members = members[at : at + size]
            step = max(1, _PAIRS_AT_ONCE // size)
            for block in range(0, size, step):
                part = run_members[block : block + step]
                left, right = np.repeat(part, size), np.tile(run_members, len(part))
                lower = left < right
                yield left[lower], right[lower]
            continue
        s, n, c = starts[first:last], sizes[first:last], counts[first:last]
        total = int(c.sum())
        run = np.repeat(np.arange(len(s)), c)
        within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
        i = members[s[run] + within // n[run]]
        j = members[s[run] + within % n[run]]
        lower = i < j
        yield i[lower], j[lower]


def _slices(counts: np.ndarray, most: int) -> Iterator[tuple[int, int]]:
    """Consecutive runs whose pair counts add up to about ``most`` (a huge run goes alone)."""
    ends = np.cumsum(counts)
    first = 0
    while first < len(counts):
        base = ends[first - 1] if first else 0
        last = int(np.searchsorted(ends, base + most, "right"))
        last = max(last, first + 1)
        yield first, last
        first = last


def _compare_bands(chunk: BandChunk, datasets: Sequence[Rows]) -> tuple[Candidates, int]:
    """Pairs colliding in any of the chunk's bands whose Dice reaches its threshold, and the
    number of colliding pairs screened.

    A pair that collides in several bands is compared once: survivors of the
    sketch screen are collected as pair numbers and made unique before the
    exact Dice, which is the dear step.
    """
    left, right = datasets[chunk.left], datasets[chunk.right]
    same = chunk.left == chunk.right
    if kernel.usable(left):
        return _compare_bands_native(chunk, left, right)
    sketch_left = sketch_words(left, chunk.sketch)
    sketch_right = sketch_left if same else sketch_words(right, chunk.sketch)
    width = np.int64(len(right))
    found: list[np.ndarray] = []
    screened = 0
    for first in range(0, len(chunk.bands), _BANDS_AT_ONCE):
        bands = chunk.bands[first : first + _BANDS_AT_ONCE]
        keys_left = band_keys(left, bands)
        keys_right = keys_left if same else band_keys(right, bands)
        for number in range(len(bands)):
            for i, j in _colliding(keys_left[number], keys_right[number], same):
                screened += len(i)
                differ = _differing(sketch_left, sketch_right, i, j)
                keep = differ <= chunk.sketch_limit
                found.append(i[keep] * width + j[keep])
        del keys_left, keys_right
        if len(found) > 1:
            found = [_unique(np.concatenate(found))]
    if not found:
        return empty(), screened
    pairs = _unique(np.concatenate(found))
    del found
    i, j = np.divmod(pairs, width)
    del pairs
    sims, kept = part_keep.score(left, right, i, j, chunk.threshold, chunk.parts)
    n = len(sims)
    found_pairs = from_arrays(
        sims,
        np.full(n, chunk.left, dtype=np.uint32),
        np.full(n, chunk.right, dtype=np.uint32),
        i[kept],
        j[kept],
    )
    return found_pairs, screened


def _compare_bands_native(chunk: BandChunk, left: Rows, right: Rows) -> tuple[Candidates, int]:
    """``_compare_bands`` with the native kernel: a hash join and screen a band in one pass,
    no expanded list of colliding pairs; unique survivors scored with their exact Dice."""
    same = chunk.left == chunk.right
    sketch_left = _packed(sketch_words(left, chunk.sketch))
    sketch_right = sketch_left if same else _packed(sketch_words(right, chunk.sketch))
    found: list[np.ndarray] = []
    screened = 0
    for first in range(0, len(chunk.bands), _BANDS_AT_ONCE):
        bands = chunk.bands[first : first + _BANDS_AT_ONCE]
        keys_left = band_keys(left, bands)
        keys_right = keys_left if same else band_keys(right, bands)
        for number in range(len(bands)):
            codes, collided = kernel.band_join(
                keys_left[number],
                keys_right[number],
                same=same,
                sketch_left=sketch_left,
                sketch_right=sketch_right,
                limit=chunk.sketch_limit,
                width=len(right),
            )
            screened += collided
            found.append(codes)
        if len(found) > 1:
            found = [_unique(np.concatenate(found))]
    pairs = _unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
    i, j = np.divmod(pairs, np.int64(len(right)))
    if chunk.parts is not None:
        sims, kept = part_keep.score(left, right, i, j, chunk.threshold, chunk.parts)
    else:
        counted = kernel.counts(left)
        sims, kept = kernel.dice_pairs(
            left, right, i, j, chunk.threshold, (counted, counted if same else kernel.counts(right))
        )
    n = len(sims)
    found_pairs = from_arrays(
        sims,
        np.full(n, chunk.left, dtype=np.uint32),
        np.full(n, chunk.right, dtype=np.uint32),
        i[kept],
        j[kept],
    )
    return found_pairs, screened


def _packed(words: list[np.ndarray]) -> np.ndarray:
    """A sketch's words side by side, one row a record, so that a band join's random reads
    of them stay in cache."""
    return np.ascontiguousarray(np.stack(words, axis=1))


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sorting plain integers beats numpy's hashing unique here)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    kept: np.ndarray = ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
    return kept


def run_task(task: Task, datasets: Sequence[np.ndarray]) -> Candidates:
    """Do one task on the project's encodings (one packed row per record, a dataset an array)."""
    return perform(task, datasets).candidates


@dataclass(frozen=True)
class Outcome:
    """What a task found, and how many pairs it compared (for progress and the audit)."""

    candidates: Candidates
    compared: int


def perform(task: Task, datasets: Sequence[np.ndarray]) -> Outcome:
    """Do one task and count its comparisons: what engines run."""
    if isinstance(task, PairChunk):
        return Outcome(compare_pairs(task, datasets), task.comparisons)
    found, screened = _compare_bands(task, datasets)
    return Outcome(found, screened)
