"""The estimate sample's exact pairs: every pair at or above the floor, with the Dice a full
run computes, however the bits are counted."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.core import kernel, score_sample


def rows(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((count, 128)) < 0.35).astype(np.uint8) * rng.integers(
        1, 256, (count, 128), dtype=np.uint8
    )


def by_hand(left: np.ndarray, right: np.ndarray, low: float) -> set[tuple[int, int, float]]:
    bits_l, bits_r = np.unpackbits(left, axis=1), np.unpackbits(right, axis=1)
    both = bits_l.astype(np.int64) @ bits_r.T.astype(np.int64)
    total = bits_l.sum(axis=1)[:, None] + bits_r.sum(axis=1)[None, :]
    dice = 2.0 * both / total
    i, j = np.nonzero(dice >= low)
    return {(int(a), int(b), float(dice[a, b])) for a, b in zip(i, j, strict=True)}


@pytest.mark.parametrize(("columns_from", "native"), [(1, False), (10**9, False), (1, True)])
def test_exact_pairs_are_every_pair_at_the_floor_by_columns_by_rows_or_natively(
    columns_from: int, native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if native and not kernel.native():
        pytest.skip("the native kernel is not built here")
    if not native:
        monkeypatch.setenv(kernel.KERNEL_ENV, "anonlink")
    monkeypatch.setattr(score_sample, "_COLUMNS_FROM", columns_from)
    many = rows(3_000, 1)
    few = many[[3, 70, 2_000]] ^ rows(3, 2)  # near three of them
    i, j, sims = score_sample.exact_pairs(few, many, 0.3)
    found = set(zip(i.tolist(), j.tolist(), sims.tolist(), strict=True))
    assert found == by_hand(few, many, 0.3)
    assert {(0, 3), (1, 70), (2, 2_000)} <= {(a, b) for a, b, _ in found}


@pytest.mark.parametrize("most_rows", [40, 2**40, 2**61])  # one code, three keys, five keys
def test_sample_pairs_are_ordered_as_a_five_key_sort_gives(most_rows: int) -> None:
    rng = np.random.default_rng(4)
    n = 4_000
    sample_d = rng.integers(0, 3, n)
    other_d = rng.integers(0, 3, n)
    sample_r, other_r = rng.integers(0, most_rows, n), rng.integers(0, 90, n)
    sample_r[::7] = sample_r[0]  # several pairs of one sampled row
    sims = rng.integers(70, 100, n) / 100.0  # ties
    pairs = score_sample.SamplePairs.ordered(
        [np.arange(40)] * 3, sample_d, sample_r, other_d, other_r, sims
    )
    order = np.lexsort((other_r, -sims, sample_r, other_d, sample_d))
    assert np.array_equal(pairs.sims, sims[order])
    assert np.array_equal(pairs.other_r, other_r[order])
    assert np.array_equal(pairs.sample_r, sample_r[order])
    assert np.array_equal(pairs.other_d, other_d[order])
