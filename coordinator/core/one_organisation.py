"""A run of a project of one organisation: deduplication, with no other dataset to link to.

A council deduplicating its own referrals is a project with one organisation,
so its runs have one dataset and no cross-organisation pair. The stages that
learn from cross-organisation pairs take their place from here:

- the threshold estimate rests on each record's best score in *another*
  dataset, so there is none; the run links at its fallback threshold and its
  quality report says why (``estimate``);
- the per-field model learns what one child's two records look like from
  cross-organisation links; here it learns it from the organisation's own
  pairs that are each other's best candidate at or above the stricter of the
  run's threshold and the project's ``within_threshold`` (``model_anchors``).
  At the cross threshold alone those pairs include siblings sharing a surname,
  address and birth month, and the model would learn to link them.

Without per-field filters the project's ``within_threshold`` decides alone, as
it does for the within-organisation pairs of any run.
"""

from __future__ import annotations

import numpy as np

from coordinator.core import matching, quality
from coordinator.core.field_scoring import mutual_best
from coordinator.core.model import Project

#: Why a one-organisation run has no threshold estimate: the note its quality report shows.
NOTE = (
    "one organisation: there are no cross-organisation scores to estimate a threshold from, "
    "so the run used the fallback threshold and grouped duplicate referrals within the "
    "organisation only (with field filters, the per-field model learnt one child's two "
    "records from the organisation's own pairs that are each other's best at or above the "
    "higher of the threshold and within_threshold; without them, within_threshold decided)"
)


def estimate() -> quality.Estimate:
    """The threshold estimate of a one-dataset run: none, and why (``NOTE``)."""
    return quality.Estimate(False, NOTE, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)


def sure_pairs(within: matching.Candidates, project: Project, threshold: float) -> np.ndarray:
    """Which of a one-dataset run's pairs the per-field model may take as almost surely one
    child: each record's best candidate in its own dataset, both ways, at or above the
    stricter of ``threshold`` and the project's ``within_threshold``."""
    sims = np.asarray(matching.arrays(within)[0])
    return mutual_best(within) & (sims >= max(threshold, project.within_threshold))
