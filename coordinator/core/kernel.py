"""The comparison kernel: hublink's native Dice where it was built, anonlink's otherwise.

A run spends most of its time computing Dice similarities, so the kernel is
worth its own module. ``coordinator.core._dice`` is a small C extension
(``setup.py`` builds it when hublink is installed; the install goes on
without it where there is no compiler). It computes exactly anonlink's
scores, faster: each record's popcount is counted once, not once a pair, and
a pair stops five-eighths of the way through when even a perfect remainder could not
reach the threshold (see ``_dice.c``). Where it is missing, or where
``HUBLINK_KERNEL=anonlink`` is set (to compare the two, or to rule the
kernel out), callers use anonlink's kernel, which stays the reference the
tests hold this one to. ``dice_block_parts`` searches rows made of equal parts
(a salted record CLK) for pairs whose whole row or some part reaches its
own threshold, in one pass over each pair's words.

Everything here takes packed rows (one encoding a row, most significant bit
first) and returns plain numpy arrays; nothing knows about tasks or engines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from types import ModuleType

import numpy as np

_native: ModuleType | None
try:
    from coordinator.core import _dice as _native
except ImportError:  # built without a compiler: anonlink's kernel serves
    _native = None

#: Environment variable that forces anonlink's kernel when set to "anonlink".
KERNEL_ENV = "HUBLINK_KERNEL"

#: Longest encoding the native kernel takes, in bytes (1,023 64-bit words).
MOST_BYTES = 8 * 1023

#: Pairs the native kernel writes before handing back a slice of results.
_OUT_PAIRS = 1 << 20


def native() -> bool:
    """Whether the native kernel is built and not switched off."""
    return _native is not None and os.environ.get(KERNEL_ENV, "").lower() != "anonlink"


def name() -> str:
    """The kernel in use, for logs and benchmarks: "native-popcnt", "native-portable" or
    "anonlink"."""
    if _native is None or not native():
        return "anonlink"
    return f"native-{_native.VARIANT}"


def usable(rows: np.ndarray) -> bool:
    """Whether the native kernel can read these rows: whole 64-bit words, at most
    ``MOST_BYTES`` a row (the kernel counts ones in 16 bits)."""
    return (
        native() and rows.ndim == 2 and rows.shape[1] % 8 == 0 and 0 < rows.shape[1] <= MOST_BYTES
    )


def counts(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each record's ones in all, and the ones it has left after each step of four 64-bit
    words (what the kernel's bound reads)."""
    rows = np.ascontiguousarray(rows)
    words = rows.shape[1] // 8
    ones = np.empty(len(rows), dtype=np.uint32)
    rest = np.empty((len(rows), words // 4), dtype=np.uint16)
    _require().counts(rows, words, ones, rest)
    return ones, rest


def dice_block(
    left: np.ndarray, right: np.ndarray, threshold: float, *, diagonal: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i, j) of ``left`` x ``right`` rows whose Dice reaches ``threshold``:
    (scores, i, j), indices relative to the blocks. ``diagonal`` (``left`` is ``right``)
    keeps each unordered pair once, as i < j."""
    module = _require()
    left, right = np.ascontiguousarray(left), np.ascontiguousarray(right)
    words = left.shape[1] // 8
    ones_l, head_l = counts(left)
    ones_r, head_r = (ones_l, head_l) if diagonal else counts(right)

    def search(block: int, row: int, sims: np.ndarray, i: np.ndarray, j: np.ndarray) -> Slice:
        done: Slice = module.dice_block(
            left, right, words, ones_l, head_l, ones_r, head_r,
            threshold, diagonal, block, row, sims, i, j,
        )  # fmt: skip
        return done

    return _in_slices(search, len(left), len(right))


def fusable(rows: np.ndarray, parts: int) -> bool:
    """Whether ``dice_block_parts`` can read these rows cut into ``parts`` equal parts: the
    native kernel reads them and each part is a whole number of 64-bit words."""
    return usable(rows) and parts >= 1 and (rows.shape[1] // 8) % parts == 0


def part_counts(rows: np.ndarray, parts: int) -> np.ndarray:
    """Each record's ones in each of ``parts`` equal parts of its row (records x parts)."""
    split = rows.reshape(len(rows), parts, -1)
    out: np.ndarray = np.bitwise_count(split).sum(axis=2, dtype=np.uint32)
    return np.ascontiguousarray(out)


def dice_block_parts(
    left: np.ndarray,
    right: np.ndarray,
    threshold: float,
    parts: int,
    part_threshold: float | Sequence[float],
    *,
    diagonal: bool = False,
    early_exit: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i, j) whose whole-row Dice reaches ``threshold`` or whose Dice on some
    one of ``parts`` equal parts of the row reaches that part's threshold
    (``part_threshold``: one for all, or one a part in row order): (whole-row scores, i, j),
    as ``dice_block`` gives them. One pass over each pair's words does both, where a
    whole-row search and one more a part cost twice as much (``fusable`` says when it can).

    ``early_exit=False`` turns off the bound inside the last part (for benchmarks).
    """
    module = _require()
    left, right = np.ascontiguousarray(left), np.ascontiguousarray(right)
    if not fusable(left, parts) or right.shape[1] != left.shape[1]:
        raise ValueError(f"rows of {left.shape[1]} bytes do not split into {parts} word parts")
    each = np.ascontiguousarray(np.broadcast_to(part_threshold, (parts,)), dtype=np.float64)
    words = left.shape[1] // 8
    ones_l, head_l = counts(left)
    part_l = part_counts(left, parts)
    if diagonal:
        ones_r, head_r, part_r = ones_l, head_l, part_l
    else:
        (ones_r, head_r), part_r = counts(right), part_counts(right, parts)

    def search(block: int, row: int, sims: np.ndarray, i: np.ndarray, j: np.ndarray) -> Slice:
        done: Slice = module.dice_block_parts(
            left, right, words, ones_l, head_l, ones_r, head_r, part_l, part_r, parts,
            threshold, each, diagonal, block, row, sims, i, j, early_exit,
        )  # fmt: skip
        return done

    return _in_slices(search, len(left), len(right))


#: One call of a block search: (count, block, row) from (block, row, sims, i, j outputs).
Slice = tuple[int, int, int]


def _in_slices(
    search: Callable[[int, int, np.ndarray, np.ndarray, np.ndarray], Slice],
    n_left: int,
    n_right: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs a block search to its end, ``_OUT_PAIRS`` results at most a call, and joins
    what each call handed back."""
    size = max(_require().RIGHT_BLOCK, min(_OUT_PAIRS, n_left * n_right))
    sims = np.empty(size, dtype=np.float64)
    out_i = np.empty(size, dtype=np.uint32)
    out_j = np.empty(size, dtype=np.uint32)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    block = row = 0
    while block < n_right:
        count, block, row = search(block, row, sims, out_i, out_j)
        found.append((sims[:count].copy(), out_i[:count].copy(), out_j[:count].copy()))
    if not found:
        return np.zeros(0), np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint32)
    return (
        np.concatenate([p[0] for p in found]),
        np.concatenate([p[1] for p in found]),
        np.concatenate([p[2] for p in found]),
    )


def dice_pairs(
    left: np.ndarray,
    right: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    threshold: float,
    counted: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (i[k], j[k]) whose Dice reaches ``threshold``: (scores, positions k).

    ``counted`` passes ``counts`` of both datasets when the caller has them
    (a task scores many slices of pairs over the same rows).
    """
    module = _require()
    left, right = np.ascontiguousarray(left), np.ascontiguousarray(right)
    words = left.shape[1] // 8
    (ones_l, head_l), (ones_r, head_r) = counted or (counts(left), counts(right))
    pi = np.ascontiguousarray(i, dtype=np.int64)
    pj = np.ascontiguousarray(j, dtype=np.int64)
    sims = np.empty(len(pi), dtype=np.float64)
    kept = np.empty(len(pi), dtype=np.int64)
    count = module.dice_pairs(
        left, right, words, ones_l, head_l, ones_r, head_r,
        threshold, pi, pj, sims, kept,
    )  # fmt: skip
    return sims[:count], kept[:count]


def _require() -> ModuleType:
    if _native is None:
        raise RuntimeError("the native Dice kernel is not built; use anonlink's")
    return _native


def band_join(
    keys_left: np.ndarray,
    keys_right: np.ndarray,
    *,
    same: bool,
    sketch_left: np.ndarray,
    sketch_right: np.ndarray,
    limit: int,
    width: int,
) -> tuple[np.ndarray, int]:
    """Pairs whose keys in one band are equal and whose sketches differ in at most ``limit``
    bits, as codes ``i * width + j`` (``same``: one dataset with itself, i < j), and how
    many pairs had equal keys."""
    module = _require()
    raw, collided = module.band_join(
        np.ascontiguousarray(keys_left, dtype=np.uint64),
        np.ascontiguousarray(keys_right, dtype=np.uint64),
        same,
        sketch_left,
        sketch_right,
        sketch_left.shape[1],
        limit,
        width,
    )
    return np.frombuffer(raw, dtype=np.int64), collided


def sketch_near(sketch_left: np.ndarray, sketch_right: np.ndarray, limit: int) -> np.ndarray:
    """Every pair (i, j) of rows whose sketches (one row of 64-bit words a record) differ in
    at most ``limit`` bits, as codes ``i * len(sketch_right) + j`` in no set order."""
    raw = _require().sketch_near(
        np.ascontiguousarray(sketch_left, dtype=np.uint64),
        np.ascontiguousarray(sketch_right, dtype=np.uint64),
        sketch_left.shape[1],
        limit,
        len(sketch_right),
    )
    return np.frombuffer(raw, dtype=np.int64)
