"""Recall counted on what a run output: its groups, the pairs blocking missed, the floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coordinator.core import candidates, caveats, comparison, matching, output_recall
from coordinator.core.score_model import Mixture

SEPARATED = Mixture(0.4, 0.95, 0.03, 0.74, 0.02)


def pairs(rows: list[tuple[float, int, int, int, int]]) -> comparison.Candidates:
    """Candidates from (score, dataset, dataset, row, row) rows."""
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return comparison.from_arrays(*(np.array(c) for c in columns))


def one_to_one(matches: int, chance: int, seed: int = 0) -> comparison.Candidates:
    """Two datasets: rows 0..matches-1 matched to the same row (high scores), then
    ``chance`` records whose best score is a chance agreement just above the floor."""
    rng = np.random.default_rng(seed)
    rows = [(float(s), 0, 1, i, i) for i, s in enumerate(rng.uniform(0.9, 1.0, matches))]
    for k in range(chance):
        a, b = matches + k, matches + (k + 1) % max(chance, 1)
        rows.append((float(rng.uniform(0.7, 0.76)), 0, 1, a, b))
    return pairs(rows)


def test_each_record_keeps_its_best_candidate_per_other_dataset() -> None:
    found = output_recall.best_items(
        pairs([(0.9, 0, 1, 0, 5), (0.95, 0, 1, 0, 6), (0.8, 0, 2, 0, 1), (0.7, 1, 2, 6, 1)])
    )
    best = {
        (int(d), int(r), int(o)): (float(s), int(p))
        for s, d, r, o, p in zip(
            found.score, found.dataset, found.row, found.other, found.partner, strict=True
        )
    }
    assert best[(0, 0, 1)] == (0.95, 6)
    assert best[(1, 6, 0)] == (0.95, 0)
    assert best[(0, 0, 2)] == (0.8, 1)
    assert best[(2, 1, 1)] == (0.7, 6)
    assert len(best) == 7


def random_pairs(count: int, seed: int) -> comparison.Candidates:
    """Three datasets' candidates with many tied scores and repeated records."""
    rng = np.random.default_rng(seed)
    d0 = rng.integers(0, 2, count)
    d1 = np.minimum(d0 + rng.integers(0, 2, count), 2)  # some inside one dataset
    scores = rng.integers(70, 100, count) / 100.0
    return comparison.from_arrays(
        scores, d0, d1, rng.integers(0, 40, count), rng.integers(0, 40, count)
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_items_are_lexsorts_first_of_each_record_and_dataset_ties_and_all(
    seed: int,
) -> None:
    across = random_pairs(3_000, seed)
    found = output_recall.best_items(across)
    sims, d0, d1, r0, r1 = (np.asarray(x) for x in matching.arrays(across))
    own_d, own_r = np.concatenate([d0, d1]), np.concatenate([r0, r1])
    other, other_r = np.concatenate([d1, d0]), np.concatenate([r1, r0])
    score = np.concatenate([sims, sims])
    keep = own_d != other
    own_d, own_r, other, other_r, score = (a[keep] for a in (own_d, own_r, other, other_r, score))
    key = (own_d * 40 + own_r) * 3 + other
    order = np.lexsort((-score, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    at = order[first]
    assert np.array_equal(found.score, score[at])
    assert np.array_equal(found.partner, other_r[at])
    assert np.array_equal(found.row, own_r[at]) and np.array_equal(found.other, other[at])


def test_blocking_misses_ask_only_about_the_sampled_records_pairs() -> None:
    across = random_pairs(3_000, 5)
    sims, d0, d1, r0, r1 = (np.asarray(x) for x in matching.arrays(across))
    cross = d0 != d1
    blocked = comparison.from_arrays(
        sims[cross][::2], d0[cross][::2], d1[cross][::2], r0[cross][::2], r1[cross][::2]
    )
    # The sample: every cross pair of rows 0-4, of which the blocked run kept half.
    mine = cross & (r0 < 5)
    sample = comparison.from_arrays(sims[mine], d0[mine], d1[mine], r0[mine], r1[mine])
    missed, weight = output_recall.blocking_miss(SEPARATED, sample, blocked, 0.85)
    items = output_recall.best_items(sample)
    kept = {
        (min(a, b), max(a, b), x if a < b else y, y if a < b else x)
        for a, b, x, y in zip(*(matching.arrays(blocked)[1:]), strict=True)
    }
    seen_from = float(np.asarray(matching.arrays(blocked)[0]).min())
    use = items.score >= seen_from
    weights = output_recall.match_weights(SEPARATED, items.score[use], 0.85, seen_from)
    present = np.array(
        [
            (min(a, b), max(a, b), x if a < b else y, y if a < b else x) in kept
            for a, b, x, y in zip(
                items.dataset[use],
                items.other[use],
                items.row[use],
                items.partner[use],
                strict=True,
            )
        ]
    )
    assert weight == pytest.approx(float(weights.sum()))
    assert missed == pytest.approx(float(weights[~present].sum()) / float(weights.sum()))
    assert 0 < missed < 1


def test_grouped_with_asks_whether_the_group_holds_the_other_dataset() -> None:
    items = output_recall.best_items(pairs([(0.95, 0, 1, 0, 0), (0.9, 0, 1, 1, 1)]))
    # Records in load order: dataset 0 rows 0-1, dataset 1 rows 0-1; only row 0 pair grouped.
    group = np.array([0, -1, 0, -1])
    held = output_recall.grouped_with(items, group, (2, 2))
    by_row = {
        (int(d), int(r)): bool(h) for d, r, h in zip(items.dataset, items.row, held, strict=True)
    }
    assert by_row == {(0, 0): True, (1, 0): True, (0, 1): False, (1, 1): False}


def test_pairs_the_solver_left_apart_count_as_missed() -> None:
    across = one_to_one(400, 600)
    items = output_recall.best_items(across)
    everyone = np.full(2000, -1)
    all_linked = everyone.copy()
    for i in range(400):
        all_linked[i] = all_linked[1000 + i] = i
    apart = all_linked.copy()
    apart[:40] = -1  # the solver left 40 of the 400 matches apart
    apart[1000:1040] = -1
    full = output_recall.measure(
        SEPARATED,
        items,
        output_recall.grouped_with(items, all_linked, (1000, 1000)),
        0.85,
        seen_from=0.7,
        draws=50,
    )
    less = output_recall.measure(
        SEPARATED,
        items,
        output_recall.grouped_with(items, apart, (1000, 1000)),
        0.85,
        seen_from=0.7,
        draws=50,
    )
    assert full.recall > 0.99
    assert less.recall == pytest.approx(0.9, abs=0.01)
    assert less.left_apart == pytest.approx(80, abs=1)  # 40 pairs, seen from both ends
    assert less.interval[0] <= less.recall <= less.interval[1]
    assert less.interval[1] - less.interval[0] > 0.01  # never "± 0.000"


def test_matches_below_the_lowest_score_kept_lower_recall() -> None:
    wide = Mixture(0.4, 0.9, 0.06, 0.72, 0.02)
    across = one_to_one(400, 0)  # every match found, no chance best scores
    items = output_recall.best_items(across)
    group = np.full(2000, -1)
    for i in range(400):
        group[i] = group[1000 + i] = i
    linked = output_recall.grouped_with(items, group, (1000, 1000))
    at_floor = output_recall.measure(wide, items, linked, 0.8, seen_from=0.7, draws=0)
    higher = output_recall.measure(wide, items, linked, 0.8, seen_from=0.8, draws=0)
    assert higher.recall < at_floor.recall
    assert higher.below_floor > at_floor.below_floor > 0
    # What the groups hold over what the fitted curve says lies above the lowest score kept.
    assert higher.recall == pytest.approx(wide.tails(0.8)[0], rel=1e-6)
    blocked = output_recall.measure(
        wide, items, linked, 0.8, seen_from=0.7, blocking_miss=0.1, draws=0
    )
    assert blocked.recall == pytest.approx(at_floor.recall * 0.9, rel=1e-6)
    assert blocked.blocking_missed > 0


def test_matches_the_curve_misses_are_counted_where_the_scores_show_them() -> None:
    # 1,000 chance scores near 0.72 and 30 matches lumped at 0.845, where the fitted
    # non-match curve expects almost nothing: they count as matches although the fitted
    # match curve gives them little weight.
    rng = np.random.default_rng(1)
    fitted = Mixture(0.03, 0.95, 0.01, 0.72, 0.02)
    beta = 0.02 * math.sqrt(6) / math.pi
    chance = rng.gumbel(0.72 - 0.5772 * beta, beta, 1000)
    scores = np.concatenate([chance, np.full(30, 0.845)])
    raw = fitted.densities(np.array([0.845]))
    assert raw[0][0] / (raw[0][0] + raw[1][0]) < 0.5
    weights = output_recall.match_weights(fitted, scores, threshold=0.87)
    assert weights[-30:].sum() > 25
    assert weights[:1000].sum() < 5


def test_blocking_misses_are_measured_on_the_sample() -> None:
    across = pairs([(0.95, 0, 1, i, i) for i in range(90)] + [(0.73, 0, 1, 95, 96)])
    sample = pairs([(0.95, 0, 1, i, i) for i in range(100)])  # 10 were never compared
    missed, weight = output_recall.blocking_miss(SEPARATED, sample, across, 0.85)
    assert missed == pytest.approx(0.1, abs=0.01)
    assert weight > 190  # 100 pairs, seen from both ends


def test_a_blocked_search_keeps_the_sample_pairs_in_the_runs_own_rows() -> None:
    rng = np.random.default_rng(12)
    left = rng.integers(0, 256, (800, 128), dtype=np.uint8)
    right = rng.integers(0, 256, (800, 128), dtype=np.uint8)
    noise = np.packbits(rng.random((400, 1024)) < 0.06, axis=1)
    right[:400] = left[:400] ^ noise
    with candidates.InlineEngine().session() as session:
        found = candidates.find(
            session,
            [left, right],
            low=0.7,
            design=0.8,
            blocking_mode="lsh",
            estimate_sample=300,
            seed=3,
        )
    assert found.blocked and found.kept_from == pytest.approx(0.75)
    assert found.sample_pairs is not None
    sims, d0, d1, r0, r1 = (np.asarray(a) for a in matching.arrays(found.sample_pairs))
    assert len(sims) > 50
    assert (d0 == 0).all() and (d1 == 1).all() and (r0 == r1).all() and (r0 < 400).all()
    for s, a, b in zip(sims[:20], r0[:20], r1[:20], strict=True):
        both = np.unpackbits(left[a] & right[b]).sum()
        dice = 2 * both / (np.unpackbits(left[a]).sum() + np.unpackbits(right[b]).sum())
        assert s == pytest.approx(dice)
    fitted = Mixture(0.5, 0.94, 0.02, 0.55, 0.02)
    missed, _ = output_recall.blocking_miss(fitted, found.sample_pairs, found.across, 0.8)
    assert 0.0 <= missed < 0.05  # blocking promised to find nearly all of these


def test_blocking_measured_replaces_the_promise_and_a_large_miss_is_not_trusted() -> None:
    promised = (caveats.Caveat("blocking", "promised"),)
    fine = caveats.with_blocking_measured(promised, 0.004)
    assert [c.code for c in fine] == ["blocking"] and "0.4%" in fine[0].message
    assert not fine[0].untrusted
    bad = caveats.with_blocking_measured(promised, 0.2)
    assert bad[0].untrusted
    assert caveats.with_blocking_measured(promised, None) == promised


def test_few_matches_among_many_chance_scores_are_said() -> None:
    low = Mixture(0.08, 0.94, 0.03, 0.73, 0.02)
    found = caveats.check(
        low, scores=5000, threshold=0.85, floor=0.7, fits_failed=0.0, completeness=1.0
    )
    assert "low_match_share" in {c.code for c in found}
    plenty = caveats.check(
        SEPARATED, scores=5000, threshold=0.85, floor=0.7, fits_failed=0.0, completeness=1.0
    )
    assert "low_match_share" not in {c.code for c in plenty}


def test_an_incremental_run_carries_the_last_bootstrap_around_its_own_recall() -> None:
    # Drawing the bootstrap again costs a pass over every record per draw; a run that
    # changed 1% carries the spread it had, around the recall its own groups give.
    items = output_recall.best_items(one_to_one(400, 600))
    group = np.full(2000, -1, dtype=np.int64)
    for i in range(360):
        group[i] = group[1000 + i] = i
    linked = output_recall.grouped_with(items, group, (1000, 1000))
    drawn = output_recall.measure(SEPARATED, items, linked, 0.85, seen_from=0.7, draws=50)
    spread = (drawn.interval[0] - drawn.recall, drawn.interval[1] - drawn.recall)
    group[360:380] = group[1360:1380] = np.arange(360, 380)  # the refresh linked 20 more
    linked = output_recall.grouped_with(items, group, (1000, 1000))
    carried = output_recall.measure(
        SEPARATED, items, linked, 0.85, seen_from=0.7, draws=50, spread=spread
    )
    fresh = output_recall.measure(SEPARATED, items, linked, 0.85, seen_from=0.7, draws=0)
    assert carried.recall == fresh.recall > drawn.recall
    assert carried.interval == pytest.approx(
        (carried.recall + spread[0], carried.recall + spread[1])
    )
