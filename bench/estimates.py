"""Are a run's own precision/recall estimates honest? Estimated against true, with coverage.

The record-level path (field evidence off): for each error level (the
generator's usual rates, halved and doubled), overlap (10%, 50%, 90%) and
seed, this generates synthetic data, encodes it with the node's encoder,
finds cross-dataset candidates down to the quality floor, estimates the
threshold, precision and recall from the scores alone (``quality.estimate``,
no truth) and links at the estimated threshold as a run does. It prints the
estimate with its interval beside the true cross-organisation precision and
recall of that linkage, whether the interval covers the truth, and the
caveats the estimate raised. The last lines count, over all settings, how
often the stated intervals covered the truth and how far the estimates were
from it (the target: within 1.5 points, intervals covering the truth in at
least 9 of 10).

    python bench/estimates.py [--records 1000] [--seeds 7 8] [--factors 0.5 1 2] [--blocking]
        [--record-clk salted]

``--field-scoring`` measures the default path instead (field scoring on, salted record
CLK: the field model's own figures on the run's groups), with ``bench/field_estimates.py``
and its arguments.

``--record-clk salted`` encodes the salted record CLK and estimates as a salted
project's run does (floor 0.6, several match humps: ``coordinator.core.peaks``).

With ``--blocking`` the candidates come from the run's LSH blocking at the
project's default threshold, and what blocking missed is measured on its
random sample of records compared with everyone.

About 4 minutes on one core with the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import grouped
import numpy as np
from hardening_tuning import encode_all
from threshold import scaled

from coordinator.core import candidates, entities, matching, peaks, quality, score_model
from hublink import synthetic
from hublink.config import ProjectConfig
from hublink.spec import LinkageSpec


def blocked_search(datasets: list, design: float, seed: int) -> candidates.Found:  # type: ignore[type-arg]
    """The run's blocked candidate search, with its random sample compared with everyone."""
    packed = [
        np.frombuffer(b"".join(bits.tobytes() for bits in d), dtype=np.uint8) for d in datasets
    ]
    rows = [p.reshape(len(d), -1) for p, d in zip(packed, datasets, strict=True)]
    with candidates.InlineEngine().session() as session:
        return candidates.find(
            session, rows, low=quality.FLOOR, design=design, blocking_mode="lsh", seed=seed
        )


def covers(interval: tuple[float, float], truth: float) -> bool:
    return interval[0] - 1e-9 <= truth <= interval[1] + 1e-9


def main() -> None:
    if "--field-scoring" in sys.argv:  # the default path: bench/field_estimates.py
        sys.argv.remove("--field-scoring")
        import field_estimates

        field_estimates.main()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="records per organisation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 0.5, 2.0])
    parser.add_argument("--overlaps", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    parser.add_argument(
        "--blocking", action="store_true", help="block as a large run does (LSH), sample measured"
    )
    parser.add_argument("--record-clk", choices=("unsalted", "salted"), default="unsalted")
    args = parser.parse_args()
    if args.blocking and args.record_clk == "salted":
        raise SystemExit("--blocking: salted record CLKs are measured by bench/salted_blocking.py")
    defaults = ProjectConfig("x", "x", (), Path("x"))
    spec = LinkageSpec.from_json(LinkageSpec.default().json_text, record_clk=args.record_clk)
    floor = score_model.SALTED_FLOOR if args.record_clk == "salted" else quality.FLOOR
    humps = peaks.peaks_for(args.record_clk)
    print(
        "errors overlap seed | threshold | est.P [interval] true.P | est.R [interval] true.R "
        "| covered P R | caveats | seconds"
    )
    rows: list[tuple[float, float, bool, float, float, bool]] = []
    for factor in args.factors:
        for overlap in args.overlaps:
            for seed in args.seeds:
                started = time.monotonic()
                with tempfile.TemporaryDirectory() as folder:
                    data = synthetic.generate(
                        Path(folder), args.records, seed=seed, overlap=overlap, rates=scaled(factor)
                    )
                    truth = data.truth()
                    datasets, ids = encode_all(data, spec)
                within = matching.within_pairs(datasets, defaults.within_threshold)
                if args.blocking:
                    found = blocked_search(datasets, defaults.threshold, seed)
                    across, scores = found.across, found.scores
                    kept_from, sample_pairs = found.kept_from, found.sample_pairs
                else:
                    across = matching.candidate_pairs(datasets, floor)
                    scores, kept_from, sample_pairs = quality.best_scores(across), floor, None
                est = quality.estimate(
                    scores,
                    candidates=across,
                    seed=seed,
                    floor=floor,
                    refine=peaks.refiner(humps) if humps > 1 else None,
                )
                if not est.fitted:
                    print(f"x{factor:g} {overlap:.1f} {seed} | not fitted: {est.reason}")
                    continue
                candidates = matching.combine(
                    matching.above(across, est.threshold),
                    within,
                    matching.completing(across, within, est.threshold),
                )
                groups = matching.solve(candidates, merge_threshold=defaults.merge_threshold)
                got = synthetic.pairwise_quality(grouped.predicted(groups, ids), truth).cross
                sizes = [len(d) for d in datasets]
                grouping = entities.Grouping.from_solution(groups, sizes)
                out = quality.on_output(
                    est,
                    across,
                    quality.Output(grouping.group, tuple(sizes), kept_from, sample_pairs),
                    seed=seed,
                )
                est = dataclasses.replace(est, recall=out.recall, recall_interval=out.interval)
                p_in = covers(est.precision_interval, got.precision)
                r_in = covers(est.recall_interval, got.recall)
                rows.append(
                    (
                        est.precision - got.precision,
                        est.recall - got.recall,
                        p_in,
                        est.precision_interval[1] - est.precision_interval[0],
                        est.recall_interval[1] - est.recall_interval[0],
                        r_in,
                    )
                )
                caveats = "; ".join(c.code for c in est.caveats) or "-"
                if args.blocking:
                    caveats += f" (blocking missed {out.blocking_share:.3f})"
                print(
                    f"x{factor:g} {overlap:.1f} {seed} | {est.threshold:.3f} | "
                    f"{est.precision:.3f} [{est.precision_interval[0]:.3f}, "
                    f"{est.precision_interval[1]:.3f}] {got.precision:.3f} | "
                    f"{est.recall:.3f} [{est.recall_interval[0]:.3f}, "
                    f"{est.recall_interval[1]:.3f}] {got.recall:.3f} | "
                    f"{'yes' if p_in else 'NO'} {'yes' if r_in else 'NO'} | {caveats} | "
                    f"{time.monotonic() - started:.0f}",
                    flush=True,
                )
    if not rows:
        return
    n = len(rows)
    print(
        f"\n{n} settings: precision interval covered the truth in {sum(r[2] for r in rows)}, "
        f"recall in {sum(r[5] for r in rows)}"
    )
    close_p = sum(abs(r[0]) <= 0.015 for r in rows)
    close_r = sum(abs(r[1]) <= 0.015 for r in rows)
    print(
        "largest error: precision "
        f"{max(abs(r[0]) for r in rows) * 100:.2f} points, recall "
        f"{max(abs(r[1]) for r in rows) * 100:.2f} points; within 1.5 points: precision "
        f"{close_p}/{n}, recall {close_r}/{n}"
    )
    width_p = sum(r[3] for r in rows) / n * 100
    width_r = sum(r[4] for r in rows) / n * 100
    print(f"mean interval width: precision {width_p:.2f} points, recall {width_r:.2f}")


if __name__ == "__main__":
    main()
