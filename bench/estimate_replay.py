"""Replay ``field_estimate.on_output`` on saved runs (``bench/estimate_dump.py``) beside the
truth, and split each kind's matches into where the estimate put them.

For each setting and kind (across organisations, within one): the estimate and its interval
beside the true precision and recall; then the model's expected matches against the true
ones among candidates the groups hold, candidates the model rejected (probability under the
cut, by how many comparisons read missing), candidates it accepted but the solver left apart,
and pairs never candidates (the hidden count against the true).

    python bench/estimate_replay.py DIR [--split] [--match GLOB]
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from coordinator.core import field_estimate, hidden_cells
from coordinator.core.field_levels import MISSING
from coordinator.core.field_model import KINDS


def split(data: dict[str, Any], k: int, figures: field_estimate.KindFigures) -> list[str]:
    """Expected against true matches, per place a candidate can end up."""
    prep: field_estimate.Prepared = data["prepared"]
    mine = prep.kinds == k
    chance, match = prep.chance[mine], data["match"][mine]
    group = data["group"]
    left, right = prep.left[mine], prep.right[mine]
    held = (group[left] >= 0) & (group[left] == group[right])
    cut = data["cuts"][k]
    missing = (data["levels"][:, mine] == MISSING).sum(axis=0)
    lines = []

    def row(name: str, sel: np.ndarray) -> None:
        if sel.any():
            lines.append(
                f"    {name:24} n {int(sel.sum()):6d} expected {chance[sel].sum():7.1f} "
                f"true {int(match[sel].sum()):5d}"
            )

    row("held", held)
    row("accepted, apart", ~held & (chance >= cut))
    for m in range(int(missing.max(initial=0)) + 1):
        row(f"rejected, {m} missing", ~held & (chance < cut) & (missing == m))
    true_pairs = data["truth"][KINDS[k]][2]
    lines.append(
        f"    never candidates: estimated {figures.hidden:.1f} true {true_pairs - int(match.sum())}"
    )
    return lines


def reprepare(data: dict[str, Any]) -> field_estimate.Prepared:
    """``field_estimate.prepare`` again on the saved model and its inputs."""
    prep: field_estimate.Prepared = data["prepared"]
    n = int((prep.kinds == 0).sum())
    scored = SimpleNamespace(
        inputs=data["inputs"], model=data["model"], cuts=data["cuts"],
        across=prep.chance[:n], within=prep.chance[n:],
    )  # fmt: skip
    sizes = np.bincount(data["dataset"]).tolist()
    return field_estimate.prepare(scored, sizes, seed=data["seed"])  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--split", action="store_true")
    parser.add_argument("--match", default="*.pkl")
    parser.add_argument("--refit", action="store_true", help="refit on the saved inputs")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="the model's probabilities, not recalibrated for "
        "partial missing (field_estimate.missing_recalibrated)",
    )
    parser.add_argument(
        "--salts",
        action="store_true",
        help="the hidden count from the salts alone, not the parts' cells "
        "(bench/estimate_parts.py writes each dump's part Dice beside it)",
    )
    args = parser.parse_args()
    tally: dict[str, list[tuple[float, float, bool, float]]] = {}
    for path in sorted(args.folder.glob(args.match)):
        with open(path, "rb") as f:
            data = pickle.load(f)
        if args.refit:
            data["prepared"] = reprepare(data)
        if "missing" in {f.name for f in dataclasses.fields(data["prepared"])}:
            data["prepared"] = dataclasses.replace(
                data["prepared"], missing=(data["levels"] == MISSING).sum(axis=0)
            )
        if "partial" in {f.name for f in dataclasses.fields(data["prepared"])}:
            data["prepared"] = dataclasses.replace(
                data["prepared"],
                partial=None
                if args.keep
                else field_estimate.partial_missing(data["levels"], data["inputs"].random_levels),
            )
        side = path.with_suffix(".parts.npz")
        if "clear" in {f.name for f in dataclasses.fields(data["prepared"])}:
            clear = None
            if side.exists() and not args.salts:
                parts = np.load(side)
                clear = hidden_cells.clear_bits(parts["cand"], parts["floors"])
            data["prepared"] = dataclasses.replace(data["prepared"], clear=clear)
        est = field_estimate.on_output(
            data["prepared"], data["group"], data["dataset"], seed=data["seed"]
        )
        for k, figures in enumerate((est.across, est.within)):
            if figures is None:
                continue
            kind = KINDS[k]
            tp, tr, _ = data["truth"][kind]
            out = [f"{data['name']} {kind}"]
            for which, point, (lo, hi), true in (
                ("P", figures.precision, figures.precision_interval, tp),
                ("R", figures.recall, figures.recall_interval, tr),
            ):
                covered = lo - 1e-9 <= true <= hi + 1e-9
                tally.setdefault(f"{kind} {which}", []).append(
                    (point - true, hi - lo, covered, 0.0)
                )
                out.append(
                    f"{which} {point:.3f} [{lo:.3f}, {hi:.3f}] true {true:.3f} "
                    f"({(point - true) * 100:+.1f}{'' if covered else ' NOT COVERED'})"
                )
            print(" | ".join(out))
            if args.split:
                print("\n".join(split(data, k, figures)))
        codes = [c.code for c in est.caveats]
        if codes:
            print("    caveats:", ", ".join(codes))
    print()
    for name, rows in tally.items():
        errors = np.array([r[0] for r in rows])
        print(
            f"{name}: within 1.5 points {int((np.abs(errors) <= 0.015).sum())}/{len(rows)}, "
            f"covered {sum(r[2] for r in rows)}/{len(rows)}, "
            f"largest {errors[np.argmax(np.abs(errors))] * 100:+.1f}, "
            f"mean abs {np.abs(errors).mean() * 100:.2f}, mean signed {errors.mean() * 100:+.2f}, "
            f"mean width {np.mean([r[1] for r in rows]) * 100:.1f}"
        )


if __name__ == "__main__":
    sys.exit(main())
