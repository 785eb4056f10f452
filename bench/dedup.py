"""Deduplication against the target: share of duplicate pairs found, at what precision.

Issue 6 asks for at least 95% of within-organisation duplicate pairs found at
precision 0.98 or better on generated data with known duplicates. For each
error level (every generator rate scaled, duplicates kept at their default
share) and overlap, this encodes the generated people with the shipped schema,
links them as a run does (cross threshold estimated from the scores, within
candidates at each within threshold, probabilistic greedy solver with the
project's merge threshold) and prints within-organisation pairwise precision,
recall and F1, then the best recall reached at precision >= 0.98.

    python bench/dedup.py [--records 3000] [--seed 7] [--errors 0.5,1,1.5,2] [--overlaps 0.5]
        [--field-scoring [--salt given=day_month_smaller]] [--record-clk salted|unsalted]

With ``--field-scoring`` the people are also encoded into the per-field filters
of ``field_scoring = true`` and within-organisation pairs are decided by the
coordinator's field model (coordinator/core/field_scoring.py, which then decides
cross pairs as well) instead of the within thresholds (bench/quality.py measures the
model across settings): it prints within- and cross-organisation precision, recall
and F1 against the truth beside the model's own estimates of within precision
and recall (calibration), and the estimated number of duplicate pairs.
``--salt GROUP=FEATURE`` (repeatable) salts that group's filter with the feature's
value (``FieldGroup.salt``), to measure what salting costs the model; ``--salt given=``
takes the shipped salt off. ``--record-clk`` (default: a project file's, "salted") chooses
the record CLK, and with it the candidate floors a run uses (with a salted one, candidates
are found as a run finds them, by the whole row and by the best part: ``--part-floor``
measures another part floor). Record tokens, which seed
the bits a node flips, are drawn from ``--seed``, so a run's figures repeat exactly (fresh
tokens move a single setting by up to a point).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import grouped
import numpy as np
from encoding_variants import BASE_FIELDS, SECRET, encode, prepared
from run_pairs import run_pairs
from threshold import link, scaled

from coordinator.core import field_scoring, matching, peaks, quality, score_model
from coordinator.core.runs import floor_for
from hublink import synthetic
from hublink.config import ProjectConfig, default_of
from hublink.spec import RECORD_CLKS, LinkageSpec, SpecError
from node.derived import derive_values
from node.encoder import Encoder

WITHIN = (0.78, 0.82, 0.86, 0.9, 0.94)
#: The same for a salted record CLK, whose true pairs score lower (``--record-clk salted``).
SALTED_WITHIN = (0.66, 0.7, 0.74, 0.78, 0.82)
#: The project's default within threshold, at which cross-organisation quality is printed.
DEFAULT_WITHIN = 0.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000, help="records per organisation")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--errors", default="0.5,1,1.5,2", help="error-rate factors")
    parser.add_argument("--overlaps", default="0.5")
    parser.add_argument(
        "--field-scoring", action="store_true", help="decide duplicates with per-field filters"
    )
    parser.add_argument(
        "--record-clk",
        choices=RECORD_CLKS,
        default=default_of(ProjectConfig, "record_clk"),
        help="the record CLK (the project setting record_clk)",
    )
    parser.add_argument(
        "--part-floor",
        type=float,
        default=None,
        help="with --field-scoring and a salted record CLK: the part floor candidates are "
        "also kept from (default: score_model.SALTED_PART_FLOOR, as a run)",
    )
    parser.add_argument(
        "--part-within",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether the part pass searches pairs inside one organisation too (default: as a run)",
    )
    parser.add_argument(
        "--salt",
        action="append",
        default=[],
        metavar="GROUP=FEATURE",
        help="with --field-scoring: salt a per-field filter with another feature's value",
    )
    args = parser.parse_args()
    merge = ProjectConfig("x", "x", (), Path("x")).merge_threshold
    if args.field_scoring:
        fields(args, merge)
        return
    spec = LinkageSpec.from_json(LinkageSpec.default().json_text, record_clk=args.record_clk)
    floor = score_model.SALTED_FLOOR if args.record_clk == "salted" else quality.FLOOR
    within_grid = SALTED_WITHIN if args.record_clk == "salted" else WITHIN
    print(
        "overlap errors | dup pairs | cross thr | "
        + " | ".join(f"within P/R/F1 @{w}" for w in within_grid)
        + f" | best R at P>=0.98 | cross P/R/F1 @{DEFAULT_WITHIN} | best cross thr, F1"
        + " | candidate R cross | seconds"
    )
    for overlap in (float(x) for x in args.overlaps.split(",")):
        for factor in (float(x) for x in args.errors.split(",")):
            started = time.monotonic()
            with tempfile.TemporaryDirectory() as folder:
                data = synthetic.generate(
                    Path(folder),
                    args.records,
                    seed=args.seed,
                    overlap=overlap,
                    rates=scaled(factor),
                )
                truth = data.truth()
                values, ids = prepared(data)
            datasets = encode(spec, values)
            across = matching.candidate_pairs(datasets, floor)
            # As a run chooses (runs.choose_threshold): the estimate, else the fallback.
            threshold, _ = quality.choose(
                quality.best_scores(across),
                0.83,
                True,
                across,
                floor=floor,
                peaks=peaks.peaks_for(args.record_clk),
            )
            no_within = matching.within_pairs(datasets, 1.0)
            grid = {
                t: link(datasets, ids, truth, across, no_within, t, merge).cross.f1
                for t in np.arange(floor, 0.9, 0.02).round(2)
            }
            best_t = max(grid, key=lambda t: grid[t])
            results = {
                w: link(
                    datasets,
                    ids,
                    truth,
                    across,
                    matching.within_pairs(datasets, w),
                    threshold,
                    merge,
                )
                for w in (*within_grid, DEFAULT_WITHIN)
            }
            found = {w: results[w].within for w in within_grid}
            c = results[DEFAULT_WITHIN].cross
            meeting = [q.recall for q in found.values() if q.precision >= 0.98]
            best = f"{max(meeting):.3f}" if meeting else "none"
            print(
                f"{overlap:.1f} x{factor:g} | {next(iter(found.values())).true_pairs} | "
                f"{threshold:.3f} | "
                + " | ".join(f"{q.precision:.3f}/{q.recall:.3f}/{q.f1:.3f}" for q in found.values())
                + f" | {best} | {c.precision:.3f}/{c.recall:.3f}/{c.f1:.3f}"
                + f" | {best_t:.2f}, {grid[best_t]:.3f}"
                + f" | {candidate_recall(across, ids, truth, across=True)}"
                + f" | {time.monotonic() - started:.0f}",
                flush=True,
            )


def fields(args: argparse.Namespace, merge: float) -> None:
    """Within-organisation quality when per-field filters decide duplicates."""
    spec = LinkageSpec.from_json(
        LinkageSpec.default().json_text, field_scoring=True, record_clk=args.record_clk
    )
    malformed = [pair for pair in args.salt if "=" not in pair]
    if malformed:
        raise SystemExit(f"--salt: expected GROUP=FEATURE, not {malformed[0]!r}")
    try:
        spec = spec.with_salts(dict(pair.split("=", 1) for pair in args.salt))
    except SpecError as exc:
        raise SystemExit(f"--salt: {exc}") from None
    encoder = Encoder(spec, SECRET)
    print(
        "overlap errors | dup pairs | cross thr | weighed | within P/R/F1 | "
        "estimated P/R | est. dup pairs | cross P/R/F1 | candidate R cross/within | "
        "household false | seconds"
    )
    for overlap in (float(x) for x in args.overlaps.split(",")):
        for factor in (float(x) for x in args.errors.split(",")):
            started = time.monotonic()
            with tempfile.TemporaryDirectory() as folder:
                data = synthetic.generate(
                    Path(folder), args.records, seed=args.seed, overlap=overlap,
                    rates=scaled(factor),
                )  # fmt: skip
                truth = data.truth()
                values, ids = prepared(data)
                household = households(folder, args.records, args.seed, overlap)
            datasets, groups = [], []
            for k, part in enumerate(values):
                rows = [full_row(spec, v) for v in part]
                # Tokens from the seed, so the flipped bits (and the figures) repeat.
                tokens = [f"bench-{args.seed}-{k}-{i}" for i in range(len(rows))]
                encoded = encoder.encode_all(rows, tokens)
                datasets.append(matching.unpack(e[0] for e in encoded))
                groups.append([np.frombuffer(b"".join(e[k] for e in encoded), np.uint8)
                               .reshape(len(encoded), -1)
                               for k in range(1, len(spec.encodings))])  # fmt: skip
            names = [g.name for g in spec.field_groups]
            stacked = {name: np.concatenate([g[k] for g in groups]) for k, name in enumerate(names)}
            # As a run finds them (with a salted record CLK, the part pass too).
            found_pairs = run_pairs(
                datasets,
                spec.record_clk,
                field_scoring.within_floor(spec.record_clk),
                args.part_floor,
                args.part_within,
            )
            across, within = found_pairs.across, found_pairs.within
            est = quality.estimate(
                found_pairs.scores,
                candidates=found_pairs.scored,
                bootstrap=0,
                floor=floor_for(spec.record_clk),
            )
            threshold = est.threshold if est.fitted else 0.83
            scored = field_scoring.score(
                across,
                within,
                [len(d) for d in datasets],
                lambda rows, stacked=stacked: {n: a[rows] for n, a in stacked.items()},
                seed=args.seed,
                flip=spec.group_flip,
                identifiers=spec.identifier_comparisons,
            )
            decision = field_scoring.decide(across, within, scored)
            found = decision.duplicates
            groups_found = matching.solve(decision.linking, merge_threshold=merge)
            predicted = grouped.predicted(groups_found, ids)
            result = synthetic.pairwise_quality(predicted, truth)
            house = grouped.household_false_pairs(predicted, household, truth)
            q, c = result.within, result.cross
            print(
                f"{overlap:.1f} x{factor:g} | {q.true_pairs} | {threshold:.3f} | {found.weighed} | "
                f"{q.precision:.3f}/{q.recall:.3f}/{q.f1:.3f} | "
                f"{found.precision:.3f}/{found.recall:.3f} | "
                f"{found.estimated_duplicate_pairs:.0f} | "
                f"{c.precision:.3f}/{c.recall:.3f}/{c.f1:.3f} | "
                f"{candidate_recall(across, ids, truth, across=True)}/"
                f"{candidate_recall(within, ids, truth, across=False)} | {house} | "
                f"{time.monotonic() - started:.0f}",
                flush=True,
            )


def households(folder: str, records: int, seed: int, overlap: float) -> dict[Any, str]:
    """Each record's true household (family name and postcode as generated before errors):
    the same people in the same rows with no errors (``bench/quality.py`` does the same)."""
    clean = synthetic.generate(
        Path(folder) / "clean", records, seed=seed, overlap=overlap,
        rates=dataclasses.replace(
            synthetic.ErrorRates.none(),
            duplicate_referral=synthetic.ErrorRates().duplicate_referral,
        ),
    )  # fmt: skip
    values, ids = prepared(clean)
    return {
        rid: f"{v[1]}|{v[4]}"
        for part, part_ids in zip(values, ids, strict=True)
        for v, rid in zip(part, part_ids, strict=True)
    }


def candidate_recall(
    candidates: matching.Candidates,
    ids: list[list[tuple[str, str]]],
    truth: dict[tuple[str, str], str],
    *,
    across: bool,
) -> str:
    """Share of the true pairs (``across`` organisations, or within one) that are among
    ``candidates``: what blocking and the candidate floor keep, and no later step recovers.
    Pairs are counted over the records that were read (prepared)."""
    _, d0, d1, r0, r1 = matching.arrays(candidates)
    found = {
        frozenset((ids[a][x], ids[b][y]))
        for a, b, x, y in zip(d0.tolist(), d1.tolist(), r0.tolist(), r1.tolist(), strict=True)
        if truth.get(ids[a][x]) == truth.get(ids[b][y]) is not None
    }
    people: dict[str, list[tuple[str, str]]] = {}
    for part in ids:
        for rid in part:
            people.setdefault(truth[rid], []).append(rid)
    wanted = {
        frozenset((x, y))
        for group in people.values()
        for i, x in enumerate(group)
        for y in group[i + 1 :]
        if (x[0] != y[0]) == across
    }
    return f"{len(found & wanted) / max(len(wanted), 1):.3f}"


def full_row(spec: LinkageSpec, base: tuple[str, ...]) -> tuple[str, ...]:
    """Values for every feature of the spec, derived ones computed (as the node does)."""
    named = dict(zip(BASE_FIELDS, base, strict=True))
    return derive_values(spec.all_fields, tuple(named.get(f, "") for f in spec.all_fields))


if __name__ == "__main__":
    main()
