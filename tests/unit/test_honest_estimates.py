"""Honest estimates: intervals that are not "± 0.000", and caveats where a figure means little."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.core import caveats, quality
from coordinator.core.quality import Caveat, Mixture, RunQuality
from coordinator.rpc.convert import run_quality
from hublink.reports.quality import estimate_line


def draw(mixture: Mixture, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores drawn from the model itself, with their labels."""
    rng = np.random.default_rng(seed)
    is_match = rng.random(n) < mixture.match_share
    beta_m = mixture.match_sd * math.sqrt(6) / math.pi
    beta_n = mixture.non_sd * math.sqrt(6) / math.pi
    euler = 0.5772156649015329
    matches = -rng.gumbel(-mixture.match_mean - euler * beta_m, beta_m, n)
    non = rng.gumbel(mixture.non_mean - euler * beta_n, beta_n, n)
    return np.where(is_match, matches, non), is_match


SEPARATED = Mixture(0.4, 0.95, 0.04, 0.74, 0.025)


def codes(found: quality.Estimate) -> set[str]:
    return {c.code for c in found.caveats}


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 1000))
def test_the_interval_holds_the_estimate_and_is_never_degenerate(seed: int) -> None:
    scores, is_match = draw(SEPARATED, 4000, seed)
    found = quality.estimate(scores, bootstrap=30, seed=seed)
    assert found.fitted
    for point, (low, high) in (
        (found.precision, found.precision_interval),
        (found.recall, found.recall_interval),
    ):
        assert low <= point <= high
        # A few thousand scores cannot pin a share to three decimals.
        assert high - low >= 0.002
    # The labels' own recall at the threshold lies inside the stated interval.
    true_recall = float((scores[is_match] >= found.threshold).mean())
    low, high = found.recall_interval
    assert low - 0.01 <= true_recall <= high + 0.01


def test_fewer_scores_give_a_wider_interval() -> None:
    many, _ = draw(SEPARATED, 20_000, 1)
    few, _ = draw(SEPARATED, 800, 1)
    wide = quality.estimate(few, bootstrap=30)
    narrow = quality.estimate(many, bootstrap=30)
    width = [e.recall_interval[1] - e.recall_interval[0] for e in (wide, narrow)]
    assert width[0] > 1.5 * width[1]


def test_well_separated_plenty_of_scores_carry_no_caveat() -> None:
    scores, _ = draw(SEPARATED, 20_000, 3)
    found = quality.estimate(scores, bootstrap=20)
    assert found.caveats == () and found.trusted


def test_a_threshold_at_the_floor_is_not_trusted() -> None:
    # FEBRL4 once put the threshold at the 0.70 floor and claimed recall 0.996 (true 0.920).
    at_floor = caveats.check(
        SEPARATED, scores=5000, threshold=0.7, floor=0.7, fits_failed=0.0, completeness=1.0
    )
    assert [c.code for c in at_floor if c.untrusted] == ["threshold_at_floor"]
    above = caveats.check(
        SEPARATED, scores=5000, threshold=0.82, floor=0.7, fits_failed=0.0, completeness=1.0
    )
    assert above == ()


def test_matches_below_the_floor_and_unstable_refits_are_said() -> None:
    low_matches = Mixture(0.5, 0.78, 0.06, 0.66, 0.02)
    found = caveats.check(
        low_matches, scores=5000, threshold=0.74, floor=0.7, fits_failed=0.3, completeness=1.0
    )
    assert {"matches_below_floor", "unstable"} <= {c.code for c in found}


def test_few_matches_are_not_trusted_and_few_scores_are_said() -> None:
    scores, _ = draw(Mixture(0.05, 0.95, 0.04, 0.74, 0.025), 600, 5)
    found = quality.estimate(scores, bootstrap=10)
    assert found.fitted
    assert "few_matches" in codes(found) and not found.trusted
    scores, _ = draw(SEPARATED, 300, 6)
    found = quality.estimate(scores, bootstrap=10)
    assert "few_candidates" in codes(found)


def test_no_estimate_is_a_caveat_too() -> None:
    found = quality.estimate(np.full(100, 0.8))
    assert not found.fitted
    assert codes(found) == {"not_estimated"} and not found.trusted


def test_overlapping_groups_have_no_valley() -> None:
    flat = Mixture(0.5, 0.80, 0.05, 0.76, 0.05)
    assert caveats.valley_depth(flat) > caveats.NO_VALLEY
    assert caveats.valley_depth(SEPARATED) < 0.1
    found = caveats.check(
        flat, scores=5000, threshold=0.78, floor=0.7, fits_failed=0.0, completeness=1.0
    )
    assert "no_valley" in {c.code for c in found}


def test_blocking_lowers_recall_and_says_so() -> None:
    scores, _ = draw(SEPARATED, 5000, 7)
    whole = quality.estimate(scores, bootstrap=10)
    blocked = quality.estimate(scores, bootstrap=10, completeness=0.9)
    assert blocked.recall < whole.recall
    assert blocked.recall_interval[0] == pytest.approx(whole.recall_interval[0] * 0.9, rel=0.02)
    assert "blocking" in codes(blocked)


def test_caveats_survive_storage_the_wire_and_reach_the_printed_line() -> None:
    stored = RunQuality(
        auto=True,
        threshold_used=0.7,
        threshold_fixed=0.83,
        fitted=True,
        reason="",
        threshold_estimated=0.7,
        threshold_sd=0.01,
        precision=0.99,
        precision_sd=0.001,
        recall=0.996,
        recall_sd=0.001,
        scores=4000,
        near_threshold=3,
        several_candidates=2,
        precision_interval=(0.98, 0.995),
        recall_interval=(0.99, 0.999),
        caveats=(Caveat("threshold_at_floor", "the threshold sits at the floor", True),),
    )
    again = RunQuality.from_json(stored.to_json())
    assert again == stored and not again.trusted
    line = estimate_line(run_quality(again))
    assert line.startswith("NOT TO BE TRUSTED (the threshold sits at the floor)")
    assert "0.996 (0.990 to 0.999)" in line
    assert "±" not in line


def test_a_report_stored_before_intervals_reads_as_before() -> None:
    text = RunQuality(
        True, 0.8, 0.83, True, "", 0.8, 0.01, 0.99, 0.002, 0.98, 0.003, 900, 1, 1
    ).to_json()
    old = text.replace('"caveats": [], ', "")
    again = RunQuality.from_json(old)
    assert again.caveats == () and again.trusted
    assert "0.990 ± 0.002" in estimate_line(run_quality(again))
