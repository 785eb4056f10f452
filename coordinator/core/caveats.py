"""When a run's own estimate of its accuracy cannot be trusted, and why, in plain words.

A mixture fitted to similarity scores always returns numbers, and a report
that prints them with a tight interval looks authoritative even when the fit
rests on a few dozen matches, on scores with no valley between matches and
non-matches, or on a threshold pinned at the lowest score the run ever looked
at (FEBRL4 once claimed recall 0.996 there against a true 0.920). Each check
here turns one such condition into a :class:`Caveat` that travels with the
estimate into the stored report, ``quality.html``, ``hublink admin quality``
and the demo's printed line, so a reader is told instead of reassured.

``untrusted`` caveats mean "do not rely on the figure"; the others say what
the figure does and does not count. Nothing here holds a record or a pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

#: Fewer best scores than this and the interval is wide: say so.
FEW_SCORES = 500
#: Fewer estimated matches than this and the match component is a guess.
FEW_MATCHES = 50
#: A threshold this close to the candidate floor sits "at the floor".
AT_FLOOR = 0.0025
#: The mixture's lowest density between the two means, over the smaller of its two peaks:
#: above this there is no valley to put a threshold in.
NO_VALLEY = 0.5
#: Matches estimated to score below the floor, above this share, are said to be extrapolated.
BELOW_FLOOR = 0.01
#: Bootstrap refits failing more often than this make the spread itself unreliable.
UNSTABLE = 0.2
#: Below this share of best scores that are matches, badly recorded matches hide among chance
#: scores: on generated data at 10% overlap recall was still 1.5-4.7 points too high.
LOW_MATCH_SHARE = 0.15
#: Blocking measured to miss more than this share of true-looking pairs: recall rests on
#: the miss rate measured on a small sample, so it is not to be trusted.
BLOCKING_UNTRUSTED = 0.05


class Mixture(Protocol):
    """What the checks read of ``score_model.Mixture`` (which imports this module)."""

    @property
    def match_share(self) -> float: ...
    @property
    def match_mean(self) -> float: ...
    @property
    def non_mean(self) -> float: ...
    def densities(
        self, x: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
    def tails(self, threshold: float) -> tuple[float, float]: ...


@dataclass(frozen=True)
class Caveat:
    """One reason to read an estimate with care: a stable ``code`` and a sentence for people."""

    code: str
    message: str
    untrusted: bool = False
    """True: the figure should not be relied on at all; False: it means less than it seems."""


def valley_depth(mixture: Mixture) -> float:
    """Lowest mixture density between the two component means, over the lower of the densities
    at the means: near 0 for two well-separated groups, near 1 when there is no valley."""
    grid = np.linspace(mixture.non_mean, mixture.match_mean, 401)
    matches, non = mixture.densities(grid)
    total = matches + non
    peaks = min(float(total[0]), float(total[-1]))
    return float(total.min() / peaks) if peaks > 0 else 1.0


def check(
    mixture: Mixture,
    *,
    scores: int,
    threshold: float,
    floor: float,
    fits_failed: float,
    completeness: float,
) -> tuple[Caveat, ...]:
    """The caveats an estimate from ``mixture`` at ``threshold`` carries."""
    out: list[Caveat] = []
    matches = mixture.match_share * scores
    if matches < FEW_MATCHES:
        out.append(
            Caveat(
                "few_matches",
                f"only about {matches:.0f} of the {scores} best scores look like matches: too "
                "few to estimate precision and recall from",
                untrusted=True,
            )
        )
    elif scores < FEW_SCORES:
        out.append(
            Caveat(
                "few_candidates",
                f"the estimate rests on {scores} best scores; its interval is wide",
            )
        )
    depth = valley_depth(mixture)
    if depth > NO_VALLEY:
        out.append(
            Caveat(
                "no_valley",
                "the scores show no clear valley between matches and non-matches "
                f"(the dip between them is {depth:.0%} of the lower peak): where to put the "
                "threshold, and the precision and recall there, are guesses",
                untrusted=True,
            )
        )
    if threshold <= floor + AT_FLOOR:
        out.append(
            Caveat(
                "threshold_at_floor",
                f"the threshold sits at the candidate floor ({floor:.2f}), the lowest score the "
                "run looked at: matches below it were never seen, so recall may be far lower "
                "than estimated",
                untrusted=True,
            )
        )
    elif threshold >= mixture.match_mean - AT_FLOOR:
        out.append(
            Caveat(
                "threshold_at_bound",
                "the threshold sits at the top of its search range (the matches' mean): the "
                "fit is implausible",
                untrusted=True,
            )
        )
    below = 1.0 - mixture.tails(floor)[0]
    if below > BELOW_FLOOR:
        out.append(
            Caveat(
                "matches_below_floor",
                f"about {below:.1%} of matches are estimated to score below the candidate floor "
                f"({floor:.2f}); recall counts them as missed, by extrapolating the fit",
            )
        )
    if fits_failed > UNSTABLE:
        out.append(
            Caveat(
                "unstable",
                f"{fits_failed:.0%} of the bootstrap refits found no two groups: the interval "
                "understates the uncertainty",
                untrusted=True,
            )
        )
    if matches >= FEW_MATCHES and mixture.match_share < LOW_MATCH_SHARE:
        out.append(
            Caveat(
                "low_match_share",
                f"only {mixture.match_share:.0%} of the best scores look like matches: matches "
                "with large recording errors score like chance agreements and cannot be counted, "
                "so recall may be a few points lower than estimated",
            )
        )
    if completeness < 1.0:
        out.append(
            Caveat(
                "blocking",
                "blocking compared only likely pairs; it finds a pair at the design threshold "
                f"with chance {completeness:.3f}, and recall is lowered for the pairs it missed",
            )
        )
    return tuple(out)


def with_blocking_measured(found: tuple[Caveat, ...], missed: float | None) -> tuple[Caveat, ...]:
    """The caveats with blocking's promise replaced by what it was measured to miss.

    ``missed`` is the share of true-looking pairs of a random sample of records
    that blocking did not compare (``output_recall.blocking_miss``); None: the
    run did not block, or it could not be measured, and the caveats stand.
    """
    if missed is None:
        return found
    kept = tuple(c for c in found if c.code != "blocking")
    return (
        *kept,
        Caveat(
            "blocking",
            "blocking compared only likely pairs; on a random sample of records compared with "
            f"everyone it missed {missed:.1%} of the pairs that look like matches, and recall "
            "counts those as missed",
            untrusted=missed > BLOCKING_UNTRUSTED,
        ),
    )
