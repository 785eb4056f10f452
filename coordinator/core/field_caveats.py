"""Caveats the field model's figures carry beyond those of its own refits (``field_estimate``).

On a default run (field scoring on, salted record CLK) the report's headline is
the field model's precision and recall, so a reason to doubt them must travel
with those figures, not only with the record-level mixture's that they replace.
Each check below reads aggregates only (counts of candidates, the model's
cut-offs) and says in plain words why a figure means less than it seems.
"""

from __future__ import annotations

from collections.abc import Iterable

from coordinator.core.caveats import Caveat

#: Fewer candidate pairs of a kind than this and the model's figures for that kind rest on
#: too little: EM fits three classes' chances of every level from them.
FEW_CANDIDATES = 200
#: Fewer expected matches of a kind than this and one pair moves its recall by more than
#: half a point: "within 1.5 points" is then three pairs, which the truth's own chance
#: spread (each pair a match with its probability) exceeds whatever the model.
COARSE_MATCHES = 200
#: Recall that chance alone (which doubtful pairs are matches) spreads wider than this
#: either way (95%) cannot be estimated to the issue's tolerance by any estimate.
CHANCE_SPREAD = 0.015
#: A cut-off this close to ``field_model.MIN_CUT`` is said to sit at its bound.
NEAR_BOUND = 0.01
#: Caveats of the record-level estimate that say something about the candidates themselves
#: (which pairs ever became candidates), so they hold for the field model's figures too.
ABOUT_CANDIDATES = frozenset({"blocking", "dense_record_clk", "floors_lifted"})

_NAMES = {"across": "across organisations", "within": "inside one organisation"}


def few_candidates(code: str, candidates: int) -> Caveat | None:
    """Too few candidate pairs of a kind: the model learnt what a match looks like there
    from a handful of pairs, so its probabilities (and the figures summed from them) are
    guesses whatever interval they come with."""
    if candidates >= FEW_CANDIDATES:
        return None
    return Caveat(
        f"few_field_candidates_{code}",
        f"only {candidates} candidate pairs {_NAMES[code]}: too few for the field model's "
        "precision and recall there to be relied on",
        untrusted=True,
    )


def cut_at_bound(code: str, cut: float, lowest: float) -> Caveat | None:
    """The model's cut-off pinned at the lowest it may take (``lowest``): its expected F1
    was still rising there, so it holds many pairs it thinks are as likely strangers as
    matches, and its precision is the model's own guess about those pairs."""
    if cut > lowest + NEAR_BOUND:
        return None
    return Caveat(
        f"cut_at_bound_{code}",
        f"{_NAMES[code]}, the field model's cut-off sits at its lowest allowed probability "
        f"({lowest:.2f}): it links many pairs it cannot tell from strangers, so precision "
        "there is its own guess",
        untrusted=True,
    )


def coarse(code: str, expected_matches: float) -> Caveat | None:
    """A kind's figures rest on so few matching pairs that one pair moves them by more than
    half a point (``COARSE_MATCHES``): the figure is a count of a few dozen pairs, and its
    interval, not its point, is what to read. Duplicates inside an organisation are the
    usual case (about 70 pairs at 1,000 records a side): their point estimates were 2-7
    points from the truth in single settings while their intervals covered it."""
    if expected_matches >= COARSE_MATCHES or expected_matches <= 0:
        return None
    step = 100.0 / expected_matches
    return Caveat(
        f"coarse_figures_{code}",
        f"{_NAMES[code]}, the figures rest on about {expected_matches:.0f} matching pairs: one "
        f"pair moves recall by {step:.1f} points, so read the interval, not the point",
    )


def chance_spread(code: str, spread: float) -> Caveat | None:
    """Recall that no estimate can pin closer than ``spread`` (95%, a share): even were
    every probability the model gives right, which of its doubtful pairs are matches
    (those left out, those hidden under the floor) is chance, and it moves the true recall
    that far (``field_estimate.recall_chance_spread``). Inside one organisation at 2,000
    records a side that was 2-4 points: the point estimates' errors were of that size
    while the intervals covered the truth (bench/estimate_replay.py)."""
    if spread <= CHANCE_SPREAD:
        return None
    return Caveat(
        f"chance_spread_{code}",
        f"{_NAMES[code]}, which of the doubtful pairs are matches moves recall by about "
        f"{spread * 100:.1f} points either way even if the field model is right: no "
        "estimate can read it closer, so read the interval",
    )


def about_candidates(caveats: Iterable[Caveat]) -> tuple[Caveat, ...]:
    """The record-level caveats that hold for the field model too (``ABOUT_CANDIDATES``):
    they say which pairs were ever compared, and the model scored only those."""
    return tuple(c for c in caveats if c.code in ABOUT_CANDIDATES)
