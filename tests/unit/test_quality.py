"""The threshold and quality estimator (coordinator.core.quality) on mixtures with known answers."""

from __future__ import annotations

import math
from array import array

import numpy as np
import pytest

from coordinator.core import comparison, quality, top_scores
from coordinator.core.entities import Grouping
from coordinator.core.quality import Mixture


def draw(mixture: Mixture, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores drawn from the model itself (Gumbel non-matches, reflected Gumbel matches)."""
    rng = np.random.default_rng(seed)
    is_match = rng.random(n) < mixture.match_share
    beta_m = mixture.match_sd * math.sqrt(6) / math.pi
    beta_n = mixture.non_sd * math.sqrt(6) / math.pi
    euler = 0.5772156649015329
    matches = -rng.gumbel(-mixture.match_mean - euler * beta_m, beta_m, n)
    non = rng.gumbel(mixture.non_mean - euler * beta_n, beta_n, n)
    return np.where(is_match, matches, non), is_match


@pytest.mark.parametrize("share", [0.08, 0.4, 0.7])
def test_the_estimate_finds_a_known_crossing_and_best_threshold(share: float) -> None:
    truth = Mixture(share, 0.95, 0.045, 0.74, 0.026)
    crossing = truth.crossing()
    assert crossing is not None
    scores, is_match = draw(truth, 20_000, seed=int(share * 100))

    found = quality.estimate(scores, bootstrap=20)

    assert found.fitted, found.reason
    assert found.mixture is not None
    fitted_crossing = found.mixture.crossing()
    assert fitted_crossing == pytest.approx(crossing, abs=0.01)
    assert found.threshold == pytest.approx(truth.best_threshold(), abs=0.01)
    assert 0 < found.threshold_sd < 0.01
    # Precision as the true model gives it; recall as the labels say at that threshold.
    assert found.precision == pytest.approx(truth.precision_recall(found.threshold)[0], abs=0.01)
    kept = scores >= found.threshold
    assert found.recall == pytest.approx(kept[is_match].mean(), abs=0.02)


def test_at_the_crossing_the_weighted_densities_are_equal() -> None:
    mixture = Mixture(0.3, 0.95, 0.045, 0.74, 0.026)
    crossing = mixture.crossing()
    assert crossing is not None
    matches, non = mixture.densities(np.array([crossing - 0.01, crossing, crossing + 0.01]))
    assert matches[0] < non[0] and matches[2] > non[2]
    assert matches[1] == pytest.approx(non[1], rel=1e-6)


def test_the_chosen_threshold_maximises_the_estimated_f1() -> None:
    mixture = Mixture(0.3, 0.95, 0.045, 0.74, 0.026)
    best = mixture.best_threshold()
    assert mixture.f1(best) >= max(mixture.f1(best - 0.01), mixture.f1(best + 0.01))
    # More matches free fewer partners for false links: the threshold may go lower.
    assert Mixture(0.7, 0.95, 0.045, 0.74, 0.026).best_threshold() < best


def test_precision_rises_and_recall_falls_with_the_threshold() -> None:
    mixture = Mixture(0.3, 0.95, 0.045, 0.74, 0.026)
    points = [mixture.precision_recall(t) for t in (0.78, 0.82, 0.86, 0.9)]
    precisions, recalls = zip(*points, strict=True)
    assert list(precisions) == sorted(precisions)
    assert list(recalls) == sorted(recalls, reverse=True)


def test_all_scores_equal_is_not_estimated_and_says_why() -> None:
    found = quality.estimate(np.full(500, 0.8))
    assert not found.fitted
    assert "equal" in found.reason
    assert found.threshold == 0.0


def test_too_few_scores_is_not_estimated_and_says_why() -> None:
    found = quality.estimate([0.72, 0.75, 0.98, 0.99])
    assert not found.fitted
    assert "too few" in found.reason and "4" in found.reason


def test_one_group_of_scores_is_not_estimated() -> None:
    rng = np.random.default_rng(3)
    found = quality.estimate(rng.normal(0.75, 0.01, 5000))
    assert not found.fitted
    assert "do not separate" in found.reason


def test_without_an_estimate_a_run_keeps_the_fixed_threshold() -> None:
    threshold, found = quality.choose(np.full(10, 0.9), 0.83, auto=True)
    assert (threshold, found.fitted) == (0.83, False)


def test_with_an_estimate_auto_uses_it_and_fixed_does_not() -> None:
    scores, _ = draw(Mixture(0.4, 0.95, 0.045, 0.74, 0.026), 5000, seed=1)
    auto, found = quality.choose(scores, 0.83, auto=True)
    fixed, again = quality.choose(scores, 0.83, auto=False)
    assert found.fitted and auto == found.threshold != 0.83
    assert fixed == 0.83 and again.threshold == found.threshold


def candidates(rows: list[tuple[float, int, int, int, int]]) -> object:
    """anonlink's candidate structure from (score, dataset, row, dataset, row), best first."""
    rows = sorted(rows, reverse=True)
    return (
        array("d", [r[0] for r in rows]),
        (array("I", [r[1] for r in rows]), array("I", [r[3] for r in rows])),
        (array("I", [r[2] for r in rows]), array("I", [r[4] for r in rows])),
    )


def test_best_scores_take_each_records_best_per_other_dataset_and_skip_within_pairs() -> None:
    found = candidates(
        [
            (0.95, 0, 0, 1, 0),
            (0.75, 0, 0, 1, 1),  # second best of record (0, 0) in dataset 1: dropped
            (0.80, 0, 0, 2, 0),
            (0.99, 1, 0, 1, 1),  # within dataset 1: not a cross-dataset score
        ]
    )
    best = sorted(quality.best_scores(found).tolist())
    # (0,0) vs 1: .95; (0,0) vs 2: .80; (1,0) vs 0: .95; (1,1) vs 0: .75; (2,0) vs 0: .80
    assert best == [0.75, 0.80, 0.80, 0.95, 0.95]


def test_near_threshold_and_several_candidates_count_cross_pairs() -> None:
    found = candidates(
        [
            (0.95, 0, 0, 1, 0),
            (0.84, 0, 0, 1, 1),
            (0.82, 0, 1, 1, 2),
            (0.70, 0, 2, 1, 3),
            (0.83, 1, 0, 1, 1),  # within a dataset: ignored by both counts
        ]
    )
    assert quality.near_threshold(found, 0.83) == 2
    # At 0.83 record (0, 0) has two partners; nobody else has more than one.
    assert quality.several_candidates(found, 0.83) == 1


def test_small_histogram_bins_are_withheld() -> None:
    released = quality.release_bins([(0.7, 0), (0.71, 3), (0.72, 8), (0.73, 120)], threshold=8)
    assert [(b.count, b.suppressed) for b in released] == [
        (0, False),
        (0, True),
        (8, False),
        (120, False),
    ]


def test_dataset_rates_count_linked_and_duplicate_records() -> None:
    groups = [((0, 0), (1, 0)), ((0, 1), (0, 2)), ((0, 3), (0, 4), (1, 1))]
    grouping = Grouping.from_solution(groups, [6, 3])
    rates = quality.dataset_rates(grouping.dataset, *grouping.status(), [6, 3], ["hv", "cc"])
    assert [(r.organisation, r.records, r.linked, r.duplicates) for r in rates] == [
        ("hv", 6, 3, 4),
        ("cc", 3, 2, 0),
    ]


def test_a_run_quality_survives_its_json() -> None:
    scores, _ = draw(Mixture(0.4, 0.95, 0.045, 0.74, 0.026), 2000, seed=5)
    found = quality.estimate(scores, bootstrap=5)
    report = quality.RunQuality(
        auto=True,
        threshold_used=found.threshold,
        threshold_fixed=0.83,
        fitted=True,
        reason="",
        threshold_estimated=found.threshold,
        threshold_sd=found.threshold_sd,
        precision=found.precision,
        precision_sd=found.precision_sd,
        recall=found.recall,
        recall_sd=found.recall_sd,
        scores=found.scores,
        near_threshold=3,
        several_candidates=4,
        histogram=quality.histogram(scores),
        curve=quality.curve(found),
        datasets=(quality.DatasetRates("hv", 10, 4, 2),),
    )
    assert quality.RunQuality.from_json(report.to_json()) == report
    assert sum(c for _, c in report.histogram) == int(
        ((scores >= quality.FLOOR) & (scores <= 1)).sum()
    )


def test_a_fit_that_fails_numerically_falls_back_to_the_fixed_threshold(monkeypatch) -> None:
    from coordinator.core import quality as q

    def broken(scores, **_):
        raise ValueError("math domain error")

    monkeypatch.setattr(q, "estimate", broken)
    threshold, found = q.choose(np.linspace(0.6, 1.0, 500), 0.83, True)
    assert threshold == 0.83
    assert not found.fitted
    assert "could not be computed" in found.reason


def test_moments_of_identical_values_do_not_fail() -> None:
    from coordinator.core.score_model import _weighted_moments

    values = np.full(1000, 0.8333333333333334)
    weights = np.random.default_rng(1).random(1000)
    mean, sd = _weighted_moments(values, weights)
    assert abs(mean - 0.8333333333333334) < 1e-12
    assert sd == 1e-3


# --- runner-up scores and the anchored non-match component ---------------------------------


def test_top_two_gives_each_records_best_and_runner_up_per_other_dataset() -> None:
    found = candidates(
        [
            (0.95, 0, 0, 1, 0),
            (0.75, 0, 0, 1, 1),  # runner-up of record (0, 0) in dataset 1
            (0.72, 0, 0, 1, 2),  # third: not kept
            (0.80, 0, 0, 2, 0),  # only candidate of (0, 0) in dataset 2: no runner-up
            (0.99, 1, 0, 1, 1),  # within dataset 1: ignored
        ]
    )
    best, second = quality.top_two(found)
    pairs = sorted(zip(best.tolist(), second.tolist(), strict=True), key=lambda p: (p[0], str(p)))
    by_best = {b: s for b, s in pairs if not math.isnan(s)}
    assert by_best == {0.95: 0.75}
    assert sum(math.isnan(s) for _, s in pairs) == len(pairs) - 1
    assert quality.runner_up_scores(found, 0.9).tolist() == [0.75]
    assert quality.runner_up_scores(found, 0.96).tolist() == []


def nearly_all_matched(seed: int) -> tuple[np.ndarray, np.ndarray, object]:
    """Best scores where 98% of records have a match (a fifth of them with a long lower tail,
    as FEBRL4's corrupted copies have), each record's runner-up a chance agreement, and the
    candidate pairs that hold both; plus which best scores are matches."""
    rng = np.random.default_rng(seed)
    n = 4000
    is_match = rng.random(n) < 0.98

    def gumbel(mean: float, sd: float) -> np.ndarray:
        beta = sd * math.sqrt(6) / math.pi
        return rng.gumbel(mean - 0.5772156649015329 * beta, beta, n)

    chance = gumbel(0.74, 0.012)
    tail = rng.random(n) < 0.2
    match = np.clip(np.where(tail, rng.normal(0.82, 0.05, n), -gumbel(-0.94, 0.025)), 0, 1)
    best = np.where(is_match, np.maximum(match, chance), chance)
    runner = np.minimum(gumbel(0.74, 0.012), best - 1e-4)
    keep = best >= quality.FLOOR
    best, runner, is_match = best[keep], runner[keep], is_match[keep]
    m = len(best)
    rows = [(float(best[i]), 0, i, 1, i) for i in range(m)]
    rows += [(float(runner[i]), 0, i, 1, (i + 1) % m) for i in range(m) if runner[i] >= 0.7]
    rows.sort(key=lambda r: -r[0])
    return best, is_match, candidates(rows)


def record_f1(best: np.ndarray, is_match: np.ndarray, threshold: float) -> float:
    chosen = best >= threshold
    correct = (chosen & is_match).sum()
    precision, recall = correct / max(1, chosen.sum()), correct / is_match.sum()
    return float(2 * precision * recall / (precision + recall))


def test_when_nearly_every_record_matches_the_runner_ups_anchor_the_non_matches() -> None:
    best, is_match, found = nearly_all_matched(seed=3)
    plain = quality.estimate(best, bootstrap=0)
    anchored = quality.estimate(best, bootstrap=5, candidates=found)
    grid = np.arange(0.70, 0.95, 0.0025)
    top = max(record_f1(best, is_match, float(t)) for t in grid)
    # Left alone, the non-match component swallows the matches' lower tail: threshold too high.
    assert not plain.anchored and plain.mixture is not None
    assert plain.mixture.non_mean > 0.78
    assert record_f1(best, is_match, plain.threshold) < top - 0.03
    # Held at the runner-ups (chance agreement near 0.74), the threshold lands near the best.
    assert anchored.anchored and anchored.mixture is not None
    assert anchored.mixture.non_mean == pytest.approx(0.74, abs=0.01)
    assert record_f1(best, is_match, anchored.threshold) > top - 0.01
    # The run's stored quality, its audit figures and the wire say the estimate was anchored.
    stored = quality.report(
        across=found,
        scores=best,
        found=anchored,
        auto=True,
        threshold_used=anchored.threshold,
        threshold_fixed=0.83,
        datasets=(),
    )
    assert stored.anchored and stored.summary()["non_matches_anchored"] is True
    assert quality.RunQuality.from_json(stored.to_json()).anchored


def test_runner_ups_above_the_fitted_non_matches_change_nothing() -> None:
    """Twins and duplicates push runner-ups up; then the fitted component is kept as it is."""
    truth = Mixture(0.4, 0.95, 0.045, 0.74, 0.026)
    scores, _ = draw(truth, 6000, seed=5)
    scores = scores[scores >= quality.FLOOR]
    rows = [(float(s), 0, i, 1, i) for i, s in enumerate(scores)]
    rows += [(0.78, 0, i, 1, (i + 1) % len(scores)) for i, s in enumerate(scores) if s > 0.9]
    rows.sort(key=lambda r: -r[0])
    plain = quality.estimate(scores, bootstrap=0)
    checked = quality.estimate(scores, bootstrap=0, candidates=candidates(rows))
    assert not checked.anchored
    assert checked.threshold == plain.threshold


@pytest.mark.parametrize("ranked", [True, False])
def test_top_two_scores_match_a_count_by_hand(ranked: bool) -> None:
    rng = np.random.default_rng(11)
    n = 400
    d0 = rng.integers(0, 3, n)
    d1 = (d0 + rng.integers(1, 3, n)) % 3  # either order, never the same dataset
    r0, r1 = rng.integers(0, 30, n), rng.integers(0, 30, n)
    sims = np.round(rng.uniform(0.7, 1.0, n), 3)
    if ranked:
        order = np.argsort(-sims, kind="stable")
        d0, d1, r0, r1, sims = d0[order], d1[order], r0[order], r1[order], sims[order]
    scores: dict[tuple[int, int, int], list[float]] = {}
    for a, b, i, j, s in zip(d0, d1, r0, r1, sims, strict=True):
        scores.setdefault((int(a), int(i), int(b)), []).append(float(s))
        scores.setdefault((int(b), int(j), int(a)), []).append(float(s))
    expected = sorted((max(v), sorted(v)[-2] if len(v) > 1 else -1.0) for v in scores.values())

    best, second = quality.top_two(comparison.from_arrays(sims, d0, d1, r0, r1))

    got = sorted(zip(best.tolist(), np.nan_to_num(second, nan=-1.0).tolist(), strict=True))
    assert got == expected


def test_top_two_by_table_is_top_two_by_sorting_in_order_ties_and_all() -> None:
    rng = np.random.default_rng(5)
    # Keys below 500 repeat (ties: Dice scores take few values); 550-599 have one pair each.
    keys = np.concatenate([rng.integers(0, 500, 5_000), np.arange(550, 600)]).astype(np.int64)
    sims = rng.integers(70, 100, len(keys)) / 100.0
    by_table = top_scores._by_table(keys, sims, 600)
    by_sorting = top_scores._by_sorting(keys, sims)
    for table, sorting in zip(by_table, by_sorting, strict=True):
        assert np.array_equal(table, sorting, equal_nan=True)
    assert np.isnan(by_table[1]).any() and (by_table[0] == by_table[1]).any()
