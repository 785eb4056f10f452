"""A run's quality report: the threshold it chose, and aggregates an admin may be shown.

The estimate itself (the score mixture, its threshold and precision/recall)
is ``coordinator.core.score_model``'s; this module chooses a run's threshold
from it and gathers the report stored with the run: the histogram of best
scores, the fitted curve and per-dataset rates. The report names three
thresholds: the requested one (given with the run, if any), the fallback (the
requested one, else the project's) and the chosen one, the run linked at. Its
stored and wire names are older: ``threshold_fixed`` is the fallback and
``threshold_used`` the chosen threshold.

Nothing here knows about gRPC, SQLite or organisations; nothing it returns
holds a record or a pair, only aggregates.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core import caveats, output_recall
from coordinator.core.caveats import Caveat
from coordinator.core.matching import Candidates
from coordinator.core.output_recall import OutputRecall
from coordinator.core.peaks import refiner
from coordinator.core.quality_breakdown import AttributeRate
from coordinator.core.score_model import (
    FLOOR,
    MIN_SCORES,
    NEAR,
    Estimate,
    Mixture,
    Scores,
    _unfitted,
    best_scores,
    estimate,
    fit,
    near_threshold,
    runner_up_scores,
    several_candidates,
    top_two,
)

__all__ = [
    "BIN_WIDTH",
    "FLOOR",
    "MIN_SCORES",
    "NEAR",
    "Caveat",
    "DatasetRates",
    "DuplicateEstimate",
    "Estimate",
    "Mixture",
    "ReleasedBin",
    "RunQuality",
    "Scores",
    "best_scores",
    "choose",
    "curve",
    "dataset_rates",
    "estimate",
    "fit",
    "histogram",
    "near_threshold",
    "release_bins",
    "report",
    "runner_up_scores",
    "several_candidates",
    "top_two",
]

#: Histogram bins of the quality report.
BIN_WIDTH = 0.01


@dataclass(frozen=True)
class DatasetRates:
    """How one dataset's records fared in a run (aggregate counts)."""

    organisation: str
    records: int
    linked: int
    """Records in an entity that holds another organisation's record."""
    duplicates: int
    """Records in an entity that holds another record of the same organisation."""


@dataclass(frozen=True)
class DuplicateEstimate:
    """How per-field weighing (``field_scoring``) decided the within-dataset pairs of a run.

    Aggregates only. Precision and recall are the model's own estimates: the
    mean match probability of the pairs it linked, and their share of the
    probability mass of all the pairs it weighed.
    """

    groups: tuple[str, ...]
    weighed: int
    """Within-dataset pairs at or above the record-level floor, weighed field by field."""
    linked: int
    """Pairs whose match probability reached the cut-off, less those left ``apart``: passed
    to the solver."""
    estimated_duplicate_pairs: float
    precision: float
    recall: float
    match_anchors: int
    """Cross-organisation links used as the picture of one child's two records."""
    relative_anchors: int
    """Cross-organisation runner-up pairs used as the picture of relatives."""
    weights: tuple[tuple[str, tuple[float, ...]], ...] = ()
    """Per group: log2(match/chance) at each agreement level, best level first."""
    apart: int = 0
    """Pairs the model would have linked whose two records link to two different records of
    another organisation, left unlinked as two children (``field_scoring.partners_apart``)."""
    across_weighed: int = 0
    """Cross-organisation candidates the field model scored (0: reports from before it
    scored them)."""
    across_linked: int = 0
    across_precision: float = 1.0
    """The model's own precision and recall of the cross pairs it linked, over its candidates."""
    across_recall: float = 1.0
    cut_across: float = 0.5
    """The match probability linked at across organisations and inside one (each the
    model's expected-F1 best)."""
    cut_within: float = 0.5
    precision_interval: tuple[float, float] = (0.0, 0.0)
    """Where the within figures plausibly lie (``field_estimate``); (0, 0): not estimated
    (reports from before, when precision and recall were over the candidates only)."""
    recall_interval: tuple[float, float] = (0.0, 0.0)

    def summary(self) -> dict[str, object]:
        return {
            "groups": list(self.groups),
            "weighed": self.weighed,
            "linked": self.linked,
            "estimated_duplicate_pairs": round(self.estimated_duplicate_pairs, 1),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "match_anchors": self.match_anchors,
            "relative_anchors": self.relative_anchors,
            "apart": self.apart,
            "across_weighed": self.across_weighed,
            "across_linked": self.across_linked,
            "across_precision": round(self.across_precision, 4),
            "across_recall": round(self.across_recall, 4),
            "cut_across": round(self.cut_across, 4),
            "cut_within": round(self.cut_within, 4),
            "precision_low": round(self.precision_interval[0], 4),
            "precision_high": round(self.precision_interval[1], 4),
            "recall_low": round(self.recall_interval[0], 4),
            "recall_high": round(self.recall_interval[1], 4),
        }


@dataclass(frozen=True)
class RunQuality:
    """A run's quality, aggregate numbers only: stored with the run, shown to its admin.

    Nothing here identifies a record or a pair: the histogram counts best
    scores per bin, the curve is the fitted model's, the rates are per dataset.
    """

    auto: bool
    """Whether the run may choose the estimated threshold (the project's rule, when no
    threshold was requested); it does when there is an estimate."""
    threshold_used: float
    """The chosen threshold, the run linked at: the estimate when ``auto`` and fitted, else
    the fallback."""
    threshold_fixed: float
    """The fallback threshold: the requested one, else the project's."""
    fitted: bool
    reason: str
    threshold_estimated: float
    threshold_sd: float
    precision: float
    precision_sd: float
    recall: float
    recall_sd: float
    scores: int
    near_threshold: int
    several_candidates: int
    histogram: tuple[tuple[float, int], ...] = ()
    """(lower edge, best scores in [edge, edge + BIN_WIDTH))."""
    curve: tuple[tuple[float, float, float], ...] = ()
    """(threshold, estimated precision, estimated recall) from the fitted model."""
    datasets: tuple[DatasetRates, ...] = ()
    attributes: tuple[AttributeRate, ...] = ()
    """Per organisation and released attribute value: protected record, link, duplicate counts."""
    anchored: bool = False
    """Whether the estimate held its non-match component at the runner-up scores."""
    duplicates: DuplicateEstimate | None = None
    """How within-dataset pairs were weighed field by field (projects with field_scoring)."""
    threshold_requested: float | None = None
    """The threshold the admin requested with the run; None: none was (and reports stored
    before this was kept)."""
    precision_interval: tuple[float, float] = (0.0, 0.0)
    """Where precision plausibly lies (``score_model``); (0, 0) in reports stored before."""
    recall_interval: tuple[float, float] = (0.0, 0.0)
    caveats: tuple[Caveat, ...] = ()
    """Why the estimate should be read with care (``coordinator.core.caveats``)."""
    recall_on_output: bool = False
    """Whether recall counts what the run's groups hold (``output_recall``); False: the
    matches above the threshold (reports stored before)."""
    left_apart: float = 0.0
    """Expected matches above the threshold that the groups do not hold (the solver's)."""
    unscored: float = 0.0
    """Expected matches never scored: below the lowest score kept, or not compared by blocking."""
    blocking_missed: float | None = None
    """Measured share of true-looking pairs blocking did not compare; None: not blocked."""
    spread_carried: int | None = None
    """None: this run drew its bootstraps. A number: an incremental run carried the last
    bootstraps' spreads (threshold, precision, recall) around its own exact figures
    (``spread_carry``), and this many records were changed, or paired with changed ones,
    since those bootstraps."""

    @property
    def trusted(self) -> bool:
        """Estimated, and no caveat says the figures should not be relied on."""
        return self.fitted and not any(c.untrusted for c in self.caveats)

    def summary(self) -> dict[str, object]:
        """The figures for the audit log: aggregates only, no histogram."""
        return {
            "auto_threshold": self.auto,
            "threshold_used": round(self.threshold_used, 4),
            "threshold_fixed": round(self.threshold_fixed, 4),
            "threshold_estimated": round(self.threshold_estimated, 4),
            "threshold_sd": round(self.threshold_sd, 4),
            "estimated": self.fitted,
            "not_estimated_because": self.reason,
            "precision": round(self.precision, 4),
            "precision_sd": round(self.precision_sd, 4),
            "recall": round(self.recall, 4),
            "recall_sd": round(self.recall_sd, 4),
            "scores": self.scores,
            "links_near_threshold": self.near_threshold,
            "records_with_several_candidates": self.several_candidates,
            "non_matches_anchored": self.anchored,
            "precision_low": round(self.precision_interval[0], 4),
            "precision_high": round(self.precision_interval[1], 4),
            "recall_low": round(self.recall_interval[0], 4),
            "recall_high": round(self.recall_interval[1], 4),
            "caveats": ",".join(c.code for c in self.caveats),
            "recall_on_output": self.recall_on_output,
            "left_apart": round(self.left_apart, 1),
            "unscored": round(self.unscored, 1),
            **(
                {"blocking_missed": round(self.blocking_missed, 4)}
                if self.blocking_missed is not None
                else {}
            ),
            **({"spread_carried": self.spread_carried} if self.spread_carried is not None else {}),
            **({"duplicates": self.duplicates.summary()} if self.duplicates is not None else {}),
        }

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunQuality:
        raw = json.loads(text)
        raw["histogram"] = tuple((float(a), int(b)) for a, b in raw["histogram"])
        raw["curve"] = tuple((float(a), float(b), float(c)) for a, b, c in raw["curve"])
        raw["datasets"] = tuple(DatasetRates(**d) for d in raw["datasets"])
        # Reports stored before the breakdown existed have none.
        raw["attributes"] = tuple(AttributeRate(**a) for a in raw.get("attributes", ()))
        for name in ("precision_interval", "recall_interval"):
            raw[name] = tuple(float(x) for x in raw.get(name, (0.0, 0.0)))
        raw["caveats"] = tuple(Caveat(**c) for c in raw.get("caveats", ()))
        found = raw.get("duplicates")
        if found is not None:
            found["groups"] = tuple(found["groups"])
            found["weights"] = tuple((g, tuple(w)) for g, w in found["weights"])
            for name in ("precision_interval", "recall_interval"):
                found[name] = tuple(float(x) for x in found.get(name, (0.0, 0.0)))
            raw["duplicates"] = DuplicateEstimate(**found)
        return cls(**raw)


#: Refits of the score mixture a run's estimate draws for its spreads (``score_model``).
BOOTSTRAP = 100


def choose(
    scores: Scores,
    fallback: float,
    auto: bool,
    across: Candidates | None = None,
    completeness: float = 1.0,
    floor: float = FLOOR,
    bootstrap: int = BOOTSTRAP,
    peaks: int = 1,
) -> tuple[float, Estimate]:
    """The chosen threshold: the estimate when ``auto`` and the scores allow, else ``fallback``.

    ``across`` (the run's cross-dataset candidates) lets the estimate check its
    non-match component against runner-up scores (``estimate``); ``completeness``
    is blocking's (1 without); ``floor`` the score candidates were kept from; ``peaks``
    how many humps true pairs' scores may form (a salted record CLK's parts:
    ``coordinator.core.peaks``). A fit that fails numerically never fails the run: it
    falls back and says why.
    """
    try:
        found = estimate(
            scores,
            candidates=across,
            completeness=completeness,
            floor=floor,
            bootstrap=bootstrap,
            refine=refiner(peaks) if peaks > 1 else None,
        )
    except (ValueError, ArithmeticError) as exc:
        found = _unfitted(f"the estimate could not be computed ({exc})", len(scores))
    if peaks > 1 and found.fitted:
        found = dataclasses.replace(found, caveats=(*found.caveats, SALTED_RECALL))
    return (found.threshold if auto and found.fitted else fallback), found


#: Said of every estimate from a salted record CLK (``peaks`` > 1): measured 2-4 points high
#: on generated data (docs/benchmarks.md, "Salted record CLK without field scoring").
SALTED_RECALL = Caveat(
    "salted_recall",
    "recall counts only the matches some salted part still joins: a child whose records "
    "differ in every salt (date of birth, postcode and name) scores like a stranger, "
    "unseen, so recall reads a few points high",
)


def histogram(scores: Scores, low: float = FLOOR) -> tuple[tuple[float, int], ...]:
    edges = np.round(np.arange(low, 1.0 + BIN_WIDTH / 2, BIN_WIDTH), 4)
    edges[-1] = 1.0 + 1e-9  # a score of exactly 1 falls in the last bin
    counts, _ = np.histogram(scores, bins=edges)
    return tuple((round(float(e), 4), int(c)) for e, c in zip(edges[:-1], counts, strict=True))


def curve(found: Estimate, low: float = FLOOR) -> tuple[tuple[float, float, float], ...]:
    if not found.fitted:
        return ()
    points = []
    for t in np.round(np.arange(low, 1.0 + 1e-9, BIN_WIDTH), 4):
        precision, recall = found.at(float(t))
        points.append((float(t), round(precision, 5), round(recall, 5)))
    return tuple(points)


def dataset_rates(
    dataset: np.ndarray,
    linked: np.ndarray,
    duplicated: np.ndarray,
    sizes: Sequence[int],
    names: Sequence[str],
) -> tuple[DatasetRates, ...]:
    """Each dataset's records, those linked to another dataset, and those in a duplicate group.

    Arguments are per record of the run, in load order (``entities.Grouping``).
    """
    n = len(sizes)
    linked_n = np.bincount(dataset[linked], minlength=n)
    duplicates_n = np.bincount(dataset[duplicated], minlength=n)
    return tuple(
        DatasetRates(names[i], sizes[i], int(linked_n[i]), int(duplicates_n[i])) for i in range(n)
    )


@dataclass(frozen=True)
class Output:
    """What recall on the run's output needs: its groups and what its candidates covered."""

    group: np.ndarray
    """Each record's group number (-1: alone), in load order (``entities.Grouping.group``)."""
    sizes: tuple[int, ...]
    kept_from: float
    """The lowest cross-dataset score the candidates hold."""
    sample_pairs: Candidates | None = None
    """With blocking, the exact pairs of a random sample of records (``candidates.Found``)."""
    carried: tuple[float, float, int] | None = None
    """An incremental run's carried recall interval (``spread_carry``): the last bootstrap's
    interval less its recall, and the records changed since it; None: bootstrap afresh."""


def on_output(found: Estimate, across: Candidates, output: Output, seed: int = 0) -> OutputRecall:
    """Recall of the run's groups (``output_recall``), blocking's misses measured on its
    sample; ``found`` must be fitted."""
    if found.mixture is None:
        raise ValueError("recall on the output needs a fitted estimate")
    miss = (
        output_recall.blocking_miss(found.mixture, output.sample_pairs, across, found.threshold)[0]
        if output.sample_pairs is not None
        else 0.0
    )
    items = output_recall.best_items(across)
    return output_recall.measure(
        found.mixture,
        items,
        output_recall.grouped_with(items, output.group, output.sizes),
        found.threshold,
        seen_from=output.kept_from,
        blocking_miss=miss,
        others=found.alternatives,
        seed=seed,
        spread=output.carried[:2] if output.carried else None,
    )


def report(
    *,
    across: Candidates,
    scores: Scores,
    found: Estimate,
    auto: bool,
    threshold_used: float,
    threshold_fixed: float,
    datasets: tuple[DatasetRates, ...],
    threshold_requested: float | None = None,
    output: Output | None = None,
    floor: float = FLOOR,
) -> RunQuality:
    """Everything a run reports about its quality, from its cross-dataset candidates and groups
    (``datasets``: ``dataset_rates`` of the run's groups). ``threshold_used`` is the chosen
    threshold, ``threshold_fixed`` the fallback (``RunQuality``). With ``output`` (the run's
    groups), recall is counted on them (``on_output``). ``floor`` is the score candidates were
    kept from (the record CLK's), where the histogram and curve start."""
    measured = on_output(found, across, output) if output is not None and found.fitted else None
    base = _report(
        across=across,
        scores=scores,
        found=found,
        auto=auto,
        threshold_used=threshold_used,
        threshold_fixed=threshold_fixed,
        datasets=datasets,
        threshold_requested=threshold_requested,
        floor=floor,
    )
    if measured is None:
        return base
    missed = (
        measured.blocking_share if output is not None and output.sample_pairs is not None else None
    )
    return dataclasses.replace(
        base,
        recall=measured.recall,
        recall_interval=measured.interval,
        recall_sd=(measured.interval[1] - measured.interval[0]) / (2 * 1.96),
        recall_on_output=True,
        left_apart=measured.left_apart,
        unscored=measured.below_floor + measured.blocking_missed,
        blocking_missed=missed,
        caveats=caveats.with_blocking_measured(base.caveats, missed),
        spread_carried=output.carried[2] if output and output.carried else None,
    )


def _report(
    *,
    across: Candidates,
    scores: Scores,
    found: Estimate,
    auto: bool,
    threshold_used: float,
    threshold_fixed: float,
    datasets: tuple[DatasetRates, ...],
    threshold_requested: float | None = None,
    floor: float = FLOOR,
) -> RunQuality:
    return RunQuality(
        auto=auto,
        threshold_used=threshold_used,
        threshold_fixed=threshold_fixed,
        fitted=found.fitted,
        reason=found.reason,
        threshold_estimated=found.threshold,
        threshold_sd=found.threshold_sd,
        precision=found.precision,
        precision_sd=found.precision_sd,
        recall=found.recall,
        recall_sd=found.recall_sd,
        scores=found.scores,
        near_threshold=near_threshold(across, threshold_used),
        several_candidates=several_candidates(across, threshold_used),
        histogram=histogram(scores, floor),
        curve=curve(found, floor),
        datasets=datasets,
        anchored=found.anchored,
        threshold_requested=threshold_requested,
        precision_interval=found.precision_interval,
        recall_interval=found.recall_interval,
        caveats=found.caveats,
    )


@dataclass(frozen=True)
class ReleasedBin:
    """A histogram bin as the admin sees it: small counts withheld."""

    lower: float
    count: int
    suppressed: bool


def release_bins(histogram: Sequence[tuple[float, int]], threshold: int) -> tuple[ReleasedBin, ...]:
    """Withhold bins counting 1 to ``threshold - 1`` best scores, as the project's counts are.

    Even aggregate, a bin of one or two scores in the match region can say
    that a rare record exists elsewhere; the project's disclosure rule
    already decides how small a count may be shown.
    """
    return tuple(
        ReleasedBin(lower, 0, True) if 0 < count < threshold else ReleasedBin(lower, count, False)
        for lower, count in histogram
    )
