"""What a comparison read missing says among candidates, when random pairs never read it so.

The field model takes a missing comparison to weigh neither way: right for an absent
value (the NHS number, which most pairs lack), and it learns u from random pairs, which
never read a salted comparison missing. Among candidates a comparison also reads missing
where a partial disagreement (a date slip, a move, a respelt name) shows its salts differ,
and that does point one way or the other. ``field_estimate`` recalibrates the candidates'
probabilities for it before counting; the run's links are left as the model made them.
"""

from __future__ import annotations

import numpy as np

from coordinator.core.field_levels import MISSING


def partial_missing(levels: np.ndarray, random_levels: np.ndarray) -> np.ndarray:
    """[comparison, candidate]: where a candidate's comparison reads missing although no
    random pair's does.

    Random pairs read a comparison missing only where a value is absent (the NHS number,
    mostly); where none of them does, missing can only mean its salts were shown to differ
    by a partial disagreement (a date slip, a move, a respelt name), which says something
    about the pair, unlike an absent value (``missing_recalibrated``)."""
    never = ~(random_levels == MISSING).any(axis=1)
    found: np.ndarray = (levels == MISSING) & never[:, None]
    return found


def missing_recalibrated(chance: np.ndarray, partial: np.ndarray, rounds: int = 20) -> np.ndarray:
    """The candidates' probabilities with what a partial-disagreement missing says learnt
    from the candidates: each such comparison's share reading missing among matches and
    among the rest, by EM over the candidates (each pair weighed by its probability), its
    ratio added to the pair's log odds; the rest of the evidence is the model's.

    The model takes missing to weigh neither way, true of an absent value; a comparison
    that reads missing because its salts partly differ (``partial_missing``) is another
    matter, and random pairs, where the model learns its u, never show it, so only the
    candidates can say which way it points: a slipped date of birth marks a match (cross
    pairs at doubled errors: 3.9% of matches, 0.2% of the rest), a partly shared postcode
    a neighbour (0.4% against 9%). Pairs with one read missing were under-called linked
    and rejected alike (rejected ones held 15 matches against 3.4 expected at doubled
    errors, 10% overlap, 1,000 a side: bench/estimate_replay.py --split). Half a pair is
    added to each count so a comparison few candidates read missing moves little.
    """
    if not len(chance) or not partial.any():
        return chance
    p0 = np.clip(chance, 1e-9, 1 - 1e-9)
    base = np.log(p0 / (1 - p0))
    rows = partial.any(axis=1)
    miss = partial[rows].astype(np.float64)
    out = p0
    for _ in range(rounds):
        m = (miss @ out + 0.5) / (out.sum() + 1.0)
        u = (miss @ (1 - out) + 0.5) / ((1 - out).sum() + 1.0)
        shift = miss.T @ np.log(m / u) + (1 - miss).T @ np.log((1 - m) / (1 - u))
        out = 1.0 / (1.0 + np.exp(-(base + shift)))
    found: np.ndarray = out
    return found


def recalibrated(chance: np.ndarray, partial: np.ndarray | None) -> np.ndarray:
    """``chance`` recalibrated for partial-disagreement missing where it is known (None: the
    model's own). ``field_estimate`` passes it for cross pairs only: duplicates' figures
    rest on 60-130 matches and EM over them moved within recall by noise (mean error 1.2 to
    2.0 points, 2,000 a side). Refits are left as the model has them, so their spread is the
    model's and not one the recalibration evens out (it narrowed across precision's interval
    by a quarter and its coverage fell)."""
    return chance if partial is None else missing_recalibrated(chance, partial)
