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
  Groups are not independent among strangers: the given-name filter is salted
  with the month of birth (``node.derived.day_month_smaller``), so two strangers
  whose given names agree were born in the same month and agree on the birth
  group more often than random pairs do, and names run in families and places.
  So strangers are counted twice: random pairs for when the given name
  (``PIVOT_GROUP``) disagrees, and random pairs that agree on it, found by
  scanning a sample of the dataset's given-name filters, for when it agrees.
  Duplicates among the latter are weighed out (``_CLEANING_ROUNDS``).

Pairs are linked from the match probability that maximises the model's own
expected F1 (``best_cut``), except pairs whose two records link to two
different records of another dataset (``partners_apart``).

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
from dataclasses import dataclass, replace

import numpy as np

from coordinator.core import matching
from coordinator.core.matching import Candidates
from coordinator.core.quality import DuplicateEstimate

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
#: The group strangers are profiled on both sides of (see the module's docstring), and the
#: sample scanned for pairs agreeing on it: this many records of each dataset against up
#: to ``PIVOT_RIGHT`` others, a few million pairs, of which some tenths of a percent agree.
PIVOT_GROUP = "given"
PIVOT_LEFT = 1_000
PIVOT_RIGHT = 20_000
#: Times the pivot-agreeing strangers are re-counted with each pair weighted by the model's
#: chance that it is a stranger (the scan also finds duplicates and twins).
_CLEANING_ROUNDS = 2
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
    return np.searchsorted(-cuts(flip), -np.asarray(dice, dtype=np.float64), side="left")


def cuts(flip: float = 0.0) -> np.ndarray:
    """The Dice score each level starts at, once the node has flipped bits (see ``levels``)."""
    q = 2 * flip * (1 - flip)
    found: np.ndarray = np.round([1 - (q + (1 - c) * (1 - 2 * q)) for c in LEVELS], 12)
    return found


def dice(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Dice similarity of packed filters row by row (two uint8 arrays of equal shape)."""
    both = np.unpackbits(left & right, axis=1).sum(axis=1, dtype=np.int64)
    total = np.unpackbits(left, axis=1).sum(axis=1, dtype=np.int64) + np.unpackbits(
        right, axis=1
    ).sum(axis=1, dtype=np.int64)
    out = np.zeros(len(left), dtype=np.float64)
    np.divide(2.0 * both, total, out=out, where=total > 0)
    return out


def comparison(group: str) -> str:
    """The comparison a filter is a variant of (``hublink.spec.FieldGroup.comparison``)."""
    return group.partition("@")[0]


def compare(
    filters: Mapping[str, np.ndarray], left: np.ndarray, right: np.ndarray
) -> dict[str, np.ndarray]:
    """Dice per comparison for the row pairs (``left[k]``, ``right[k]``) of ``filters``.

    Variants of one comparison (``given@birth``, ``given@home``) are salted by
    different fields, so a pair agrees on a variant only where that field agrees
    too; the best variant is the comparison's agreement, counted once.
    """
    out: dict[str, np.ndarray] = {}
    for name, group in filters.items():
        score = dice(group[left], group[right])
        key = comparison(name)
        out[key] = np.maximum(out[key], score) if key in out else score
    return out


@dataclass(frozen=True)
class Profile:
    """For one kind of pair: the chance of each agreement level in each group."""

    chances: Mapping[str, tuple[float, ...]]
    pairs: int
    """How many pairs it was counted from."""

    @classmethod
    def count(
        cls, scores: GroupScores, flip: float = 0.0, weights: np.ndarray | None = None
    ) -> Profile:
        """The profile of a population of pairs from its group scores (smoothed, never 0).

        ``weights`` counts each pair by how much it belongs to the population.
        """
        size = len(LEVELS) + 1
        chances = {}
        pairs = 0
        for group, values in scores.items():
            found = np.bincount(levels(values, flip), weights=weights, minlength=size)
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
    pivot: str | None = None
    """The group strangers are profiled on both sides of (None: groups independent)."""
    pivot_chances: tuple[float, ...] = ()
    """Among all pairs, the chance of each level of the pivot group."""
    agreeing: Profile | None = None
    """Strangers whose pivot group agrees: the other groups' levels."""

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
                self._stranger_log_likelihood(at),
            ]
        )

    def _stranger_log_likelihood(self, at: Mapping[str, np.ndarray]) -> np.ndarray:
        name = self.pivot
        if self.agreeing is None or name is None or name not in at:
            return self.stranger.log_likelihood(at)
        pivot = at[name]
        agree = pivot < len(LEVELS)
        total: np.ndarray = np.log(np.asarray(self.pivot_chances))[pivot]
        for group, chosen in at.items():
            if group != name:
                apart = np.log(np.asarray(self.stranger.chances[group]))[chosen]
                together = np.log(np.asarray(self.agreeing.chances[group]))[chosen]
                total = total + np.where(agree, together, apart)
        return total


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
    agreeing: GroupScores | None = None,
    scanned: int = 0,
    pivot: str | None = PIVOT_GROUP,
) -> WithinModel:
    """Estimate how many within-dataset candidates are one child, by EM over the shares only.

    ``match``, ``relative`` and ``stranger`` are the group scores of the
    three anchor populations (see the module's docstring); ``candidates``
    those of the within-dataset candidate pairs; ``all_pairs`` the number of
    within-dataset pairs in the run. ``agreeing`` are the scores of the pairs
    a scan of ``scanned`` random pairs found agreeing on ``pivot``; without
    them (or without that group) strangers are modelled with groups independent.
    """
    if all_pairs < 1:
        raise ValueError("there are no within-dataset pairs to model")
    model = WithinModel(
        Profile.count(match, flip),
        Profile.count(relative, flip),
        Profile.count(stranger, flip),
        all_pairs=all_pairs,
        matches=0.0,
        relatives=0.0,
        iterations=0,
        flip=flip,
    )
    at = {group: levels(values, flip) for group, values in candidates.items()}
    if agreeing is None or pivot is None or pivot not in agreeing or scanned < 1:
        return _fit_shares(model, at)
    found = np.bincount(levels(agreeing[pivot], flip), minlength=len(LEVELS) + 1)
    found[-1] = max(scanned - found[:-1].sum(), 0)
    chances = (found + _SMOOTHING) / (found.sum() + _SMOOTHING * len(found))
    model = replace(model, pivot=pivot, pivot_chances=tuple(float(c) for c in chances))
    sample = {group: levels(values, flip) for group, values in agreeing.items()}
    model = _fit_shares(replace(model, agreeing=Profile.count(agreeing, flip)), at)
    for _ in range(_CLEANING_ROUNDS):
        weights = _posterior(model._log_terms(sample), model._shares())[2]
        model = _fit_shares(replace(model, agreeing=Profile.count(agreeing, flip, weights)), at)
    return model


def _fit_shares(model: WithinModel, at: Mapping[str, np.ndarray]) -> WithinModel:
    """The model with the shares of each kind of pair estimated by EM on the candidates."""
    size = len(next(iter(at.values()), ()))
    if size == 0:
        return replace(model, matches=0.0, relatives=0.0, iterations=0)
    terms = model._log_terms(at)
    counts = np.array([0.1 * size, 0.5 * size])
    done = 0
    while done < _ITERATIONS:
        done += 1
        p = _posterior(terms, _shares(counts[0], counts[1], model.all_pairs))
        updated = p[:2].sum(axis=1)
        settled = np.abs(updated - counts).max() < 1e-6
        counts = updated
        if settled:
            break
    return replace(model, matches=float(counts[0]), relatives=float(counts[1]), iterations=done)


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


def pivot_sample(sizes: Sequence[int], seed: int | None = None) -> list[np.ndarray]:
    """Global row numbers to scan for pivot-agreeing pairs: per dataset, ``PIVOT_LEFT``
    random records, then up to ``PIVOT_RIGHT`` random records to hold them against."""
    rng = np.random.default_rng(None if seed is None else (seed, 1))
    out = []
    start = 0
    for size in sizes:
        for many in (PIVOT_LEFT, PIVOT_RIGHT):
            drawn = rng.choice(size, min(many, size) if size > 1 else 0, replace=False)
            out.append(np.sort(drawn).astype(np.int64) + start)
        start += size
    return out


def agreeing_pairs(
    sample: Sequence[np.ndarray], read: Callable[[np.ndarray], np.ndarray], cut: float
) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """The pairs of ``pivot_sample``'s rows whose filters (``read``) reach Dice ``cut``.

    Returns the pairs (distinct records only) and how many pairs were scanned.
    Each dataset's left records are held against its right ones, so the pairs
    found are a uniform sample of the dataset's pairs that agree.
    """
    lefts, rights, scanned = [], [], 0
    for left, right in zip(sample[::2], sample[1::2], strict=True):
        if not len(left) or not len(right):
            continue
        found = matching.candidate_pairs(
            [matching.unpack(bytes(row) for row in read(rows)) for rows in (left, right)], cut
        )
        _, _, _, one, other = matching.arrays(found)
        a, b = left[one], right[other]
        lefts.append(a[a != b])
        rights.append(b[a != b])
        scanned += len(left) * len(right) - len(np.intersect1d(left, right))
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate([empty, *lefts]), np.concatenate([empty, *rights])), scanned


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


def partners_apart(across: Candidates, within: Candidates, threshold: float) -> np.ndarray:
    """Which within-dataset pairs have two different partners in another dataset.

    A record's partner in another dataset is its most similar candidate there
    at or above ``threshold``. Two records of one organisation whose partners in
    another differ are two children: twins, say, each known to both. The field
    model cannot see this; it weighs one pair at a time. A child referred twice
    to both organisations is lost to it as well, which is rarer than twins known
    to both. Returns a mask over ``within``.
    """
    sims, own, row, other, partner = matching.linked_both_ways(across, threshold)
    _, *inside = matching.arrays(within)
    w0, _, v0, v1 = (a.astype(np.int64) for a in inside)
    apart = np.zeros(len(w0), dtype=bool)
    if not len(w0) or not len(sims):
        return apart
    width = int(max(row.max(), partner.max(), v0.max(), v1.max())) + 1
    parts = int(max(own.max(), other.max(), w0.max())) + 1
    # Each (record, other dataset) and its best partner there.
    order = np.argsort(-sims, kind="stable")
    known, first = np.unique(((own * width + row) * parts + other)[order], return_index=True)
    partner = partner[order][first]

    for there in range(parts):
        found = [
            matching.find_sorted(known, (w0 * width + rows) * parts + there) for rows in (v0, v1)
        ]
        both = (found[0] >= 0) & (found[1] >= 0) & (w0 != there)
        apart |= both & (partner[found[0]] != partner[found[1]])
    return apart


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
    the anchors, the random stranger pairs and the records scanned for pairs
    agreeing on ``PIVOT_GROUP`` (at most ``PIVOT_LEFT + PIVOT_RIGHT`` a dataset).
    Returns a mask over ``within`` (candidate order) and aggregate figures.
    """
    sims, d0, d1, r0, r1 = matching.arrays(across)
    matches, relatives = anchors(sims, (d0, d1), (r0, r1), threshold)
    _, w0, _, v0, v1 = matching.arrays(within)
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
    sample = pivot_sample(sizes, seed)
    needed = np.unique(
        np.concatenate([np.concatenate(p) for p in pairs.values()] + [np.concatenate(sample)])
    )
    filters = read(needed)
    scanned = 0
    if PIVOT_GROUP in filters:
        pivot = filters[PIVOT_GROUP]
        pairs["agreeing"], scanned = agreeing_pairs(
            sample, lambda rows: pivot[np.searchsorted(needed, rows)], cuts(flip)[-1]
        )
    scores = {
        kind: compare(filters, np.searchsorted(needed, left), np.searchsorted(needed, right))
        for kind, (left, right) in pairs.items()
    }
    model = fit(
        match=scores["match"],
        relative=scores["relative"],
        stranger=scores["stranger"],
        candidates=scores["candidate"],
        all_pairs=max(1, sum(n * (n - 1) // 2 for n in sizes)),
        flip=flip,
        agreeing=scores.get("agreeing"),
        scanned=scanned,
    )
    chance = model.probability(scores["candidate"]) if len(w0) else np.zeros(0)
    keep = chance >= best_cut(chance)
    apart = keep & partners_apart(across, within, threshold)
    keep &= ~apart
    mass = float(chance.sum())
    return keep, DuplicateEstimate(
        groups=tuple(dict.fromkeys(comparison(name) for name in filters)),
        weighed=len(chance),
        linked=int(keep.sum()),
        estimated_duplicate_pairs=model.matches,
        precision=float(chance[keep].mean()) if keep.any() else 1.0,
        recall=float(chance[keep].sum()) / mass if mass > 0 else 1.0,
        match_anchors=int(matches.sum()),
        relative_anchors=int(relatives.sum()),
        weights=tuple(model.weights().items()),
        apart=int(apart.sum()),
    )
