"""Blocking on a salted record CLK at scale: which true pairs and which close pairs it finds.

A salted record CLK (``record_clk = "salted"``) scores a true pair about 0.95,
0.8 or 0.65 as none, one or two of its salts (date of birth, postcode, full
name) differ, and random pairs about 0.5. Blocking (``blocking.plan``) is
planned at a design threshold; pairs well below it collide in a band only by
chance. This measures, for two organisations of ``--sizes`` people a side
(generator truth, 60% overlap, the node's own normalisers and encoder):

* true-pair completeness: the share of the generator's cross-organisation
  true pairs among the blocked search's candidates (and among all pairs at or
  above the salted floor, the most any search at that floor can find);
* floor completeness: the share of all cross pairs at or above the floor 0.6
  that blocking finds, over ``--sample`` records of the first organisation
  compared exactly with every record of the second;
* the blocked search's seconds, bands and comparisons.

Encoding is slow (about a thousand records a second per core, three parts),
so ``--real`` people a side are encoded and larger sizes are modelled from
them as bench/scale.py does (``scale_data.modelled``; the output says so).

``--designs`` lists the design thresholds to plan at: a number plans there and
keeps pairs from ``BLOCKED_MARGIN`` below (a run's plan before salted projects
planned lower); "from-floor:0.83" is what a salted run does with fallback 0.83
(``candidates.find``'s ``plan_from``: the lowest design from the floor up that
the band budget allows). Encodings are cached by size and seed.

    python bench/salted_blocking.py --sizes 50000,100000 [--designs 0.83,from-floor:0.83]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import scale_data
from encoding_variants import BASE_FIELDS, prepared

from coordinator.core import candidates, matching, score_model
from hublink import synthetic
from hublink.spec import LinkageSpec
from node.derived import derive_values
from node.encoder import Encoder

SECRET = b"hublink salted blocking bench, synthetic people only"


def data(size: int, seed: int, cache: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Two organisations' salted encodings, and their true cross pairs as (row a, row b)."""
    spec = LinkageSpec.from_json(LinkageSpec.default().json_text, record_clk="salted")
    path = cache / f"salted-{size}-seed{seed}-{spec.sha256[:12]}.npz"
    if path.exists():
        with np.load(path) as held:
            return [held["a"], held["b"]], held["truth"]
    with tempfile.TemporaryDirectory() as folder:
        generated = synthetic.generate(
            Path(folder), size, seed=seed, overlap=0.6, layouts=synthetic.DEFAULT_LAYOUTS[:2]
        )
        truth = generated.truth()
        values, ids = prepared(generated)
    encoder = Encoder(spec, SECRET)
    fields = spec.all_fields
    rows = []
    for part in values:
        full = [
            derive_values(
                fields, tuple(dict(zip(BASE_FIELDS, v, strict=True)).get(f, "") for f in fields)
            )
            for v in part
        ]
        packed = encoder.encode(full)
        rows.append(np.frombuffer(b"".join(packed), np.uint8).reshape(len(packed), -1))
    person_b: dict[str, list[int]] = {}
    for j, rid in enumerate(ids[1]):
        person_b.setdefault(truth[rid], []).append(j)
    pairs = np.array(
        [(i, j) for i, rid in enumerate(ids[0]) for j in person_b.get(truth[rid], [])],
        dtype=np.int64,
    ).reshape(-1, 2)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, a=rows[0], b=rows[1], truth=pairs)
    return rows, pairs


def scaled(
    size: int, rows: list[np.ndarray], truth: np.ndarray, seed: int
) -> tuple[list[np.ndarray], np.ndarray, str]:
    """Parties of ``size`` records: the real ones when big enough, else permuted copies of
    them (``scale_data.modelled``: inside a copy every score is the real one, across copies
    pairs agree as unrelated people do), the true pairs repeated in every copy."""
    if size <= min(len(r) for r in rows):
        return [r[:size] for r in rows], truth[(truth < size).all(axis=1)], "real"
    templates = scale_data.Encodings(rows, ["a", "b"], "real", 0.0, 0)
    made = scale_data.modelled(size, templates, seed)
    na, nb = len(rows[0]), len(rows[1])
    copies = [truth + np.array([c * na, c * nb]) for c in range(-(-size // min(na, nb)))]
    pairs = np.concatenate(copies)
    return made.parties, pairs[(pairs < size).all(axis=1)], made.method


def pair_keys(found: matching.Candidates, width: int) -> np.ndarray:
    """Cross pairs as one int64 key each (row of the first dataset * width + row of the second)."""
    _, d0, d1, r0, r1 = matching.arrays(found)
    a = np.where(d0 == 0, r0, r1).astype(np.int64)
    b = np.where(d0 == 0, r1, r0).astype(np.int64)
    keep = d0 != d1
    return np.unique(a[keep] * width + b[keep])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,100000")
    parser.add_argument(
        "--real", type=int, default=10000, help="real people a side; larger sizes are modelled"
    )
    parser.add_argument("--designs", default="0.83,from-floor:0.83")
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/hublink-bench")
    args = parser.parse_args()
    floor = score_model.SALTED_FLOOR
    engine = candidates.InlineEngine()
    print(
        "size a side | design | kept from | bands x bits | comparisons | seconds | "
        "true pairs found (of those >= floor) | floor pairs found (sample)"
    )
    real_rows, real_truth = data(args.real, args.seed, args.cache)
    for size in (int(s) for s in args.sizes.split(",")):
        rows, truth, method = scaled(size, real_rows, real_truth, args.seed)
        width = len(rows[1])
        rng = np.random.default_rng(args.seed)
        sample = np.sort(rng.choice(len(rows[0]), min(args.sample, len(rows[0])), replace=False))
        with engine.session() as session:
            exact = candidates.find(
                session, [rows[0][sample], rows[1]], low=floor, design=floor, blocking_mode="none"
            )
        exact_keys = pair_keys(exact.across, width)
        exact_keys = sample[exact_keys // width] * width + exact_keys % width
        true_keys = np.unique(truth[:, 0] * width + truth[:, 1])
        a, b = rows[0][true_keys // width], rows[1][true_keys % width]
        ones = np.bitwise_count(a).sum(axis=1) + np.bitwise_count(b).sum(axis=1)
        above = 2 * np.bitwise_count(a & b).sum(axis=1) / np.maximum(ones, 1) >= floor
        for design in args.designs.split(","):
            started = time.perf_counter()
            with engine.session() as session:
                found = candidates.find(
                    session,
                    rows,
                    low=floor,
                    design=float(design.removeprefix("from-floor:")),
                    plan_from=floor if design.startswith("from-floor:") else None,
                    blocking_mode="lsh",
                    estimate_sample=0,
                    seed=args.seed,
                )
            seconds = time.perf_counter() - started
            keys = pair_keys(found.across, width)
            scored = np.isin(true_keys, keys)
            in_sample = np.isin(exact_keys // width, sample)
            print(
                f"{size} ({method}) | {design} | {found.kept_from:.3f} | "
                f"{found.bands} x {found.bits} | "
                f"{found.comparisons:,} | {seconds:.0f} | {scored.mean():.4f} "
                f"({scored[above].mean():.4f}) | "
                f"{np.isin(exact_keys[in_sample], keys).mean():.4f} "
                f"({in_sample.sum()} pairs)",
                flush=True,
            )


if __name__ == "__main__":
    main()
