"""Linkage quality of hardened (balanced, permuted) against unhardened CLKs, over thresholds.

Balancing changes what a Dice threshold means (Dice of balanced filters is the
share of positions the original CLKs agree on), so the project defaults were
re-tuned with this script. It generates the demo's synthetic data, encodes it
with the node's own encoder under both hardenings, matches with the
coordinator's own matching functions and prints cross- and within-organisation
precision/recall for each setting.

    python bench/hardening_tuning.py [--records 5000] [--seed 2026]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import grouped

from coordinator.core import matching
from hublink import synthetic
from hublink.spec import LinkageSpec
from node.encoder import Encoder
from node.synthetic_input import prepared_records

SECRET = b"bench-only secret, never used for real data"


def encode_all(data: synthetic.GeneratedData, spec: LinkageSpec) -> tuple[list, list]:
    encoder = Encoder(spec, SECRET)
    datasets, ids = [], []
    for organisation, prepared in prepared_records(data, spec).items():
        packed = encoder.encode([p.values for p in prepared])
        datasets.append(matching.unpack(packed))
        ids.append([(organisation, p.local_id) for p in prepared])
    return datasets, ids


def quality(datasets, ids, truth, threshold, within, merge) -> synthetic.LinkageQuality:
    candidates = matching.candidate_pairs(datasets, threshold, within)
    groups = matching.solve(candidates, merge_threshold=merge if within else None)
    return synthetic.pairwise_quality(grouped.predicted(groups, ids), truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true", help="only the chosen settings")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = synthetic.generate(Path(folder), args.records, seed=args.seed)
        truth = data.truth()
        grids = {
            "none": (
                [(0.8, 0.88, 0.9)] if args.quick else itertools.product((0.8,), (0.88,), (0.9,))
            ),
            "balance": (
                [(0.8, 0.88, 0.9), (0.83, 0.9, 0.9)]
                if args.quick
                else itertools.product(
                    (0.78, 0.8, 0.81, 0.82, 0.83, 0.84), (0.86, 0.88, 0.9), (0.9,)
                )
            ),
        }
        print("hardening threshold within merge | cross P R F1 | within P R F1 | seconds")
        for hardening, grid in grids.items():
            spec = LinkageSpec.default()
            spec = LinkageSpec.from_json(spec.json_text, hardening=hardening)
            datasets, ids = encode_all(data, spec)
            for threshold, within, merge in grid:
                started = time.monotonic()
                q = quality(datasets, ids, truth, threshold, within, merge)
                print(
                    f"{hardening:8} {threshold:.2f} {within:.2f} {merge:.2f} | "
                    f"{q.cross.precision:.4f} {q.cross.recall:.4f} {q.cross.f1:.4f} | "
                    f"{q.within.precision:.4f} {q.within.recall:.4f} {q.within.f1:.4f} | "
                    f"{time.monotonic() - started:.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
