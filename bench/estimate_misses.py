"""Where the field model's recall estimate goes wrong: its pieces, each beside the truth.

The run's recall estimate (``coordinator.core.field_estimate``) is matches the groups
hold over matches there were: the probabilities of held candidates, over the
probabilities of all candidates plus the matches hidden under the floor
(``hidden_matches``, from how often each record-CLK part's salt breaks among the
candidates). For each setting this runs the default path as a run does (the part
pass too: ``run_pairs``), then splits the true cross-organisation pairs into

- never a candidate, by how many parts the levels say are broken (and by how many
  parts' Dice on the record CLK stand clear of chance, which is what salting does),
- a candidate the groups do not hold (rejected, or left apart by the solver),
- a candidate the groups hold;

and prints, for each, what the estimate assumes beside what was true.

    python bench/estimate_misses.py [--records 1000] [--seeds 7 8 9] [--factors 0.5 1 2]
        [--overlaps 0.1]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import grouped
import quality as bench_quality
from quality import DEFAULTS
from run_pairs import clear_of, rows_of, run_pairs

from coordinator.core import entities, field_estimate, field_scoring, matching
from coordinator.core.field_model import ACROSS
from hublink import synthetic

#: A part's Dice above this stands clear of chance (about 0.5): its salts agreed.
CLEAR = 0.6


def true_cross_pairs(enc: bench_quality.Encoded) -> tuple[np.ndarray, np.ndarray]:
    """Global rows of every true pair of records in two different datasets."""
    people: dict[str, list[tuple[int, int]]] = {}
    offset = 0
    for d, part in enumerate(enc.ids):
        for r, rid in enumerate(part):
            person = enc.truth.get(rid)
            if person is not None:
                people.setdefault(person, []).append((d, offset + r))
        offset += len(part)
    left, right = [], []
    for members in people.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                if members[a][0] != members[b][0]:
                    left.append(min(members[a][1], members[b][1]))
                    right.append(max(members[a][1], members[b][1]))
    return np.array(left, dtype=np.int64), np.array(right, dtype=np.int64)


def part_dice(rows: np.ndarray, left: np.ndarray, right: np.ndarray, parts: int) -> np.ndarray:
    """[pair, part]: Dice of each part of the record CLK."""
    step = rows.shape[1] // parts
    out = np.zeros((len(left), parts))
    for k in range(parts):
        x, y = rows[left, k * step : (k + 1) * step], rows[right, k * step : (k + 1) * step]
        both = np.bitwise_count(x & y).sum(axis=1)
        total = np.bitwise_count(x).sum(axis=1) + np.bitwise_count(y).sum(axis=1)
        out[:, k] = 2.0 * both / np.maximum(total, 1)
    return out


@dataclass(frozen=True)
class FieldRun:
    """One generated setting taken through the default field path, as a run takes it."""

    enc: bench_quality.Encoded
    found: Any
    sizes: list[int]
    scored: Any
    truth: Any
    grouping: entities.Grouping
    prepared: Any


def field_run(records: int, seed: int, overlap: float, factor: float, orgs: int) -> FieldRun:
    """Candidates, field scoring, decision, solve and the model's prepared estimate of one
    setting (shared with ``estimate_dump.py``)."""
    enc = bench_quality.synthetic_setting(records, seed, overlap, factor, orgs)
    found = run_pairs(enc.datasets, "salted", field_scoring.within_floor("salted"))
    sizes = [len(d) for d in enc.datasets]
    filters = enc.filters
    scored = field_scoring.score(
        found.across, found.within, sizes, lambda rows: {n: a[rows] for n, a in filters.items()},
        flip=enc.flip, seed=seed, identifiers=enc.identifiers,
    )  # fmt: skip
    decision = field_scoring.decide(found.across, found.within, scored)
    groups = matching.solve(decision.linking, merge_threshold=DEFAULTS.merge_threshold)
    truth = synthetic.pairwise_quality(grouped.predicted(groups, enc.ids), enc.truth)
    grouping = entities.Grouping.from_solution(groups, sizes)
    assert scored.inputs is not None
    clear = clear_of(enc.datasets, "salted", scored.inputs.candidate_pairs)
    prepared = field_estimate.prepare(scored, sizes, seed=seed, clear=clear)
    return FieldRun(enc, found, sizes, scored, truth, grouping, prepared)


def setting(
    records: int, seed: int, overlap: float, factor: float, dump: Path | None = None
) -> None:
    run = field_run(records, seed, overlap, factor, 3)
    enc, sizes, scored = run.enc, run.sizes, run.scored
    truth, grouping, prepared = run.truth, run.grouping, run.prepared
    filters = enc.filters
    est = field_estimate.on_output(prepared, grouping.group, grouping.dataset, seed=seed)

    mine = prepared.kinds == ACROSS
    cl, cr = prepared.left[mine], prepared.right[mine]
    chance, broken = prepared.chance[mine], prepared.broken[mine]
    width = int(sum(sizes))
    code = np.minimum(cl, cr) * width + np.maximum(cl, cr)
    order = np.argsort(code)
    tl, tr = true_cross_pairs(enc)
    tcode = tl * width + tr
    at = np.searchsorted(code[order], tcode)
    at = np.minimum(at, len(code) - 1)
    is_cand = code[order][at] == tcode
    cand_index = order[at]
    match = np.zeros(len(code), dtype=bool)
    match[cand_index[is_cand]] = True
    held = (grouping.group[cl] >= 0) & (grouping.group[cl] == grouping.group[cr])
    assert scored.reading is not None
    need = np.unique(np.concatenate([tl, tr]))
    levels = scored.reading.levels(
        {n: a[need] for n, a in filters.items()},
        np.searchsorted(need, tl),
        np.searchsorted(need, tr),
    )
    assert scored.inputs is not None
    t_broken = field_estimate.broken_parts(levels, scored.inputs.groups, field_estimate.PART_CHECKS)
    rows = np.concatenate([rows_of(d) for d in enc.datasets])
    clear = (part_dice(rows, tl, tr, 3) > CLEAR).sum(axis=1)

    def label(b: int) -> str:
        return "0" if b == 0 else ("1" if b in (1, 2, 4) else "2+")

    if dump is not None:
        np.savez(
            dump / f"x{factor:g}-ov{overlap:g}-s{seed}.npz",
            chance=chance, broken=broken, held=held, match=match, draws=prepared.draws[:, mine],
            truth_recall=truth.cross.recall, estimate=est.across.recall,
            cut=scored.cuts[0], ends0=scored.inputs.ends[0][mine],
            ends1=scored.inputs.ends[1][mine], true_pairs=len(tl),
        )  # fmt: skip
    print(f"\n== x{factor:g} ov{overlap:g} s{seed}: {len(tl)} true cross pairs, "
          f"{len(code)} candidates, true R {truth.cross.recall:.3f} est "
          f"{est.across.recall:.3f} {est.across.recall_interval}")  # fmt: skip
    # Candidates: estimated matches by broken class vs true.
    for name, sel in (
        ("0", broken == 0),
        ("1", np.isin(broken, [1, 2, 4])),
        ("2+", ~np.isin(broken, [0, 1, 2, 4])),
    ):
        print(f"  candidates broken {name:2}: expected {chance[sel].sum():7.1f} true "
              f"{match[sel].sum():5d}")  # fmt: skip
    alone, one, several = field_estimate.part_sums(chance, broken, 3)
    t_alone = float(match[broken == 0].sum())
    t_one = [float(match[broken == 1 << i].sum()) for i in range(3)]
    hidden = field_estimate.hidden_matches(alone, one, several)
    never = ~is_cand
    print(f"  one-part sums expected {[round(x, 1) for x in one]} true {t_one}")
    print(f"  hidden: estimated {hidden:.1f}; true never-candidates {int(never.sum())}; "
          f"several_expected from true counts "
          f"{field_estimate.several_expected(t_alone, t_one):.1f}")  # fmt: skip
    by = Counter(
        (label(int(b)), int(c)) for b, c in zip(t_broken[never], clear[never], strict=True)
    )
    print("  never candidates (levels-broken, parts clear):", dict(sorted(by.items())))
    allb = Counter(label(int(b)) for b in t_broken)
    print("  all true pairs by levels-broken:", dict(sorted(allb.items())))
    allc = Counter(int(c) for c in clear)
    print("  all true pairs by parts clear:", dict(sorted(allc.items())))
    cross = Counter((label(int(b)), int(c)) for b, c in zip(t_broken, clear, strict=True))
    print("  all true pairs (levels-broken, parts clear):", dict(sorted(cross.items())))
    print(f"  candidates held: expected matches {chance[held].sum():.1f} true {match[held].sum()}"
          f" of {held.sum()}; not held: expected {chance[~held].sum():.1f} true "
          f"{match[~held].sum()} of {(~held).sum()}")  # fmt: skip
    print(f"  est matches {chance.sum() + hidden:.1f} true {len(tl)}; "
          f"cut {scored.cuts[0]:.3f}; rejected true (P<cut) "
          f"{(match & (chance < scored.cuts[0])).sum()} expected "
          f"{chance[chance < scored.cuts[0]].sum():.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--factors", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--overlaps", type=float, nargs="+", default=[0.1])
    parser.add_argument("--dump", type=Path, help="save each setting's arrays here (.npz)")
    args = parser.parse_args()
    bench_quality.RECORD_CLK = "salted"
    for factor in args.factors:
        for overlap in args.overlaps:
            for seed in args.seeds:
                setting(args.records, seed, overlap, factor, args.dump)


if __name__ == "__main__":
    main()
