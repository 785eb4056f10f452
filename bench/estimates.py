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

    python bench/estimates.py [--records 1000] [--seeds 7 8] [--factors 0.5 1 2]

About 4 minutes on one core with the defaults.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from hardening_tuning import encode_all
from threshold import link, scaled

from coordinator.core import matching, quality
from hublink import synthetic
from hublink.config import ProjectConfig
from hublink.spec import LinkageSpec


def covers(interval: tuple[float, float], truth: float) -> bool:
    return interval[0] - 1e-9 <= truth <= interval[1] + 1e-9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="records per organisation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 0.5, 2.0])
    parser.add_argument("--overlaps", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    args = parser.parse_args()
    defaults = ProjectConfig("x", "x", (), Path("x"))
    spec = LinkageSpec.default()
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
                across = matching.candidate_pairs(datasets, quality.FLOOR)
                within = matching.within_pairs(datasets, defaults.within_threshold)
                est = quality.estimate(quality.best_scores(across), candidates=across, seed=seed)
                if not est.fitted:
                    print(f"x{factor:g} {overlap:.1f} {seed} | not fitted: {est.reason}")
                    continue
                got = link(
                    datasets, ids, truth, across, within, est.threshold, defaults.merge_threshold
                ).cross
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
