"""Are the field model's own precision/recall estimates honest? Estimated against true.

The default path (``field_scoring`` on, salted record CLK): for each error
level, overlap and seed this generates synthetic data for three
organisations, encodes it as nodes do (bench/quality.py), finds every
candidate as a run does (the salted floors and the part pass: ``run_pairs``),
scores and links them with the field model
(``field_scoring.score`` / ``decide``) and solves, as a run does. It then
prints the model's own estimate of precision and recall, across
organisations and within one, with its stated interval, beside the truth of
the solved groups; the last lines count, over all settings, how often the
estimates were within 1.5 points of the truth and the intervals covered it,
the largest error and the mean interval width (the issue's target: within
1.5 points everywhere, intervals covering the truth in at least 9 of 10).

    python bench/field_estimates.py [--records 1000] [--seeds 7 8 9] [--factors 0.5 1 2]
        [--overlaps 0.1 0.5 0.9] [--before]

``--before`` prints the figures the report gave before the field path had
estimates of its own: the field model's expected precision/recall over its
candidates (no interval) and the report's headline record-level mixture
estimate (recall on the output), which does not describe the field model's
links at all. ``bench/estimates.py --field-scoring`` runs this.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import grouped
import quality as bench_quality
from quality import DEFAULTS
from run_pairs import run_pairs

from coordinator.core import entities, field_estimate, field_scoring, matching, peaks
from coordinator.core import quality as run_quality
from coordinator.core.score_model import SALTED_FLOOR
from hublink import synthetic

Interval = tuple[float, float]


@dataclass(frozen=True)
class Figure:
    """One estimate beside the truth."""

    name: str
    estimate: float
    interval: Interval | None
    truth: float

    @property
    def error(self) -> float:
        return self.estimate - self.truth

    @property
    def covered(self) -> bool:
        if self.interval is None:
            return False
        return self.interval[0] - 1e-9 <= self.truth <= self.interval[1] + 1e-9

    @property
    def width(self) -> float:
        return 0.0 if self.interval is None else self.interval[1] - self.interval[0]

    def text(self) -> str:
        shown = (
            "[  -  ]"
            if self.interval is None
            else f"[{self.interval[0]:.3f}, {self.interval[1]:.3f}]"
        )
        mark = "yes" if self.covered else "NO"
        return f"{self.estimate:.3f} {shown} {self.truth:.3f} {mark}"


Estimator = Callable[..., dict[str, tuple[float, Interval | None]]]


def model_before(scored: field_scoring.Scored, decision: field_scoring.Decision, **_: object):  # type: ignore[no-untyped-def]
    """What the report held before: the model's expectation over its own candidates."""
    d = decision.duplicates
    return {
        "was-across P": (decision.across_precision, None),
        "was-across R": (decision.across_recall, None),
        "was-within P": (d.precision, None),
        "was-within R": (d.recall, None),
    }


def headline_before(enc: bench_quality.Encoded, across, groups, seed: int, **_: object):  # type: ignore[no-untyped-def]
    """The report's headline estimate on the field path before: the record-level mixture."""
    scores = run_quality.best_scores(across)
    _, found = run_quality.choose(
        scores,
        DEFAULTS.threshold,
        True,
        across,
        floor=SALTED_FLOOR,
        bootstrap=20,
        peaks=peaks.peaks_for("salted"),
    )
    if not found.fitted:
        return {}
    sizes = tuple(len(d) for d in enc.datasets)
    grouping = entities.Grouping.from_solution(groups, list(sizes))
    out = run_quality.on_output(
        found, across, run_quality.Output(grouping.group, sizes, SALTED_FLOOR), seed=seed
    )
    return {
        "headline P": (found.precision, found.precision_interval),
        "headline R": (out.recall, out.interval),
    }


def reader(enc: bench_quality.Encoded) -> Callable[[Any], dict[str, Any]]:
    """The per-field filters of some rows, as the run reads them from its store."""
    return lambda rows: {n: a[rows] for n, a in enc.filters.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="records per organisation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--factors", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--overlaps", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    parser.add_argument("--orgs", type=int, default=3)
    parser.add_argument("--before", action="store_true", help="the figures reported before")
    args = parser.parse_args()
    bench_quality.RECORD_CLK = "salted"
    estimators: list[Estimator] = [model_before, headline_before] if args.before else []
    estimators += field_estimators()
    figures: dict[str, list[Figure]] = {}
    for factor in args.factors:
        for overlap in args.overlaps:
            for seed in args.seeds:
                started = time.monotonic()
                enc = bench_quality.synthetic_setting(
                    args.records, seed, overlap, factor, args.orgs
                )
                # As a run finds them: the whole-row floor and the part pass (``run_pairs``).
                found_pairs = run_pairs(
                    enc.datasets, "salted", field_scoring.within_floor("salted")
                )
                across, within = found_pairs.across, found_pairs.within
                sizes = [len(d) for d in enc.datasets]
                scored = field_scoring.score(
                    across,
                    within,
                    sizes,
                    reader(enc),
                    flip=enc.flip,
                    seed=seed,
                    identifiers=enc.identifiers,
                )
                decision = field_scoring.decide(across, within, scored)
                groups = matching.solve(decision.linking, merge_threshold=DEFAULTS.merge_threshold)
                truth = synthetic.pairwise_quality(grouped.predicted(groups, enc.ids), enc.truth)
                true = {
                    "P": {"across": truth.cross.precision, "within": truth.within.precision},
                    "R": {"across": truth.cross.recall, "within": truth.within.recall},
                }
                line = [f"x{factor:g} ov{overlap:g} s{seed}"]
                for estimator in estimators:
                    found = estimator(
                        scored=scored,
                        decision=decision,
                        enc=enc,
                        across=across,
                        within=within,
                        groups=groups,
                        seed=seed,
                    )
                    for name, (value, interval) in found.items():
                        kind, which = name.split()
                        kind = kind.removeprefix("was-").removeprefix("pairwise-")
                        kind = "across" if kind == "headline" else kind
                        fig = Figure(name, value, interval, true[which][kind])
                        figures.setdefault(name, []).append(fig)
                        line.append(f"{name} {fig.text()}")
                line.append(f"{time.monotonic() - started:.0f}s")
                print(" | ".join(line), flush=True)
    print()
    for name, found in figures.items():
        n = len(found)
        close = sum(abs(f.error) <= 0.015 for f in found)
        covered = sum(f.covered for f in found)
        worst = max(found, key=lambda f: abs(f.error))
        width = sum(f.width for f in found) / n * 100
        print(
            f"{name}: within 1.5 points {close}/{n}, interval covers {covered}/{n}, "
            f"largest error {worst.error * 100:+.1f} points, mean width {width:.1f} points"
        )


def field_estimators() -> list[Estimator]:
    """The field path's own estimate, as a run reports it (``field_estimate``), and the
    same with each pair at the model's probability (``one_match`` off: across figures
    before ``spoken_for``, named ``pairwise-across``)."""
    return [on_output]


def on_output(scored, enc, groups, seed: int, **_: object):  # type: ignore[no-untyped-def]
    """The field model's figures for the solved groups (``field_estimate``)."""
    sizes = [len(d) for d in enc.datasets]
    prepared = field_estimate.prepare(scored, sizes, seed=seed)
    grouping = entities.Grouping.from_solution(groups, sizes)
    found = field_estimate.on_output(prepared, grouping.group, grouping.dataset, seed=seed)
    pairwise = field_estimate.on_output(
        prepared, grouping.group, grouping.dataset, seed=seed, one_match=False
    )
    out = {
        "across P": (found.across.precision, found.across.precision_interval),
        "across R": (found.across.recall, found.across.recall_interval),
        "pairwise-across P": (pairwise.across.precision, pairwise.across.precision_interval),
        "pairwise-across R": (pairwise.across.recall, pairwise.across.recall_interval),
    }
    if found.within is not None:
        out["within P"] = (found.within.precision, found.within.precision_interval)
        out["within R"] = (found.within.recall, found.within.recall_interval)
    if found.caveats:
        print("   caveats:", ", ".join(c.code for c in found.caveats), flush=True)
    return out


if __name__ == "__main__":
    main()
