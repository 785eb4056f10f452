"""Each record's best and runner-up cross-dataset scores: what the threshold estimate reads.

Split from ``coordinator.core.score_model`` (which re-exports these) so that
module keeps to the mixture and its estimate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from coordinator.core.matching import Candidates, arrays

Scores = NDArray[np.float64]


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
    slots = ndata * width * ndata
    bests, seconds = [], []
    for own, own_row, other in ((d0, r0, d1), (d1, r1, d0)):
        # Key = (own dataset, own row, other dataset).
        keys = (own.astype(np.int64) * width + own_row) * ndata + other
        best, second = (
            _by_table(keys, sims, slots)
            if slots <= 8 * len(keys) + (1 << 20)
            else _by_sorting(keys, sims)
        )
        bests.append(best)
        seconds.append(second)
    best_all: Scores = np.concatenate(bests)
    return best_all, np.concatenate(seconds)


def _by_table(keys: NDArray[np.int64], sims: Scores, slots: int) -> tuple[Scores, Scores]:
    """Per distinct key (ascending), the best score and the best of the others (NaN: none),
    with scatters over a table of ``slots`` keys instead of sorting every pair."""
    count = np.bincount(keys, minlength=slots)
    best = np.full(slots, -np.inf)
    np.maximum.at(best, keys, sims)
    # One pair at the best score leaves the race for second (the first such, as a sort
    # would: ties leave the best score for second too).
    top = np.flatnonzero(sims == best[keys])
    first = np.full(slots, len(keys), dtype=np.int64)
    np.minimum.at(first, keys[top], top)
    others = np.ones(len(keys), dtype=bool)
    others[first[first < len(keys)]] = False
    second = np.full(slots, -np.inf)
    np.maximum.at(second, keys[others], sims[others])
    held = np.flatnonzero(count)
    runner_up = np.where(count[held] > 1, second[held], np.nan)
    return best[held], runner_up


def _by_sorting(keys: NDArray[np.int64], sims: Scores) -> tuple[Scores, Scores]:
    """``_by_table`` by sorting, for keys too spread out for a table."""
    # Most similar first already (anonlink's order) lets one stable sort on the key do;
    # otherwise sort on the score first.
    if not bool(np.all(sims[:-1] >= sims[1:])):
        by_score = np.argsort(-sims, kind="stable")
        keys, sims = keys[by_score], sims[by_score]
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
    best: Scores = values[at]
    return best, second


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
