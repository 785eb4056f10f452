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
    return shifted(chance, partial, *missing_rates(chance, partial, rounds))


def missing_rates(
    chance: np.ndarray, partial: np.ndarray, rounds: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """[comparison]: each partial-disagreement comparison's share read missing among
    matches and among the rest, by EM over ``chance``'s candidates (``missing_recalibrated``);
    a comparison none of them reads missing gets equal shares, so it moves no pair."""
    p0 = np.clip(chance, 1e-9, 1 - 1e-9)
    seen = partial.any(axis=1)
    miss = partial.astype(np.float64)
    out = p0
    m, u = np.full(len(partial), 0.5), np.full(len(partial), 0.5)
    for _ in range(rounds):
        m[seen] = (miss[seen] @ out + 0.5) / (out.sum() + 1.0)
        u[seen] = (miss[seen] @ (1 - out) + 0.5) / ((1 - out).sum() + 1.0)
        out = shifted(p0, partial, m, u)
    return m, u


def shifted(chance: np.ndarray, partial: np.ndarray, m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``chance`` with each pair's log odds moved by what its partial-disagreement missing
    comparisons say at rates ``m`` (among matches) and ``u`` (the rest). Comparisons no
    candidate reads missing leave every pair where it was."""
    if not len(chance):
        return chance
    p0 = np.clip(chance, 1e-9, 1 - 1e-9)
    rows = partial.any(axis=1)
    if not rows.any():
        return chance
    miss = partial[rows].astype(np.float64)
    mr, ur = m[rows], u[rows]
    shift = miss.T @ np.log(mr / ur) + (1 - miss).T @ np.log((1 - mr) / (1 - ur))
    found: np.ndarray = 1.0 / (1.0 + np.exp(-(np.log(p0 / (1 - p0)) + shift)))
    return found


def recalibrated(
    chance: np.ndarray,
    partial: np.ndarray | None,
    rates: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """``chance`` recalibrated for partial-disagreement missing where it is known (None: the
    model's own), with the rates it used (``missing_rates``). ``rates`` given: those, learnt
    on another kind of pair, not these candidates'.

    ``field_estimate`` learns the rates on cross pairs and lends them to duplicates: learnt
    on duplicates' own 60-130 matches, EM moved within recall by noise (mean error 1.2 to
    2.0 points, 2,000 a side), yet left alone their pairs with two or three comparisons
    read missing held 33 matches where the model expected 13 over 18 settings
    (bench/estimate_replay.py --split). What a slipped date or a partly shared postcode
    says of a pair is the same inside an organisation as across. Refits are left as the
    model has them, so their spread is the model's and not one the recalibration evens out
    (it narrowed across precision's interval by a quarter and its coverage fell)."""
    if partial is None:
        return chance, None
    if rates is None:
        if not len(chance) or not partial.any():
            return chance, None
        rates = missing_rates(chance, partial)
    return shifted(chance, partial, *rates), rates
