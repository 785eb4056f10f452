"""Why true cross-organisation pairs are missed: never candidates, or candidates rejected.

For each setting this links generated data as ``bench/quality.py`` does (field path) and
splits the true cross pairs the output leaves apart into:

- **never a candidate**: neither the whole record CLK's Dice nor its best part's reached
  their floors (the Dice of each beside the floors), and
- **candidate, rejected**: the model's agreement pattern (given, family, birth, place, NHS;
  0 exact, 5 chance, ``-`` missing) and its match probability against the cut,
  or linked (probability above the cut) yet split by the solver.

Each miss is also tallied by which base fields differ between the two records (the truth
is the bench's own: generated values, read only here), so a reason can be named.

    python bench/cross_misses.py [--records 2000] [--seeds 7,8,9] [--errors 2]
        [--overlaps 0.1,0.5] [--orgs 3] [--show 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import grouped
import quality as bench
from encoding_variants import prepared
from run_pairs import rows_of, run_pairs

from coordinator.core import chance, field_scoring, matching
from coordinator.core.field_levels import MISSING

SHORT = ("given", "family", "dob", "sex", "postcode", "nhs")


def setting(
    records: int, seed: int, overlap: float, factor: float, orgs: int
) -> tuple[bench.Encoded, list[list[tuple[str, ...]]]]:
    """A setting's encoding (as bench/quality.py makes it) with its base values kept."""
    with tempfile.TemporaryDirectory() as folder:
        data = bench.noisy(Path(folder), records, seed, overlap, factor, orgs)
        truth = data.truth()
        values, ids = prepared(data)
    datasets, rest = bench.encode(values, seed)
    enc = bench.Encoded(datasets, rest["filters"], ids, truth, {}, rest["flip"])
    return enc, values


def differs(a: tuple[str, ...], b: tuple[str, ...]) -> str:
    """Which base fields differ (missing on either side: lower case)."""
    out = []
    for name, x, y in zip(SHORT, a, b, strict=True):
        if not x or not y:
            if x or y:
                out.append(name[:3].lower() + "?")
        elif x != y:
            out.append(name[:3].upper())
    return "+".join(out) or "same"


def pattern(column: np.ndarray) -> str:
    return "".join("-" if x == MISSING else str(int(x)) for x in column)


def diagnose(enc: bench.Encoded, values: Sequence[Sequence[tuple[str, ...]]], seed: int,
             show: int) -> dict[str, Counter[str]]:  # fmt: skip
    rows = [rows_of(d) for d in enc.datasets]
    level = chance.of_run(rows, bench.RECORD_CLK)
    parts = level.part_pass(field_scoring=True)
    found = run_pairs(enc.datasets, bench.RECORD_CLK, field_scoring.within_floor(bench.RECORD_CLK))
    across, within = found.across, found.within
    scored = field_scoring.score(
        across, within, [len(d) for d in enc.datasets],
        lambda r: {n: a[r] for n, a in enc.filters.items()}, flip=enc.flip, seed=seed,
    )  # fmt: skip
    decision = field_scoring.decide(across, within, scored)
    groups = matching.solve(decision.linking, merge_threshold=bench.DEFAULTS.merge_threshold)
    predicted = grouped.predicted(groups, enc.ids)
    index = {rid: (d, r) for d, part in enumerate(enc.ids) for r, rid in enumerate(part)}
    _, d0, d1, r0, r1 = (np.asarray(a, dtype=np.int64) for a in matching.arrays(across))
    at = {(int(a), int(b), int(c), int(e)): k
          for k, (a, b, c, e) in enumerate(zip(d0, r0, d1, r1, strict=True))}  # fmt: skip
    people: dict[str, list[Hashable]] = {}
    for rid, who in enc.truth.items():
        people.setdefault(who, []).append(rid)
    tally: dict[str, Counter[str]] = {"never": Counter(), "rejected": Counter(), "split": Counter()}
    bounds = parts.bounds(rows[0].shape[1]) if parts else []
    shown = 0
    total = 0
    for recs in people.values():
        for i, a in enumerate(recs):
            for b in recs[i + 1 :]:
                (da, ra), (db, rb) = index[a], index[b]
                if da == db:
                    continue
                total += 1
                if predicted[a] == predicted[b]:
                    continue
                if da > db:
                    (da, ra), (db, rb) = (db, rb), (da, ra)
                why = differs(values[da][ra], values[db][rb])
                k = at.get((da, ra, db, rb))
                if k is None:
                    x, y = rows[da][ra], rows[db][rb]
                    whole = float(field_scoring.dice(x[None], y[None])[0])
                    best = max(float(field_scoring.dice(x[None, s:e], y[None, s:e])[0])
                               for s, e in bounds)  # fmt: skip
                    tally["never"][why] += 1
                    line = f"never  {why:30s} whole {whole:.3f} best part {best:.3f}"
                else:
                    p = float(scored.across[k])
                    kind = "rejected" if p < scored.cuts[0] else "split"
                    pat = pattern(scored.levels[:, k])
                    tally[kind][f"{pat} {why}"] += 1
                    line = f"{kind:8s} {pat} {why:30s} P {p:.3f} cut {scored.cuts[0]:.3f}"
                if shown < show:
                    shown += 1
                    print("   ", line, "|", values[da][ra], "|", values[db][rb])
    floor = parts.floor if parts else None
    print(f"  true cross pairs {total}; floors whole {level.whole_floor:.3f} part {floor}")
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--seeds", default="7,8,9")
    parser.add_argument("--errors", default="2")
    parser.add_argument("--overlaps", default="0.1,0.5")
    parser.add_argument("--orgs", default="3")
    parser.add_argument("--show", type=int, default=0, help="print this many misses each")
    args = parser.parse_args()
    bench.CHANCE = False
    sums: dict[str, Counter[str]] = {}
    for orgs in (int(x) for x in args.orgs.split(",")):
        for factor in (float(x) for x in args.errors.split(",")):
            for overlap in (float(x) for x in args.overlaps.split(",")):
                for seed in (int(x) for x in args.seeds.split(",")):
                    print(f"{orgs}org x{factor:g} ov{overlap:g} s{seed}", flush=True)
                    enc, values = setting(args.records, seed, overlap, factor, orgs)
                    tally = diagnose(enc, values, seed, args.show)
                    for kind, c in tally.items():
                        print(f"  {kind}: {sum(c.values())}  " + ", ".join(
                            f"{k} {n}" for k, n in c.most_common(8)), flush=True)  # fmt: skip
                        sums.setdefault(kind, Counter()).update(c)
    print("\nall settings")
    for kind, c in sums.items():
        print(f"{kind}: {sum(c.values())}")
        for k, n in c.most_common(25):
            print(f"   {n:4d} {k}")


if __name__ == "__main__":
    main()
