"""Matches hidden under the floor, per kind of pair: the count read where its evidence is."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.core import field_hidden
from coordinator.core.field_hidden import (
    hidden_by_kind,
    hidden_draws_by_kind,
    hidden_matches,
    source_kind,
)
from coordinator.core.field_model import ACROSS, WITHIN

#: 1,000 clean cross matches, 100 with only the date broken, 200 only the postcode: 20
#: expected with both, 12 of them candidates, so 8 hidden: two for every three found.
ACROSS_SUMS = (1000.0, [100.0, 200.0, 0.0], 12.0)
#: 50 duplicates, 20 with the date broken, 20 the postcode: independence says 8 break both;
#: 6 were found.
WITHIN_SUMS = (50.0, [20.0, 20.0, 0.0], 6.0)


def test_the_kind_with_most_broken_matches_found_is_the_source() -> None:
    assert source_kind({ACROSS: ACROSS_SUMS, WITHIN: WITHIN_SUMS}) == ACROSS
    assert source_kind({ACROSS: (10.0, [1.0, 1.0, 0.0], 0.0), WITHIN: WITHIN_SUMS}) == WITHIN
    assert source_kind({ACROSS: (10.0, [1.0, 1.0, 0.0], 0.0)}) is None


def test_duplicates_borrow_the_cross_pairs_ratio_of_hidden_to_found() -> None:
    found = hidden_by_kind({ACROSS: ACROSS_SUMS, WITHIN: WITHIN_SUMS})
    assert found[ACROSS] == pytest.approx(hidden_matches(*ACROSS_SUMS)) == pytest.approx(8.0)
    # Independence alone would say 8 - 6 = 2; the floors hide two for every three found.
    assert hidden_matches(*WITHIN_SUMS) == pytest.approx(2.0)
    assert found[WITHIN] == pytest.approx(6.0 * 8.0 / 12.0)


def test_a_run_with_one_kind_counts_it_by_independence() -> None:
    assert hidden_by_kind({WITHIN: WITHIN_SUMS}) == {WITHIN: pytest.approx(2.0)}
    nothing = (10.0, [1.0, 1.0, 0.0], 0.0)
    assert hidden_by_kind({ACROSS: nothing}) == {ACROSS: pytest.approx(hidden_matches(*nothing))}


def test_drawn_hidden_counts_centre_on_the_point_and_share_the_sources_ratio() -> None:
    draws = hidden_draws_by_kind(
        {ACROSS: ACROSS_SUMS, WITHIN: WITHIN_SUMS}, 4000, np.random.default_rng(5)
    )
    assert draws[ACROSS].min() >= 0 and draws[WITHIN].min() >= 0
    assert np.median(draws[ACROSS]) == pytest.approx(8.0, abs=3.0)
    assert draws[WITHIN].mean() == pytest.approx(draws[ACROSS].mean() * 6.0 / 12.0, rel=0.1)
    # Where the source hides none, the borrowing kind hides none either.
    assert (draws[WITHIN][draws[ACROSS] == 0] == 0).all()


def test_hidden_draws_allow_salts_that_break_together_more_or_less_than_independence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Plenty of matches, so the counts' own noise is small: 2,000 with no part broken,
    # 400 with each one part; independence expects 256 with two or more, 200 are found.
    sums = (2000.0, [400.0, 400.0, 400.0], 200.0)
    monkeypatch.setattr(field_hidden, "DEPENDENCE", 0.0)
    tight = field_hidden.hidden_draws(sums, 4000, np.random.default_rng(0))
    monkeypatch.setattr(field_hidden, "DEPENDENCE", 0.12)
    loose = field_hidden.hidden_draws(sums, 4000, np.random.default_rng(0))
    assert np.median(loose) == pytest.approx(np.median(tight), abs=3)
    # A run where none was hidden (two or more salts broke 22% less often than independence
    # says) lies inside the loose draws' 95% and outside the tight ones'.
    assert np.quantile(tight, 0.025) > 0 and np.quantile(loose, 0.025) == 0
