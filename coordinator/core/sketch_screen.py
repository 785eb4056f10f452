"""The records a refresh changed, against every record of a blocked project: screened on a
sketch, then scored exactly.

A blocked full run compares a pair only if it collides in some band and its
sketches (``comparison.sketch_words``) differ in
few enough bits. Building band keys costs a pass over every record per band
(hundreds of bands at 2 x 100,000), whoever is compared, so an incremental run
that blocked its few changed records would still pay most of a full run.
This screens every pair of (changed record, held record) on the sketch alone,
with the limit a full run's plan sets, and scores the survivors with the exact
Dice a full run uses. It keeps at least the pairs a blocked run would keep for
those records (no band needs to collide), at a cost of (changed records) x
(records held) x one sketch: the native kernel's ``sketch_near`` (about 0.1 s at 1% of
2 x 100,000 on one core), or numpy's passes where the kernel is not built.

Nothing here knows about runs or storage. The changed records are screened in
``THREADS`` threads (the kernel and numpy let go of the interpreter lock while they count
bits), so every core of the coordinator works.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from coordinator.core import kernel, part_keep
from coordinator.core.comparison import sketch_words
from coordinator.core.part_pass import PartPass, whole_dice

#: Screened pairs scored at once.
_STEP = 1 << 16
#: Threads a screen (or any per-row scan, ``in_threads``) shares its rows out to.
THREADS = max(1, min(4, os.cpu_count() or 1))


def in_threads(
    rows: int, scan: Callable[[int, int], list[np.ndarray]], threads: int = THREADS
) -> list[list[np.ndarray]]:
    """``scan(first, last)`` over ``rows`` rows cut into one slice a thread, in row order."""
    cuts = np.linspace(0, rows, min(threads, max(1, rows)) + 1).astype(int)
    slices = [(int(a), int(b)) for a, b in itertools.pairwise(cuts) if b > a]
    if len(slices) <= 1:
        return [scan(a, b) for a, b in slices]
    with ThreadPoolExecutor(len(slices)) as pool:
        return list(pool.map(lambda ab: scan(*ab), slices))


def screen(
    left: np.ndarray,
    right: np.ndarray,
    right_words: list[np.ndarray],
    *,
    limit: int,
    threshold: float,
    columns: tuple[int, ...] = (),
    parts: PartPass | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (left row, right row, Dice) whose sketches differ in at most ``limit`` bits and
    whose exact Dice reaches ``threshold`` (or, with ``parts``, whose best part reaches the
    part floor: ``part_keep``).

    ``left`` is a few rows (the changed records), ``right`` a whole dataset with its
    ``sketch_words`` (of ``columns``: a part's plan screens on that part's words). Dice is
    2|A∩B| / (|A| + |B|), computed as a full run computes it.
    """
    mine = sketch_words(left, columns)
    if kernel.native() and mine:
        packed = np.ascontiguousarray(np.stack(right_words, axis=1))
        mine_packed = np.ascontiguousarray(np.stack(mine, axis=1))

        def near(first: int, last: int) -> list[np.ndarray]:
            codes = kernel.sketch_near(mine_packed[first:last], packed, limit)
            i, j = np.divmod(codes, np.int64(len(right)))
            return [i + first, j]

        slices = in_threads(len(left), near)
    else:
        slices = in_threads(len(left), _numpy_scan(mine, right_words, limit, len(right)))
    if not slices:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    i_all = np.concatenate([p[0] for p in slices])
    j_all = np.concatenate([p[1] for p in slices])
    # Row order, as the numpy scan gives it (the kernel gives its own block order).
    order = np.lexsort((j_all, i_all))
    i_all, j_all = i_all[order], j_all[order]
    if parts is not None:
        sims, kept = part_keep.score(left, right, i_all, j_all, threshold, parts)
        return i_all[kept], j_all[kept], sims
    if kernel.usable(left) and kernel.usable(right):
        sims, kept = kernel.dice_pairs(left, right, i_all, j_all, threshold)
        return i_all[kept], j_all[kept], sims
    # Scored a slice at a time: the survivors' rows are gathered to be scored.
    sims = np.concatenate(
        [np.zeros(0)]
        + [
            whole_dice(left, right, i_all[start : start + _STEP], j_all[start : start + _STEP])
            for start in range(0, len(i_all), _STEP)
        ]
    )
    keep = sims >= threshold
    return i_all[keep], j_all[keep], sims[keep]


def _numpy_scan(
    mine: list[np.ndarray], right_words: list[np.ndarray], limit: int, length: int
) -> Callable[[int, int], list[np.ndarray]]:
    """The screen of rows ``first`` to ``last`` of ``mine`` in numpy, where the native
    kernel is not built: one pass over the right side's words a changed record."""

    def scan(first: int, last: int) -> list[np.ndarray]:
        found_i: list[np.ndarray] = [np.zeros(0, np.int64)]
        found_j: list[np.ndarray] = [np.zeros(0, np.int64)]
        differ = np.zeros(length, dtype=np.uint16)
        scratch = np.zeros(length, dtype=np.uint64)
        counted = np.zeros(length, dtype=np.uint8)
        for i in range(first, last):
            differ[:] = 0
            for word, words in zip(mine, right_words, strict=True):
                np.bitwise_xor(words, word[i], out=scratch)
                np.bitwise_count(scratch, out=counted)
                differ += counted
            near = np.flatnonzero(differ <= limit)
            found_i.append(np.full(len(near), i, dtype=np.int64))
            found_j.append(near)
        return [np.concatenate(found_i), np.concatenate(found_j)]

    return scan
