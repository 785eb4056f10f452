"""A comparison read missing where random pairs never read it so: what it says among candidates."""

from __future__ import annotations

import numpy as np

from coordinator.core.field_levels import MISSING
from coordinator.core.field_partial import missing_recalibrated, partial_missing


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
