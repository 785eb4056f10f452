"""Error-tolerant encodings: cross- and within-organisation quality of schema variants.

Each variant is the shipped schema with derived features (``node.derived``)
added or swapped in; the generated people are encoded with each variant and
linked as a run links them: the threshold estimated from the scores (no truth),
then cross candidates at it plus within-organisation candidates at the
project's within threshold, solved with the probabilistic greedy solver. It
prints, per data setting and variant, cross-organisation F1 at the estimated
threshold and at the best threshold of a grid (picked with the truth), and
within-organisation precision/recall/F1 at several within thresholds.

    python bench/encoding_variants.py [--records 2000] [--seed 7] [--variants base,all]
        [--settings 0.5x1,0.5x2,0.1x2,0.9x1]

A setting "0.5x2" is 50% overlap with every error rate doubled (as in
bench/threshold.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from threshold import link, scaled

from coordinator.core import matching, quality
from hublink import synthetic
from hublink.spec import LinkageSpec
from node.derived import DERIVATIONS, derive_values
from node.encoder import Encoder
from node.prepare import RowError, normalisers, prepare_rows
from node.source import read_rows

SECRET = b"bench-only secret, never used for real data"
GRID = [round(x, 2) for x in np.arange(0.74, 0.95, 0.01)]
WITHIN = (0.86, 0.88, 0.9, 0.92)
MERGE = 0.9
BASE_FIELDS = ("given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number")


def feature(identifier: str, comparison: dict[str, Any], bits: int) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "format": {"type": "string", "encoding": "ascii"},
        "hashing": {
            "comparison": comparison,
            "strategy": {"bitsPerToken": bits},
            "hash": {"type": "blakeHash"},
        },
    }


EXACT = {"type": "exact"}
Edit = Callable[[dict[str, Any]], None]


def add(*features: dict[str, Any]) -> Edit:
    def edit(schema: dict[str, Any]) -> None:
        schema["features"].extend(copy.deepcopy(features))

    return edit


def sorted_date(bits: int = 25, order_bits: int = 25) -> Edit:
    """Hash the date with day and month sorted, plus one token saying which came first."""

    def edit(schema: dict[str, Any]) -> None:
        for f in schema["features"]:
            if f["identifier"] == "date_of_birth":
                f.clear()
                f.update({"identifier": "date_of_birth", "ignored": True})
        schema["features"].append(
            feature("date_of_birth_sorted", {"type": "ngram", "n": 1, "positional": True}, bits)
        )
        schema["features"].append(feature("date_of_birth_order", EXACT, order_bits))

    return edit


def canonical_given(bits: int = 20) -> Edit:
    """Hash the given name's canonical form (node.derived) in place of the given name."""

    def edit(schema: dict[str, Any]) -> None:
        for f in schema["features"]:
            if f["identifier"] == "given_name":
                f.clear()
                f.update({"identifier": "given_name", "ignored": True})
        schema["features"].insert(
            0,
            feature("given_name_canonical", {"type": "ngram", "n": 2}, bits),
        )

    return edit


def weight(identifier: str, bits: int) -> Edit:
    def edit(schema: dict[str, Any]) -> None:
        for f in schema["features"]:
            if f["identifier"] == identifier:
                f["hashing"]["strategy"]["bitsPerToken"] = bits

    return edit


VARIANTS: dict[str, list[Edit]] = {
    "base": [],  # the schema before derived features
    "shipped": [],  # hublink/schemas/early-years.json as shipped (= repl+dob+out)
    "canon": [add(feature("given_name_canonical", EXACT, 30))],
    "dobsort": [sorted_date()],
    "surparts": [
        add(feature("family_name_first", EXACT, 20), feature("family_name_last", EXACT, 20))
    ],
    "outward": [add(feature("postcode_outward", EXACT, 20))],
    "given+": [weight("given_name", 30)],
    "canonrepl": [canonical_given()],
    "repl+dob": [canonical_given(), sorted_date()],
    "repl+dob+out": [canonical_given(), sorted_date(), add(feature("postcode_outward", EXACT, 20))],
    "combo": [
        add(feature("given_name_canonical", EXACT, 30)),
        sorted_date(),
        add(feature("postcode_outward", EXACT, 20)),
    ],
    "combo+given": [
        add(feature("given_name_canonical", EXACT, 30)),
        sorted_date(),
        add(feature("postcode_outward", EXACT, 20)),
        weight("given_name", 30),
    ],
    # Against the shipped schema (which already derives the features above):
    "sex30": [weight("sex", 30)],
    "sex45": [weight("sex", 45)],
    "given25": [weight("given_name_canonical", 25)],
    "sex30+given25": [weight("sex", 30), weight("given_name_canonical", 25)],
    "nhs8": [weight("nhs_number", 8)],
    "nhs6": [weight("nhs_number", 6)],
    "all": [
        add(feature("given_name_canonical", EXACT, 30)),
        sorted_date(),
        add(feature("family_name_first", EXACT, 20), feature("family_name_last", EXACT, 20)),
        add(feature("postcode_outward", EXACT, 20)),
    ],
}


#: Variants measured against the shipped schema; every other one starts from the schema as it
#: was before derived features (``plain_schema``), which is how the shipped one was chosen.
ON_SHIPPED = ("shipped", "sex30", "sex45", "given25", "sex30+given25", "nhs8", "nhs6")


def plain_schema() -> dict[str, Any]:
    """The shipped schema without derived features: given name and date hashed as they are."""
    schema = LinkageSpec.default().schema
    plain = []
    for f in schema["features"]:
        if f["identifier"] in DERIVATIONS:
            continue
        if f.get("ignored") and f["identifier"] == "given_name":
            f = feature("given_name", {"type": "ngram", "n": 2}, 20)
            f["format"]["encoding"] = "utf-8"
        elif f.get("ignored") and f["identifier"] == "date_of_birth":
            f = feature("date_of_birth", {"type": "ngram", "n": 1, "positional": True}, 25)
        plain.append(f)
    schema["features"] = plain
    return schema


def variant_spec(name: str) -> LinkageSpec:
    schema = LinkageSpec.default().schema if name in ON_SHIPPED else plain_schema()
    for edit in VARIANTS[name]:
        edit(schema)
    return LinkageSpec.from_json(json.dumps(schema))


def prepared(data: synthetic.GeneratedData) -> tuple[list[list[tuple[str, ...]]], list[list[Any]]]:
    """Normalised base values per organisation, and (organisation, local id) per record."""
    values, ids = [], []
    for layout in data.layouts:
        rows = read_rows(
            data.csv_paths[layout.organisation],
            id_column=layout.id_column,
            columns=layout.columns,
            fields=BASE_FIELDS,
        )
        kept = []
        for row in rows:
            try:
                kept.extend(prepare_rows([row], BASE_FIELDS, normalisers()))
            except RowError:
                continue
        values.append([p.values for p in kept])
        ids.append([(layout.organisation, p.local_id) for p in kept])
    return values, ids


def encode(spec: LinkageSpec, values: list[list[tuple[str, ...]]]) -> list[list[Any]]:
    encoder = Encoder(spec, SECRET)
    fields = spec.all_fields
    out = []
    for part in values:
        rows = []
        for v in part:
            base = dict(zip(BASE_FIELDS, v, strict=True))
            rows.append(derive_values(fields, tuple(base.get(f, "") for f in fields)))
        out.append(matching.unpack(encoder.encode(rows)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--variants", default="base,canonrepl,dobsort,outward,repl+dob,repl+dob+out,shipped"
    )
    parser.add_argument("--settings", default="0.5x1,0.5x2")
    args = parser.parse_args()
    print(
        "setting | variant | est.thr | cross F1@est | best thr F1 | "
        + " | ".join(f"within P/R/F1 @{w}" for w in WITHIN)
        + " | seconds"
    )
    for setting in args.settings.split(","):
        overlap, factor = (float(x) for x in setting.split("x"))
        with tempfile.TemporaryDirectory() as folder:
            data = synthetic.generate(
                Path(folder), args.records, seed=args.seed, overlap=overlap, rates=scaled(factor)
            )
            truth = data.truth()
            values, ids = prepared(data)
        for name in args.variants.split(","):
            started = time.monotonic()
            datasets = encode(variant_spec(name), values)
            across = matching.candidate_pairs(datasets, quality.FLOOR)
            est = quality.estimate(quality.best_scores(across), bootstrap=0)
            within_by = {w: matching.within_pairs(datasets, w) for w in WITHIN}
            t = est.threshold if est.fitted else 0.83
            at_est = {w: link(datasets, ids, truth, across, within_by[w], t, MERGE) for w in WITHIN}
            grid = {
                g: link(datasets, ids, truth, across, within_by[0.9], g, MERGE).cross.f1
                for g in GRID
            }
            best = max(grid, key=lambda g: grid[g])
            print(
                f"{setting} | {name} | {t:.3f} | {at_est[0.9].cross.f1:.4f} | "
                f"{best:.2f} {grid[best]:.4f} | "
                + " | ".join(
                    f"{q.within.precision:.3f}/{q.within.recall:.3f}/{q.within.f1:.3f}"
                    for q in at_est.values()
                )
                + f" | {time.monotonic() - started:.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
