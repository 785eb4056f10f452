"""What a run's scores say without the truth: a threshold and precision/recall estimated from them.

The coordinator sees similarity scores (it never releases them), and they are
enough to estimate how well a run links. For every record and every *other*
dataset we take the record's best cross-dataset Dice score above a floor:
records held elsewhere have a high best score, records nobody else holds have
the best of many chance agreements, which sits just above the floor. A
two-component extreme-value mixture fitted by EM to those best scores
separates the two groups (if the weighted densities never cross, there is
nothing to estimate); precision and recall at any threshold follow from the
fitted tails, and the threshold chosen is the one that maximises the
estimated F1. A bootstrap over the scores gives the estimates' spread.

Estimates are per record (is this record's best partner a true match, is a
record with a match found?), not per pair of an entity, and the model is a
simple one: read them as a guide and a warning light, not as audited figures.
When the scores cannot support a fit (too few, all equal, no two groups) the
estimate says why and the run keeps the project's threshold.

Nothing here knows about gRPC, SQLite or organisations; nothing it returns
holds a record or a pair, only aggregates.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from coordinator.core.matching import Candidates, arrays

#: Cross-dataset candidates are generated down to this Dice score to see the non-matches.
#: Random pairs of balanced 2048-bit CLKs sit near 0.55-0.6; below 0.7 candidates explode.
FLOOR = 0.7
#: Fewer best scores than this and the mixture is not estimated.
MIN_SCORES = 50
#: Links this close to the threshold (either side) are counted as "near the threshold".
NEAR = 0.02

Scores = NDArray[np.float64]


@dataclass(frozen=True)
class Mixture:
    """Best scores as a mixture of two extreme-value laws: matches (high) and non-matches (low).

    A non-match's best score is the largest of many chance agreements, and
    maxima follow a Gumbel law: right-skewed, with a longer upper tail than a
    Gaussian would give, which matters at low overlap where non-matches are
    most of the scores. A match's score is pulled down by whichever error hits
    it hardest, so matches get a Gumbel reflected the other way (left-skewed).
    Both were chosen by checking fits against the truth on generated data
    (bench/threshold.py); Gaussians put the threshold 0.04 too low at 10%
    overlap. Parameters are each component's mean and standard deviation.
    """

    match_share: float
    match_mean: float
    match_sd: float
    non_mean: float
    non_sd: float

    def tails(self, threshold: float) -> tuple[float, float]:
        """Share of matches and of non-matches at or above ``threshold``."""
        return (
            _gumbel_lower_tail(-threshold, -self.match_mean, self.match_sd),
            _gumbel_upper_tail(threshold, self.non_mean, self.non_sd),
        )

    def densities(self, x: Scores) -> tuple[Scores, Scores]:
        """Weighted densities of matches and of non-matches at ``x``."""
        return (
            self.match_share * _gumbel_pdf(-x, -self.match_mean, self.match_sd),
            (1 - self.match_share) * _gumbel_pdf(x, self.non_mean, self.non_sd),
        )

    def precision_recall(self, threshold: float) -> tuple[float, float]:
        """Estimated precision and recall of the links a run makes at ``threshold``.

        A record's best non-match becomes a link only if that partner is still
        free, and the solver has already given a partner with a true match at
        or above the threshold to that match (true matches score higher), so
        false links are the non-match tail times the share of records left
        free, about ``1 - match_share * recall``. Without this factor the
        estimate ignored the solver and chose thresholds 0.01-0.03 too high
        at high overlap (bench/threshold.py).
        """
        matches, non = self.tails(threshold)
        true = self.match_share * matches
        false = (1 - self.match_share) * non * (1 - true)
        precision = true / (true + false) if true + false > 0 else 1.0
        return precision, matches

    def f1(self, threshold: float) -> float:
        precision, recall = self.precision_recall(threshold)
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def best_threshold(self, step: float = 0.0005, low: float = 0.0) -> float:
        """The threshold from ``low`` (the score floor) to the match mean maximising the F1.

        The search starts at the floor, not at the non-match mean: when nearly
        every record has a match, the non-match component ends up holding the
        matches' long lower tail, and the best threshold lies below its mean.
        """
        grid = np.arange(min(low or self.non_mean, self.non_mean), self.match_mean, step)
        return float(grid[int(np.argmax([self.f1(float(t)) for t in grid]))])

    def crossing(self) -> float | None:
        """The lowest score above the non-match mean from which matches are the likelier."""
        if self.match_mean <= self.non_mean:
            return None
        grid = np.linspace(self.non_mean, self.match_mean, 2001)
        matches, non = self.densities(grid)
        above = matches >= non
        if not above[-1] or above[0]:
            return None
        # The last change from non-match to match while going up.
        last_below = int(np.flatnonzero(~above)[-1])
        a, b = float(grid[last_below]), float(grid[last_below + 1])
        for _ in range(40):
            mid = (a + b) / 2
            m, n = self.densities(np.array([mid]))
            a, b = (a, mid) if m[0] >= n[0] else (mid, b)
        return (a + b) / 2


@dataclass(frozen=True)
class Estimate:
    """What the scores say about a run: the threshold to use and quality at it.

    ``fitted`` is False when the scores could not support a fit; ``reason``
    then says why and the numbers are zero.
    """

    fitted: bool
    reason: str
    threshold: float
    """The estimated threshold (maximising the estimated F1)."""
    threshold_sd: float
    precision: float
    precision_sd: float
    recall: float
    recall_sd: float
    scores: int
    """How many best scores the estimate rests on."""
    mixture: Mixture | None = None
    anchored: bool = False
    """Whether the non-match component was held at the runner-up scores (see ``estimate``)."""

    def at(self, threshold: float) -> tuple[float, float]:
        """Estimated precision and recall at another threshold (0, 0 without a fit)."""
        if self.mixture is None:
            return 0.0, 0.0
        return self.mixture.precision_recall(threshold)


_EULER = 0.5772156649015329


def _gumbel_scale(mean: float, sd: float) -> tuple[float, float]:
    beta = sd * math.sqrt(6) / math.pi
    return mean - _EULER * beta, beta


def _gumbel_upper_tail(x: float, mean: float, sd: float) -> float:
    mu, beta = _gumbel_scale(mean, sd)
    return -math.expm1(-math.exp(-(x - mu) / beta))


def _gumbel_lower_tail(x: float, mean: float, sd: float) -> float:
    """P(X <= x): for the reflected law, P(score >= t) is this at -t."""
    mu, beta = _gumbel_scale(mean, sd)
    return math.exp(-math.exp(-(x - mu) / beta))


def _gumbel_pdf(x: Scores, mean: float, sd: float) -> Scores:
    mu, beta = _gumbel_scale(mean, sd)
    z = np.clip((x - mu) / beta, -50.0, 700.0)
    out: Scores = np.exp(-(z + np.exp(-z))) / beta
    return out


Index = NDArray[np.uint32]


def best_scores(candidates: Candidates) -> Scores:
    """Each record's best cross-dataset score, once per other dataset it has a candidate in."""
    return top_two(candidates)[0]


def top_two(candidates: Candidates) -> tuple[Scores, Scores]:
    """Each record's best and second-best cross-dataset scores, per other dataset.

    The second is NaN when the record has only one candidate in that dataset.
    A record's scores against one other dataset all sit at the same end of its
    pairs (pairs name the lower dataset first), so each end is ranked on its
    own, which halves the memory a run of millions of pairs needs here.
    """
    sims, d0, d1, r0, r1 = arrays(candidates)
    cross = d0 != d1
    if not cross.any():
        return np.zeros(0), np.zeros(0)
    if not cross.all():
        sims, d0, d1, r0, r1 = (a[cross] for a in (sims, d0, d1, r0, r1))
    if np.any(d0 > d1):
        d0, d1, r0, r1 = (
            np.minimum(d0, d1),
            np.maximum(d0, d1),
            np.where(d0 < d1, r0, r1),
            np.where(d0 < d1, r1, r0),
        )
    width = int(max(r0.max(), r1.max())) + 1
    ndata = int(max(d0.max(), d1.max())) + 1
    # Most similar first already (anonlink's order) lets one stable sort on the key do;
    # otherwise sort on the score first.
    ranked = bool(np.all(sims[:-1] >= sims[1:]))
    if not ranked:
        by_score = np.argsort(-sims, kind="stable")
        sims = sims[by_score]
        d0, d1, r0, r1 = (a[by_score] for a in (d0, d1, r0, r1))
    bests, seconds = [], []
    for own, own_row, other in ((d0, r0, d1), (d1, r1, d0)):
        # Key = (own dataset, own row, other dataset).
        keys = (own.astype(np.int64) * width + own_row) * ndata + other
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        values = sims[order]
        del order
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        at = np.flatnonzero(first)
        second = np.full(len(at), np.nan)
        follows = at + 1 < len(keys)
        has_second = np.zeros(len(at), dtype=bool)
        has_second[follows] = keys[at[follows] + 1] == keys[at[follows]]
        second[has_second] = values[at[has_second] + 1]
        bests.append(values[at])
        seconds.append(second)
    best: Scores = np.concatenate(bests)
    return best, np.concatenate(seconds)


def runner_up_scores(candidates: Candidates, above: float) -> Scores:
    """Second-best scores of the records whose best score reaches ``above``.

    Such a record's best partner is almost surely its match, so its second
    best is the best of the chance agreements it has with everyone else: a
    sample of what a non-match's best score looks like, taken from the data
    and free of the matches' lower tail. Twins, siblings and duplicate
    referrals can only push it up.
    """
    best, second = top_two(candidates)
    keep = (best >= above) & ~np.isnan(second)
    out: Scores = second[keep]
    return out


def fit(
    scores: Scores,
    start: Mixture | None = None,
    iterations: int = 200,
    weights: Scores | None = None,
    fixed_non: tuple[float, float] | None = None,
) -> Mixture | None:
    """EM for the mixture, started from a split of the scores (or from ``start``).

    ``weights`` count how often each score occurs (the estimate fits distinct
    scores with their counts, which makes the bootstrap cheap). The Gumbel's
    M-step matches weighted mean and variance (moments, not maximum
    likelihood): simple, and close enough for a threshold. With ``fixed_non``
    (mean, sd) the non-match component is held there and only the share and
    the match component move; it needs a ``start``.
    """
    counts: Scores = np.ones(len(scores)) if weights is None else weights
    if start is None and fixed_non is not None:
        return None
    if start is None:
        # Start from a split halfway between the 5th and 95th percentiles.
        low, high = _weighted_quantiles(scores, counts, (0.05, 0.95))
        upper = scores >= (low + high) / 2
        if not (counts[upper].sum() > 0 and counts[~upper].sum() > 0):
            return None
        p = float(counts[upper].sum() / counts.sum())
        m1, s1 = _weighted_moments(scores[upper], counts[upper])
        m0, s0 = _weighted_moments(scores[~upper], counts[~upper])
    else:
        p, m1, s1, m0, s0 = (
            start.match_share,
            start.match_mean,
            start.match_sd,
            start.non_mean,
            start.non_sd,
        )
    for _ in range(iterations):
        high_density, low_density = Mixture(p, m1, s1, m0, s0).densities(scores)
        total = high_density + low_density
        total[total <= 0] = 1e-300
        w: Scores = counts * high_density / total
        share = float(w.sum() / counts.sum())
        if not 1e-3 < share < 1 - 1e-3:
            return None
        new_m1, new_s1 = _weighted_moments(scores, w)
        new_m0, new_s0 = fixed_non or _weighted_moments(scores, counts - w)
        moved = abs(new_m1 - m1) + abs(new_m0 - m0) + abs(share - p)
        p, m1, s1, m0, s0 = share, new_m1, new_s1, new_m0, new_s0
        if moved < 1e-7:
            break
    if m1 <= m0:
        return None
    return Mixture(p, m1, s1, m0, s0)


def _weighted_moments(values: Scores, weights: Scores) -> tuple[float, float]:
    """Weighted mean and standard deviation (at least 0.001, so a component never collapses)."""
    total = float(weights.sum())
    mean = float((weights * values).sum() / total)
    # Rounding can leave a variance a hair below zero when the values are all alike.
    sd = math.sqrt(max(0.0, float((weights * (values - mean) ** 2).sum() / total)))
    return mean, max(sd, 1e-3)


def _weighted_quantiles(
    values: Scores, weights: Scores, quantiles: Sequence[float]
) -> tuple[float, ...]:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return tuple(
        float(values[order][min(int(np.searchsorted(cumulative, q)), len(values) - 1)])
        for q in quantiles
    )


def _unfitted(reason: str, scores: int) -> Estimate:
    return Estimate(False, reason, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, scores)


def estimate(
    scores: Sequence[float] | Scores,
    *,
    bootstrap: int = 100,
    seed: int = 0,
    min_scores: int = MIN_SCORES,
    floor: float = FLOOR,
    candidates: Candidates | None = None,
) -> Estimate:
    """Fit the mixture to best scores, place the threshold, and bootstrap the spread.

    With the run's cross-dataset ``candidates``, the non-match component is
    checked against the runner-up scores of records that found their match
    (``runner_up_scores``). Those are non-matches' best scores drawn from the
    data, pushed up if anything by twins and duplicates; a fitted non-match
    component sitting above them has swallowed the matches' lower tail, which
    happens when nearly every record has a match (FEBRL4: 99%). The
    non-match component is then held at the runner-ups' mean and spread and
    only the matches are refitted. On generated data with 10-90% overlap the
    fitted component sits below the runner-ups and nothing changes.
    """
    values = np.asarray(scores, dtype=np.float64)
    n = len(values)
    if n < min_scores:
        return _unfitted(f"too few candidate scores to estimate ({n} < {min_scores})", n)
    if float(values.max() - values.min()) < 1e-9:
        return _unfitted("all candidate scores are equal", n)
    # Distinct scores (to 4 places) with their counts: the same fit, far fewer points.
    distinct, counts = np.unique(np.round(values, 4), return_counts=True)
    weights = counts.astype(np.float64)
    mixture = fit(distinct, weights=weights)
    if mixture is None:
        return _unfitted("the scores do not separate into matches and non-matches", n)
    if mixture.crossing() is None or mixture.match_mean - mixture.non_mean < 2 * min(
        mixture.match_sd, mixture.non_sd
    ):
        return _unfitted("the scores do not separate into matches and non-matches", n)
    threshold = mixture.best_threshold(low=floor)
    held: tuple[float, float] | None = None
    if candidates is not None:
        runner_up = runner_up_scores(candidates, threshold)
        if len(runner_up) >= min_scores:
            held = _weighted_moments(runner_up, np.ones(len(runner_up)))
            anchored = (
                fit(
                    distinct,
                    start=dataclasses.replace(mixture, non_mean=held[0], non_sd=held[1]),
                    weights=weights,
                    fixed_non=held,
                )
                if held[0] < mixture.non_mean
                else None
            )
            if anchored is not None and anchored.crossing() is not None:
                mixture = anchored
                threshold = mixture.best_threshold(low=floor)
            else:
                held = None
    precision, recall = mixture.precision_recall(threshold)
    rng = np.random.default_rng(seed)
    draws: list[tuple[float, float, float]] = []
    for _ in range(bootstrap):
        resampled = rng.multinomial(n, weights / n).astype(np.float64)
        again = fit(distinct, start=mixture, iterations=50, weights=resampled, fixed_non=held)
        if again is not None and again.crossing() is not None:
            chosen = again.best_threshold(low=floor)
            draws.append((chosen, *again.precision_recall(chosen)))
    spread = np.std(np.array(draws), axis=0) if len(draws) > 1 else np.zeros(3)
    return Estimate(
        True,
        "",
        threshold,
        float(spread[0]),
        precision,
        float(spread[1]),
        recall,
        float(spread[2]),
        n,
        mixture,
        anchored=held is not None,
    )


def near_threshold(candidates: Candidates, threshold: float, width: float = NEAR) -> int:
    """Cross-dataset candidate pairs whose score lies within ``width`` of the threshold."""
    sims, d0, d1, _, _ = arrays(candidates)
    return int(((d0 != d1) & (np.abs(sims - threshold) <= width)).sum())


def several_candidates(candidates: Candidates, threshold: float) -> int:
    """Records with more than one cross-dataset candidate partner at or above the threshold."""
    sims, d0, d1, r0, r1 = arrays(candidates)
    keep = (sims >= threshold) & (d0 != d1)
    if not keep.any():
        return 0
    width = int(max(r0.max(), r1.max())) + 1
    ends = np.concatenate(
        [d0[keep].astype(np.int64) * width + r0[keep], d1[keep] * width + r1[keep]]
    )
    _, counts = np.unique(ends, return_counts=True)
    return int((counts > 1).sum())
