"""Encoding designs on both axes: what the attacks of hublink.privacy recover, what linkage keeps.

For each candidate design, a Zipf-like population of thousands of synthetic names
is encoded with the node's encoder and attacked; for each attack the share of
ALL records whose given (family) name is named correctly is printed:

* ``graph``: graph matching on the field's filter (on the record CLK when there is none);
* ``bridge``: the field filter's clusters seed record-CLK blocks, named by size rank;
* ``clk-blocks``: blocks of the record CLK alone, named by size rank;
* ``clk-part-blocks``: the same on each part of a salted record CLK alone (the worst part);
* ``frequency``: near-identical filters clustered, sizes lined up with frequencies;
* ``patterns``: pattern mining (q-gram itemsets mined, named, decoded) on each name filter,
  the record CLK whole and each of its parts alone (the worst of them);
* ``patterns-flips``: the same, each itemset allowed a tenth of its positions missing
  (flipped bits);
* ``grouped``: not a re-identification: the share of records the record-CLK blocks put
  with the others sharing their given (family) name.

Accuracy proxy (``--accuracy``), on the project's generator: for each encoding, the
share of true pairs above the 99.9th percentile of random pairs' Dice.

    python bench/privacy.py [--records 3000] [--designs a,b] [--attacks a,b] [--accuracy]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "security"))
from privacy_harness import (
    People,
    Sent,
    encode,
    generator_people,
    shipped_spec,
    weak_given_spec,
    weak_pattern_spec,
    zipf_people,
)

from hublink.privacy.bits import grouped, reidentified
from hublink.privacy.blocks import find_blocks, name_by_size, thresholds
from hublink.privacy.bridge import bridge_attack
from hublink.privacy.frequency import cluster_frequency_attack
from hublink.privacy.graph import filter_attack
from hublink.privacy.names import NameList
from hublink.privacy.patterns import pattern_attacks
from hublink.privacy.unbalance import as_unbalanced, estimated_flip
from hublink.spec import FieldGroup, LinkageSpec, RecordPart

NAMES = FieldGroup("names", ("given_name_canonical", "family_name"))
BIRTH = FieldGroup("birth", ("date_of_birth_sorted", "date_of_birth_order", "sex"))
PLACE = FieldGroup("place", ("postcode", "postcode_outward", "nhs_number"))


def _groups(spec: LinkageSpec, groups: tuple[FieldGroup, ...], flip: float) -> LinkageSpec:
    return dataclasses.replace(spec, field_groups=groups, group_flip=flip)


BIRTH_PART = RecordPart(
    "clk@birth", ("date_of_birth_sorted",), ("date_of_birth_sorted", "date_of_birth_order"), 512
)
HOME_PART = RecordPart("clk@home", ("postcode",), ("postcode", "postcode_outward"), 512)
FAMILY_PART = RecordPart(
    "clk@family", ("family_name_first",), ("family_name", "given_name_canonical"), 512
)


def _parts(*parts: RecordPart, base: LinkageSpec | None = None) -> LinkageSpec:
    return (base or shipped_spec()).with_record_parts(parts)


Design = Callable[[], tuple[LinkageSpec, dict[str, object]]]
DESIGNS: dict[str, Design] = {
    "shipped": lambda: (shipped_spec(), {}),
    "weak-given": lambda: (weak_given_spec(), {}),
    "weak-pattern": lambda: (weak_pattern_spec(), {}),
    "weak-pattern-flipped": lambda: (
        dataclasses.replace(weak_pattern_spec(), group_flip=shipped_spec().group_flip),
        {},
    ),
    "clk-unbalanced": lambda: (dataclasses.replace(shipped_spec(), hardening="none"), {}),
    "clk-unsalted": lambda: (_parts(), {}),
    "clk-unsalted-record-only": lambda: (LinkageSpec.default().with_record_parts(()), {}),
    "clk-birth+home": lambda: (_parts(BIRTH_PART, HOME_PART), {}),
    "clk-birth+home+family": lambda: (_parts(BIRTH_PART, HOME_PART, FAMILY_PART), {}),
    "clk-from-filters": lambda: (shipped_spec(), {"clk_from_filters": True}),
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


def _fields(people: People) -> tuple[tuple[str, list[str], NameList], ...]:
    return (
        ("given", people.given, people.public_given),
        ("family", people.family, people.public_family),
    )


def graph(sent: Sent, people: People) -> dict[str, float]:
    out = {}
    for field, truth, public in _fields(people):
        layouts = [field] if field in sent.arrays else ["clk"]
        out[field] = max(
            reidentified(filter_attack(sent.arrays[lay], public), truth) for lay in layouts
        )
    return out


def bridge(sent: Sent, people: People) -> dict[str, float]:
    """Each name filter (``given``, or each salted variant ``given@…``) as the bridge's seed."""
    out = {}
    for field, truth, public in _fields(people):
        for layout in sent.arrays:
            if layout == field or layout.startswith(f"{field}@"):
                guesses = bridge_attack(sent.arrays[layout], sent.arrays["clk"], public)
                out[layout] = reidentified(guesses, truth)
    return out


def frequency(sent: Sent, people: People) -> dict[str, float]:
    out = {}
    for field, truth, public in _fields(people):
        if field in sent.arrays:
            guesses = cluster_frequency_attack(sent.arrays[field], public.counts())
            out[field] = reidentified(guesses, truth)
    return out


def clk_blocks(sent: Sent, people: People) -> dict[str, float]:
    clk = as_unbalanced(sent.arrays["clk"])
    agree, member = thresholds(estimated_flip(sent.arrays["clk"]))
    blocks = find_blocks(clk, max_seeds=1000, agree=agree, member=member)
    out = {}
    for field, truth, public in _fields(people):
        out[field] = reidentified(name_by_size(len(clk), blocks, public.counts()), truth)
        out[f"grouped-{field}"] = grouped([b.records.tolist() for b in blocks], truth)
    return out


def clk_part_blocks(sent: Sent, people: People) -> dict[str, float]:
    """``clk_blocks`` on each part of a salted record CLK alone (an attacker knows where the
    parts start: each is balanced on its own), the worst part's figures."""
    parts = sent.spec.record_parts
    if not parts:
        return clk_blocks(sent, people)
    clk = sent.arrays["clk"]
    out: dict[str, float] = {}
    cuts = np.cumsum([0] + [clk.shape[1] * p.bits // sent.spec.clk_bits for p in parts])
    for a, b in itertools.pairwise(cuts):
        for key, value in clk_blocks(Sent(sent.spec, {"clk": clk[:, a:b]}), people).items():
            out[key] = max(out.get(key, 0.0), value)
    return out


def patterns(sent: Sent, people: People, tolerance: float = 0.0) -> dict[str, float]:
    """Pattern mining on every filter sent (each mined once for both name lists): the worst
    figure per field over the name filters, the record CLK whole and each part alone."""
    clk = sent.arrays["clk"]
    parts = sent.spec.record_parts
    cuts = np.cumsum([0] + [clk.shape[1] * p.bits // sent.spec.clk_bits for p in parts])
    names = ("given", "family")
    filters = [v for k, v in sent.arrays.items() if k.split("@")[0] in names] + [clk]
    filters += [clk[:, a:b] for a, b in itertools.pairwise(cuts)] if parts else []
    fields = _fields(people)
    out = {field: 0.0 for field, _, _ in fields}
    for bits in filters:
        named = pattern_attacks(bits, [public for _, _, public in fields], tolerance=tolerance)
        for (field, truth, _), guesses in zip(fields, named, strict=True):
            out[field] = max(out[field], reidentified(guesses, truth))
    return out


ATTACKS: dict[str, Callable[[Sent, People], dict[str, float]]] = {
    "graph": graph,
    "bridge": bridge,
    "clk-blocks": clk_blocks,
    "clk-part-blocks": clk_part_blocks,
    "frequency": frequency,
    "patterns": patterns,
    "patterns-flips": lambda sent, people: patterns(sent, people, tolerance=0.1),
}


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
    parser.add_argument("--seeds", default="0", help="populations, comma-separated")
    parser.add_argument("--designs", default="shipped,given-salt-dob,clk-blip-0.05")
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--accuracy", action="store_true", help="also the true-pairs-kept proxy")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for seed in (int(x) for x in args.seeds.split(",")):
        attacked = zipf_people(args.records, seed=seed)
        linked = generator_people(args.per_org, seed=seed + 404) if args.accuracy else None
        for name in args.designs.split(","):
            spec, options = DESIGNS[name]()
            sent = encode(spec, attacked, **options)  # type: ignore[arg-type]
            row: dict[str, object] = {"design": name, "seed": seed}
            for attack in args.attacks.split(","):
                started = time.monotonic()
                row[attack] = ATTACKS[attack](sent, attacked)
                row[f"{attack}_seconds"] = round(time.monotonic() - started, 1)
            if linked is not None:
                row["true_pairs_kept"] = separation(encode(spec, linked, **options), linked)  # type: ignore[arg-type]
            rows.append(row)
            if not args.json:
                _print(row, args.attacks.split(","))
    if args.json:
        print(json.dumps(rows, indent=2))


def _print(row: dict[str, object], attacks: list[str]) -> None:
    parts = [f"{row['design']:22s} seed {row['seed']}"]
    for attack in attacks:
        figures = row[attack]
        assert isinstance(figures, dict)
        text = " ".join(f"{k} {v:6.2%}" for k, v in figures.items())
        parts.append(f"{attack}: {text} ({row[f'{attack}_seconds']}s)")
    kept = row.get("true_pairs_kept")
    if isinstance(kept, dict):
        parts.append("kept " + " ".join(f"{k}={v:.3f}" for k, v in kept.items()))
    print(" | ".join(parts), flush=True)


if __name__ == "__main__":
    main()
