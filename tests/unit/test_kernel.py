"""The native Dice kernel must give anonlink's scores to the last bit, and keep the same pairs.

anonlink is the reference: every test here computes the same pairs with
anonlink's own ``find_candidate_pairs`` and compares, on random rows (dense,
sparse, empty, full, widths that are not a whole step of four words) and on
real hardened encodings of synthetic people made by the node's encoder.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from coordinator.core import blocking, comparison, kernel
from hublink.spec import LinkageSpec
from node.encoder import Encoder

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import anonlink

needs_native = pytest.mark.skipif(not kernel.native(), reason="native kernel not built")


def anonlink_pairs(left: np.ndarray, right: np.ndarray, threshold: float) -> dict:
    """{(i, j): score} of every pair anonlink keeps at ``threshold``."""
    a = comparison.to_bitarrays(left, 0, len(left))
    b = comparison.to_bitarrays(right, 0, len(right))
    sims, _, (i, j) = anonlink.candidate_generation.find_candidate_pairs(
        [a, b], anonlink.similarities.dice_coefficient_accelerated, threshold
    )
    return dict(zip(zip(i, j, strict=True), sims, strict=True))


def native_pairs(left: np.ndarray, right: np.ndarray, threshold: float) -> dict:
    sims, i, j = kernel.dice_block(left, right, threshold)
    return dict(zip(zip(i.tolist(), j.tolist(), strict=True), sims.tolist(), strict=True))


def random_rows(n: int, nbytes: int, density: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.packbits(rng.random((n, nbytes * 8)) < density, axis=1)


def people(n: int) -> list[tuple[str, ...]]:
    """Synthetic people, many of them near neighbours (shared names, dates, postcodes)."""
    given = ["amelia", "oliver", "isla", "cai", "freya", "osian", "seren", "alfie"]
    family = ["pryce", "price", "jenkins", "morgan", "rowlands", "hughes"]
    dates = ["03042021", "15112020", "22072022", "09012023", "30062021"]
    places = ["CF10 1AA", "SA1 1DP", "NP20 4AB", "LL57 2PW"]
    combos = itertools.product(given, family, dates, places)
    return [
        (g, f, d, "F" if k % 2 else "M", p, "")
        for k, (g, f, d, p) in zip(range(n), combos, strict=False)
    ]


@needs_native
@pytest.mark.parametrize(
    ("nbytes", "density"),
    [(256, 0.5), (128, 0.5), (256, 0.1), (40, 0.5), (8, 0.7)],
)
@pytest.mark.parametrize("threshold", [0.0, 0.55, 0.8, 1.0])
def test_random_rows_score_exactly_as_anonlink(nbytes: int, density: float, threshold: float):
    left = random_rows(150, nbytes, density, seed=1)
    right = random_rows(170, nbytes, density, seed=2)
    # Near copies, an empty row, a full row, and an exact duplicate.
    right[:40] = left[:40] ^ random_rows(40, nbytes, 0.03, seed=3)
    left[-1] = 0
    right[-1] = 0
    left[-2] = 255
    right[-2] = left[5]
    expected = anonlink_pairs(left, right, threshold)
    assert native_pairs(left, right, threshold) == expected
    if threshold == 0.8 and density == 0.5:
        assert 30 <= len(expected) < 150 * 170 // 10  # a real test: some kept, most not


@needs_native
@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.9])
def test_real_encodings_score_exactly_as_anonlink(threshold: float) -> None:
    encoder = Encoder(LinkageSpec.default(), b"a-secret-of-16+chars")
    # Records differing in one salt field (name, date, postcode) keep two salted parts of
    # three (about 0.8); the last 20, copies of left-hand people with the sex changed (in
    # no salt), keep all three parts and reach 0.9.
    sample = people(300)
    sample += [(g, f, d, "M" if s == "F" else "F", p, x) for g, f, d, s, p, x in sample[:20]]
    rows = np.frombuffer(b"".join(encoder.encode(sample)), dtype=np.uint8).reshape(320, -1)
    left, right = rows[:140], rows[140:]
    expected = anonlink_pairs(left, right, threshold)
    assert native_pairs(left, right, threshold) == expected
    assert expected  # neighbours reach every threshold here


@needs_native
def test_the_output_is_handed_back_in_slices_without_losing_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kernel, "_OUT_PAIRS", 1)  # the smallest the kernel takes: one block
    left = random_rows(90, 64, 0.5, seed=4)
    right = random_rows(3000, 64, 0.5, seed=5)
    expected = anonlink_pairs(left, right, 0.3)
    assert len(expected) > 3 * 1024  # several hand-backs
    assert native_pairs(left, right, 0.3) == expected


@needs_native
def test_a_diagonal_block_keeps_each_pair_inside_it_once() -> None:
    rows = random_rows(200, 128, 0.5, seed=6)
    rows[100:150] = rows[:50] ^ random_rows(50, 128, 0.02, seed=7)
    sims, i, j = kernel.dice_block(rows, rows, 0.8, diagonal=True)
    everything = anonlink_pairs(rows, rows, 0.8)
    got = zip(zip(i.tolist(), j.tolist(), strict=True), sims.tolist(), strict=True)
    assert dict(got) == {(a, b): s for (a, b), s in everything.items() if a < b}
    assert len(sims) >= 50


@needs_native
def test_scoring_listed_pairs_keeps_those_at_the_threshold() -> None:
    left = random_rows(100, 256, 0.5, seed=8)
    right = left ^ random_rows(100, 256, 0.1, seed=9)
    rng = np.random.default_rng(10)
    i = np.r_[np.arange(100), rng.integers(0, 100, 500)]
    j = np.r_[np.arange(100), rng.integers(0, 100, 500)]
    sims, kept = kernel.dice_pairs(left, right, i, j, 0.8)
    expected = anonlink_pairs(left, right, 0.8)
    assert {(int(i[k]), int(j[k])): s for k, s in zip(kept, sims, strict=True)} == {
        (int(a), int(b)): expected[(a, b)] for a, b in zip(i, j, strict=True) if (a, b) in expected
    }
    with pytest.raises(IndexError):
        kernel.dice_pairs(left, right, np.array([100]), np.array([0]), 0.8)


def test_the_kernel_can_be_switched_to_anonlinks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kernel.KERNEL_ENV, "anonlink")
    assert not kernel.native()
    assert kernel.name() == "anonlink"
    left, right = random_rows(50, 256, 0.5, seed=11), random_rows(50, 256, 0.5, seed=12)
    assert not kernel.usable(left)
    chunk = comparison.PairChunk(0, (0, 50), 1, (0, 50), 0.5)
    found = comparison.compare_pairs(chunk, [left, right])
    assert len(found[0]) == len(anonlink_pairs(left, right, 0.5)) > 0


@needs_native
@pytest.mark.parametrize("same", [False, True])
def test_a_band_task_finds_what_the_numpy_join_finds(
    same: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The native hash join and screen against the sort join in numpy: same pairs, same
    scores, same count of colliding pairs, across and inside one dataset."""
    left = random_rows(3000, 256, 0.5, seed=13)
    right = random_rows(3000, 256, 0.5, seed=14)
    right[:1000] = left[:1000] ^ random_rows(1000, 256, 0.08, seed=15)
    left[2000:] = left[:1000] ^ random_rows(1000, 256, 0.08, seed=17)  # duplicates inside
    frequencies = blocking.bit_frequencies([left, right])
    plan = blocking.plan((3000, 3000), frequencies, 0.8, seed=16)
    chunk = comparison.BandChunk(0, 0 if same else 1, plan.bands[:40], 0.75, plan.sketch_limit)
    native = comparison.perform(chunk, [left, right])
    monkeypatch.setenv(kernel.KERNEL_ENV, "anonlink")
    reference = comparison.perform(chunk, [left, right])
    assert native.compared == reference.compared > 3000
    assert as_dict(native.candidates) == as_dict(reference.candidates)
    assert len(native.candidates[0]) > 300


def as_dict(found: comparison.Candidates) -> dict[tuple[int, int], float]:
    sims = np.frombuffer(found[0], dtype=np.float64)
    r0, r1 = (np.frombuffer(found[2][k], dtype=np.uint32) for k in (0, 1))
    return {(int(a), int(b)): float(s) for s, a, b in zip(sims, r0, r1, strict=True)}
