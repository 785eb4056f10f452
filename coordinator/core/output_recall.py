"""Recall of what a run output: the matches its groups hold, over every match there was to find.

The score mixture (``score_model``) says what share of matches score above a
threshold, which is the recall of the pairs the run *offered* the solver. A run
outputs groups, and the solver leaves some of those pairs apart (a record
already taken, two groups too unlike to merge); blocking never compares some
pairs; the candidate floor never scores others. Recall counted on the model's
accepted pairs was therefore always too high (``bench/estimates.py``: by up
to 5 points, its interval covering the truth in 4 settings of 18).

Here the unit is a record and another dataset (an *item*), with the record's
best candidate there. Each item is a match with the probability the mixture
gives its score, raised where the scores themselves show more matches than
the fitted curve (below). Then:

- **found**: matches among the items whose record the run grouped with a
  record of that dataset;
- **left out**: matches among every other scored item, whatever their score;
- **unscored**: matches whose best score lies below the lowest score the run
  kept (the candidate floor, or blocking's margin), extrapolated from the
  fitted match curve, and matches blocking never compared, at the rate
  blocking was *measured* to miss true-looking pairs on a random sample of
  records compared with everyone (``blocking_miss``), not the rate it
  promised.

Recall is found over found + left out + unscored. Its interval is a
bootstrap over records (resampling whole records with all their items), the
same sums under the other EM starts' fits, and the binomial spread of a share
of that many matches.

Where the fitted curve is too thin: matches with a large error (a changed
surname, a dropped hyphenated part) form a lump below the main match peak
that a single extreme-value curve does not follow. In score bins below the
threshold where the fitted non-match curve accounts for less than half the
scores (above the non-match mean), the excess over it is taken as matches
when it is more than the curve says. Further down, among thousands of chance scores, such matches
cannot be counted at all; ``caveats`` says so when matches are few.

Nothing here holds a record or a pair once it returns: only sums.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from coordinator.core.matching import Candidates, arrays

#: Bins (score width) in which observed scores are compared with the fitted non-match curve.
BIN = 0.01
#: A bin's excess over the non-match curve counts as matches only where the curve accounts
#: for at most this share of the bin's scores (elsewhere the excess is mostly noise).
SIGNAL = 0.5
#: Bootstrap draws over records.
DRAWS = 200

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


class Mixture(Protocol):
    """What is read of ``score_model.Mixture``."""

    @property
    def match_share(self) -> float: ...
    @property
    def non_mean(self) -> float: ...
    def densities(self, x: Floats) -> tuple[Floats, Floats]: ...
    def tails(self, threshold: float) -> tuple[float, float]: ...


@dataclass(frozen=True)
class Items:
    """Each (record, other dataset) with a candidate: its best score, the record, the dataset
    and the best candidate's row there."""

    score: Floats
    dataset: Ints
    row: Ints
    other: Ints
    partner: Ints


@dataclass(frozen=True)
class OutputRecall:
    """The recall of a run's groups, with the sums it came from (expected match counts)."""

    recall: float
    interval: tuple[float, float]
    found: float
    left_out: float
    """Matches among scored items the groups do not hold (below the threshold or left apart)."""
    left_apart: float
    """Of ``left_out``, those whose best score reached the threshold: the solver's doing."""
    below_floor: float
    blocking_missed: float
    blocking_share: float = 0.0
    """The share of true-looking pairs blocking was measured to miss (``blocking_miss``)."""


def best_items(across: Candidates) -> Items:
    """Each record's best cross-dataset candidate, once per other dataset it has one in."""
    sims, d0, d1, r0, r1 = arrays(across)
    if not len(sims):
        return _no_items()
    own_d = np.concatenate([d0, d1]).astype(np.int64)
    own_r = np.concatenate([r0, r1]).astype(np.int64)
    other = np.concatenate([d1, d0]).astype(np.int64)
    other_r = np.concatenate([r1, r0]).astype(np.int64)
    score = np.concatenate([sims, sims])
    keep = own_d != other
    own_d, own_r, other, other_r, score = (a[keep] for a in (own_d, own_r, other, other_r, score))
    if not len(score):
        return _no_items()
    width = int(own_r.max()) + 1
    ndata = int(max(own_d.max(), other.max())) + 1
    key = (own_d * width + own_r) * ndata + other
    at = _first_best(key, score, ndata * width * ndata)
    return Items(score[at], own_d[at], own_r[at], other[at], other_r[at])


def _first_best(key: Ints, score: Floats, keys: int) -> Ints:
    """Per distinct key, ascending, the place of its highest score (the earliest place among
    equal ones): what ``np.lexsort((-score, key))`` puts first in each key, found with
    scatters over a table of ``keys`` slots instead of sorting every candidate twice (by
    sorting when the table would be much larger than the candidates)."""
    if keys > 8 * len(key) + (1 << 20):
        order = np.lexsort((-score, key))
        starts = np.ones(len(key), dtype=bool)
        starts[1:] = key[order][1:] != key[order][:-1]
        sorted_first: Ints = order[starts]
        return sorted_first
    best = np.full(keys, -np.inf)
    np.maximum.at(best, key, score)
    top = np.flatnonzero(score == best[key])
    first = np.full(keys, len(key), dtype=np.int64)
    np.minimum.at(first, key[top], top)
    found: Ints = first[first < len(key)]
    return found


def _no_items() -> Items:
    empty = np.zeros(0, dtype=np.int64)
    return Items(np.zeros(0), empty, empty, empty, empty)


def blocking_miss(
    mixture: Mixture, sample_pairs: Candidates, across: Candidates, threshold: float
) -> tuple[float, float]:
    """The share of true-looking pairs blocking did not compare, measured, and the expected
    matches the measure rests on.

    ``sample_pairs`` are the exact pairs of records drawn at random and compared
    with everyone (``candidates.Found.sample_pairs``). Each sampled record's
    best pair in each other dataset is a match with the probability its score
    gives (``match_weights``); the share of that probability whose pair is not
    among the run's blocked ``across`` candidates is what blocking missed.
    Pairs below the lowest score the run keeps are the floor's business, so
    only the sample's pairs at or above it are counted.
    """
    sample = best_items(sample_pairs)
    sims, d0, d1, r0, r1 = arrays(across)
    if not len(sample.score) or not len(sims):
        return 0.0, 0.0
    seen_from = float(sims.min())
    keep = sample.score >= seen_from
    if not keep.any():
        return 0.0, 0.0
    width = int(max(r0.max(), r1.max(), sample.row.max(), sample.partner.max())) + 1
    ndata = int(max(d0.max(), d1.max(), sample.dataset.max(), sample.other.max())) + 1

    def keys(a: Ints, b: Ints, x: Ints, y: Ints) -> Ints:
        low = a < b
        first_d, second_d = np.where(low, a, b), np.where(low, b, a)
        first_r, second_r = np.where(low, x, y), np.where(low, y, x)
        out: Ints = ((first_d * ndata + second_d) * width + first_r) * width + second_r
        return out

    a_d, b_d, a_r, b_r = (x.astype(np.int64) for x in (d0, d1, r0, r1))
    # Only the run's pairs of a record the sample's items start from can be asked about:
    # those are sorted, not every candidate.
    starts = np.zeros(ndata * width, dtype=bool)
    starts[sample.dataset[keep] * width + sample.row[keep]] = True
    near = starts[a_d * width + a_r] | starts[b_d * width + b_r]
    held = np.sort(keys(a_d[near], b_d[near], a_r[near], b_r[near]))
    wanted = keys(sample.dataset[keep], sample.other[keep], sample.row[keep], sample.partner[keep])
    if not len(held):
        held = np.full(1, -1, dtype=np.int64)  # nothing of theirs was compared
    at = np.searchsorted(held, wanted)
    at[at >= len(held)] = 0
    present = held[at] == wanted
    weights = match_weights(mixture, sample.score[keep], threshold, seen_from)
    total = float(weights.sum())
    if total <= 0:
        return 0.0, 0.0
    return float(weights[~present].sum()) / total, total


def grouped_with(items: Items, group: Ints, sizes: Sequence[int]) -> NDArray[np.bool_]:
    """Whether each item's record sits in an output group holding a record of its other dataset.

    ``group`` is each record's group number (-1: alone), records in load order
    (``entities.Grouping.group``).
    """
    if not len(items.score):
        return np.zeros(0, dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    ndata = len(sizes)
    member = group >= 0
    dataset_of = np.repeat(np.arange(ndata, dtype=np.int64), sizes)
    # Which (group, dataset) cells hold a record: a table, not a sort of every record.
    groups = int(group.max()) + 1 if len(group) else 0
    held = np.zeros(max(1, groups * ndata), dtype=bool)
    held[group[member] * ndata + dataset_of[member]] = True
    own_group = group[offsets[items.dataset] + items.row]
    found: NDArray[np.bool_] = (own_group >= 0) & held[
        np.maximum(own_group, 0) * ndata + items.other
    ]
    return found


def match_weights(
    mixture: Mixture, score: Floats, threshold: float, seen_from: float | None = None
) -> Floats:
    """Each score's chance of being a match: the fit's, raised in bins below ``threshold``
    where the scores exceed the fitted non-match curve and that curve explains little.

    ``score`` holds every best score at or above ``seen_from`` (None: all of them);
    the curve's share above it tells how many best scores there were in all, which
    the expected count of chance scores in a bin is a share of.
    """
    matches, non = mixture.densities(score)
    total = matches + non
    total[total <= 0] = 1e-300
    weight: Floats = matches / total
    if not len(score):
        return weight
    n = float(len(score))
    if seen_from is not None:
        matches_above, non_above = mixture.tails(seen_from)
        above = mixture.match_share * matches_above + (1 - mixture.match_share) * non_above
        n /= max(above, 1e-9)
    # Below the non-match mean the fitted curve's thin left tail would show "excess" that is
    # only its shape; lumps of badly recorded matches lie between that mean and the threshold.
    low = math.floor(max(float(score.min()), mixture.non_mean) / BIN) * BIN
    for lo in np.arange(low, threshold, BIN):
        hi = min(float(lo) + BIN, threshold)
        inside = (score >= lo) & (score < hi)
        observed = int(inside.sum())
        if not observed:
            continue
        expected_non = n * (1 - mixture.match_share) * (mixture.tails(lo)[1] - mixture.tails(hi)[1])
        if expected_non > SIGNAL * observed:
            continue
        excess = (observed - expected_non) / observed
        weight[inside] = np.maximum(weight[inside], excess)
    return weight


def measure(
    mixture: Mixture,
    items: Items,
    linked: NDArray[np.bool_],
    threshold: float,
    *,
    seen_from: float,
    blocking_miss: float = 0.0,
    others: Sequence[Mixture] = (),
    draws: int = DRAWS,
    seed: int = 0,
    spread: tuple[float, float] | None = None,
) -> OutputRecall:
    """Recall of the groups (``linked``: ``grouped_with`` of ``items``), with its interval.

    ``seen_from`` is the lowest score the run's candidates hold; ``blocking_miss``
    the measured share of true-looking pairs blocking did not compare;
    ``others`` the fits from other EM starts that explain the scores as well.

    With ``spread`` (an earlier run's interval less its recall: ``spread_carry``) the
    bootstrap, linear in the records, is not drawn again: the interval is the
    recall plus that spread, widened to the other fits' readings.
    """
    point = _sums(mixture, items, linked, threshold, seen_from, blocking_miss)
    recall = _recall(point)
    readings = [recall]
    for other in others:
        readings.append(_recall(_sums(other, items, linked, threshold, seen_from, blocking_miss)))
    draws_out: list[float] = []
    if len(items.score) and draws and spread is None:
        weights = match_weights(mixture, items.score, threshold, seen_from)
        per_scored, _ = _unscored_factors(mixture, seen_from, blocking_miss)
        record = items.dataset * (int(items.row.max()) + 1) + items.row
        records, which = np.unique(record, return_inverse=True)
        found_by = np.bincount(which, weights * linked, minlength=len(records))
        out_by = np.bincount(which, weights * ~linked, minlength=len(records))
        rng = np.random.default_rng(seed)
        for _ in range(draws):
            # How often each record is drawn, n draws with replacement: the multinomial of
            # equal shares, counted from uniform draws (five times quicker at 2 x 100,000).
            # Sums of products, not ``@``: a BLAS dot product hands work to threads, and
            # on a busy machine waiting for them took 100 times the sum's own time.
            times = np.bincount(rng.integers(0, len(records), len(records)), minlength=len(records))
            found = float(np.multiply(times, found_by).sum())
            scored = found + float(np.multiply(times, out_by).sum())
            total = scored * per_scored
            draws_out.append(found / total if total > 0 else 1.0)
    low, high = (
        (float(np.percentile(draws_out, 2.5)), float(np.percentile(draws_out, 97.5)))
        if draws_out
        else (recall, recall)
    )
    if spread is not None:
        low, high = recall + spread[0], recall + spread[1]
    matches = max(1.0, point[0] + point[1] + point[2] + point[3])
    # A carried interval already holds the binomial spread.
    half = (
        0.0 if spread is not None else 1.96 * math.sqrt(max(0.0, recall * (1 - recall)) / matches)
    )
    interval = (
        max(0.0, min(low, *readings) - half),
        min(1.0, max(high, *readings) + half),
    )
    return OutputRecall(
        recall=recall,
        interval=interval,
        found=point[0],
        left_out=point[1],
        left_apart=point[4],
        below_floor=point[2],
        blocking_missed=point[3],
        blocking_share=blocking_miss,
    )


def _unscored_factors(
    mixture: Mixture, seen_from: float, blocking_miss: float
) -> tuple[float, float]:
    """Total matches per scored match (below the floor and blocked away), and the share of
    that total below the floor."""
    seen = max(mixture.tails(seen_from)[0], 1e-6)
    kept = max(1.0 - blocking_miss, 1e-6)
    return 1.0 / (seen * kept), (1.0 - seen) / (seen * kept)


def _sums(
    mixture: Mixture,
    items: Items,
    linked: NDArray[np.bool_],
    threshold: float,
    seen_from: float,
    blocking_miss: float,
) -> tuple[float, float, float, float, float]:
    """Expected matches: found, left out, below the floor, blocked away, left apart."""
    weights = match_weights(mixture, items.score, threshold, seen_from)
    found = float(weights[linked].sum())
    left_out = float(weights[~linked].sum())
    apart = float(weights[~linked & (items.score >= threshold)].sum())
    scored = found + left_out
    total_factor, below_factor = _unscored_factors(mixture, seen_from, blocking_miss)
    below = scored * below_factor
    blocked = scored * total_factor - scored - below
    return found, left_out, below, blocked, apart


def _recall(sums: tuple[float, float, float, float, float]) -> float:
    found, left_out, below, blocked, _ = sums
    total = found + left_out + below + blocked
    return found / total if total > 0 else 1.0
