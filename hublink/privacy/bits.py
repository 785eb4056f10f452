"""Shared helpers: bytes to bit arrays, q-grams as clkhash forms them, and the success measure."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import numpy.typing as npt

Bits = npt.NDArray[np.uint8]
"""One row per record, one column per bit position, values 0 or 1."""


def unpack(encodings: Sequence[bytes]) -> Bits:
    """Packed encodings (most significant bit first, as clkhash and the node pack them) as bits."""
    if not encodings:
        return np.zeros((0, 0), dtype=np.uint8)
    raw = np.frombuffer(b"".join(encodings), dtype=np.uint8).reshape(len(encodings), -1)
    return np.unpackbits(raw, axis=1)


def qgrams(value: str, q: int = 2) -> frozenset[str]:
    """The q-grams clkhash hashes for a string: padded with one space at each end."""
    padded = f" {value} "
    return frozenset(padded[i : i + q] for i in range(len(padded) - q + 1))


def dice_matrix(a: Bits, b: Bits) -> npt.NDArray[np.float32]:
    """Dice similarity of every row of ``a`` with every row of ``b``."""
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    shared = fa @ fb.T
    total = fa.sum(axis=1)[:, None] + fb.sum(axis=1)[None, :]
    return np.asarray(2 * shared / np.maximum(total, 1.0), dtype=np.float32)


def qgram_dice(names: Sequence[str], q: int = 2) -> npt.NDArray[np.float32]:
    """Dice similarity of the q-gram sets of every pair of names."""
    vocabulary: dict[str, int] = {}
    sets = [qgrams(n, q) for n in names]
    for grams in sets:
        for g in grams:
            vocabulary.setdefault(g, len(vocabulary))
    matrix = np.zeros((len(names), len(vocabulary)), dtype=np.uint8)
    for i, grams in enumerate(sets):
        matrix[i, [vocabulary[g] for g in grams]] = 1
    return dice_matrix(matrix, matrix)


def reidentified(guesses: Iterable[Hashable | None], truth: Sequence[Hashable]) -> float:
    """Share of ALL records whose value the attacker names correctly (no guess counts as wrong)."""
    if not truth:
        return 0.0
    right = sum(1 for g, t in zip(guesses, truth, strict=True) if g is not None and g == t)
    return right / len(truth)


def grouped(
    groups: Iterable[Sequence[int]], truth: Sequence[Hashable], *, purity: float = 0.9
) -> float:
    """Share of ALL records that sit in a group of 3+ records at least ``purity`` of which
    share the record's value: what an attacker learns without naming anyone (who has the
    same given name as whom), and the first step of naming them."""
    if not truth:
        return 0.0
    hit: set[int] = set()
    for members in groups:
        values = [truth[i] for i in members]
        if len(values) < 3:
            continue
        top = max(set(values), key=values.count)
        if values.count(top) >= purity * len(values):
            hit.update(i for i in members if truth[i] == top)
    return len(hit) / len(truth)
