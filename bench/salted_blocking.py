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
planned lower); "from-floor:0.83" is what a salted record-only run does with fallback 0.83
(``candidates.find``'s ``plan_from``: the lowest design from the floor up that
the band budget allows, whole-row bands); "parts:0.83" is a field-scoring run (the part
pass; bands inside each part: ``blocking.part_plans``, ``--budget`` bands a part); "all"
is all-pairs with the part pass, the reference. With the part pass, "pairs completeness" is
the share of the sampled records' all-pairs part-pass pairs the search finds. Encodings
are cached by size and seed.

    python bench/salted_blocking.py --real 100000 --sizes 20000,100000 \
        --designs all,from-floor:0.83,parts:0.83
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
from coordinator.core.part_pass import PartPass
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
    made = _per_part_copies(size, rows, seed)
    na, nb = len(rows[0]), len(rows[1])
    copies = [truth + np.array([c * na, c * nb]) for c in range(-(-size // min(na, nb)))]
    pairs = np.concatenate(copies)
    return made.parties, pairs[(pairs < size).all(axis=1)], made.method


def _per_part_copies(size: int, rows: list[np.ndarray], seed: int) -> scale_data.Encodings:
    """``scale_data.modelled`` with each copy's bits shuffled within each part of the row
    (the parts are balanced, every position set half the time), so part Dices stay real."""
    parts = score_model.part_pass_for("salted", True)
    assert parts is not None
    rng = np.random.default_rng(seed)
    copies = -(-size // min(len(r) for r in rows))
    out = [np.empty((size, r.shape[1]), dtype=np.uint8) for r in rows]
    for copy in range(copies):
        order = np.arange(rows[0].shape[1] * 8)
        if copy:
            for a, b in parts.bounds(rows[0].shape[1]):
                order[8 * a : 8 * b] = rng.permutation(order[8 * a : 8 * b])
        for party, template in zip(out, rows, strict=True):
            start = copy * len(template)
            take = min(len(template), size - start)
            if take > 0:
                bits = np.unpackbits(template[:take], axis=1)[:, order]
                party[start : start + take] = np.packbits(bits, axis=1)
    return scale_data.Encodings(out, ["a", "b"], f"modelled ({copies} copies)", 0.0, 0)


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
    parser.add_argument("--designs", default="all,from-floor:0.83,parts:0.83")
    parser.add_argument("--budget", type=int, default=1000, help="most bands a plan (a part)")
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/hublink-bench")
    args = parser.parse_args()
    floor = score_model.SALTED_FLOOR
    parts = score_model.part_pass_for("salted", True)
    engine = candidates.InlineEngine()
    print(
        "size a side | search | kept from | bands x bits | comparisons | seconds | "
        "true pairs found (of those >= floor or a part >= part floor) | "
        "pairs completeness vs all pairs with the part pass (sample)"
    )
    real_rows, real_truth = data(args.real, args.seed, args.cache)
    for size in (int(s) for s in args.sizes.split(",")):
        rows, truth, method = scaled(size, real_rows, real_truth, args.seed)
        width = len(rows[1])
        rng = np.random.default_rng(args.seed)
        sample = np.sort(rng.choice(len(rows[0]), min(args.sample, len(rows[0])), replace=False))
        started = time.perf_counter()
        with engine.session() as session:
            exact = candidates.find(
                session,
                [rows[0][sample], rows[1]],
                low=floor,
                design=floor,
                blocking_mode="none",
                parts=parts,
            )
        sample_seconds = time.perf_counter() - started
        exact_keys = pair_keys(exact.across, width)
        exact_keys = sample[exact_keys // width] * width + exact_keys % width
        true_keys = np.unique(truth[:, 0] * width + truth[:, 1])
        reachable = _reachable(rows, true_keys, width, floor, parts)
        for design in args.designs.split(","):
            started = time.perf_counter()
            kind, _, at = design.rpartition(":")
            with engine.session() as session:
                found = candidates.find(
                    session,
                    rows,
                    low=floor,
                    design=float(at) if at != "all" else floor,
                    plan_from=floor if kind == "from-floor" else None,
                    blocking_mode="none" if at == "all" else "lsh",
                    estimate_sample=0,
                    seed=args.seed,
                    band_budget=args.budget,
                    parts=parts if kind == "parts" or at == "all" else None,
                )
            seconds = time.perf_counter() - started
            keys = pair_keys(found.across, width)
            scored = np.isin(true_keys, keys)
            in_sample = np.isin(exact_keys // width, sample)
            part_design = found.pinned.part_design if found.pinned else 0.0
            print(
                f"{size} ({method}) | {design}"
                f"{f' (parts at {part_design:.2f})' if part_design else ''} | "
                f"{found.kept_from:.3f} | {found.bands} x {found.bits} | "
                f"{found.comparisons:,} | {seconds:.0f} | {scored.mean():.4f} "
                f"({scored[reachable].mean():.4f}) | "
                f"{np.isin(exact_keys[in_sample], keys).mean():.4f} "
                f"({in_sample.sum()} pairs; all pairs for the sample {sample_seconds:.0f} s)",
                flush=True,
            )


def _reachable(
    rows: list[np.ndarray], keys: np.ndarray, width: int, floor: float, parts: PartPass | None
) -> np.ndarray:
    """Which true pairs an all-pairs search with the part pass keeps (whole Dice at the
    floor or a part at the part floor)."""
    a, b = rows[0][keys // width], rows[1][keys % width]
    count = parts.count if parts else 1
    shape = (len(a), count, -1)
    both = np.bitwise_count(a & b).reshape(shape).sum(axis=2)
    ones = (np.bitwise_count(a).reshape(shape).sum(axis=2)
            + np.bitwise_count(b).reshape(shape).sum(axis=2))  # fmt: skip
    whole = 2 * both.sum(axis=1) / np.maximum(ones.sum(axis=1), 1)
    part = 2 * both / np.maximum(ones, 1)
    floor_part = parts.floor if parts else 2.0
    reached: np.ndarray = (whole >= floor) | (part >= floor_part).any(axis=1)
    return reached


if __name__ == "__main__":
    main()
