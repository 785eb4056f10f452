"""Frequency attacks: line up frequent encodings, or clusters of near-identical ones, with
frequent names (Kuzu, Kantarcioglu et al.; Christen et al.).

They need exact frequencies to do well and are what a per-record bit flip or a
salt defeats first; stronger attacks are in ``patterns`` and ``graph``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from hublink.privacy.bits import Bits


def _by_frequency(frequencies: Mapping[str, float]) -> list[str]:
    return [n for n, _ in sorted(frequencies.items(), key=lambda kv: (-kv[1], kv[0]))]


def frequency_alignment(
    encodings: Sequence[bytes], frequencies: Mapping[str, float]
) -> list[str | None]:
    """Guess each record's name by lining up equal encodings' counts with name frequencies."""
    counts = Counter(encodings)
    by_count = [e for e, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    guess = dict(zip(by_count, _by_frequency(frequencies), strict=False))
    return [guess.get(e) for e in encodings]


def near_duplicate_clusters(bits: Bits, alike: float, *, block: int = 1000) -> list[int]:
    """Each record's cluster: records whose encodings reach Dice ``alike`` are joined.

    What an attacker holding per-field filters can do even when no two are
    equal (flipped bits): near-identical filters most likely hold the same
    value, so cluster sizes estimate how common each value is.
    """
    x = bits.astype(np.float32)
    weights = x.sum(axis=1)
    parent = list(range(len(x)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for start in range(0, len(x), block):
        part = x[start : start + block]
        dice = 2 * (part @ x.T) / np.maximum(weights[start : start + block, None] + weights, 1)
        for i, j in zip(*np.nonzero(dice >= alike), strict=True):
            a, b = root(start + int(i)), root(int(j))
            if a != b:
                parent[a] = b
    return [root(i) for i in range(len(x))]


def cluster_alignment(
    clusters: Sequence[Hashable], frequencies: Mapping[str, float]
) -> list[str | None]:
    """Guess each record's name by lining up cluster sizes with name frequencies."""
    sizes = Counter(clusters)
    by_size = [c for c, _ in sorted(sizes.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    guess = dict(zip(by_size, _by_frequency(frequencies), strict=False))
    return [guess.get(c) for c in clusters]


def cluster_frequency_attack(
    bits: Bits, frequencies: Mapping[str, float], alike: float = 0.9
) -> list[str | None]:
    """Cluster near-identical encodings, then align cluster sizes with name frequencies."""
    return cluster_alignment(near_duplicate_clusters(bits, alike), frequencies)
