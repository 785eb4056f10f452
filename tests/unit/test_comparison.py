"""Comparison tasks and blocking: chunked work must find exactly what one anonlink call finds.

Encodings here are random bit rows with planted near-copies, which is all the
comparison code sees; linkage quality on synthetic people is tested elsewhere.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from coordinator.core import blocking, candidates, comparison, matching

NBYTES = 128


def planted(n: int, copies: int, flip: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two datasets of random rows; the first ``copies`` rows of the second are noisy copies."""
    rng = np.random.default_rng(seed)
    left = rng.integers(0, 256, (n, NBYTES), dtype=np.uint8)
    right = rng.integers(0, 256, (n, NBYTES), dtype=np.uint8)
    noise = np.packbits(rng.random((copies, NBYTES * 8)) < flip, axis=1)
    right[:copies] = left[:copies] ^ noise
    # A duplicate inside the left dataset, for the within-dataset search.
    left[n - 1] = left[0] ^ np.packbits(rng.random(NBYTES * 8) < 0.02)
    return left, right


def as_set(found: comparison.Candidates) -> dict[tuple[int, int, int, int], float]:
    sims = np.frombuffer(found[0], dtype=np.float64)
    d0, d1 = (np.frombuffer(found[1][k], dtype=np.uint32) for k in (0, 1))
    r0, r1 = (np.frombuffer(found[2][k], dtype=np.uint32) for k in (0, 1))
    return {
        (int(a), int(b), int(c), int(d)): float(s)
        for s, a, b, c, d in zip(sims, d0, d1, r0, r1, strict=True)
    }


def test_chunks_cover_every_pair_once() -> None:
    sizes = [1000, 700, 300]
    chunks = comparison.plan_pair_chunks(sizes, 0.8, 0.9, chunk_comparisons=40_000)
    across = sum(c.comparisons for c in chunks if c.left != c.right)
    within = sum(c.comparisons for c in chunks if c.left == c.right)
    assert across == candidates.all_pairs_count(sizes)
    assert within == sum(n * (n - 1) // 2 for n in sizes)
    assert len(chunks) > 20  # really cut up, so workers can share it


def test_chunked_search_equals_one_anonlink_call() -> None:
    left, right = planted(600, 300, 0.1, seed=1)
    unpacked = [matching.unpack(bytes(r) for r in d) for d in (left, right)]
    expected = matching.candidate_pairs(unpacked, 0.7, within_threshold=0.9)
    chunks = comparison.plan_pair_chunks([600, 600], 0.7, 0.9, chunk_comparisons=30_000)
    parts = [comparison.run_task(c, [left, right]) for c in chunks]
    merged = comparison.merge(parts)
    assert as_set(merged) == as_set(expected)
    # And in anonlink's order: most similar first.
    assert list(merged[0]) == sorted(merged[0], reverse=True)
    assert len(expected[0]) > 300


def test_agreement_of_balanced_encodings_is_their_dice() -> None:
    assert blocking.agreement_at(0.83, 0.5) == pytest.approx(0.83)
    # Sparse filters agree on more positions at the same Dice.
    assert blocking.agreement_at(0.83, 0.2) == pytest.approx(1 - 2 * 0.2 * 0.17)


def test_plan_promises_the_completeness_asked_for() -> None:
    uniform = np.full(2048, 0.5)
    plan = blocking.plan((100_000, 100_000), uniform, 0.8, completeness=0.999, seed=3)
    assert plan.completeness >= 0.999
    assert plan.chance_found(0.95) > plan.chance_found(0.8) >= 0.999
    assert plan.chance_found(0.5) < 0.005  # chance pairs: 200 times fewer compared
    assert all(len(set(band)) == len(band) for band in plan.bands)
    # Half-bytes enough for about one chance collision per record per band.
    assert plan.bits == 4 * math.ceil(math.log(100_000) / math.log(2) / 4)


def test_bands_avoid_positions_nearly_always_set_or_clear() -> None:
    frequencies = np.full(1024, 0.5)
    frequencies[:512] = 0.8  # positions hashed from common values: half-bytes 0 to 127
    plan = blocking.plan((50_000, 50_000), frequencies, 0.9, seed=1)
    used = {position for band in plan.bands for position in band}
    assert used <= set(range(128, 256))
    # A pair's disagreements fall on the varying positions, so it agrees less on them.
    assert plan.agreement < blocking.agreement_at(0.9, float(frequencies.mean()))


def test_plan_refuses_a_threshold_blocking_cannot_serve() -> None:
    with pytest.raises(ValueError, match="bands"):
        blocking.plan((1_000_000, 1_000_000), np.full(2048, 0.5), 0.55)


def test_blocked_search_finds_the_close_pairs_with_the_same_scores() -> None:
    left, right = planted(3000, 1500, 0.06, seed=2)
    chunks = comparison.plan_pair_chunks([3000, 3000], 0.8)
    exact = as_set(comparison.merge([comparison.run_task(c, [left, right]) for c in chunks]))
    frequencies = blocking.bit_frequencies([left, right])
    plan = blocking.plan((3000, 3000), frequencies, 0.8, completeness=0.999, seed=5)
    tasks = blocking.chunks(plan, 0, 1, 0.8)
    blocked = as_set(
        comparison.merge([comparison.run_task(t, [left, right]) for t in tasks], unique=True)
    )
    assert set(blocked) <= set(exact)
    assert all(blocked[pair] == exact[pair] for pair in blocked)
    assert len(blocked) / len(exact) >= 0.995
    assert len(exact) >= 1400


def test_blocked_search_inside_one_dataset_keeps_each_pair_once() -> None:
    left, _ = planted(2000, 0, 0.0, seed=4)
    plan = blocking.plan((2000, 2000), blocking.bit_frequencies([left]), 0.9, seed=1)
    found = as_set(
        comparison.merge(
            [comparison.run_task(t, [left]) for t in blocking.chunks(plan, 0, 0, 0.9)],
            unique=True,
        )
    )
    assert (0, 0, 0, 1999) in found
    assert all(a < b for _, _, a, b in found)


def test_merge_unique_keeps_a_pair_found_twice_once() -> None:
    one = comparison.from_arrays(
        np.array([0.9, 0.8]), np.array([0, 0]), np.array([1, 1]), np.array([3, 4]), np.array([5, 6])
    )
    merged = comparison.merge([one, one], unique=True)
    assert list(merged[0]) == [0.9, 0.8]
    assert len(comparison.merge([one, one])[0]) == 4


@pytest.mark.parametrize("mode", ["none", "lsh"])
def test_find_splits_cross_and_within_pairs(mode: str) -> None:
    left, right = planted(2500, 1200, 0.06, seed=6)
    with candidates.InlineEngine().session() as session:
        found = candidates.find(
            session,
            [left, right],
            low=0.75,
            design=0.8,
            within_threshold=0.9,
            blocking_mode=mode,
            estimate_sample=400,
            seed=1,
        )
    across, within = as_set(found.across), as_set(found.within)
    assert all(d0 != d1 for d0, d1, _, _ in across)
    assert (0, 0, 0, 2499) in within
    assert found.blocked is (mode == "lsh")
    assert found.all_pairs == 2500 * 2500
    if mode == "lsh":
        assert found.comparisons < found.all_pairs / 3  # sample included
        assert found.sampled == 400
    # Every record with a planted copy has a best score, estimated from sample or from all.
    assert len(found.scores) >= (1200 if mode == "none" else 150)


def test_find_stops_when_cancelled() -> None:
    left, right = planted(500, 100, 0.1, seed=7)
    with candidates.InlineEngine().session() as session, pytest.raises(candidates.Cancelled):
        candidates.find(session, [left, right], low=0.8, design=0.8, cancelled=lambda: True)


def test_a_key_shared_by_very_many_records_is_joined_in_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Degenerate data (many records alike) must not expand a band's pairs all at once."""
    monkeypatch.setattr(comparison, "_PAIRS_AT_ONCE", 50)
    keys_left = np.array([7] * 30 + [1, 2], dtype=np.uint64)
    keys_right = np.array([7] * 20 + [2], dtype=np.uint64)
    cross = list(comparison._colliding(keys_left, keys_right, False))
    pairs = {(int(a), int(b)) for i, j in cross for a, b in zip(i, j, strict=True)}
    assert pairs == {(a, b) for a in range(30) for b in range(20)} | {(31, 20)}
    assert max(len(i) for i, _ in cross) <= 50
    within = list(comparison._colliding(keys_left, keys_left, True))
    pairs = {(int(a), int(b)) for i, j in within for a, b in zip(i, j, strict=True)}
    assert pairs == {(a, b) for a in range(30) for b in range(30) if a < b}


def test_folding_task_results_keeps_each_pair_once_with_its_score() -> None:
    left, right = planted(1500, 700, 0.06, seed=9)
    frequencies = blocking.bit_frequencies([left, right])
    plan = blocking.plan((1500, 1500), frequencies, 0.8, seed=2)
    parts = [
        comparison.run_task(t, [left, right])
        for t in blocking.chunks(plan, 0, 1, 0.8, per_task=max(1, len(plan.bands) // 6))
    ]
    assert len(parts) >= 5
    folded = candidates._fold(parts, 2, 1500)
    merged = comparison.merge(parts, unique=True)
    assert as_set(folded) == as_set(merged)
    assert len(folded[0]) == len(as_set(folded)) < sum(len(p[0]) for p in parts)
    # Put most similar first, the folded pairs are in exactly the order merge gives.
    ordered = candidates._most_similar_first(folded)
    assert list(ordered[0]) == list(merged[0])
    assert [list(a) for a in (*ordered[1], *ordered[2])] == [
        list(a) for a in (*merged[1], *merged[2])
    ]


def test_band_keys_are_the_bands_half_bytes_side_by_side() -> None:
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 256, size=(comparison._KEY_BLOCK + 77, 16), dtype=np.uint8)
    bands = [(0, 1), (5, 30, 31), (2, 9, 17, 24, 25, 26, 27, 28, 29)]  # last: over 32 bits

    keys = comparison.band_keys(rows, bands)

    def by_hand(row: np.ndarray, band: tuple[int, ...]) -> int:
        halves = [(int(row[u // 2]) >> 4) if u % 2 == 0 else int(row[u // 2]) & 15 for u in band]
        return sum(h << (4 * place) for place, h in enumerate(halves))

    for r in (0, 1, comparison._KEY_BLOCK - 1, comparison._KEY_BLOCK, len(rows) - 1):
        assert [int(keys[b, r]) for b in range(3)] == [by_hand(rows[r], b) for b in bands]


def test_sampled_scores_are_the_same_whatever_the_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    left, right = planted(1200, 500, 0.06, seed=12)

    def scores() -> list[float]:
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
        return sorted(found.scores.tolist())

    whole = scores()
    monkeypatch.setattr(candidates, "SAMPLE_SLICE", 250)  # five slices of each dataset
    assert scores() == whole
    assert len(whole) >= 100


def test_merge_orders_by_similarity_then_pair_exactly_as_a_five_key_lexsort() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    sims = rng.integers(60, 100, n) / 100.0  # ties, as Dice scores have
    d0, d1 = (rng.integers(0, 3, n).astype(np.uint32) for _ in range(2))
    r0, r1 = (rng.integers(0, 50, n).astype(np.uint32) for _ in range(2))
    order = np.lexsort((r1, r0, d1, d0, -sims))
    merged = comparison.merge([comparison.from_arrays(sims, d0, d1, r0, r1)])
    assert np.array_equal(np.frombuffer(merged[0], dtype=np.float64), sims[order])
    for got, column in zip((*merged[1], *merged[2]), (d0, d1, r0, r1), strict=True):
        assert np.array_equal(np.frombuffer(got, dtype=np.uint32), column[order])
