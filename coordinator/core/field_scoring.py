"""Weighing per-field filters to tell a duplicate referral from a twin, a sibling or a stranger.

A record-level similarity adds every field's agreement into one number, so a
twin (same surname, birth date and address, another given name) scores like
a duplicate whose surname changed. With per-field filters (the project
setting ``field_scoring``) the coordinator sees one Dice score per field
group for a candidate pair, and this module turns the group scores into the
probability that the two records are one child, Fellegi-Sunter style.

Three kinds of pair are modelled, each by how often it falls in each
agreement level of each group (independently across groups):

- **match**: the distribution of the run's own cross-organisation links, the
  pairs that are each other's best candidate above the run's threshold. Their
  errors come from the same process as a duplicate referral's, and the
  record-level estimate already puts their precision near 0.99.
- **relative**: cross-organisation pairs that are neither record's best
  candidate: records similar enough to be candidates but not the same child,
  mostly siblings and twins sharing a surname and an address.
- **stranger**: random pairs inside a dataset, which agree only by chance.

Pairs are linked from the match probability that maximises the model's own
expected F1 (``best_cut``).

Only the share of each kind among all within-dataset pairs is estimated, by
EM on the within-dataset candidates. Every pair that is not a candidate counts
as a stranger, which keeps the shares on the scale of all pairs: two strangers
who share a given name and a birthday are rare among all pairs, and so stay
unlikely to be one child, even though they stand out among candidates. The
same full EM with free match and non-match distributions settles on the wrong
classes (children born on one day) on such data; holding the distributions to
these three anchored populations is what keeps it honest.

Nothing here knows about gRPC, SQLite or organisations: arrays in, arrays out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core.matching import Candidates
from coordinator.core.quality import DuplicateEstimate, candidate_arrays

#: Group Dice cut points between agreement levels (level 0 is the best). Balanced filters
#: (``node.hardening``) put unrelated records near 0.65, so "some agreement" starts at 0.8;
#: 0.95 parts one wrong date digit or name letter from two (bench/dedup.py: 1-2 points of
#: recall at doubled error rates against three levels).
LEVELS = (0.99, 0.95, 0.9, 0.8)
#: Record-level Dice a within-dataset pair needs to be weighed at all: every duplicate on
#: generated data at twice the usual errors scored above it (bench/dedup.py).
WITHIN_FLOOR = 0.8
#: The match probability a within-dataset pair needs when there is nothing to choose a cut
#: from (``best_cut`` chooses it otherwise).
CUT = 0.5
#: Random pairs drawn per dataset for the stranger distribution.
STRANGER_PAIRS = 20_000
_ITERATIONS = 300
_SMOOTHING = 0.5

GroupScores = Mapping[str, np.ndarray]


def levels(dice: np.ndarray, flip: float = 0.0) -> np.ndarray:
    """Agreement level of each score: 0 for at least LEVELS[0], ..., len(LEVELS) below all.

    ``flip`` is the chance the node flipped each bit (``LinkageSpec.group_flip``):
    the cuts move to where flipped filters land. Two balanced filters that
    differ in a share h of positions differ in q + h(1 - 2q) after flipping,
    where q = 2 flip (1 - flip) is the chance exactly one of the two flipped.
    """
    q = 2 * flip * (1 - flip)
    cuts = -np.round([1 - (q + (1 - c) * (1 - 2 * q)) for c in LEVELS], 12)
    return np.searchsorted(cuts, -np.asarray(dice, dtype=np.float64), side="left")


def dice(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Dice similarity of packed filters row by row (two uint8 arrays of equal shape)."""
    both = np.unpackbits(left & right, axis=1).sum(axis=1, dtype=np.int64)
    total = np.unpackbits(left, axis=1).sum(axis=1, dtype=np.int64) + np.unpackbits(
        right, axis=1
    ).sum(axis=1, dtype=np.int64)
    out = np.zeros(len(left), dtype=np.float64)
    np.divide(2.0 * both, total, out=out, where=total > 0)
    return out


@dataclass(frozen=True)
class Profile:
    """For one kind of pair: the chance of each agreement level in each group."""

    chances: Mapping[str, tuple[float, ...]]
    pairs: int
    """How many pairs it was counted from."""

    @classmethod
    def count(cls, scores: GroupScores, flip: float = 0.0) -> Profile:
        """The profile of a population of pairs from its group scores (smoothed, never 0)."""
        size = len(LEVELS) + 1
        chances = {}
        pairs = 0
        for group, values in scores.items():
            found = np.bincount(levels(values, flip), minlength=size).astype(np.float64)
            pairs = len(values)
            chances[group] = tuple((found + _SMOOTHING) / (found.sum() + _SMOOTHING * size))
        return cls(chances, pairs)

    def log_likelihood(self, at: Mapping[str, np.ndarray]) -> np.ndarray:
        """Log chance of each pair's levels (``at``: group -> levels), groups independent."""
        total = np.zeros(len(next(iter(at.values()))), dtype=np.float64)
        for group, chosen in at.items():
            total += np.log(np.asarray(self.chances[group]))[chosen]
        return total


@dataclass(frozen=True)
class WithinModel:
    """The fitted model: three profiles and the estimated number of pairs of each kind."""

    match: Profile
    relative: Profile
    stranger: Profile
    all_pairs: int
    """Within-dataset pairs in the run (candidates or not)."""
    matches: float
    """Estimated within-dataset pairs that are one child (duplicate pairs)."""
    relatives: float
    iterations: int
    flip: float = 0.0

    def probability(self, scores: GroupScores) -> np.ndarray:
        """Each pair's probability of being one child, from its group scores."""
        at = {group: levels(values, self.flip) for group, values in scores.items()}
        chance: np.ndarray = _posterior(self._log_terms(at), self._shares())[0]
        return chance

    def weights(self) -> dict[str, tuple[float, ...]]:
        """log2(match / stranger) per group and level: how much each agreement counts."""
        out = {}
        for group, match in self.match.chances.items():
            chance = self.stranger.chances[group]
            out[group] = tuple(float(np.log2(m / s)) for m, s in zip(match, chance, strict=True))
        return out

    def _shares(self) -> np.ndarray:
        return _shares(self.matches, self.relatives, self.all_pairs)

    def _log_terms(self, at: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.vstack(
            [
                self.match.log_likelihood(at),
                self.relative.log_likelihood(at),
                self.stranger.log_likelihood(at),
            ]
        )


def _shares(matches: float, relatives: float, all_pairs: int) -> np.ndarray:
    tiny = 1e-12
    m = max(matches / all_pairs, tiny)
    r = max(relatives / all_pairs, tiny)
    return np.array([m, r, max(1.0 - m - r, tiny)])


def _posterior(terms: np.ndarray, shares: np.ndarray) -> np.ndarray:
    z = terms + np.log(shares)[:, None]
    z -= z.max(axis=0)
    p: np.ndarray = np.exp(z)
    p /= p.sum(axis=0)
    return p


def fit(
    *,
    match: GroupScores,
    relative: GroupScores,
    stranger: GroupScores,
    candidates: GroupScores,
    all_pairs: int,
    flip: float = 0.0,
) -> WithinModel:
    """Estimate how many within-dataset candidates are one child, by EM over the shares only.

    ``match``, ``relative`` and ``stranger`` are the group scores of the
    three anchor populations (see the module's docstring); ``candidates``
    those of the within-dataset candidate pairs; ``all_pairs`` the number of
    within-dataset pairs in the run.
    """
    if all_pairs < 1:
        raise ValueError("there are no within-dataset pairs to model")
    profiles = (
        Profile.count(match, flip),
        Profile.count(relative, flip),
        Profile.count(stranger, flip),
    )
    at = {group: levels(values, flip) for group, values in candidates.items()}
    size = len(next(iter(at.values()), ()))
    model = WithinModel(
        *profiles, all_pairs=all_pairs, matches=0.0, relatives=0.0, iterations=0, flip=flip
    )
    if size == 0:
        return model
    terms = model._log_terms(at)
    counts = np.array([0.1 * size, 0.5 * size])
    done = 0
    while done < _ITERATIONS:
        done += 1
        p = _posterior(terms, _shares(counts[0], counts[1], all_pairs))
        updated = p[:2].sum(axis=1)
        settled = np.abs(updated - counts).max() < 1e-6
        counts = updated
        if settled:
            break
    return WithinModel(
        *profiles,
        all_pairs=all_pairs,
        matches=float(counts[0]),
        relatives=float(counts[1]),
        iterations=done,
        flip=flip,
    )


def anchors(
    sims: np.ndarray,
    datasets: tuple[np.ndarray, np.ndarray],
    rows: tuple[np.ndarray, np.ndarray],
    threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Masks over cross-dataset candidates: the anchored matches and the relatives.

    A match anchor is a pair at or above ``threshold`` that is the best
    candidate of both its records towards the other's dataset; a relative
    is a pair at or above ``WITHIN_FLOOR`` that is the best of neither.
    """
    d0, d1 = (np.asarray(d, dtype=np.int64) for d in datasets)
    r0, r1 = (np.asarray(r, dtype=np.int64) for r in rows)
    order = np.argsort(-sims, kind="stable")
    width = int(max(r0.max(initial=0), r1.max(initial=0))) + 1
    parts = int(max(d0.max(initial=0), d1.max(initial=0))) + 1
    best = []
    for own, row, other in ((d0, r0, d1), (d1, r1, d0)):
        key = (own * width + row) * parts + other
        first = np.zeros(len(sims), dtype=bool)
        _, at = np.unique(key[order], return_index=True)
        first[order[at]] = True
        best.append(first)
    matches = best[0] & best[1] & (sims >= threshold)
    relatives = ~best[0] & ~best[1] & (sims >= WITHIN_FLOOR)
    return matches, relatives


def stranger_pairs(sizes: Sequence[int], seed: int | None = None) -> list[np.ndarray]:
    """Random (row, row) pairs inside each dataset, ``STRANGER_PAIRS`` each (distinct rows)."""
    rng = np.random.default_rng(seed)
    out = []
    for size in sizes:
        if size < 2:
            out.append(np.zeros((0, 2), dtype=np.int64))
            continue
        left = rng.integers(0, size, STRANGER_PAIRS)
        right = (left + rng.integers(1, size, STRANGER_PAIRS)) % size
        out.append(np.stack([left, right], axis=1))
    return out


def best_cut(chance: np.ndarray) -> float:
    """The match probability to link at that maximises the model's own expected F1.

    Linking every pair at or above a cut c is expected to find sum(p) true
    pairs among them, link sum(1 - p) wrongly and miss sum(p) below it; the cut
    is the one that maximises the F1 those give (``CUT`` when there are no pairs).
    It follows the model rather than a fixed 0.5, which Fellegi-Sunter
    probabilities anchored on near-certain matches are too modest for.
    """
    if not len(chance):
        return CUT
    order = np.sort(chance)[::-1]
    found = np.cumsum(order)
    wrong = np.cumsum(1.0 - order)
    missed = found[-1] - found
    f1 = 2 * found / np.maximum(2 * found + wrong + missed, 1e-12)
    return float(order[int(np.argmax(f1))])


#: Reads the per-field filters of some records: ascending global row numbers (dataset
#: offset + row) in, one packed uint8 array per group (rows in the same order) out.
FilterReader = Callable[[np.ndarray], Mapping[str, np.ndarray]]


def weigh(
    across: Candidates,
    within: Candidates,
    threshold: float,
    sizes: Sequence[int],
    read: FilterReader,
    seed: int | None = None,
    flip: float = 0.0,
) -> tuple[np.ndarray, DuplicateEstimate]:
    """Which within-dataset candidates are one child, by the per-field model.

    ``across`` and ``within`` are a run's cross- and within-dataset
    candidates, ``threshold`` the run's cross-dataset threshold, ``sizes``
    the datasets' lengths, ``flip`` the spec's ``group_flip``. Filters are
    read once, for only the records the model needs: the within candidates,
    the anchors and a random sample.
    Returns a mask over ``within`` (candidate order) and aggregate figures.
    """
    sims, d0, d1, r0, r1 = candidate_arrays(across)
    matches, relatives = anchors(sims, (d0, d1), (r0, r1), threshold)
    _, w0, _, v0, v1 = candidate_arrays(within)
    offsets = np.cumsum([0, *sizes]).astype(np.int64)
    strangers = stranger_pairs(sizes, seed)
    pairs = {
        "match": (offsets[d0[matches]] + r0[matches], offsets[d1[matches]] + r1[matches]),
        "relative": (
            offsets[d0[relatives]] + r0[relatives],
            offsets[d1[relatives]] + r1[relatives],
        ),
        "stranger": (
            np.concatenate([offsets[i] + p[:, 0] for i, p in enumerate(strangers)]),
            np.concatenate([offsets[i] + p[:, 1] for i, p in enumerate(strangers)]),
        ),
        "candidate": (offsets[w0] + v0, offsets[w0] + v1),
    }
    needed = np.unique(np.concatenate([np.concatenate(p) for p in pairs.values()]))
    filters = read(needed)
    scores = {
        kind: {
            name: dice(group[np.searchsorted(needed, left)], group[np.searchsorted(needed, right)])
            for name, group in filters.items()
        }
        for kind, (left, right) in pairs.items()
    }
    model = fit(
        match=scores["match"],
        relative=scores["relative"],
        stranger=scores["stranger"],
        candidates=scores["candidate"],
        all_pairs=max(1, sum(n * (n - 1) // 2 for n in sizes)),
        flip=flip,
    )
    chance = model.probability(scores["candidate"]) if len(w0) else np.zeros(0)
    keep = chance >= best_cut(chance)
    mass = float(chance.sum())
    return keep, DuplicateEstimate(
        groups=tuple(filters),
        weighed=len(chance),
        linked=int(keep.sum()),
        estimated_duplicate_pairs=model.matches,
        precision=float(chance[keep].mean()) if keep.any() else 1.0,
        recall=float(chance[keep].sum()) / mass if mass > 0 else 1.0,
        match_anchors=int(matches.sum()),
        relative_anchors=int(relatives.sum()),
        weights=tuple(model.weights().items()),
    )
