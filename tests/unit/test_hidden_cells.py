"""Matches no candidate held, from the cells of the record-CLK parts that caught the others:
each estimator piece against a table whose unseen cell is known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from coordinator.core import field_hidden, hidden_cells
from coordinator.core.field_estimate import on_output
from tests.unit.test_field_estimate import prepared


def table(catch: list[float], total: float, pair: float = 1.0) -> tuple[np.ndarray, float]:
    """Expected matches per cell (bits: the parts that caught them) when part i catches a
    match with probability ``catch[i]``; ``pair`` multiplies the odds of parts 0 and 1
    catching it together (1: independent). Cell 0 as the candidates see it (none there),
    and what it truly holds."""
    weights = np.array(
        [
            np.prod([catch[i] if c >> i & 1 else 1 - catch[i] for i in range(3)])
            * (pair if c & 3 == 3 else 1.0)
            for c in range(8)
        ]
    )
    out: np.ndarray = total * weights / weights.sum()
    unseen = float(out[0])
    out[0] = 0.0
    return out, unseen


def test_part_dice_and_clear_bits_say_which_parts_reached_their_floors() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (1, 48), dtype=np.uint8)
    b = rng.integers(0, 256, (1, 48), dtype=np.uint8)
    b[:, :16] = a[:, :16]  # part 0 identical, parts 1 and 2 unrelated
    dice = hidden_cells.part_dice(a, b, 3)
    assert dice[0, 0] == pytest.approx(1.0)
    assert 0.3 < dice[0, 1] < 0.7 and 0.3 < dice[0, 2] < 0.7
    assert hidden_cells.clear_bits(dice, (0.7, 0.7, 0.7)).tolist() == [1]
    assert hidden_cells.clear_bits(dice, (1.01, 0.0, 0.7)).tolist() == [2]


def test_the_unseen_cell_of_independent_parts_is_recovered() -> None:
    counts, truth = table([0.9, 0.8, 0.7], 1000.0)
    assert hidden_cells.unseen(counts, 3) == pytest.approx(truth, rel=0.01)


def test_parts_that_catch_together_do_not_fool_the_chosen_model() -> None:
    # Parts 0 and 1 catch a match together far more often than independence says: read as
    # independent, the cell no part caught would be 2-3 times too small.
    counts, truth = table([0.6, 0.5, 0.7], 1000.0, pair=4.0)
    independent = hidden_cells._fit(counts[1:], hidden_cells._design(3, [(0,), (1,), (2,)]))[0]
    assert abs(independent - truth) > 0.5 * truth
    assert hidden_cells.unseen(counts, 3) == pytest.approx(truth, rel=0.02)


def test_matches_the_whole_row_caught_are_not_hidden() -> None:
    counts, truth = table([0.9, 0.8, 0.7], 1000.0)
    counts[0] = 0.5 * truth  # half the no-part cell reached the whole-row floor
    assert hidden_cells.unseen(counts, 3) == pytest.approx(0.5 * truth, rel=0.02)


def test_no_match_caught_by_one_part_alone_says_nothing_is_hidden() -> None:
    counts = np.array([0.0, 0.0, 0.0, 5.0, 0.0, 5.0, 5.0, 100.0])
    assert hidden_cells.unseen(counts, 3) == 0.0
    assert hidden_cells.unseen_draws(counts, 3, 10, np.random.default_rng(0)).sum() == 0.0


def test_draws_of_the_unseen_cell_centre_on_it() -> None:
    counts, truth = table([0.8, 0.7, 0.6], 2000.0)
    drawn = hidden_cells.unseen_draws(counts, 3, 2000, np.random.default_rng(4))
    assert len(drawn) == 2000
    assert np.median(drawn) == pytest.approx(truth, rel=0.15)
    assert np.percentile(drawn, 97.5) > truth > np.percentile(drawn, 2.5)


# 1,000 clean matches, 300 with the date alone broken, 400 the postcode, 500 the name:
# independence says 0.3*0.4 + ... = 0.47 of 1,000 break two salts and 0.06 all three.
# Only 360 broke two (the salts break together less often than independence says), and
# none broke three. Each match is caught by the parts whose salts agree.
BROKEN = np.repeat([0, 1, 2, 4, 3, 5, 6], [1000, 300, 400, 500, 120, 120, 120])
CLEAR = 7 - BROKEN


def test_a_two_salt_count_off_by_a_fifth_no_longer_triples_the_hidden_count() -> None:
    chance = np.ones(len(BROKEN))
    alone, one, several = field_hidden.part_sums(chance, BROKEN, 3)
    # The salts' reading: 470 + 60 expected with two or more broken, 360 found.
    assert field_hidden.hidden_matches(alone, one, several) == pytest.approx(170.0)
    # The parts' cells: the table's unseen cell, plus the all-broken cell the salts give.
    unseen = hidden_cells.unseen(hidden_cells.cells(chance, CLEAR, 3), 3)
    by_parts = field_hidden.by_parts(chance, BROKEN, CLEAR, 3)
    assert by_parts == pytest.approx(unseen + 60.0)
    assert by_parts < 100.0


def test_the_estimate_reads_both_the_parts_cells_and_the_salts_when_a_run_has_them() -> None:
    n = len(BROKEN)
    left, right = list(range(n)), [n + r for r in range(n)]
    base = dataclasses.replace(prepared([1.0] * n, left, right, [0] * n), broken=BROKEN)
    group = np.array([*range(n), *range(n)])
    dataset = np.repeat([0, 1], n)
    salts = on_output(base, group, dataset).across
    parts = on_output(dataclasses.replace(base, clear=CLEAR), group, dataset).across
    chance = np.ones(n)
    # Read from the salts alone: 170. With the parts' cells: the mean of the two readings.
    assert salts.hidden == pytest.approx(170.0)
    by_parts = field_hidden.by_parts(chance, BROKEN, CLEAR, 3)
    assert parts.hidden == pytest.approx(0.5 * (by_parts + 170.0))
    assert parts.recall == pytest.approx(n / (n + parts.hidden))
    assert parts.recall > salts.recall
    assert parts.recall_interval[0] <= parts.recall <= parts.recall_interval[1]
