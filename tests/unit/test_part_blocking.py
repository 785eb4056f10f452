"""Blocking a salted record CLK by part: bands inside each part find a pair that agrees on
one part only, keep what the all-pairs part pass keeps, and an incremental run's screen
finds exactly the pairs a full blocked run finds for the records it touched."""

from __future__ import annotations

from array import array

import numpy as np
import pytest

from coordinator.core import (
    blocking,
    candidates,
    change_pairs,
    comparison,
    part_pass,
    pinned_blocking,
    sketch_screen,
)
from coordinator.core.candidates import InlineEngine, Progress
from coordinator.core.part_pass import PartPass
from coordinator.core.record_index import RecordIndex

PARTS = PartPass(3, 0.68)
PART_BYTES = 128


def rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random rows of three 1,024-bit parts, each position set half the time."""
    return np.packbits(rng.random((n, 3 * PART_BYTES * 8)) < 0.5, axis=1)


def near(rng: np.random.Generator, row: np.ndarray, flips: int, part: int) -> np.ndarray:
    """``row`` with ``flips`` random bits of one part flipped."""
    bits = np.unpackbits(row)
    at = part * PART_BYTES * 8 + rng.choice(PART_BYTES * 8, flips, replace=False)
    bits[at] ^= 1
    out: np.ndarray = np.packbits(bits)
    return out


def one_salt_agreeing(seed: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Two datasets of 400; rows 0-9 of the second agree with rows 0-9 of the first on their
    middle part only (part Dice about 0.9), their other parts as random as a stranger's."""
    rng = np.random.default_rng(seed)
    left, right = rows(rng, 400), rows(rng, 400)
    for k in range(10):
        middle = slice(PART_BYTES, 2 * PART_BYTES)
        right[k, middle] = near(rng, left[k], 50, 1)[middle]
    return [left, right], [(k, k) for k in range(10)]


def cross_pairs(found: candidates.Found) -> dict[tuple[int, int], float]:
    sims, (d0, _), (r0, r1) = found.across
    return {
        (int(a), int(b)) if d == 0 else (int(b), int(a)): s
        for s, d, a, b in zip(sims, d0, r0, r1, strict=True)
    }


def search(data: list[np.ndarray], parts: PartPass | None, mode: str) -> candidates.Found:
    with InlineEngine().session() as session:
        return candidates.find(
            session,
            data,
            low=0.6,
            design=0.83,
            plan_from=0.6,
            blocking_mode=mode,
            estimate_sample=50,
            seed=5,
            parts=parts,
            band_budget=40,
        )


def test_part_plans_draw_each_part_s_bands_and_sketch_inside_that_part() -> None:
    data, _ = one_salt_agreeing(1)
    frequencies = blocking.bit_frequencies(data)
    plans = blocking.part_plans((400, 400), frequencies, PARTS, 0.83, seed=3, budget=300)
    assert len(plans) == 3
    for number, (at, plan) in enumerate(plans):
        units = {u for band in plan.bands for u in band}
        first, last = 2 * number * PART_BYTES, 2 * (number + 1) * PART_BYTES
        assert first <= min(units) and max(units) < last
        assert all(number * 16 <= w < (number + 1) * 16 for w in plan.sketch)
        assert len(plan.bands) <= 300 and 0.68 <= at <= 0.83
        # The plan promises its completeness at the part Dice it was made for.
        assert plan.completeness >= blocking.DEFAULT_COMPLETENESS


def test_a_larger_band_budget_plans_a_part_lower() -> None:
    data, _ = one_salt_agreeing(2)
    frequencies = blocking.bit_frequencies(data)
    tight = blocking.part_plans((20_000, 20_000), frequencies, PARTS, 0.83, seed=3, budget=200)
    loose = blocking.part_plans((20_000, 20_000), frequencies, PARTS, 0.83, seed=3, budget=2000)
    assert all(low < high for (low, _), (high, _) in zip(loose, tight, strict=True))


def test_a_blocked_run_finds_pairs_with_only_one_salt_agreeing() -> None:
    data, truth = one_salt_agreeing(3)
    by_part = cross_pairs(search(data, PARTS, "lsh"))
    whole_row = cross_pairs(search(data, None, "lsh"))
    every = cross_pairs(search(data, PARTS, "none"))
    assert set(truth) <= set(by_part)
    # Scored by their whole-row Dice, about (0.9 + 0.5 + 0.5) / 3, as all pairs scores them.
    assert all(0.55 < by_part[p] < 0.7 and by_part[p] == every[p] for p in truth)
    # With as few bands, bands over the whole row are planned above such pairs and keep
    # them only by chance.
    assert len(set(truth) & set(whole_row)) <= 2


def test_pinned_part_plans_survive_json_and_fit_only_the_same_part_pass() -> None:
    data, _ = one_salt_agreeing(4)
    pinned = pinned_blocking.make(data, 0.83, 0.0, 0.998, seed=9, parts=PARTS, band_budget=300)
    again = pinned_blocking.Pinned.from_json(pinned.to_json())
    assert again == pinned
    assert len(again.plans_for(0, 1)) == 3 and again.part_pass == PARTS
    assert 0.68 <= again.part_design <= 0.83 and again.kept_from(0.6) == 0.6
    assert again.fits([400, 400], 0.83, 0.0, 0.998, PARTS)
    assert not again.fits([400, 400], 0.83, 0.0, 0.998, None)
    whole = pinned_blocking.make(data, 0.83, 0.0, 0.998, seed=9)
    assert not whole.fits([400, 400], 0.83, 0.0, 0.998, PARTS)


@pytest.mark.parametrize("within", [0.0, 0.9])
def test_an_incremental_screen_finds_what_a_full_blocked_run_finds(within: float) -> None:
    data, _ = one_salt_agreeing(5)
    rng = np.random.default_rng(6)
    data[0][20] = data[0][21]  # a duplicate inside the first dataset
    with InlineEngine().session() as session:
        full = candidates.find(
            session,
            data,
            low=0.6,
            design=0.83,
            within_threshold=within,
            blocking_mode="lsh",
            estimate_sample=50,
            seed=5,
            parts=PARTS,
            band_budget=300,
        )
    assert full.pinned is not None
    ids = [array("q", range(400)), array("q", range(1000, 1400))]
    index = RecordIndex(ids)
    touched = np.unique([*rng.choice(400, 30, replace=False).tolist(), 0, 3, 21, 1005])
    at = change_pairs.Thresholds(0.6, within, full.pinned.kept_from(0.6), True, PARTS)
    with InlineEngine().session() as session:
        a, b, sims = change_pairs.compare(
            session, data, index, touched, at, full.pinned, Progress(), lambda: False
        )
    fresh = {(int(x), int(y)): s for x, y, s in zip(a, b, sims, strict=True)}
    expected: dict[tuple[int, int], float] = {}
    for group in (full.across, full.within):
        s, (d0, d1), (r0, r1) = group
        for score, x0, x1, y0, y1 in zip(s, d0, d1, r0, r1, strict=True):
            x, y = int(x0) * 1000 + int(y0), int(x1) * 1000 + int(y1)
            if x in touched or y in touched:
                expected[min(x, y), max(x, y)] = score
    assert fresh == expected
    assert (0, 1000) in fresh and (3, 1003) in fresh
    if within:
        assert (20, 21) in fresh


def test_pinned_plans_keep_each_part_s_own_floor() -> None:
    data, truth = one_salt_agreeing(7)
    rng, middle = np.random.default_rng(8), slice(PART_BYTES, 2 * PART_BYTES)
    for k, _ in truth:  # the middle part agrees less: Dice about 0.75
        data[1][k, middle] = near(rng, data[0][k], 250, 1)[middle]
    own = PartPass(3, 0.8, floors=(0.8, 0.68, 0.8))  # the middle part at its own, lower floor
    pinned = pinned_blocking.make(data, 0.83, 0.0, 0.998, seed=9, parts=own, band_budget=300)
    again = pinned_blocking.Pinned.from_json(pinned.to_json())
    assert again == pinned and again.part_pass == own
    assert again.fits([400, 400], 0.83, 0.0, 0.998, own)
    assert not again.fits([400, 400], 0.83, 0.0, 0.998, PartPass(3, 0.8))
    assert not pinned_blocking.make(data, 0.83, 0.0, 0.998, seed=9, parts=PARTS).fits(
        [400, 400], 0.83, 0.0, 0.998, own
    )
    # all pairs at those floors keep the truth; one floor, the dense parts', loses most of
    # it (a pair whose whole row reaches the 0.6 floor by chance stays)
    assert set(truth) <= set(cross_pairs(search(data, own, "none")))
    assert len(set(truth) & set(cross_pairs(search(data, PartPass(3, 0.8), "none")))) <= 2


def test_an_incremental_screen_keeps_each_part_at_its_own_floor() -> None:
    data, truth = one_salt_agreeing(10)
    own = PartPass(3, 0.95, floors=(0.95, 0.68, 0.95))
    changed = data[1][:20]
    i, j, sims = sketch_screen.screen(
        changed,
        data[0],
        comparison.sketch_words(data[0]),
        limit=10_000,  # no screen: every pair is scored, as all pairs would score it
        threshold=0.83,
        parts=own,
    )
    every = part_pass.native_block(changed, data[0], 0.83, own)
    screened = {(int(a), int(b)): s for a, b, s in zip(i, j, sims, strict=True)}
    assert screened == {(int(b), int(c)): s for s, b, c in zip(*every, strict=True)}
    assert {(k, k) for k, _ in truth} <= set(screened)
