"""A comparison read missing where random pairs never read it so: what it says among candidates."""

from __future__ import annotations

import dataclasses

import numpy as np

from coordinator.core.field_estimate import Prepared, on_output
from coordinator.core.field_levels import MISSING
from coordinator.core.field_model import ACROSS, WITHIN
from coordinator.core.field_partial import (
    missing_rates,
    missing_recalibrated,
    partial_missing,
    recalibrated,
    shifted,
)


def test_only_comparisons_random_pairs_never_lack_count_as_partial() -> None:
    # Comparison 0 (a salted date) reads missing for one candidate and no random pair;
    # comparison 1 (an NHS number) is missing for candidates and random pairs alike.
    levels = np.array([[0, MISSING, 2], [MISSING, MISSING, 0]])
    random_levels = np.array([[3, 4, 5, 3], [MISSING, 1, MISSING, MISSING]])
    assert partial_missing(levels, random_levels).tolist() == [
        [False, True, False],
        [False, False, False],
    ]


def candidates(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4,000 candidates, one in five a match; a slipped date reads missing for 20% of the
    matches and 1% of the rest; the model's probability (its other evidence) is calibrated
    without it, as a model that takes missing to weigh neither way has it."""
    rng = np.random.default_rng(seed)
    match = rng.random(4000) < 0.2
    odds = np.where(match, rng.normal(1.5, 1.5, 4000), rng.normal(-3.5, 1.5, 4000))
    chance = 1 / (1 + np.exp(-odds))
    slipped = rng.random(4000) < np.where(match, 0.2, 0.01)
    return chance, slipped[None, :], match


def test_a_missing_that_marks_matches_raises_the_pairs_that_show_it() -> None:
    chance, partial, match = candidates(3)
    found = missing_recalibrated(chance, partial)
    slipped = partial[0]
    # The model's own figure for those pairs is short of the truth; recalibrated, closer.
    truth = match[slipped].sum()
    assert abs(found[slipped].sum() - truth) < abs(chance[slipped].sum() - truth) / 2
    # Not showing it is weak evidence the other way, and the pairs without it say so too.
    rest = match[~slipped].sum()
    assert abs(found[~slipped].sum() - rest) < abs(chance[~slipped].sum() - rest)
    assert abs(found.sum() - match.sum()) < 0.03 * match.sum()


def test_nothing_read_missing_leaves_the_models_probabilities() -> None:
    chance, partial, _ = candidates(4)
    assert missing_recalibrated(chance, np.zeros_like(partial)) is chance


def test_duplicates_borrow_what_a_missing_says_across_organisations() -> None:
    # Cross candidates teach the rates; 300 duplicates' candidates, drawn alike, take them.
    chance, partial, _ = candidates(3)
    rates = missing_rates(chance, partial)
    own, used = recalibrated(chance, partial)
    assert (
        used is not None
        and np.allclose(used[0], rates[0])
        and np.allclose(own, shifted(chance, partial, *rates))
    )
    dup_chance, dup_partial, _ = candidates(5)
    dup_chance, dup_partial = dup_chance[:300], dup_partial[:, :300]
    lent, kept = recalibrated(dup_chance, dup_partial, rates)
    assert kept is rates
    slipped = dup_partial[0]
    assert (lent[slipped] > dup_chance[slipped]).all()
    assert (lent[~slipped] <= dup_chance[~slipped]).all()
    # No partial comparisons known: the model's own, and nothing learnt.
    assert recalibrated(dup_chance, None) == (dup_chance, None)


def test_a_run_counts_duplicates_slipped_dates_as_it_does_across() -> None:
    # 4,000 cross candidates, and the duplicates' candidates that show a slipped date, from
    # one process, nothing grouped: the duplicates' expected matches come nearer the truth
    # with the slipped date weighed as the cross pairs taught (they are too few to teach it).
    chance, partial, _ = candidates(3)
    dup_chance, dup_partial, dup_match = candidates(6)
    slipped = dup_partial[0]
    dup_chance, dup_partial, dup_match = (
        dup_chance[slipped],
        dup_partial[:, slipped],
        dup_match[slipped],
    )
    n, m = len(chance), len(dup_chance)
    both = np.concatenate([chance, dup_chance])
    every = np.concatenate([partial, dup_partial], axis=1)
    prepared = Prepared(
        left=np.arange(0, 2 * (n + m), 2),
        right=np.arange(1, 2 * (n + m), 2),
        kinds=np.array([ACROSS] * n + [WITHIN] * m),
        chance=both,
        draws=np.tile(both, (4, 1)).astype(np.float32),
        broken=np.zeros(n + m, dtype=np.int64),
        parts=0,
        missing=every.sum(axis=0),
        partial=every,
    )
    group = np.full(2 * (n + m), -1)
    dataset = np.array([0, 1] * n + [0, 0] * m)
    weighed = on_output(prepared, group, dataset).within
    unweighed = on_output(dataclasses.replace(prepared, partial=None), group, dataset).within
    assert weighed is not None and unweighed is not None
    truth = dup_match.sum()
    assert abs(weighed.expected_matches - truth) < 0.6 * abs(unweighed.expected_matches - truth)
