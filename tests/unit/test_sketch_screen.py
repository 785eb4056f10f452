"""The sketch screen of an incremental blocked run scores pairs exactly as a full run does."""

from __future__ import annotations

import numpy as np

from coordinator.core import comparison, sketch_screen


def encodings(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.packbits(rng.random((n, 1024)) < 0.5, axis=1)


def test_with_no_limit_the_screen_finds_every_pair_all_pairs_finds_with_the_same_scores() -> None:
    rng = np.random.default_rng(3)
    right = encodings(rng, 300)
    left = right[[5, 17, 200]].copy()
    left[:, 40:48] ^= 0xFF  # changed a little: each still close to its old self
    i, j, sims = sketch_screen.screen(
        left, right, comparison.sketch_words(right), limit=256, threshold=0.55
    )
    exact = comparison.perform(
        comparison.PairChunk(0, (0, 3), 1, (0, 300), 0.55), [left, right]
    ).candidates
    expected = {
        (int(a), int(b)): s for s, a, b in zip(exact[0], exact[2][0], exact[2][1], strict=True)
    }
    assert {(int(a), int(b)): s for a, b, s in zip(i, j, sims, strict=True)} == expected
    assert {(0, 5), (1, 17), (2, 200)} <= set(expected)


def test_the_limit_screens_out_pairs_whose_sketches_differ_too_much() -> None:
    rng = np.random.default_rng(4)
    right = encodings(rng, 200)
    left = right[[7]].copy()
    i, j, _ = sketch_screen.screen(
        left, right, comparison.sketch_words(right), limit=40, threshold=0.0
    )
    # Random sketches differ in about half their 256 bits; only the record itself is near.
    assert j.tolist() == [7] and i.tolist() == [0]
