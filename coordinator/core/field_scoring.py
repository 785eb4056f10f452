"""Scoring every candidate pair field by field, and deciding which pairs the solver gets.

With per-field filters (the project setting ``field_scoring``) the coordinator
sees one Dice score per field group for a pair. Candidates still come from the
record-level CLKs (blocking and a Dice floor); every candidate, across
organisations or inside one, is then scored by one Fellegi-Sunter model learnt
from the run (``field_model``) on agreement levels read from the group scores
(``field_levels``), with u counted on random record pairs of the run.

``score`` fits the model and gives each candidate its match probability;
``decide`` turns those into the pairs the solver sees: the pairs at or above
the cut-off that maximises the model's own expected F1 (one cut for pairs
across organisations and one for pairs inside one, whose priors differ), less
within pairs whose two records link to two different records of another
organisation (``partners_apart``: twins known to both), plus the pairs two
links imply (``matching.completing``). The solver orders pairs by the model's
log odds (squashed into (0, 1), ``solver_similarity``), not by record Dice, so
linking and deduplication answer to the same probabilities.

Nothing here knows about gRPC, SQLite or organisations: arrays in, arrays out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core import field_levels, field_model, matching
from coordinator.core.field_model import ACROSS, WITHIN, FieldModel
from coordinator.core.matching import Candidates
from coordinator.core.quality import DuplicateEstimate
from hublink.spec import salt_checks

#: Record-level Dice a within-dataset pair needs to be weighed at all: every duplicate on
#: generated data at twice the usual errors scored above it (bench/dedup.py).
WITHIN_FLOOR = 0.8
#: The same for the salted record CLK (``record_clk = "salted"``): it puts a duplicate with
#: errors in two salt fields near 0.65, random pairs near 0.5 (bench/dedup.py prints the
#: share of duplicates above it).
SALTED_WITHIN_FLOOR = 0.6


def within_floor(record_clk: str) -> float:
    """The within-dataset floor for a project's record CLK (``WITHIN_FLOOR`` or the salted)."""
    return SALTED_WITHIN_FLOOR if record_clk == "salted" else WITHIN_FLOOR


#: Random record pairs drawn for u, among at most ``RANDOM_RECORDS`` records (the filters
#: read for them).
RANDOM_PAIRS = 100_000
RANDOM_RECORDS = 4_000
#: Log odds are divided by this before the logistic squash that gives the solver its
#: similarity: keeps order among pairs whose probability rounds to 1.
_SQUASH = 16.0

GroupScores = Mapping[str, np.ndarray]
#: Reads the per-field filters of some records: ascending global row numbers (dataset
#: offset + row) in, one packed uint8 array per group (rows in the same order) out.
FilterReader = Callable[[np.ndarray], Mapping[str, np.ndarray]]


def dice(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Dice similarity of packed filters row by row (two uint8 arrays of equal shape)."""
    both = np.bitwise_count(left & right).sum(axis=1, dtype=np.int64)
    total = np.bitwise_count(left).sum(axis=1, dtype=np.int64) + np.bitwise_count(right).sum(
        axis=1, dtype=np.int64
    )
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

    A pair where either filter is all zeros is NaN: the node sends that for a record
    lacking an added field's value (``FieldGroup.empty_when_missing``), and the
    field is then missing, not disagreeing (``field_levels.MISSING``). Both variants of
    such a comparison are all zeros, so the NaN carries through the best of them.
    """
    return best_variants(compare_variants(filters, left, right))


def compare_variants(
    filters: Mapping[str, np.ndarray], left: np.ndarray, right: np.ndarray
) -> dict[str, np.ndarray]:
    """Dice per filter (every variant) for the row pairs; NaN where either filter is empty."""
    out: dict[str, np.ndarray] = {}
    for name, group in filters.items():
        # Each row's bits counted once, not once per pair it is in (the floor sample of
        # ``field_estimate`` pairs every row with hundreds of others).
        ones = np.bitwise_count(group).sum(axis=1, dtype=np.int64)
        both = np.bitwise_count(group[left] & group[right]).sum(axis=1, dtype=np.int64)
        total = ones[left] + ones[right]
        score = np.zeros(len(left), dtype=np.float64)
        np.divide(2.0 * both, total, out=score, where=total > 0)
        score[(ones[left] == 0) | (ones[right] == 0)] = np.nan
        out[name] = score
    return out


def best_variants(variants: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The best variant's Dice per comparison (NaN where a variant is: an empty filter)."""
    out: dict[str, np.ndarray] = {}
    for name, score in variants.items():
        key = comparison(name)
        out[key] = np.maximum(out[key], score) if key in out else score.copy()
    return out


def unsalted_to_missing(
    best: Mapping[str, np.ndarray],
    variants: Mapping[str, np.ndarray],
    scales: Mapping[str, field_levels.Scale],
    checks: Mapping[str, str],
) -> dict[str, np.ndarray]:
    """Comparisons that read chance only because their salts differ, made missing (NaN).

    A variant's bits are permuted by a key drawn from its salt value (the date of
    birth, the postcode, the first part of the family name), so under two
    different salt values even the same name reads as chance. When every variant
    of a comparison reads chance and every one of its salts is shown to differ
    (the comparison ``checks`` names for the variant reads a real, partial
    disagreement: a level between exact and chance), the pair says nothing about
    that field. Scoring it as disagreement counted one date slip plus one surname
    typo as four or five strong disagreements, which is how the field path lost
    FEBRL4's matches (bench/quality.py --patterns).

    A salt that cannot be read either way (its own comparison reads chance,
    itself behind different salts) leaves the reading standing: two strangers'
    comparisons mostly read chance all round, and must keep counting against
    them. So does a salt shown to agree: then the values really differ (twins).
    """
    partial = {
        name: (lv > 0) & (lv < field_levels.LEVELS - 1)
        for name, score in best.items()
        if name in scales
        for lv in (scales[name].levels(score),)
    }
    hidden: dict[str, np.ndarray] = {}
    for name, score in variants.items():
        key, _, variant = name.partition("@")
        check = checks.get(variant)
        shown = partial.get(check) if check else None
        if shown is None:  # an unsalted group (or one nothing checks) stands as it reads
            shown = np.zeros(len(score), dtype=bool)
        hidden[key] = hidden[key] & shown if key in hidden else shown.copy()
    out: dict[str, np.ndarray] = {}
    for name, score in best.items():
        if name not in scales or name not in hidden:
            out[name] = score
            continue
        chance = scales[name].levels(score) == field_levels.LEVELS - 1
        out[name] = np.where(chance & hidden[name], np.nan, score)
    return out


def random_pairs(total: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``RANDOM_PAIRS`` random pairs of distinct global rows, drawn among a sample of at most
    ``RANDOM_RECORDS`` records (so only their filters need reading)."""
    if total < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    rng = np.random.default_rng(seed)
    pool = np.sort(rng.choice(total, min(total, RANDOM_RECORDS), replace=False))
    left = rng.integers(0, len(pool), RANDOM_PAIRS)
    right = (left + rng.integers(1, len(pool), RANDOM_PAIRS)) % len(pool)
    return pool[left].astype(np.int64), pool[right].astype(np.int64)


@dataclass(frozen=True)
class Reading:
    """How a run read per-field Dice into agreement levels: its scales and salt checks."""

    scales: Mapping[str, field_levels.Scale]
    checks: Mapping[str, str]

    def levels(
        self, filters: Mapping[str, np.ndarray], left: np.ndarray, right: np.ndarray
    ) -> np.ndarray:
        """Agreement levels ([comparison, pair]) of the row pairs of ``filters``, read as the
        run read its candidates' (broken salts as missing, ``unsalted_to_missing``)."""
        variants = compare_variants(filters, left, right)
        best = best_variants(variants)
        return field_levels.levels_of(
            self.scales, unsalted_to_missing(best, variants, self.scales, self.checks)
        )


@dataclass(frozen=True)
class FitInputs:
    """What ``field_model.fit`` was given, kept so the model can be refitted: on a bootstrap
    over records, or from other EM starts (``field_estimate``)."""

    groups: tuple[str, ...]
    levels: np.ndarray
    kinds: np.ndarray
    random_levels: np.ndarray
    ends: tuple[np.ndarray, np.ndarray]
    sure: np.ndarray
    random_pairs: tuple[np.ndarray, np.ndarray]
    """The random pairs' global rows (u), for weighing them by their records."""
    candidate_pairs: tuple[np.ndarray, np.ndarray]
    """The candidates' global rows (across, then within), likewise."""
    identifiers: tuple[str, ...] = ()
    """Comparisons two people never share (``field_model.apart``)."""

    def fit(
        self,
        weights: field_model.Weights | None = None,
        start: tuple[float, float, float] = field_model.START,
    ) -> FieldModel:
        return field_model.fit(
            self.groups,
            self.levels,
            self.kinds,
            self.random_levels,
            ends=self.ends,
            sure=self.sure,
            weights=weights,
            start=start,
            identifiers=self.identifiers,
        )


@dataclass(frozen=True)
class Scored:
    """Every candidate's match probability and log odds, the cut-offs and the model."""

    across: np.ndarray
    within: np.ndarray
    across_odds: np.ndarray
    within_odds: np.ndarray
    cuts: tuple[float, float]
    """The match probability linked at: across organisations, inside one."""
    model: FieldModel
    levels: np.ndarray | None = None
    """Every candidate's agreement levels ([comparison, pair]: across pairs, then within),
    in ``model.groups`` order: what the model saw, for diagnosis (bench/quality.py)."""
    inputs: FitInputs | None = None
    """What the model was fitted on, for refits (``field_estimate``)."""
    reading: Reading | None = None
    """How filters were read into levels, for scoring other pairs alike."""

    def expected(self) -> dict[str, tuple[float, float]]:
        """The model's own precision and recall per kind, over the candidates it scored."""
        return {
            kind: field_model.expected(chance, chance >= cut)
            for kind, chance, cut in (
                ("across", self.across, self.cuts[0]),
                ("within", self.within, self.cuts[1]),
            )
        }


def score(
    across: Candidates,
    within: Candidates,
    sizes: Sequence[int],
    read: FilterReader,
    flip: float = 0.0,
    seed: int | None = None,
    sure_within: np.ndarray | None = None,
    salts_checked: bool = True,
    identifiers: Sequence[str] = (),
) -> Scored:
    """Fit the field model on a run's candidates and score every one of them.

    ``salts_checked`` reads a comparison as missing where its salts differ and it reads
    chance (``unsalted_to_missing``); off, as disagreement (for measuring what that buys).

    ``sure_within`` marks within pairs the model may take as almost surely one child
    (a one-organisation run has no cross pairs to learn that from).

    ``identifiers`` name the comparisons no two people share (``field_model.apart``).

    Filters are read once, for the records in a candidate and a random sample
    of at most ``RANDOM_RECORDS`` records.
    """
    offsets = np.cumsum([0, *sizes]).astype(np.int64)
    _, d0, d1, r0, r1 = (np.asarray(a) for a in matching.arrays(across))
    _, w0, _, v0, v1 = (np.asarray(a) for a in matching.arrays(within))
    pairs = {
        "across": (offsets[d0] + r0, offsets[d1] + r1),
        "within": (offsets[w0] + v0, offsets[w0] + v1),
        "random": random_pairs(int(offsets[-1]), seed),
    }
    needed = np.unique(np.concatenate([side for p in pairs.values() for side in p]))
    filters = read(needed)
    variants = {
        kind: compare_variants(
            filters, np.searchsorted(needed, left), np.searchsorted(needed, right)
        )
        for kind, (left, right) in pairs.items()
    }
    scores = {kind: best_variants(v) for kind, v in variants.items()}
    groups = tuple(scores["random"])
    scales = field_levels.learn_scales(scores["random"], flip)
    # u stays what random pairs read, broken salts and all: almost every random pair has
    # different salt values, so counting only those whose salts agree would leave u to a
    # few dozen pairs, most of them relatives (a shared postcode is a shared household).
    checks = salt_checks() if salts_checked else {}
    at = {
        kind: field_levels.levels_of(
            scales,
            s if kind == "random" else unsalted_to_missing(s, variants[kind], scales, checks),
        )
        for kind, s in scores.items()
    }
    reading = Reading(scales, checks)
    candidates = np.concatenate([at["across"], at["within"]], axis=1)
    kinds = np.concatenate(
        [np.full(len(d0), ACROSS, dtype=np.int64), np.full(len(w0), WITHIN, dtype=np.int64)]
    )
    if not groups:
        raise ValueError("no per-field filters to score")
    inputs = FitInputs(
        groups,
        candidates,
        kinds,
        at["random"],
        ends=_ends(d0, d1, r0, r1, w0),
        sure=np.concatenate(
            [
                mutual_best(across),
                np.zeros(len(w0), dtype=bool) if sure_within is None else sure_within,
            ]
        ),
        random_pairs=pairs["random"],
        candidate_pairs=(
            np.concatenate([pairs["across"][0], pairs["within"][0]]),
            np.concatenate([pairs["across"][1], pairs["within"][1]]),
        ),
        identifiers=tuple(identifiers),
    )
    model = inputs.fit()
    chance = model.probability(candidates, kinds)
    odds = model.log_odds(candidates, kinds)
    n = len(d0)
    return Scored(
        across=chance[:n],
        within=chance[n:],
        across_odds=odds[:n],
        within_odds=odds[n:],
        cuts=(field_model.best_cut(chance[:n]), field_model.best_cut(chance[n:])),
        model=model,
        levels=candidates,
        inputs=inputs,
        reading=reading,
    )


def mutual_best(across: Candidates) -> np.ndarray:
    """Which cross pairs are each of their records' most similar candidate in the other
    dataset (record-level Dice): the pairs that are almost surely matches."""
    sims, *index = matching.arrays(across)
    d0, d1, r0, r1 = (a.astype(np.int64) for a in index)
    if not len(sims):
        return np.zeros(0, dtype=bool)
    order = np.argsort(-sims, kind="stable")
    width = int(max(r0.max(), r1.max())) + 1
    parts = int(max(d0.max(), d1.max())) + 1
    best = np.ones(len(sims), dtype=bool)
    for own, row, other in ((d0, r0, d1), (d1, r1, d0)):
        key = (own * width + row) * parts + other
        first = np.zeros(len(sims), dtype=bool)
        _, at = np.unique(key[order], return_index=True)
        first[order[at]] = True
        best &= first
    return best


def _ends(
    d0: np.ndarray, d1: np.ndarray, r0: np.ndarray, r1: np.ndarray, w0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For ``field_model.one_to_one``: each cross pair's two ends, (record, other dataset)
    numbered densely; -1 for within pairs, which are free of the constraint."""
    parts = int(max(d0.max(initial=0), d1.max(initial=0))) + 1
    width = int(max(r0.max(initial=0), r1.max(initial=0))) + 1
    left = (d0.astype(np.int64) * width + r0) * parts + d1
    right = (d1.astype(np.int64) * width + r1) * parts + d0
    _, dense = np.unique(np.concatenate([left, right]), return_inverse=True)
    free = np.full(len(w0), -1, dtype=np.int64)
    n = len(d0)
    return np.concatenate([dense[:n], free]), np.concatenate([dense[n:], free])


def solver_similarity(log_odds: np.ndarray) -> np.ndarray:
    """The similarity the solver orders pairs by: the log odds squashed into (0, 1)."""
    found: np.ndarray = 1.0 / (1.0 + np.exp(-np.asarray(log_odds) / _SQUASH))
    return found


def _odds_at(probability: float) -> float:
    p = min(max(probability, 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


@dataclass(frozen=True)
class Decision:
    """The pairs passed to the solver and what the model says of them."""

    linking: Candidates
    duplicates: DuplicateEstimate
    across_linked: int
    across_precision: float
    """The model's own precision and recall across organisations (over the candidates)."""
    across_recall: float
    scored: Scored | None = None
    """What the decision was made from (for the run's own estimates: ``field_estimate``)."""


def decide(across: Candidates, within: Candidates, scored: Scored) -> Decision:
    """The pairs the solver gets, with the model's log odds as their similarity."""
    cut_across = float(solver_similarity(np.array([_odds_at(scored.cuts[0])]))[0])
    model_across = matching.rescored(across, solver_similarity(scored.across_odds))
    model_within = matching.rescored(within, solver_similarity(scored.within_odds))
    # rescored keeps each pair's place in the arrays it was given, so masks line up.
    linked_across = matching.select(model_across, scored.across >= scored.cuts[0])
    keep = scored.within >= scored.cuts[1]
    apart = keep & partners_apart(model_across, model_within, cut_across)
    keep &= ~apart
    kept = matching.select(model_within, keep)
    linking = matching.combine(
        linked_across,
        kept,
        matching.completing(model_across, kept, cut_across, through_links=True),
    )
    figures = scored.expected()
    within_precision, within_recall = field_model.expected(scored.within, keep)
    across_keep = scored.across >= scored.cuts[0]
    model = scored.model
    return Decision(
        linking=linking,
        duplicates=DuplicateEstimate(
            groups=model.groups,
            weighed=len(scored.within),
            linked=int(keep.sum()),
            estimated_duplicate_pairs=float(scored.within.sum()),
            precision=within_precision,
            recall=within_recall,
            match_anchors=model.anchors,
            relative_anchors=round(float(model.priors[WITHIN, 1]) * len(scored.within)),
            weights=tuple(model.weights().items()),
            apart=int(apart.sum()),
            across_weighed=len(scored.across),
            across_linked=int(across_keep.sum()),
            across_precision=figures["across"][0],
            across_recall=figures["across"][1],
            cut_across=scored.cuts[0],
            cut_within=scored.cuts[1],
        ),
        across_linked=int(across_keep.sum()),
        across_precision=figures["across"][0],
        across_recall=figures["across"][1],
        scored=scored,
    )


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
