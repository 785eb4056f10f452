"""Save each setting's field-path run (what ``field_estimate.on_output`` reads, plus the
truth of every candidate) so estimator changes can be measured in seconds, not minutes.

The default path as a run takes it (``bench/field_estimates.py``: part pass, field model,
solver), then one pickle per setting with the ``Prepared`` refits, the groups, every
candidate's levels and whether it is a true match, and the true pair counts per kind.
``bench/estimate_replay.py`` reads them back.

    python bench/estimate_dump.py OUT [--records 1000] [--seeds 7 8 9] [--factors 0.5 1 2]
        [--overlaps 0.1 0.5 0.9] [--orgs 3]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import quality as bench_quality
from estimate_misses import field_run


def candidate_truth(enc: bench_quality.Encoded, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Whether each candidate (global rows) joins two records of one child."""
    person = [enc.truth.get(rid) for part in enc.ids for rid in part]
    return np.array(
        [person[a] is not None and person[a] == person[b] for a, b in zip(left, right, strict=True)]
    )


def setting(records: int, seed: int, overlap: float, factor: float, orgs: int, out: Path) -> None:
    started = time.monotonic()
    run = field_run(records, seed, overlap, factor, orgs)
    enc, scored, truth, grouping, prepared = (
        run.enc, run.scored, run.truth, run.grouping, run.prepared,
    )  # fmt: skip
    assert scored.inputs is not None
    name = f"o{orgs}-x{factor:g}-ov{overlap:g}-s{seed}-n{records}"
    data = {
        "name": name,
        "prepared": prepared,
        "group": grouping.group,
        "dataset": grouping.dataset,
        "match": candidate_truth(enc, prepared.left, prepared.right),
        "levels": scored.inputs.levels,
        "groups": scored.inputs.groups,
        "cuts": scored.cuts,
        "truth": {
            "across": (truth.cross.precision, truth.cross.recall, truth.cross.true_pairs),
            "within": (truth.within.precision, truth.within.recall, truth.within.true_pairs),
        },
        "seed": seed,
        "model": scored.model,
        "inputs": scored.inputs,
    }
    with open(out / f"{name}.pkl", "wb") as f:
        pickle.dump(data, f)
    print(f"{name}: {time.monotonic() - started:.0f}s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--factors", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--overlaps", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    parser.add_argument("--orgs", type=int, default=3)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bench_quality.RECORD_CLK = "salted"
    for factor in args.factors:
        for overlap in args.overlaps:
            for seed in args.seeds:
                setting(args.records, seed, overlap, factor, args.orgs, args.out)


if __name__ == "__main__":
    main()
