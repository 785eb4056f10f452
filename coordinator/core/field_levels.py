"""Agreement levels of a per-field filter comparison, learnt from the run's own scores.

A per-field filter (``LinkageSpec.field_groups``) is balanced and has its bits
flipped at the node, so the Dice score of two of them is the share of positions
they agree on. Where that share lands depends on the group: how many tokens
its fields make, how many bits each token sets, how many bits the node flips.
Two filters of the same value land at ``exact`` = 1 - q, where q = 2 f (1 - f)
is the chance exactly one side flipped a position (f: ``group_flip``), and two
unrelated filters land about ``chance``, which depends on how full the filter
is and which this module learns as the median Dice of random record pairs.

A comparison's agreement level is therefore read on the scale between the two:
the share of the way from ``exact`` down to ``chance`` that a pair has fallen
(its *drop*). ``DROPS`` cuts that scale into levels, level 0 the best. A drop
of 0.08 is about three times the spread flips alone give a 1024-bit filter;
then one differing token of a date or a name's bigram (0.2-0.35), several
(0.35-0.55), little in common (0.55-0.8) and no more than chance (0.8 and
below). Nothing here names a field: the groups are data.

What a level cannot tell: within one filter a day/month swap (one token of the
birth group: the order of day and month) and a one-digit slip (one positional
token of the sorted date) both move the score by one token's bits, so they
share a level (see ``docs/design.md``); a field missing on one side looks like
partial disagreement, because balancing hides how full each filter is. The
exception is the filters of fields a project adds (an address line, a local
id), which a node sends all-zero for a missing value: their score is NaN
(``field_scoring.compare``) and their level ``MISSING``, which the field model
leaves out of a pair's likelihood and of every count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Cut points on the drop scale (0 = identical filters, 1 = unrelated ones) between levels.
DROPS = (0.08, 0.2, 0.35, 0.55, 0.8)
#: Number of agreement levels of every comparison.
LEVELS = len(DROPS) + 1
#: The level of a comparison whose value one side lacks (a NaN score): no evidence either way.
MISSING = -1
#: The smallest gap between ``exact`` and ``chance`` a group's scale is allowed, so that a
#: group whose random pairs already agree almost fully still has a usable scale.
_MIN_SPAN = 0.05


def exact_score(flip: float) -> float:
    """The Dice score of two balanced filters of the same value once each flipped bits."""
    return 1.0 - 2.0 * flip * (1.0 - flip)


@dataclass(frozen=True)
class Scale:
    """One group's scale: where identical filters and unrelated filters score."""

    exact: float
    chance: float

    def drop(self, dice: np.ndarray) -> np.ndarray:
        """How far each score fell from ``exact`` towards ``chance`` (0 identical, 1 unrelated)."""
        span = max(self.exact - self.chance, _MIN_SPAN)
        found: np.ndarray = (self.exact - np.asarray(dice, dtype=np.float64)) / span
        return found

    def levels(self, dice: np.ndarray) -> np.ndarray:
        """Each score's agreement level, 0 (as good as identical) to ``LEVELS - 1`` (chance);
        ``MISSING`` for a NaN score."""
        drop = self.drop(dice)
        found = np.searchsorted(np.asarray(DROPS), np.nan_to_num(drop), side="right")
        out: np.ndarray = np.where(np.isnan(drop), MISSING, found).astype(np.int64)
        return out


def learn_scales(random_scores: Mapping[str, np.ndarray], flip: float) -> dict[str, Scale]:
    """Each group's scale from the Dice scores of random record pairs of the run."""
    exact = exact_score(flip)
    out = {}
    for group, scores in random_scores.items():
        known = np.asarray(scores)[~np.isnan(scores)]
        chance = float(np.median(known)) if len(known) else 0.5
        out[group] = Scale(exact, min(chance, exact - _MIN_SPAN))
    return out


def levels_of(scales: Mapping[str, Scale], scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """The levels of many pairs: one row per group (in ``scales`` order), one column a pair."""
    rows = [scales[group].levels(scores[group]) for group in scales]
    if not rows:
        return np.zeros((0, 0), dtype=np.int64)
    return np.vstack(rows)
