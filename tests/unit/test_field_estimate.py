"""The field model's own figures for a run's output: each estimator piece against a case
whose answer is known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from coordinator.core import field_estimate, field_model
from coordinator.core.caveats import Caveat
from coordinator.core.field_estimate import (
    KindFigures,
    Prepared,
    broken_parts,
    hidden_matches,
    interval,
    moved_from_spoken,
    on_output,
    output_pairs,
    record_weights,
    robust_spread,
    several_expected,
    spanning,
    spoken_for,
)
from coordinator.core.field_levels import MISSING
from coordinator.core.field_model import ACROSS, WITHIN
from coordinator.core.quality import DuplicateEstimate, RunQuality

GROUPS = ("given", "family", "birth", "place")


def test_a_bootstrap_over_records_draws_each_record_about_once() -> None:
    w = record_weights(20_000, np.random.default_rng(1))
    assert w.min() == 0 and (w == np.round(w)).all()
    assert w.mean() == pytest.approx(1.0, abs=0.03)
    assert (w == 0).mean() == pytest.approx(np.exp(-1), abs=0.02)


def test_broken_parts_reads_which_salts_differ() -> None:
    # Columns: all agree; date slips; postcode differs; surname differs; both names differ
    # plus a move; birth behind two broken salts (missing).
    levels = np.array(
        [
            [0, 0, 0, 0, 3, 0],  # given
            [0, 0, 0, 2, 4, 0],  # family
            [0, 1, 0, 0, 0, MISSING],  # birth
            [0, 0, 5, 0, 3, 2],  # place
        ]
    )
    found = broken_parts(levels, GROUPS, field_estimate.PART_CHECKS)
    assert found.tolist() == [0, 0b001, 0b010, 0b100, 0b110, -1]


def test_broken_parts_ignores_comparisons_the_run_does_not_have() -> None:
    levels = np.array([[0, 2], [0, 0]])
    found = broken_parts(levels, ("given", "family"), field_estimate.PART_CHECKS)
    assert found.tolist() == [0, 0b100]  # only the name part can be read


def test_matches_with_two_parts_broken_follow_from_those_with_one() -> None:
    # 1,000 clean matches, 100 with only the date broken, 200 only the postcode: the odds
    # are 0.1 and 0.2, so 1,000 x 0.1 x 0.2 = 20 break both.
    assert several_expected(1000, [100, 200, 0]) == pytest.approx(20.0)
    assert several_expected(1000, [100, 200, 50]) == pytest.approx(
        1000 * (0.1 * 0.2 + 0.1 * 0.05 + 0.2 * 0.05 + 0.1 * 0.2 * 0.05)
    )
    # Of those 20, the 12 the candidates hold are not hidden.
    assert hidden_matches(1000, [100, 200, 0], 12) == pytest.approx(8.0)
    assert hidden_matches(1000, [100, 200, 0], 30) == 0.0
    assert hidden_matches(0, [5, 5, 5], 0) == 0.0


def test_hidden_matches_recovers_independent_breaks_under_a_floor() -> None:
    rng = np.random.default_rng(3)
    rates = np.array([0.08, 0.15, 0.2])
    broken = rng.random((200_000, 3)) < rates
    k = broken.sum(axis=1)
    # The floor keeps every match with at most one part broken and a third of those with
    # two; none with three.
    kept = (k <= 1) | ((k == 2) & (rng.random(len(k)) < 1 / 3))
    masks = (broken * [1, 2, 4]).sum(axis=1)
    alone = float((kept & (masks == 0)).sum())
    one = [float((kept & (masks == 1 << i)).sum()) for i in range(3)]
    several = float((kept & (k >= 2)).sum())
    truth = float((~kept).sum())
    assert hidden_matches(alone, one, several) == pytest.approx(truth, rel=0.05)


def test_output_pairs_counts_pairs_across_and_within_the_groups() -> None:
    # Group 0: two records of dataset 0 and one of dataset 1 (2 across, 1 within);
    # group 1: one record of each of three datasets (3 across); two records alone.
    group = np.array([0, 0, 1, -1, 0, 1, -1, 1])
    dataset = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    assert output_pairs(group, dataset).tolist() == [5, 1]
    assert output_pairs(np.full(3, -1), np.zeros(3, dtype=np.int64)).tolist() == [0, 0]


def test_one_collapsed_refit_does_not_set_the_spread() -> None:
    steady = np.array([0.95, 0.951, 0.949, 0.952, 0.948, 0.95, 0.951, 0.949, 0.95])
    assert robust_spread(np.append(steady, 0.6)) < 0.005
    assert robust_spread(np.array([0.5])) == 0.0


def test_an_interval_widens_the_truths_spread_by_the_models() -> None:
    truth = np.random.default_rng(0).normal(0.9, 0.01, 20_000)
    alone = interval(0.9, truth, np.full(10, 0.9))
    assert alone == pytest.approx((0.9 - 0.0196, 0.9 + 0.0196), abs=0.001)
    refits = 0.9 + np.random.default_rng(1).normal(0.0, 0.01, 200)
    wider = interval(0.9, truth, refits)
    assert wider[1] - wider[0] == pytest.approx(2 * 0.0196 * np.sqrt(2), rel=0.1)
    assert interval(0.999, truth + 0.099, refits)[1] == 1.0


def test_an_interval_spanning_two_readings_holds_both() -> None:
    assert spanning((0.95, 0.99), (0.97, 1.0)) == (0.95, 1.0)
    assert spanning((0.9, 0.95)) == (0.9, 0.95)


def prepared(chance: list[float], left: list[int], right: list[int], kinds: list[int]) -> Prepared:
    p = np.array(chance)
    return Prepared(
        left=np.array(left),
        right=np.array(right),
        kinds=np.array(kinds),
        chance=p,
        draws=np.tile(p, (4, 1)).astype(np.float32),
        broken=np.zeros(len(p), dtype=np.int64),
        parts=3,
    )


def test_figures_count_the_groups_not_the_pairs_offered() -> None:
    # 60 records in two datasets: 30 certain cross pairs (r, 30 + r), grouped; one cross
    # pair at 0.5 that the solver left apart; one within pair at 0.9 that is grouped.
    n = 30
    left = [*range(n), 0, 1]
    right = [*(n + r for r in range(n)), n + 1, 2]
    chance = [1.0] * n + [0.5, 0.9]
    kinds = [ACROSS] * (n + 1) + [WITHIN]
    group = np.array([*range(n), *range(n)])
    group[2] = 1  # records 1 and 2 (dataset 0) in one group: the within pair
    dataset = np.repeat([0, 1], n)
    found = on_output(prepared(chance, left, right, kinds), group, dataset)
    across = found.across
    # Group 1 holds records 1, 2 and 31: 2 cross pairs, one of them never a candidate
    # (2-31), counted at the mean probability of the output's candidates (1.0); record 2's
    # own certain pair (2-32) is no longer held, and counts as missed. The pair 0-31 left
    # apart counts for nothing: 0 is grouped with 30, 31 with 1 (``spoken_for``).
    assert across.output_pairs == n
    assert across.precision == pytest.approx(1.0)
    assert across.recall == pytest.approx((n - 1) / n)
    assert across.recall_interval[0] < across.recall < across.recall_interval[1] + 1e-12
    assert found.within is not None
    assert found.within.precision == pytest.approx(0.9)
    # Too few matches to lean on, and said so.
    assert {c.code for c in found.caveats} >= {"few_field_matches_within"}
    assert all(c.untrusted for c in found.caveats if c.code.startswith("few_field"))


def test_a_pair_apart_whose_records_both_have_partners_there_is_not_a_miss() -> None:
    # Datasets 0 (records 0-2) and 1 (records 3-5). Groups: {0, 3}, {1, 4}; 2 and 5 alone.
    group = np.array([0, 1, -1, 0, 1, -1])
    dataset = np.array([0, 0, 0, 1, 1, 1])
    left = np.array([0, 0, 2, 0, 1])
    right = np.array([4, 5, 5, 3, 2])
    found = spoken_for(left, right, group, dataset)
    # 0-4: both grouped with a record of the other's dataset; 0-5 and 2-5: 5 or 2 is free;
    # 0-3 is held; 1-2 is inside one dataset, and 2 is free.
    assert found.tolist() == [True, False, False, False, False]


def test_recall_does_not_count_pairs_both_spoken_for_as_missed() -> None:
    # Two certain grouped pairs and a 0.9 pair between them the solver left apart (a twin's
    # record, say): recall is not 2 / 2.9.
    found = on_output(
        prepared([1.0, 1.0, 0.9], [0, 1, 0], [2, 3, 3], [ACROSS] * 3),
        np.array([0, 1, 0, 1]),
        np.array([0, 0, 1, 1]),
    )
    assert found.across.recall == pytest.approx(1.0)
    assert found.across.expected_matches == pytest.approx(2.0)


def test_a_patterns_matches_move_from_pairs_spoken_for_to_its_other_pairs() -> None:
    # Six pairs the model saw alike (0.2 each: 1.2 matches among them), four of them twins
    # spoken for; one pair of another pattern; one of a third.
    chance = np.array([0.2] * 6 + [0.9, 0.1])
    spoken = np.array([True] * 4 + [False] * 4)
    found = moved_from_spoken(chance, chance, spoken)
    assert found[:4].tolist() == [0.0] * 4
    assert found[4:6] == pytest.approx([0.6, 0.6])  # 1.2 matches over the two left
    assert found[6:].tolist() == [0.9, 0.1]  # other patterns are untouched
    # Nothing spoken for: nothing moves; never above 1.
    assert moved_from_spoken(chance, chance, np.zeros(8, dtype=bool)).tolist() == chance.tolist()
    crowded = moved_from_spoken(np.full(4, 0.9), np.full(4, 0.9),
                                np.array([True, True, True, False]))  # fmt: skip
    assert crowded.tolist() == [0.0, 0.0, 0.0, 1.0]


def test_twins_left_apart_raise_their_patterns_pairs_the_groups_hold() -> None:
    # Twins' pattern (given name differs, the rest exact) at 0.5 on four pairs: two twins'
    # pairs left apart, both ends grouped with their own partners (spoken for), one pair the
    # groups hold and one left apart with both ends free. The pattern's two matches are the
    # last two's, so the held pair reads 1, not the model's 0.5.
    found = on_output(
        prepared([1.0, 1.0, 0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1, 4, 6], [2, 3, 3, 2, 5, 7],
                 [ACROSS] * 6),
        np.array([0, 1, 0, 1, 2, 2, -1, -1]),
        np.array([0, 0, 1, 1, 0, 1, 0, 1]),
    )  # fmt: skip
    assert found.across.precision == pytest.approx(1.0)
    assert found.across.expected_matches == pytest.approx(4.0)
    assert found.across.recall == pytest.approx(3 / 4)


def test_one_match_off_leaves_the_models_probabilities() -> None:
    found = on_output(
        prepared([1.0, 1.0, 0.9], [0, 1, 0], [2, 3, 3], [ACROSS] * 3),
        np.array([0, 1, 0, 1]),
        np.array([0, 0, 1, 1]),
        one_match=False,
    )
    assert found.across.recall == pytest.approx(2 / 2.9)


def test_a_run_without_within_pairs_has_no_within_figures() -> None:
    found = on_output(
        prepared([1.0, 1.0], [0, 1], [2, 3], [ACROSS, ACROSS]),
        np.array([0, 1, 0, 1]),
        np.array([0, 0, 1, 1]),
    )
    assert found.within is None


def test_the_report_takes_the_models_figures_and_says_whose_they_are() -> None:
    base = RunQuality(
        auto=True, threshold_used=0.8, threshold_fixed=0.8, fitted=True, reason="",
        threshold_estimated=0.8, threshold_sd=0.01, precision=0.999, precision_sd=0.0,
        recall=0.999, recall_sd=0.0, scores=900, near_threshold=0, several_candidates=0,
    )  # fmt: skip
    duplicates = DuplicateEstimate(("given",), 10, 5, 5.0, 0.99, 0.99, 50, 3)
    across = KindFigures(0.98, 0.93, (0.96, 0.99), (0.90, 0.95), 200, 210.0, 12.0)
    within = KindFigures(0.91, 0.87, (0.82, 0.97), (0.71, 0.95), 60, 70.0, 6.0)
    caveats = field_estimate.caveats_for(across, within)
    report, dup = field_estimate.reported(
        base, duplicates, field_estimate.FieldEstimate(across, within, caveats)
    )
    assert (report.precision, report.recall) == (0.98, 0.93)
    assert report.recall_interval == (0.90, 0.95) and report.recall_on_output
    assert report.unscored == 12.0
    assert report.caveats[0] == field_estimate.FIELD_FIGURES
    codes = {c.code for c in report.caveats}
    assert {"hidden_matches_across", "wide_interval_within", "hidden_matches_within"} <= codes
    assert (dup.precision, dup.recall) == (0.91, 0.87)
    assert dup.recall_interval == (0.71, 0.95)
    assert dataclasses.replace(dup, precision_interval=(0.0, 0.0)) != dup


def test_weights_of_one_are_the_unweighted_fit() -> None:
    rng = np.random.default_rng(5)
    levels = np.where(rng.random((3, 400)) < 0.5, 0, rng.integers(0, 6, (3, 400)))
    kinds = np.zeros(400, dtype=np.int64)
    random_levels = rng.integers(0, 6, (3, 2000))
    plain = field_model.fit(("a", "b", "c"), levels, kinds, random_levels)
    ones = field_model.fit(
        ("a", "b", "c"), levels, kinds, random_levels, weights=(np.ones(400), np.ones(2000))
    )
    assert np.allclose(plain.priors, ones.priors) and np.allclose(plain.profiles, ones.profiles)
    # Doubling half the pairs is a different sample, and a different fit.
    twice = np.where(np.arange(400) < 200, 2.0, 1.0)
    other = field_model.fit(
        ("a", "b", "c"), levels, kinds, random_levels, weights=(twice, np.ones(2000))
    )
    assert not np.allclose(plain.priors, other.priors)


def rare_group_run(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates of four groups, the last (an NHS number, say) missing for 90% of pairs and
    agreeing for only 30% of matches that have it: 600 matches, 400 strangers; and random
    pairs for u."""
    rng = np.random.default_rng(seed)

    def pairs(n: int, agree: list[float]) -> np.ndarray:
        close = rng.random((4, n)) < np.array(agree)[:, None]
        return np.where(close, rng.integers(0, 2, (4, n)), rng.integers(2, 6, (4, n)))

    levels = np.concatenate([pairs(600, [0.85, 0.85, 0.85, 0.3]), pairs(400, [0.1] * 4)], axis=1)
    levels[3, rng.random(1000) < 0.9] = MISSING
    random_levels = pairs(5000, [0.05] * 4)
    return levels, np.zeros(1000, dtype=np.int64), random_levels


def test_a_group_most_pairs_lack_does_not_make_a_relative_class_of_matches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    levels, kinds, random_levels = rare_group_run(11)
    groups = ("given", "family", "birth", "nhs")
    agreeing = np.array([[0], [0], [0], [MISSING]])

    def agreeing_chance() -> float:
        model = field_model.fit(groups, levels, kinds, random_levels)
        return float(model.probability(agreeing, np.zeros(1, dtype=np.int64))[0])

    assert agreeing_chance() > 0.95
    # Letting the relative class differ only in the rare group makes it a match wherever
    # that group is missing, and a pair agreeing on everything else is then a coin toss.
    monkeypatch.setattr(
        field_model, "telling_groups", lambda levels, kinds, sizes: np.ones(len(levels), bool)
    )
    assert agreeing_chance() < 0.7


def test_a_blocked_run_counts_what_blocking_missed_and_keeps_saying_so() -> None:
    base = RunQuality(
        auto=True, threshold_used=0.8, threshold_fixed=0.8, fitted=True, reason="",
        threshold_estimated=0.8, threshold_sd=0.01, precision=0.999, precision_sd=0.0,
        recall=0.999, recall_sd=0.0, scores=900, near_threshold=0, several_candidates=0,
        blocking_missed=0.02,
        caveats=(Caveat("blocking", "missed 2.0%"), Caveat("no_valley", "x", untrusted=True)),
    )  # fmt: skip
    duplicates = DuplicateEstimate(("given",), 10, 5, 5.0, 0.99, 0.99, 50, 3)
    across = KindFigures(0.98, 0.95, (0.96, 0.99), (0.90, 0.97), 2000, 2100.0, 12.0)
    report, _ = field_estimate.reported(
        base, duplicates, field_estimate.FieldEstimate(across, None, ())
    )
    assert report.recall == pytest.approx(0.95 * 0.98)
    assert report.recall_interval == pytest.approx((0.90 * 0.98, 0.97 * 0.98))
    # The record-level mixture's caveats went with its figures; blocking's stays.
    assert [c.code for c in report.caveats] == ["field_model_figures", "blocking"]


def test_pairs_with_a_missing_comparison_take_their_own_shift() -> None:
    chance = np.array([0.5, 0.5, 0.5, 0.5])
    unsure = np.array([False, False, True, True])
    found = field_estimate.partial_shift(chance, unsure, np.zeros(2), np.array([0.0, 50.0]))
    # No shift: two expected matches; the second draw lifts only the unsure pair to 1.
    assert found.tolist() == pytest.approx([2.0, 3.0])


def test_linked_pairs_with_missing_comparisons_widen_precisions_interval() -> None:
    chance = np.full(200, 0.7)
    held = np.ones(200, dtype=bool)
    hidden = np.zeros(field_estimate.OUTCOMES)

    def spread(unsure: np.ndarray) -> float:
        p, _ = field_estimate.truth_draws(
            chance, held, 200, hidden, np.random.default_rng(2), unsure
        )
        low, high = np.quantile(p, [0.025, 0.975])
        return float(high - low)

    known = spread(np.zeros(200, dtype=bool))
    assert spread(np.ones(200, dtype=bool)) > 1.3 * known
