"""The sketch screen of an incremental blocked run scores pairs exactly as a full run does."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.core import comparison, kernel, sketch_screen


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


def test_the_native_screen_keeps_exactly_the_pairs_the_numpy_screen_keeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not kernel.native():
        pytest.skip("the native kernel is not built here")
    rng = np.random.default_rng(5)
    right = encodings(rng, 20_000)  # more than one of the kernel's blocks of right records
    left = right[rng.choice(len(right), 40, replace=False)].copy()
    left[::2, 10:30] ^= rng.integers(0, 256, (20, 20), dtype=np.uint8)
    words = comparison.sketch_words(right)
    for limit in (0, 90, 120, 256):
        native = sketch_screen.screen(left, right, words, limit=limit, threshold=0.0)
        with monkeypatch.context() as patched:
            patched.setenv(kernel.KERNEL_ENV, "anonlink")
            plain = sketch_screen.screen(left, right, words, limit=limit, threshold=0.0)
        for ours, theirs in zip(native, plain, strict=True):
            np.testing.assert_array_equal(ours, theirs)
        assert len(native[0]) >= 20  # the unchanged records find themselves at any limit


def test_sketch_near_counts_differing_bits_as_a_brute_force_does() -> None:
    if not kernel.native():
        pytest.skip("the native kernel is not built here")
    rng = np.random.default_rng(6)
    left = rng.integers(0, 2**63, (7, 3), dtype=np.uint64)
    right = np.concatenate(
        [left ^ np.uint64(1), rng.integers(0, 2**63, (9000, 3), dtype=np.uint64)]
    )
    differ = np.bitwise_count(left[:, None, :] ^ right[None, :, :]).sum(axis=2)
    for limit in (3, 80, 96, 192):
        codes = np.sort(kernel.sketch_near(left, right, limit))
        i, j = np.nonzero(differ <= limit)
        assert codes.tolist() == (i * len(right) + j).tolist()
