"""The field model's own precision and recall of what a run output, with honest intervals.

With per-field filters every candidate pair is decided by the field model
(``field_scoring``), so the run's accuracy is the model's to estimate. Before
this module the report said two things, neither of them that: the score
mixture's figures for a record-level threshold the field path never linked at,
and the model's mean probability over its candidates with no interval at all
(recall 1.5-3 points high at the usual error rates, 4-10 at doubled, intervals
of zero width: ``bench/field_estimates.py``). Here:

- **on the output**: precision over the pairs the run's groups hold (the solver
  adds pairs by transitivity and leaves some linked pairs apart), recall of
  those over every match there was to find;
- **below the floor**: a salted record CLK puts a match whose salts differ in two
  or three parts (a date slip and a move, say) among strangers, under the
  candidate floor, so no candidate ever holds it. A run that read which parts
  reached their floors counts them per kind from those cells (``field_hidden.by_parts``,
  ``hidden_cells``); otherwise from how often each part's salt breaks
  (``hidden_matches``, ``hidden_by_kind``);
- **one match a record**: a pair the groups leave apart while both its records are
  grouped with another record of the other's organisation is not a missed match
  (``spoken_for``); a pair inside one organisation whose two records' groups both hold a
  record of one other organisation keeps only the chance that it holds the child twice too
  (``spoken_for_within``, ``twice_elsewhere``); the model, which
  weighs pairs one at a time, gave twins' and namesakes' pairs the probability they
  would have alone. What those pairs held of their pattern's matches goes to that
  pattern's other pairs, held or left free (``moved_from_spoken``; all in
  ``field_spoken``);
- **partial missing**: a comparison read missing where random pairs never are is weighed
  by what it says among the cross candidates, and duplicates borrow those rates
  (``field_partial``);
- **intervals**: the spread of the truth itself given the probabilities (each
  pair a match with its probability, shifted in log odds, with a wider shift of
  their own for pairs with a comparison read missing: ``partial_shift``; the hidden
  count's own uncertainty), widened
  by the spread of refits on a bootstrap over records, started from several
  places (``STARTS``);
- **caveats**: plain words when a figure rests on too little, or when refits
  disagree.

``prepare`` does the refits before solving (they do not depend on the groups);
``on_output`` counts the groups. Nothing kept holds a record or a pair once the
run is over: only sums and shares.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core import field_caveats, field_hidden, field_model
from coordinator.core.caveats import Caveat
from coordinator.core.field_hidden import (  # noqa: F401 (where benches and tests read them)
    broken_parts,
    hidden_matches,
    part_sums,
    several_expected,
)
from coordinator.core.field_levels import MISSING
from coordinator.core.field_model import KINDS, WITHIN
from coordinator.core.field_partial import partial_missing, recalibrated
from coordinator.core.field_scoring import Scored
from coordinator.core.field_spoken import (
    moved_from_spoken,
    spoken_for,
    spoken_for_within,
    spoken_odds,
)
from coordinator.core.quality import DuplicateEstimate, RunQuality

#: Refits of the model (bootstrap over records, EM starts in turn).
DRAWS = 10
#: Where refits start EM (match, relative, stranger shares): the first is the run's own.
STARTS = (field_model.START, (0.2, 0.4, 0.3), (0.8, 0.1, 0.05))
#: Draws of the truth given the run's probabilities, in ``SHIFTS`` batches of one shared
#: log-odds shift each (sd ``CALIBRATION``, natural log: odds off by a factor of e).
OUTCOMES = 2000
SHIFTS = 100
CALIBRATION = 1.0
#: The same for pairs with a comparison read missing, drawn apart from the others' shift:
#: the model takes missing to weigh neither way, which among candidates it does not
#: (``partial_shift``).
CALIBRATION_MISSING = 2.0
#: Fewer expected matches of a kind than this, and its figures are not to be relied on.
FEW_MATCHES = 20
#: An interval wider than this (a share) is said to be wide.
WIDE = 0.05
#: A share of expected matches hidden under the floor above this is said plainly.
MANY_HIDDEN = 0.03
#: A refit this far (a share) from the run's own figure, and beyond ``_SPREADS`` robust
#: spreads of the others, says the model is unstable.
UNSTABLE = 0.03
_SPREADS = 3.0
#: Which comparisons show each part of the shipped salted record CLK was salted alike
#: (its salt fields agree exactly): the part reads chance when they do not
#: (hublink/schemas/record-clk.json: clk@birth by the date of birth, clk@home by the
#: postcode, clk@name by given and family name).
PART_CHECKS: Mapping[str, tuple[str, ...]] = {
    "clk@birth": ("birth",),
    "clk@home": ("place",),
    "clk@name": ("given", "family"),
}


@dataclass(frozen=True)
class KindFigures:
    """Precision and recall of one kind of pair (across organisations or inside one)."""

    precision: float
    recall: float
    precision_interval: tuple[float, float]
    recall_interval: tuple[float, float]
    output_pairs: int
    """Pairs of this kind the run's groups hold."""
    expected_matches: float
    """Matches the model expects of this kind in all: candidates and hidden under the floor."""
    hidden: float
    """Of those, expected under the floor (never candidates: ``hidden_matches``)."""
    unstable: float = 0.0
    """The largest distance of a refit's figure from the run's own (``UNSTABLE``)."""
    chance_spread: float = 0.0
    """How far (95%, a share) chance alone moves the true recall (``recall_chance_spread``)."""


@dataclass(frozen=True)
class FieldEstimate:
    """The field model's figures for a run's output, per kind, and why to take care."""

    across: KindFigures
    within: KindFigures | None
    """None: the run did not weigh pairs inside an organisation."""
    caveats: tuple[Caveat, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """What on_output needs, computed before solving."""

    left: np.ndarray
    right: np.ndarray
    """Every candidate's two global rows (across, then within)."""
    kinds: np.ndarray
    chance: np.ndarray
    """The run's own match probability of each candidate."""
    draws: np.ndarray
    """[draw, candidate]: probabilities under each refit (float32)."""
    broken: np.ndarray
    """Each candidate's record-CLK parts whose salts differ, as bits (``broken_parts``);
    -1: more than one part is shown to differ (a comparison behind two broken salts reads
    missing); all zeros when the record CLK has no parts."""
    parts: int
    """Parts the record CLK has (0: unsalted, nothing is hidden by salts)."""
    cuts: tuple[float, float] = (field_model.CUT, field_model.CUT)
    """The model's cut-offs (across, within), to say when one sits at its bound."""
    missing: np.ndarray | None = None
    """Each candidate's count of comparisons read missing (None: not known, taken as 0)."""
    partial: np.ndarray | None = None
    """[comparison, candidate]: read missing where random pairs never read it missing
    (``partial_missing``; None: not known, the model's probabilities are kept)."""
    clear: np.ndarray | None = None
    """Each candidate's record-CLK parts whose Dice reached their floor, as bits
    (``hidden_cells.clear_bits``); None: not read, the hidden count falls back on the
    salts alone (``field_hidden.hidden_by_kind``)."""


def record_weights(total: int, rng: np.random.Generator) -> np.ndarray:
    """A bootstrap over records as weights: each record drawn Poisson(1) times, so a pair
    counts as often as both of its records were drawn (pairs share records, and a bootstrap
    over pairs would treat them as independent)."""
    found: np.ndarray = rng.poisson(1.0, total).astype(np.float64)
    return found


def prepare(
    scored: Scored,
    sizes: Sequence[int],
    seed: int = 0,
    checks: Mapping[str, tuple[str, ...]] | None = None,
    clear: np.ndarray | None = None,
) -> Prepared:
    """Refit the run's model DRAWS times, before solving (``sizes``: each dataset's records;
    ``checks``: the record CLK's parts, ``PART_CHECKS`` by default, empty for an unsalted
    record CLK; ``clear``: ``Prepared.clear``)."""
    inputs = scored.inputs
    if inputs is None:
        raise ValueError("the scored run kept nothing to refit")
    checks = PART_CHECKS if checks is None else checks
    rng = np.random.default_rng(seed)
    left, right = inputs.candidate_pairs
    total = int(sum(sizes))
    draws = np.zeros((DRAWS, len(inputs.kinds)), dtype=np.float32)
    for draw in range(DRAWS):
        w = record_weights(total, rng)
        weights = (w[left] * w[right], w[inputs.random_pairs[0]] * w[inputs.random_pairs[1]])
        model = inputs.fit(weights, STARTS[draw % len(STARTS)])
        draws[draw] = model.probability(inputs.levels, inputs.kinds)
    chance = np.concatenate([scored.across, scored.within])
    broken = broken_parts(inputs.levels, inputs.groups, checks)
    missing = (inputs.levels == MISSING).sum(axis=0)
    partial = partial_missing(inputs.levels, inputs.random_levels)
    return Prepared(
        left, right, inputs.kinds, chance, draws, broken, len(checks), scored.cuts, missing,
        partial, clear if checks else None,
    )  # fmt: skip


def output_pairs(group: np.ndarray, dataset: np.ndarray) -> np.ndarray:
    """[kind]: record pairs the run's groups hold (``group`` -1: alone), across and within."""
    grouped = group >= 0
    if not grouped.any():
        return np.zeros(len(KINDS), dtype=np.int64)
    g, d = group[grouped].astype(np.int64), dataset[grouped].astype(np.int64)
    per_group = np.bincount(g)
    _, per_cell = np.unique(g * (int(d.max()) + 1) + d, return_counts=True)
    within = int((per_cell * (per_cell - 1) // 2).sum())
    everything = int((per_group * (per_group - 1) // 2).sum())
    return np.array([everything - within, within], dtype=np.int64)


def _figures(
    chance: np.ndarray, held: np.ndarray, pairs: int, hidden: float
) -> tuple[float, float]:
    """Precision and recall of one kind given its candidates' probabilities.

    Output pairs that are not candidates (groups joined through others) count at the
    mean probability of the output's candidate pairs: the model never scored them.
    """
    inside = float(chance[held].sum())
    mean = inside / held.sum() if held.any() else 0.0
    found = inside + max(pairs - int(held.sum()), 0) * mean
    matches = float(chance.sum()) + hidden
    return (min(found / pairs, 1.0) if pairs else 1.0), (inside / matches if matches > 0 else 1.0)


def _hidden(
    chances: Mapping[int, np.ndarray],
    broken: Mapping[int, np.ndarray],
    parts: int,
    clear: Mapping[int, np.ndarray] | None = None,
) -> dict[int, float]:
    """Each kind's matches hidden under the floor: the mean of the parts' and the salts'
    readings (``field_hidden.read_both``), else from the salts alone (``hidden_by_kind``)."""
    if not parts:
        return {k: 0.0 for k in chances}
    if clear is not None:
        return field_hidden.read_both(chances, broken, clear, parts)
    return field_hidden.hidden_by_kind(
        {k: part_sums(c, broken[k], parts) for k, c in chances.items()}
    )


def shifted_sums(chance: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """For each log-odds shift, the sum of the shifted probabilities: the expected matches
    were the model's odds off by e^shift for every pair at once."""
    if not len(chance):
        return np.zeros(len(shifts))
    p = np.clip(chance, 1e-12, 1 - 1e-12)
    odds = np.log(p / (1 - p))
    return np.array([float((1.0 / (1.0 + np.exp(-(odds + shift)))).sum()) for shift in shifts])


def partial_shift(
    chance: np.ndarray, unsure: np.ndarray, shifts: np.ndarray, apart: np.ndarray
) -> np.ndarray:
    """Expected matches among ``chance`` under each draw: the pairs with a comparison read
    missing (``unsure``) shifted by ``apart``, the rest by ``shifts``.

    A comparison reads missing where its salts are shown to differ by a partial
    disagreement (a date slip, a move): two strangers' salts mostly differ outright, so
    among candidates a missing comparison is far more often a match's than the model, for
    which missing weighs neither way, allows. On generated data such pairs' log odds read
    1-4 low, linked or rejected (bench/estimate_replay.py: linked pairs at 0.5-0.7 with one
    missing, 98% matches), while pairs with every comparison known were calibrated. Which
    way and how far depends on how the candidates were drawn, so the estimate does not move
    its point; its interval draws a shift of their own for such pairs, wider
    (``CALIBRATION_MISSING``) than the shift shared by the rest.
    """
    found: np.ndarray = shifted_sums(chance[~unsure], shifts) + shifted_sums(chance[unsure], apart)
    return found


def truth_draws(
    chance: np.ndarray, held: np.ndarray, pairs: int, hidden: np.ndarray,
    rng: np.random.Generator, unsure: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Draws of the true precision and recall, given the model's probabilities and
    ``hidden``: as many draws of the matches under the floor (``field_hidden``).

    Each candidate is a match with its probability, after a log-odds shift shared by
    every pair (sd ``CALIBRATION``; those with a comparison read missing, ``unsure``, by
    one of their own: ``partial_shift``): refits move the model little where a pair is
    ambiguous under any fit, yet its probabilities there were measured off by that much
    (linked pairs at 0.6-0.9 nearly all matches). The wrong pairs among those output and
    the matches among those not are counted as Poisson (few, each unlikely), so "none
    wrong" keeps the chance it has.
    """
    count = len(hidden)
    unsure = np.zeros(len(chance), dtype=bool) if unsure is None else unsure
    extra = max(pairs - int(held.sum()), 0)
    shifts = rng.normal(0.0, CALIBRATION, SHIFTS)
    apart = rng.normal(0.0, CALIBRATION_MISSING, SHIFTS)
    each = count // SHIFTS
    s_in, s_rest = (
        np.repeat(partial_shift(chance[m], unsure[m], shifts, apart), each) for m in (held, ~held)
    )
    inside = int(held.sum())
    true_in = inside - rng.poisson(np.maximum(inside - s_in, 0.0))
    mean = s_in / max(inside, 1)
    found = true_in + extra - rng.poisson(extra * (1 - mean))
    missed = rng.poisson(s_rest)
    precision = found / pairs if pairs else np.ones(len(s_in))
    total = true_in + missed + hidden
    recall = np.where(total > 0, true_in / np.maximum(total, 1e-12), 1.0)
    return precision, recall


def recall_chance_spread(chance: np.ndarray, held: np.ndarray, hidden: float) -> float:
    """95% half-width of the true recall from chance alone, were every probability right:
    each pair a match with its probability (binomial variance) and the hidden count a
    Poisson count, carried through recall = found / (found + missed) to first order."""
    found = float(chance[held].sum())
    missed = float(chance[~held].sum()) + hidden
    total = found + missed
    if total <= 0:
        return 0.0
    var_found = float((chance[held] * (1 - chance[held])).sum())
    var_missed = float((chance[~held] * (1 - chance[~held])).sum()) + hidden
    sd = np.sqrt((missed**2) * var_found + (found**2) * var_missed) / total**2
    return float(1.96 * sd)


def robust_spread(values: np.ndarray) -> float:
    """A spread (sd-like) of refits' figures that one collapsed refit does not set: the
    median absolute deviation, scaled to an sd. A refit that collapses (one in ten on
    generated data at twice the usual errors) is reported as a caveat instead."""
    if len(values) < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def interval(point: float, truth: np.ndarray, refits: np.ndarray) -> tuple[float, float]:
    """95% interval: the truth's own spread given the run's probabilities (quantiles),
    widened in quadrature by the refits' spread (``robust_spread``), within [0, 1]."""
    low, high = (float(x) for x in np.quantile(truth, [0.025, 0.975]))
    model = 1.96 * robust_spread(refits)
    down = float(np.hypot(max(point - low, 0.0), model))
    up = float(np.hypot(max(high - point, 0.0), model))
    return max(point - down, 0.0), min(point + up, 1.0)


def spanning(*intervals: tuple[float, float]) -> tuple[float, float]:
    """The smallest interval holding all of ``intervals``: the figure's interval on the
    recalibrated probabilities and on the model's own (``missing_recalibrated`` is itself an
    estimate from few pairs; taken alone, its interval missed a true precision of 1.000 in
    3-4 more of 26 settings than the model's did)."""
    return min(i[0] for i in intervals), max(i[1] for i in intervals)


def on_output(
    prepared: Prepared,
    group: np.ndarray,
    dataset: np.ndarray,
    seed: int = 0,
    one_match: bool = True,
) -> FieldEstimate:
    """Precision and recall of the run's groups, per kind, with intervals and caveats.

    ``group`` and ``dataset``: each record's group (-1 alone) and dataset, in load order
    (``entities.Grouping``). ``one_match`` reads a cross pair whose records both have
    partners in the other's organisation as no match (``spoken_for``,
    ``moved_from_spoken``); off, each pair is what the model gave it (to measure what
    that buys: bench/field_estimates.py).
    """
    rng = np.random.default_rng(seed)
    held = (group[prepared.left] >= 0) & (group[prepared.left] == group[prepared.right])
    counts = output_pairs(group, dataset)
    present = [k for k in range(len(KINDS)) if k != WITHIN or (prepared.kinds == WITHIN).any()]
    mine = {k: prepared.kinds == k for k in present}
    chances: dict[int, np.ndarray] = {}
    models: dict[int, np.ndarray] = {}
    draws: dict[int, np.ndarray] = {}
    rates: tuple[np.ndarray, np.ndarray] | None = None
    for k in present:
        spoken = np.zeros(int(mine[k].sum()), dtype=bool)
        odds = None
        if one_match:
            ends = (prepared.left[mine[k]], prepared.right[mine[k]], group, dataset)
            spoken = spoken_for_within(*ends) if k == WITHIN else spoken_for(*ends)
            odds = spoken_odds(*ends) if k == WITHIN else None
        pattern, here = prepared.chance[mine[k]], held[mine[k]]
        partial = None if prepared.partial is None else prepared.partial[:, mine[k]]
        own, rates = recalibrated(pattern, partial, rates if k == WITHIN else None)
        chances[k] = moved_from_spoken(own, pattern, spoken, odds)
        models[k] = (
            chances[k] if own is pattern else moved_from_spoken(pattern, pattern, spoken, odds)
        )
        draws[k] = np.array(
            [
                moved_from_spoken(draw, pattern, spoken, odds)
                for draw in prepared.draws[:, mine[k]].astype(np.float64)
            ]
        ).reshape(len(prepared.draws), -1)
    broken = {k: prepared.broken[mine[k]] for k in present}
    clear = None if prepared.clear is None else {k: prepared.clear[mine[k]] for k in present}
    hidden = _hidden({k: chances[k] for k in present}, broken, prepared.parts, clear)
    hidden_model = _hidden({k: models[k] for k in present}, broken, prepared.parts, clear)
    refit_hidden = [
        _hidden({k: draws[k][d] for k in present}, broken, prepared.parts, clear)
        for d in range(len(prepared.draws))
    ]
    drawn_hidden: dict[int, np.ndarray] = {k: np.zeros(OUTCOMES) for k in present}
    if prepared.parts:
        sums = {k: part_sums(chances[k], broken[k], prepared.parts) for k in present}
        drawn_hidden = field_hidden.hidden_draws_by_kind(sums, OUTCOMES, rng)
    if prepared.parts and clear is not None:
        # Two readings of a cell nobody sees: the interval draws each half the time.
        drawn_hidden = {
            k: field_hidden.mixed(
                field_hidden.by_parts_draws(
                    chances[k], broken[k], clear[k], prepared.parts, OUTCOMES, rng
                ),
                drawn_hidden[k],
                rng,
            )
            for k in present
        }
    out: list[KindFigures | None] = [None] * len(KINDS)
    for k in present:
        pairs, chance, here = int(counts[k]), chances[k], held[mine[k]]
        precision, recall = _figures(chance, here, pairs, hidden[k])
        unsure = None if prepared.missing is None else prepared.missing[mine[k]] > 0
        # A stream of its own per kind: what is done to one kind's pairs leaves the other's
        # interval where it was.
        mine_rng = np.random.default_rng([seed, k])
        p_true, r_true = truth_draws(chance, here, pairs, drawn_hidden[k], mine_rng, unsure)
        refits = np.array(
            [_figures(d, here, pairs, h[k]) for d, h in zip(draws[k], refit_hidden, strict=True)]
        ).reshape(-1, 2)
        p_int = interval(precision, p_true, refits[:, 0])
        r_int = interval(recall, r_true, refits[:, 1])
        p_model, r_model = _figures(models[k], here, pairs, hidden_model[k])
        if models[k] is not chance:
            p_own, r_own = truth_draws(models[k], here, pairs, drawn_hidden[k], mine_rng, unsure)
            p_int = spanning(p_int, interval(p_model, p_own, refits[:, 0]))
            r_int = spanning(r_int, interval(r_model, r_own, refits[:, 1]))
        far = np.abs(refits - [p_model, r_model]).max(initial=0.0)
        out[k] = KindFigures(
            precision,
            recall,
            p_int,
            r_int,
            pairs,
            float(chance.sum()) + hidden[k],
            hidden[k],
            float(far),
            recall_chance_spread(chance, here, hidden[k]),
        )
    across, within = out
    assert across is not None
    more = _candidate_caveats(prepared)
    return FieldEstimate(across, within, (*more, *caveats_for(across, within)))


def _candidate_caveats(prepared: Prepared) -> tuple[Caveat, ...]:
    """``field_caveats``' checks on each kind the run weighed: few candidates, a cut at
    its bound."""
    found: list[Caveat | None] = []
    for k, code in enumerate(KINDS):
        candidates = int((prepared.kinds == k).sum())
        if k == WITHIN and not candidates:
            continue
        found.append(field_caveats.few_candidates(code, candidates))
        found.append(field_caveats.cut_at_bound(code, prepared.cuts[k], field_model.MIN_CUT))
    return tuple(c for c in found if c is not None)


def caveats_for(across: KindFigures, within: KindFigures | None) -> tuple[Caveat, ...]:
    """Plain words for figures that rest on too little, on an unstable model, or on matches
    no candidate held."""
    found: list[Caveat] = []
    for code, name, figures in (
        ("across", "across organisations", across),
        ("within", "inside one organisation", within),
    ):
        if figures is None:
            continue
        if figures.expected_matches < FEW_MATCHES:
            found.append(
                Caveat(
                    f"few_field_matches_{code}",
                    f"the field model expects only {figures.expected_matches:.0f} matching "
                    f"pairs {name}: too few for its precision and recall there to be relied on",
                    untrusted=True,
                )
            )
            continue
        for said in (
            field_caveats.coarse(code, figures.expected_matches),
            field_caveats.chance_spread(code, figures.chance_spread),
        ):
            if said is not None:
                found.append(said)
        if figures.unstable > UNSTABLE:
            found.append(
                Caveat(
                    f"unstable_model_{code}",
                    f"{name}, refitting the field model on resampled records moved its figures "
                    f"by up to {figures.unstable * 100:.0f} points: it rests on few clear "
                    "matches",
                )
            )
        wide = max(
            figures.precision_interval[1] - figures.precision_interval[0],
            figures.recall_interval[1] - figures.recall_interval[0],
        )
        if wide > WIDE:
            found.append(
                Caveat(
                    f"wide_interval_{code}",
                    f"{name}, the interval is {wide * 100:.0f} points wide: read it, not the point",
                )
            )
        if figures.hidden > MANY_HIDDEN * figures.expected_matches:
            found.append(
                Caveat(
                    f"hidden_matches_{code}",
                    f"about {figures.hidden:.0f} of the {figures.expected_matches:.0f} matching "
                    f"pairs {name} differ in two or more of the record's salts, so they score "
                    "like strangers and were never candidates; recall counts them as missed, "
                    "from how often each salt differs among the matches found",
                )
            )
    return tuple(found)


#: Said of every report whose figures are the field model's (field scoring on).
FIELD_FIGURES = Caveat(
    "field_model_figures",
    "precision and recall are the field model's own estimates for the pairs the run's groups "
    "hold, counting matches that were never candidates; the score chart and its curve are "
    "the record-level CLK's, which did not decide the links",
)


def blocked(figures: KindFigures, missed: float | None) -> KindFigures:
    """Cross figures with the matches blocking never compared counted as missed: recall
    and its interval times one less the share blocking was measured to miss on its random
    sample (``output_recall.blocking_miss``); None: the run did not block."""
    if not missed:
        return figures
    keep = 1.0 - missed
    low, high = figures.recall_interval
    return dataclasses.replace(
        figures, recall=figures.recall * keep, recall_interval=(low * keep, high * keep)
    )


def reported(
    report: RunQuality, duplicates: DuplicateEstimate, found: FieldEstimate
) -> tuple[RunQuality, DuplicateEstimate]:
    """The report with the field model's figures where the record-level mixture's were.

    On the field path the mixture of record-level scores describes a threshold the run
    never linked at, so its precision, recall and caveats made the headline of a report
    about links it did not decide. The headline becomes the model's cross-organisation
    figures on the groups, the duplicate section its within figures, each with its
    interval; the caveats are the model's, labelled (``FIELD_FIGURES``), and those of the
    record-level estimate that say which pairs were ever compared (blocking's measured
    miss, which recall counts: ``blocked``; floors lifted to the chance level or held at
    its ceiling: ``field_caveats.about_candidates``).
    """
    across = blocked(found.across, report.blocking_missed)
    sd = (across.recall_interval[1] - across.recall_interval[0]) / (2 * 1.96)
    kept = field_caveats.about_candidates(report.caveats)
    report = dataclasses.replace(
        report,
        precision=across.precision,
        precision_sd=(across.precision_interval[1] - across.precision_interval[0]) / (2 * 1.96),
        precision_interval=across.precision_interval,
        recall=across.recall,
        recall_sd=sd,
        recall_interval=across.recall_interval,
        recall_on_output=True,
        unscored=across.hidden,
        caveats=(FIELD_FIGURES, *found.caveats, *kept),
    )
    if found.within is not None:
        duplicates = dataclasses.replace(
            duplicates,
            precision=found.within.precision,
            recall=found.within.recall,
            precision_interval=found.within.precision_interval,
            recall_interval=found.within.recall_interval,
        )
    return report, duplicates
