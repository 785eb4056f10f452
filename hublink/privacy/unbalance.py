"""Undo complement balancing without the key, by pairing complement columns across records.

A balanced encoding is a filter with its complement appended, the whole
permuted under a secret key. The key hides which position is which, but not
that position j holds the complement of position k in every record: across
many records the two columns disagree everywhere (or, with bits flipped at
rate f, on a share 1 - 2f(1-f) of records). Pairing each column with the one it
disagrees with most recovers the unbalanced filter up to polarity; the sparser
column of each pair is taken as the original, since Bloom filters are mostly
clear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hublink.privacy.bits import Bits


@dataclass(frozen=True)
class Unbalanced:
    """The recovered filter and how well the pairing held."""

    bits: Bits
    """One column per complement pair (the sparser one), in no particular order."""
    pairs: npt.NDArray[np.int64]
    """(column kept, its complement) per recovered pair."""
    disagreement: npt.NDArray[np.float64]
    """Share of records on which each pair's columns differ (1.0 for an exact complement)."""


def unbalance(bits: Bits, *, minimum: float = 0.8) -> Unbalanced:
    """Pair columns that are complements of each other over the records given.

    Two columns are paired when each is the other's most different column and they
    differ on at least ``minimum`` of records. All
    records must share one permutation (for a salted filter: one salt class).
    """
    n, width = bits.shape
    if n == 0:
        empty = np.zeros((0, 2), dtype=np.int64)
        return Unbalanced(bits[:, :0], empty, np.zeros(0))
    x = bits.astype(np.float32)
    ones = x.sum(axis=0)
    both = x.T @ x
    # Records where exactly one of the two columns is set.
    differ = (ones[:, None] + ones[None, :] - 2 * both) / n
    np.fill_diagonal(differ, -1.0)
    partner = differ.argmax(axis=1)
    pairs: list[tuple[int, int]] = []
    rates: list[float] = []
    for j in range(width):
        k = int(partner[j])
        if j < k and partner[k] == j and differ[j, k] >= minimum:
            keep, other = (j, k) if ones[j] <= ones[k] else (k, j)
            pairs.append((keep, other))
            rates.append(float(differ[j, k]))
    chosen = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return Unbalanced(bits[:, chosen[:, 0]], chosen, np.array(rates))


def looks_balanced(bits: Bits) -> bool:
    """Every record has exactly (or, with flipped bits, about) half its bits set."""
    return bool(bits.shape[1]) and bool(np.abs(bits.mean(axis=1) - 0.5).max() < 0.06)


def as_unbalanced(bits: Bits) -> Bits:
    """An encoding as the attacker works on it: unbalanced when it looks balanced."""
    return unbalance(bits).bits if looks_balanced(bits) else bits


def estimated_flip(bits: Bits) -> float:
    """The rate at which bits were flipped after balancing, read from how often complement
    columns fail to disagree (1 - 2f(1 - f) of records); 0 for an unbalanced encoding."""
    if not looks_balanced(bits):
        return 0.0
    found = unbalance(bits)
    if not len(found.disagreement):
        return 0.0
    same = 1.0 - float(np.median(found.disagreement))
    return float((1.0 - np.sqrt(max(0.0, 1.0 - 2.0 * same))) / 2.0)
