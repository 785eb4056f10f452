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
estimated F1.

Intervals are meant to be honest rather than tight: they span a bootstrap
over records (resample the best scores, refit the mixture from scratch, take
the 2.5th and 97.5th percentiles at the run's threshold), the fits from other
EM starts, and a second reading of the same fit that counts the scores
themselves instead of the fitted tails; recall is lowered for pairs blocking
may have missed. Conditions under which the figures mean little (few
matches, no valley, a threshold at the floor) become ``caveats``
(``coordinator.core.caveats``).

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
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from coordinator.core import caveats
from coordinator.core.caveats import Caveat
from coordinator.core.matching import Candidates, arrays
from coordinator.core.part_pass import PartPass
from coordinator.core.top_scores import best_scores as best_scores
from coordinator.core.top_scores import runner_up_scores as runner_up_scores
from coordinator.core.top_scores import top_two as top_two
from hublink.spec import shipped_record_parts

#: Cross-dataset candidates are generated down to this Dice score to see the non-matches.
#: Random pairs of balanced 2048-bit CLKs sit near 0.55-0.6; below 0.7 candidates explode.
#: Salted record CLKs (``record_clk = "salted"``): random pairs 0.5 +- 0.01, true pairs
#: with two salt fields wrong about 0.65 (bench/privacy.py), so their floor is lower.
#: Both salted floors (and the part floor below) are where a run starts: it lifts them to the
#: chance level its own records show (``coordinator.core.chance``), which many mapped fields raise.
FLOOR, SALTED_FLOOR = 0.7, 0.6
#: A salted record CLK's pairs are also candidates when their best single part reaches this
#: Dice (``coordinator.core.part_pass``): a true pair with one salt agreeing scores about 0.6
#: on the whole row but 0.75-0.8 on that part, while random parts sit at 0.5 +- 0.022. Each
#: step below 0.68 doubles the candidates (pairs sharing one salt) for tenths of a point of
#: recall (docs/benchmarks.md, "Candidates from the best part").
SALTED_PART_FLOOR = 0.68
#: Fewer best scores than this and the mixture is not estimated.
MIN_SCORES = 50
#: Links this close to the threshold (either side) are counted as "near the threshold".
NEAR = 0.02


def part_pass_for(
    record_clk: str,
    field_scoring: bool,
    floor: float = SALTED_PART_FLOOR,
    floors: tuple[float, ...] = (),
) -> PartPass | None:
    """The part pass of a project's record CLK: the shipped salted parts (equal in length,
    hublink/schemas/record-clk.json) at ``floor`` (``SALTED_PART_FLOOR``, or that lifted to
    the run's chance level: ``coordinator.core.chance``), or each at its own of ``floors``
    (each part's chance level); None for the unsalted CLK.

    Only with ``field_scoring``: the pairs the part pass adds score low on the whole record
    CLK, and only the field model can weigh them. A record-only run decides on whole Dice,
    and there they would only count as candidates for the solver's merge test, letting
    groups grow through pairs the run would never link (a blocked record-only run, which
    has no part pass, then disagreed with an all-pairs one on two links in three)."""
    if record_clk != "salted" or not field_scoring:
        return None
    widths = {part.bits for part in shipped_record_parts()}
    if len(widths) != 1:
        raise ValueError("the part pass needs the record CLK's parts to be equally long")
    return PartPass(len(shipped_record_parts()), floor, floors=floors)


Scores = NDArray[np.float64]
#: Reshapes a fit (scores, start, weights, held non-match law) -> a refit or None (``estimate``).
Refine = Callable[[Scores, "Mixture", Scores, tuple[float, float] | None], "Mixture | None"]

#: Recent estimates by a digest of all they follow from: a run that builds on the last one
#: (an incremental run of a blocked project) often has the very same scores, and the
#: bootstrap is the dear part. Same inputs, same estimate, so reuse changes nothing.
_RECENT: dict[bytes, Estimate] = {}


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
    precision_interval: tuple[float, float] = (0.0, 0.0)
    """Where precision plausibly lies (see the module's note on intervals)."""
    recall_interval: tuple[float, float] = (0.0, 0.0)
    caveats: tuple[Caveat, ...] = ()
    """Why the figures should be read with care, if they should (``coordinator.core.caveats``)."""
    alternatives: tuple[Mixture, ...] = ()
    """Fits from other EM starts that explain the scores about as well (``estimate``)."""

    @property
    def trusted(self) -> bool:
        """Fitted, and no caveat says the figures should not be relied on."""
        return self.fitted and not any(c.untrusted for c in self.caveats)

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


def fit(
    scores: Scores,
    start: Mixture | None = None,
    iterations: int = 200,
    weights: Scores | None = None,
    fixed_non: tuple[float, float] | None = None,
    split: float | None = None,
) -> Mixture | None:
    """EM for the mixture, started from a split of the scores (or from ``start``).

    The split is halfway between the 5th and 95th percentiles, or at the
    ``split`` quantile (other starts, to see how much the answer depends on it).

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
        if split is None:
            low, high = _weighted_quantiles(scores, counts, (0.05, 0.95))
            cut = (low + high) / 2
        else:
            cut = _weighted_quantiles(scores, counts, (split,))[0]
        upper = scores >= cut
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
    return Estimate(
        False,
        reason,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        scores,
        caveats=(Caveat("not_estimated", f"no estimate: {reason}", untrusted=True),),
    )


#: Other EM starts (split quantiles) whose answers widen the interval.
STARTS = (0.5, 0.75, 0.9)
#: Log-likelihood units within which another start's fit counts as an equally good answer.
SAME_FIT = 3.0


def _log_likelihood(mixture: Mixture, distinct: Scores, weights: Scores) -> float:
    high, low = mixture.densities(distinct)
    return float((weights * np.log(np.maximum(high + low, 1e-300))).sum())


def _counted(
    mixture: Mixture, distinct: Scores, weights: Scores, threshold: float, floor: float
) -> tuple[float, float]:
    """Precision and recall from the scores themselves, weighted by the fit's responsibilities,
    instead of from the fitted tails: where the two readings differ, the fit's shape is off."""
    high, low = mixture.densities(distinct)
    total = high + low
    total[total <= 0] = 1e-300
    w = weights * high / total
    above = distinct >= threshold
    matches = float(w.sum())
    non = float((weights - w).sum())
    if matches <= 0 or non <= 0:
        return mixture.precision_recall(threshold)
    # Matches below the floor never appear among the scores: the fit's tail says how many.
    recall = float(w[above].sum()) / matches * mixture.tails(floor)[0]
    true = mixture.match_share * recall
    false = (1 - mixture.match_share) * float((weights - w)[above].sum()) / non * (1 - true)
    return (true / (true + false) if true + false > 0 else 1.0), recall


def estimate(
    scores: Sequence[float] | Scores,
    *,
    bootstrap: int = 100,
    seed: int = 0,
    min_scores: int = MIN_SCORES,
    floor: float = FLOOR,
    candidates: Candidates | None = None,
    completeness: float = 1.0,
    refine: Refine | None = None,
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

    ``completeness`` is the chance blocking finds a pair at the design
    threshold (1 without blocking); recall is lowered for the pairs it missed.

    ``refine`` reshapes the two-component fit once it is placed (and refits each
    bootstrap sample and other start from it): ``peaks.refiner`` gives the
    matches several humps, for salted record CLKs whose true pairs score in steps.
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
    if refine is not None:
        # Not held at the runner-ups: with several humps the matches' lower tail has a hump
        # of its own, and runner-ups then hold duplicates' lower peaks too.
        refined = refine(distinct, mixture, weights, None)
        if refined is not None and refined.crossing() is not None:
            mixture, held = refined, None
            threshold = mixture.best_threshold(low=floor)
    key = hashlib.sha256(
        distinct.tobytes()
        + weights.tobytes()
        + repr((mixture, threshold, held, n, bootstrap, seed, floor, completeness)).encode()
    ).digest()
    if key in _RECENT:
        return _RECENT[key]
    precision, recall = mixture.precision_recall(threshold)
    rng = np.random.default_rng(seed)
    chosen: list[float] = []
    readings: list[tuple[float, float]] = []
    failed = 0
    for _ in range(bootstrap):
        resampled = rng.multinomial(n, weights / n).astype(np.float64)
        # A full refit, started where the data's own fit ended (fresh splits can fall
        # into a wrong mode; other starts are looked at below, on the data itself).
        again = (
            refine(distinct, mixture, resampled, held)
            if refine is not None and type(mixture) is not Mixture
            else fit(distinct, start=mixture, weights=resampled, fixed_non=held)
        )
        if again is None or again.crossing() is None:
            failed += 1
            continue
        chosen.append(again.best_threshold(low=floor))
        readings.append(again.precision_recall(threshold))
    others = [_counted(mixture, distinct, weights, threshold, floor)]
    alternatives: list[Mixture] = []
    best_fit = _log_likelihood(mixture, distinct, weights)
    for split in () if held is not None else STARTS:
        other = fit(distinct, weights=weights, split=split)
        if other is not None and refine is not None and type(mixture) is not Mixture:
            other = refine(distinct, other, weights, None)
        # Another start that explains the scores about as well is another answer the data
        # allow; one that explains them far worse is a wrong mode, not uncertainty.
        # A component collapsed onto one score (exact copies at 1.0) is a spike the
        # likelihood rewards, not a group of records.
        if (
            other is not None
            and other.crossing() is not None
            and min(other.match_sd, other.non_sd) > 2e-3
            and _log_likelihood(other, distinct, weights) >= best_fit - SAME_FIT
        ):
            others.append(other.precision_recall(threshold))
            alternatives.append(other)
    spread = np.std(np.array(readings), axis=0) if len(readings) > 1 else np.zeros(2)
    # The run's own precision and recall are shares of a finite number of links and of
    # matches, which vary around the model's values as a binomial share does.
    matches = max(1.0, mixture.match_share * n)
    links = max(1.0, matches * recall / max(precision, 1e-9))
    p_interval, r_interval = (
        _interval([r[k] for r in readings], [o[k] for o in others], point, count)
        for k, point, count in ((0, precision, links), (1, recall, matches))
    )
    # Pairs blocking never compared are missed: at least (1 - completeness) of those at the
    # design threshold, fewer above it. The interval's low end takes the worst case.
    recall_found = recall * (1 + completeness) / 2
    r_interval = (r_interval[0] * completeness, r_interval[1])
    found = _RECENT[key] = Estimate(
        True,
        "",
        threshold,
        float(np.std(chosen)) if len(chosen) > 1 else 0.0,
        precision,
        float(spread[0]),
        recall_found,
        float(spread[1]),
        n,
        mixture,
        anchored=held is not None,
        precision_interval=p_interval,
        recall_interval=(min(r_interval[0], recall_found), max(r_interval[1], recall_found)),
        caveats=caveats.check(
            mixture,
            scores=n,
            threshold=threshold,
            floor=floor,
            fits_failed=failed / bootstrap if bootstrap else 0.0,
            completeness=completeness,
        ),
        alternatives=tuple(alternatives),
    )
    while len(_RECENT) > 8:
        del _RECENT[next(iter(_RECENT))]
    return found


def _interval(
    draws: Sequence[float], others: Sequence[float], point: float, count: float
) -> tuple[float, float]:
    """The 95% bootstrap percentile interval, widened to every other reading and the point,
    then by the binomial spread of a share of ``count``."""
    low, high = (
        (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))
        if draws
        else (point, point)
    )
    share = min(max(point, 0.0), 1.0)
    half = 1.96 * math.sqrt(share * (1 - share) / count)
    return max(0.0, min(low, point, *others) - half), min(1.0, max(high, point, *others) + half)


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
