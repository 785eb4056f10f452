"""Encoding designs on both axes: what the attacks of hublink.privacy recover, what linkage keeps.

For each candidate design, a Zipf-like population of thousands of synthetic names
is encoded with the node's encoder and attacked (graph matching on every filter,
the record-CLK bridge across salts, clustering by frequency); the best share of
ALL records whose given (family) name is named correctly is reported. Accuracy
proxy, on the project's generator: for each encoding, the share of true pairs
(same person) whose Dice is above the 99.9th percentile of random pairs' Dice
(recall at a fixed false-pair rate); a salted filter loses the pairs whose salt
differs.

    python bench/privacy.py [--records 3000] [--per-org 700] [--designs a,b] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "security"))
from privacy_harness import People, Sent, encode, generator_people, shipped_spec, zipf_people

from hublink.privacy.bits import reidentified
from hublink.privacy.frequency import cluster_frequency_attack
from hublink.privacy.graph import bridge_attack, filter_attack
from hublink.spec import FieldGroup, LinkageSpec

NAMES = FieldGroup("names", ("given_name_canonical", "family_name"))
BIRTH = FieldGroup("birth", ("date_of_birth_sorted", "date_of_birth_order", "sex"))
PLACE = FieldGroup("place", ("postcode", "postcode_outward", "nhs_number"))


def _groups(spec: LinkageSpec, groups: tuple[FieldGroup, ...], flip: float) -> LinkageSpec:
    return dataclasses.replace(spec, field_groups=groups, group_flip=flip)


Design = Callable[[], tuple[LinkageSpec, dict[str, object]]]
DESIGNS: dict[str, Design] = {
    "shipped": lambda: (shipped_spec(), {}),
    "clk-unbalanced": lambda: (dataclasses.replace(shipped_spec(), hardening="none"), {}),
    "clk-blip-0.02": lambda: (shipped_spec(), {"clk_flip": 0.02}),
    "clk-blip-0.05": lambda: (shipped_spec(), {"clk_flip": 0.05}),
    "clk-blip-0.08": lambda: (shipped_spec(), {"clk_flip": 0.08}),
    "clk-xor-fold": lambda: (shipped_spec(), {"xor_fold": True}),
    "given-salt-dob": lambda: (shipped_spec().with_salts({"given": "date_of_birth"}), {}),
    "names+family-salt-dob": lambda: (
        shipped_spec().with_salts({"given": "date_of_birth", "family": "date_of_birth"}),
        {},
    ),
    "flip-0.05": lambda: (dataclasses.replace(shipped_spec(), group_flip=0.05), {}),
    "flip-0.08": lambda: (dataclasses.replace(shipped_spec(), group_flip=0.08), {}),
    "combined-3": lambda: (_groups(shipped_spec(), (NAMES, BIRTH, PLACE), 0.02), {}),
    "combined-3-salt-dob": lambda: (
        _groups(
            shipped_spec(), (dataclasses.replace(NAMES, salt="date_of_birth"), BIRTH, PLACE), 0.02
        ),
        {},
    ),
    "none": lambda: (LinkageSpec.default(), {}),
    "none-blip-0.05": lambda: (LinkageSpec.default(), {"clk_flip": 0.05}),
}


def attacks(sent: Sent, people: People) -> dict[str, float]:
    """Best share of records named, per field, over every attack and every encoding."""
    out: dict[str, float] = {}
    clk = sent.arrays["clk"]
    for field, truth, public in (
        ("given", people.given, people.public_given),
        ("family", people.family, people.public_family),
    ):
        figures = []
        for layout, bits in sent.arrays.items():
            figures.append(reidentified(filter_attack(bits, public), truth))
            if layout != "clk":
                figures.append(reidentified(bridge_attack(bits, clk, public), truth))
                figures.append(reidentified(cluster_frequency_attack(bits, public.counts()), truth))
        out[field] = max(figures)
    return out


def separation(sent: Sent, people: People, seed: int = 0) -> dict[str, float]:
    """Per encoding: share of true pairs above the 99.9th percentile of random pairs' Dice."""
    entity = np.array(people.entity)
    order = np.argsort(entity, kind="stable")
    same = [
        (int(order[i]), int(order[i + 1]))
        for i in range(len(order) - 1)
        if entity[order[i]] == entity[order[i + 1]]
    ]
    rng = np.random.default_rng(seed)
    left, right = rng.integers(0, len(entity), 20000), rng.integers(0, len(entity), 20000)
    keep = entity[left] != entity[right]
    out = {}
    a, b = np.array(same).T
    for layout, bits in sent.arrays.items():
        true = _pair_dice(bits, a, b)
        random = _pair_dice(bits, left[keep], right[keep])
        out[layout] = float((true > np.quantile(random, 0.999)).mean())
    return out


def _pair_dice(bits: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x, y = bits[a].astype(np.float32), bits[b].astype(np.float32)
    return 2 * (x * y).sum(axis=1) / np.maximum(x.sum(axis=1) + y.sum(axis=1), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000, help="Zipf population attacked")
    parser.add_argument("--per-org", type=int, default=700, help="generator records per org")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    attacked = zipf_people(args.records, seed=args.seed)
    linked = generator_people(args.per_org, seed=args.seed + 404)
    rows = []
    for name in args.designs.split(","):
        started = time.monotonic()
        spec, options = DESIGNS[name]()
        figures = attacks(encode(spec, attacked, **options), attacked)  # type: ignore[arg-type]
        kept = separation(encode(spec, linked, **options), linked)  # type: ignore[arg-type]
        rows.append(
            {
                "design": name,
                "given": figures["given"],
                "family": figures["family"],
                "under_ceiling": max(figures.values()) <= 0.01,
                "true_pairs_kept": kept,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
        if not args.json:
            r = rows[-1]
            kept_text = " ".join(f"{k}={v:.3f}" for k, v in kept.items())
            print(
                f"{name:24s} given {r['given']:6.2%} family {r['family']:6.2%} "
                f"{'<=1%' if r['under_ceiling'] else '>1% '} | kept {kept_text} | {r['seconds']}s",
                flush=True,
            )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
