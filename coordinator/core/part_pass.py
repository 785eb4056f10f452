"""The part pass: pairs whose best single part of a salted record CLK reaches a floor.

A salted record CLK (``record_clk = "salted"``, hublink/schemas/record-clk.json)
is made of equal parts, each balanced on its own at the node, so the whole
row's Dice is the mean of its parts'. A part whose salt differs between two
records reads chance (about 0.5), so a true pair with only one salt agreeing
scores about (0.8 + 0.5 + 0.5) / 3 on the whole row and often falls under the
whole-row floor, while its agreeing part alone stands well clear of chance.
This pass finds those pairs on each part alone and scores them, like every
other candidate, by their whole-row Dice: the score keeps its meaning, only
the candidate set grows. The native kernel does the whole row and every part
in one pass over each pair's words (``native_block``); anonlink's kernel runs
once more on each slice of the rows (``with_parts``), at about twice the cost.

Plain arrays in, plain arrays out: the comparison tasks call it
(``coordinator.core.comparison.compare_pairs``), whatever path made them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from bitarray import bitarray

from coordinator.core import kernel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import anonlink


@dataclass(frozen=True)
class PartPass:
    """Rows cut into ``count`` equal parts; a pair is kept when some part's Dice reaches
    that part's floor (``coordinator.core.score_model.part_pass_for`` makes a project's)."""

    count: int
    floor: float
    """Every part's floor, unless ``floors`` gives each its own."""
    within: bool = True
    """Whether pairs inside one dataset are searched by part too (else across only)."""
    floors: tuple[float, ...] = ()
    """Each part's own floor in row order (``coordinator.core.chance``: a part's floor
    follows its own chance level); empty: ``floor`` for all."""

    def __post_init__(self) -> None:
        if self.floors and len(self.floors) != self.count:
            raise ValueError(f"{len(self.floors)} part floors for {self.count} parts")

    @property
    def part_floors(self) -> tuple[float, ...]:
        """The floor of each part, in row order."""
        return self.floors or (self.floor,) * self.count

    @property
    def lowest(self) -> float:
        """The lowest part floor: below it no part keeps a pair."""
        return min(self.part_floors)

    def for_pair(self, same_dataset: bool) -> PartPass | None:
        """The pass a chunk of pairs inside one dataset (or across two) carries."""
        return self if self.within or not same_dataset else None

    def bounds(self, width: int) -> list[tuple[int, int]]:
        """Each part's byte range in rows ``width`` bytes wide."""
        if self.count < 1 or width % self.count:
            raise ValueError(f"rows of {width} bytes do not split into {self.count} equal parts")
        step = width // self.count
        return [(k * step, (k + 1) * step) for k in range(self.count)]


def native_block(
    left: np.ndarray,
    right: np.ndarray,
    threshold: float,
    parts: PartPass | None,
    *,
    diagonal: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A block's pairs on the native kernel (``kernel.usable(left)``): those whose whole
    Dice reaches ``threshold`` and, with ``parts``, those where some part reaches its floor,
    each scored by its whole Dice (scores, i, j: rows of ``left`` x ``right``).

    One fused pass where each part is a whole number of 64-bit words (the shipped layout:
    16 words a part); the whole-row pass and a pass a slice otherwise. The pairs and
    scores are the same either way, only their order differs.
    """
    if parts is None or not len(left) or not len(right):
        return kernel.dice_block(left, right, threshold, diagonal=diagonal)
    parts.bounds(left.shape[1])  # equal parts, or the error that says they are not
    if kernel.fusable(left, parts.count):
        return kernel.dice_block_parts(
            left, right, threshold, parts.count, parts.part_floors, diagonal=diagonal
        )
    found = kernel.dice_block(left, right, threshold, diagonal=diagonal)
    return with_parts(left, right, found, parts, diagonal=diagonal)


def with_parts(
    left: np.ndarray,
    right: np.ndarray,
    found: tuple[np.ndarray, np.ndarray, np.ndarray],
    parts: PartPass | None,
    *,
    diagonal: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A block's whole-row pairs ``found`` (scores, i, j: rows of ``left`` x ``right``) with
    the pairs some part finds at its own floor added, each scored by its whole-row Dice.

    ``diagonal`` (``left`` is ``right``) keeps each unordered pair once, i < j, as the
    whole-row pass does; without ``parts`` ``found`` comes back as it was.
    """
    sims, i, j = found
    if parts is None or not len(left) or not len(right):
        return found
    width = np.int64(len(right))
    bounds = zip(parts.bounds(left.shape[1]), parts.part_floors, strict=True)
    codes = [_part_pairs(left[:, a:b], right[:, a:b], floor, diagonal, width)
             for (a, b), floor in bounds]  # fmt: skip
    extra = np.setdiff1d(np.concatenate(codes), i.astype(np.int64) * width + j)
    ei, ej = np.divmod(extra, width)
    return (
        np.concatenate([np.asarray(sims, dtype=np.float64), whole_dice(left, right, ei, ej)]),
        np.concatenate([i.astype(np.int64), ei]),
        np.concatenate([j.astype(np.int64), ej]),
    )


def _part_pairs(
    left: np.ndarray, right: np.ndarray, floor: float, diagonal: bool, width: np.int64
) -> np.ndarray:
    """Pairs whose Dice on this slice of the rows reaches ``floor``, as i * width + j:
    the native kernel where it can read the slice, anonlink's otherwise."""
    left, right = np.ascontiguousarray(left), np.ascontiguousarray(right)
    if kernel.usable(left):
        _, bi, bj = kernel.dice_block(left, right, floor, diagonal=diagonal)
        codes: np.ndarray = bi.astype(np.int64) * width + bj
        return codes
    sides = [[_bits(row) for row in rows] for rows in (left, right)]
    _, _, (pi, pj) = anonlink.candidate_generation.find_candidate_pairs(
        sides, anonlink.similarities.dice_coefficient_accelerated, floor
    )
    i = np.frombuffer(pi, dtype=np.uint32).astype(np.int64)
    j = np.frombuffer(pj, dtype=np.uint32).astype(np.int64)
    if diagonal:
        i, j = i[i < j], j[i < j]
    out: np.ndarray = i * width + j
    return out


def _bits(row: np.ndarray) -> bitarray:
    bits = bitarray(endian="big")
    bits.frombytes(row.tobytes())
    return bits


def whole_dice(left: np.ndarray, right: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Dice of whole rows (i, j), as anonlink computes it: 2|A∩B| / (|A| + |B|)."""
    if left.shape[1] % 8:
        x, y = left[i], right[j]
    else:  # whole 64-bit words count faster
        x, y = left.view(np.uint64)[i], right.view(np.uint64)[j]
    both = np.bitwise_count(x & y).sum(axis=1, dtype=np.int64)
    total = np.bitwise_count(x).sum(axis=1, dtype=np.int64) + np.bitwise_count(y).sum(
        axis=1, dtype=np.int64
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(total > 0, 2.0 * both / total, 0.0)
    return out
