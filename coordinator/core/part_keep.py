"""Which pairs found by blocking a run keeps: whole-row Dice at the threshold, or, with a
salted record CLK's part pass, some part's Dice at that part's floor.

All-pairs chunks keep a pair whose best part reaches the part floor
(``coordinator.core.part_pass``). A blocked run finds pairs through bands drawn inside
one part (``blocking.part_plans``) and must then keep the same pairs, scored the same
way: by their whole-row Dice, with the part Dices only deciding whether they stay. The
rule reads the two records alone, so a full blocked run and an incremental one that
screens a refresh's records (``coordinator.core.sketch_screen``) keep the same pairs.

Plain numpy over rows already loaded (the native kernel for whole-row Dice when there is
no part pass); nothing here knows about tasks, runs or storage.
"""

from __future__ import annotations

import numpy as np

from coordinator.core import kernel
from coordinator.core.part_pass import PartPass

#: Pairs scored at once (each gathers both rows: 64 Ki pairs of 384 bytes is 48 MB).
STEP = 1 << 15


def score(
    left: np.ndarray,
    right: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    threshold: float,
    parts: PartPass | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (left row i[k], right row j[k]) a run keeps: (whole-row Dice, positions k),
    in the order given.

    Kept: whole-row Dice at least ``threshold`` or, with ``parts``, some part's Dice at
    least that part's own floor. Dice is 2|A∩B| / (|A| + |B|), as anonlink computes it.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if parts is None and kernel.usable(left) and kernel.usable(right):
        sims, kept = kernel.dice_pairs(left, right, i, j, threshold)
        return sims, kept
    count = parts.count if parts is not None else 1
    if parts is not None:
        parts.bounds(left.shape[1])  # refuses rows that do not split evenly
    words = left.shape[1] % (8 * count) == 0
    floors = np.asarray(parts.part_floors if parts is not None else (), dtype=np.float64)
    found_sims: list[np.ndarray] = [np.zeros(0)]
    found_at: list[np.ndarray] = [np.zeros(0, np.int64)]
    for start in range(0, len(i), STEP):
        x, y = left[i[start : start + STEP]], right[j[start : start + STEP]]
        if words:
            x, y = x.view(np.uint64), y.view(np.uint64)
        shape = (len(x), count, -1)
        both = np.bitwise_count(x & y).reshape(shape).sum(axis=2, dtype=np.int64)
        ones = (np.bitwise_count(x).reshape(shape).sum(axis=2, dtype=np.int64)
                + np.bitwise_count(y).reshape(shape).sum(axis=2, dtype=np.int64))  # fmt: skip
        whole = _ratio(both.sum(axis=1), ones.sum(axis=1))
        keep = whole >= threshold
        if parts is not None:
            keep |= (_ratio(both, ones) >= floors).any(axis=1)
        found_sims.append(whole[keep])
        found_at.append(start + np.flatnonzero(keep))
    return np.concatenate(found_sims), np.concatenate(found_at)


def _ratio(both: np.ndarray, ones: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(ones > 0, 2.0 * both / ones, 0.0)
    return out
