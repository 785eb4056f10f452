"""Best scores whose matches form several peaks: the salted record CLK's threshold estimate.

A salted record CLK (``record_clk = "salted"``) is made of parts, each
permuted by a key drawn from one salt field of the record (date of birth,
postcode, full name). A part whose salt differs between a child's two records
reads as chance, so a true pair's Dice falls by a step for each salt that
differs: with three parts the matches form three peaks (no salt wrong, one,
two: about 0.95, 0.8 and 0.65 on the project's generator), not the single
left-skewed hump ``score_model.Mixture`` assumes. Fitted with one hump, the
lowest peak is taken for non-matches, and the threshold lands above it (0.85
at 10% overlap, where 0.64 links best).

``PeakMixture`` is the same mixture with the match component made of up to
``peaks`` reflected-Gumbel humps (one per part a pair's salts may spoil),
fitted by EM from the two-component fit. The non-match component stays one
Gumbel: a record's best chance agreement, which for salted parts sits just
above one half whatever the data. It can be held at the runner-up scores as
``score_model.estimate`` holds the two-component one. Humps that end up
empty, or that slide down onto the non-matches, are dropped: the data then do
not show that peak, and nothing is invented for it.

Nothing here knows about runs or encodings; it reads scores only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from coordinator.core.score_model import (
    Mixture,
    Refine,
    _gumbel_lower_tail,
    _gumbel_pdf,
    _weighted_moments,
    _weighted_quantiles,
)
from hublink.spec import shipped_record_parts

Scores = NDArray[np.float64]

#: A hump holding less than this share of the matches is dropped (no such peak in the data).
MIN_PEAK = 0.01
#: EM steps from a fresh start and from a fit (the bootstrap's refits), and the summed
#: movement of share and means below which EM stops.
FIT_ITERATIONS, REFIT_ITERATIONS, TOLERANCE = 300, 60, 1e-6
#: Shares of the lowest scores EM may start the non-matches from (``_starts``).
LOW_SHARES = (0.03, 0.1, 0.25, 0.5)
#: Narrowest hump (sd): a hump is a group of pairs whose errors vary, not one score. Without
#: it, exact copies (Dice 1) make a spike the likelihood rewards above any real peak.
MIN_PEAK_SD = 0.01
#: The non-match law must end this many of its spreads below the lowest hump (``_below``);
#: a hump below the non-match mean is dropped.
PEAK_CLEARANCE = 2.0


@dataclass(frozen=True)
class PeakMixture(Mixture):
    """``Mixture`` whose matches are several reflected-Gumbel humps.

    ``match_mean`` and ``match_sd`` hold the moments of all the humps together
    (what reports and caveats read); ``peaks`` holds each hump as (share of
    the matches, mean, sd), highest first.
    """

    peaks: tuple[tuple[float, float, float], ...] = ()

    def tails(self, threshold: float) -> tuple[float, float]:
        _, non = Mixture.tails(self, threshold)
        matches = sum(w * _gumbel_lower_tail(-threshold, -m, s) for w, m, s in self.peaks)
        return matches, non

    def densities(self, x: Scores) -> tuple[Scores, Scores]:
        _, non = Mixture.densities(self, x)
        matches: Scores = np.zeros_like(x, dtype=np.float64)
        for w, m, s in self.peaks:
            matches = matches + w * _gumbel_pdf(-x, -m, s)
        return self.match_share * matches, non


def from_peaks(
    share: float, peaks: list[tuple[float, float, float]], non: tuple[float, float]
) -> PeakMixture:
    """A ``PeakMixture`` from the match share, humps (weights normalised) and non-match law."""
    total = sum(w for w, _, _ in peaks)
    humps = sorted(((w / total, m, s) for w, m, s in peaks), key=lambda p: -p[1])
    mean = sum(w * m for w, m, _ in humps)
    var = sum(w * (s * s + (m - mean) ** 2) for w, m, s in humps)
    return PeakMixture(share, mean, max(var**0.5, 1e-3), non[0], non[1], peaks=tuple(humps))


def fit_peaks(
    scores: Scores,
    start: Mixture,
    peaks: int,
    *,
    weights: Scores | None = None,
    fixed_non: tuple[float, float] | None = None,
) -> PeakMixture | None:
    """The likeliest of the EM fits from each start (``_starts``); None if none converged
    on matches. ``fixed_non`` holds the non-match law (mean, sd) as ``score_model.fit``
    does."""
    counts: Scores = np.ones(len(scores)) if weights is None else weights
    best: PeakMixture | None = None
    best_fit = -np.inf
    # A refit (the bootstrap's) starts where the data's own fit ended and moves little.
    iterations = REFIT_ITERATIONS if isinstance(start, PeakMixture) else FIT_ITERATIONS
    for share, humps, non in _starts(scores, counts, start, peaks, fixed_non):
        found = _em(scores, counts, share, humps, non, fixed_non, iterations)
        if found is None:
            continue
        high, low = found.densities(scores)
        fit = float((counts * np.log(np.maximum(high + low, 1e-300))).sum())
        if fit > best_fit:
            best, best_fit = found, fit
    return best


Hump = tuple[float, float, float]


def _em(
    scores: Scores,
    counts: Scores,
    share: float,
    humps: list[Hump],
    non: tuple[float, float],
    fixed_non: tuple[float, float] | None,
    iterations: int,
) -> PeakMixture | None:
    """EM from one start: the match share, the humps (share, mean, sd), the non-match law."""
    for _ in range(iterations):
        model = from_peaks(share, humps, non)
        low = (1 - share) * _gumbel_pdf(scores, non[0], non[1])
        parts = [share * w * _gumbel_pdf(-scores, -m, s) for w, m, s in model.peaks]
        total = low + sum(parts)
        total[total <= 0] = 1e-300
        resp = [counts * p / total for p in parts]
        matched = float(sum(r.sum() for r in resp))
        new_share = matched / float(counts.sum())
        if not 1e-3 < new_share < 1 - 1e-3:
            return None
        new_non = fixed_non or _weighted_moments(scores, counts - sum(resp))
        new_humps = [_hump(float(r.sum()) / matched, scores, r) for r in resp if r.sum() > 0]
        new_humps = [h for h in new_humps if h[0] >= MIN_PEAK and h[1] > new_non[0]]
        if new_humps and fixed_non is None:
            new_non = _below(new_non, min(h[1] for h in new_humps))
        new_humps = [h for h in new_humps if h[1] > new_non[0] + PEAK_CLEARANCE * new_non[1]]
        if not new_humps:
            return None
        changed = len(new_humps) != len(model.peaks)
        moved = abs(new_share - share) + abs(new_non[0] - non[0])
        moved += sum(abs(a[1] - b[1]) for a, b in zip(model.peaks, new_humps, strict=False))
        share, non, humps = new_share, new_non, new_humps
        if moved < TOLERANCE and not changed:
            break
    found = from_peaks(share, humps, non)
    return found if found.match_mean > found.non_mean else None


def _below(non: tuple[float, float], lowest: float) -> tuple[float, float]:
    """The non-match law narrowed, if need be, to end ``PEAK_CLEARANCE`` spreads below the
    lowest hump's mean. A best chance score is the largest of many, and such maxima
    cluster tightly; a wide non-match law is one that has taken in a peak of matches. Not
    narrower than ``MIN_PEAK_SD``: then the hump goes instead (``_em``)."""
    return non[0], max(MIN_PEAK_SD, min(non[1], (lowest - non[0]) / PEAK_CLEARANCE))


def _hump(share: float, scores: Scores, weights: Scores) -> Hump:
    mean, sd = _weighted_moments(scores, weights)
    return share, mean, max(sd, MIN_PEAK_SD)


def _starts(
    scores: Scores,
    counts: Scores,
    start: Mixture,
    peaks: int,
    fixed_non: tuple[float, float] | None,
) -> list[tuple[float, list[Hump], tuple[float, float]]]:
    """Where EM starts: from ``start`` (its humps, or its match component cut into
    ``peaks``), and from the lowest scores (each of ``LOW_SHARES``) as non-matches with the
    rest cut by count into ``peaks`` equal shares. The latter matter when the two-component
    fit's non-match law has swallowed the lowest peak: every hump would start far above it.
    ``fit_peaks`` keeps the likeliest end."""
    out = []
    humps = _start_humps(scores, counts, start, peaks)
    if humps:
        out.append((start.match_share, humps, (start.non_mean, start.non_sd)))
    if isinstance(start, PeakMixture):
        return out
    for low in LOW_SHARES:
        cuts = _weighted_quantiles(
            scores, counts, [low + (1 - low) * k / peaks for k in range(peaks)]
        )
        groups = []
        for lo, hi in itertools.pairwise([-np.inf, *cuts, np.inf]):
            inside = (scores >= lo) & (scores < hi)
            if counts[inside].sum() > 0:
                groups.append(_hump(float(counts[inside].sum()), scores[inside], counts[inside]))
        if len(groups) >= 2:
            non = fixed_non or (groups[0][1], groups[0][2])
            out.append((1 - groups[0][0] / float(counts.sum()), groups[1:], non))
    return out


def _start_humps(scores: Scores, counts: Scores, start: Mixture, peaks: int) -> list[Hump]:
    if isinstance(start, PeakMixture) and start.peaks:
        return list(start.peaks)
    high, low = start.densities(scores)
    total = high + low
    total[total <= 0] = 1e-300
    w = counts * high / total
    if w.sum() <= 0:
        return []
    cuts = _weighted_quantiles(scores, w, [k / peaks for k in range(1, peaks)]) if peaks > 1 else ()
    edges = [-np.inf, *cuts, np.inf]
    humps = []
    for lo, hi in itertools.pairwise(edges):
        inside = (scores >= lo) & (scores < hi) & (w > 0)
        if w[inside].sum() > 0:
            humps.append(_hump(float(w[inside].sum()), scores[inside], w[inside]))
    return humps


def refiner(peaks: int) -> Refine:
    """What ``score_model.estimate`` calls to refine its two-component fit (and to refit
    each bootstrap sample from it): ``fit_peaks`` with up to ``peaks`` match humps."""

    def refine(
        scores: Scores, start: Mixture, weights: Scores, fixed_non: tuple[float, float] | None
    ) -> Mixture | None:
        return fit_peaks(scores, start, peaks, weights=weights, fixed_non=fixed_non)

    return refine


def peaks_for(record_clk: str) -> int:
    """How many humps a project's true-pair scores may form: for a salted record CLK, one
    for each number of salts that can differ while some part still agrees (0 to parts - 1),
    and one for exact copies (Dice 1, a spike of its own); else one."""
    return len(shipped_record_parts()) + 1 if record_clk == "salted" else 1
