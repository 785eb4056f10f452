"""Refit the field model on saved runs (``bench/febrl_dump.py``) and score the result.

For each saved setting: the model fitted as the code now fits it, the cut-offs, the
decision and the solver, then P/R/F1 across and within organisations, false pairs inside
households (generator settings), and with ``--patterns`` the worst agreement patterns
(``field_patterns``) with each pattern's share of every class of the model.

    python bench/febrl_replay.py DIR [--match GLOB] [--patterns]
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import field_patterns
import grouped
from quality import DEFAULTS

from coordinator.core import field_model, field_scoring, matching
from hublink import synthetic

#: Each setting's (cross F1, within F1, household false pairs), for the closing summary.
FOUND: list[tuple[float, float, int]] = []


def replay(
    data: dict[str, Any], patterns: bool, identifiers: str | None = None, merge: float | None = None
) -> list[str]:
    """One saved setting refitted, decided and solved: its result lines. ``identifiers``
    (comma-separated comparisons) replaces the saved ones when given."""
    inputs: field_scoring.FitInputs = data["inputs"]
    if identifiers is not None:
        chosen = tuple(x for x in identifiers.split(",") if x)
        inputs = dataclasses.replace(inputs, identifiers=chosen)
    model = inputs.fit()
    chance = model.probability(inputs.levels, inputs.kinds)
    odds = model.log_odds(inputs.levels, inputs.kinds)
    n = int((inputs.kinds == field_model.ACROSS).sum())
    scored = field_scoring.Scored(
        across=chance[:n], within=chance[n:], across_odds=odds[:n], within_odds=odds[n:],
        cuts=(field_model.best_cut(chance[:n]), field_model.best_cut(chance[n:])),
        model=model, levels=inputs.levels, inputs=inputs,
    )  # fmt: skip
    decision = field_scoring.decide(data["across"], data["within"], scored)
    merge = DEFAULTS.merge_threshold if merge is None else merge
    groups = matching.solve(decision.linking, merge_threshold=merge)
    predicted = grouped.predicted(groups, data["ids"])
    q = synthetic.pairwise_quality(predicted, data["truth"])
    house = data.get("household")
    false = grouped.household_false_pairs(predicted, house, data["truth"]) if house else -1
    if data["linked"] and len(data["ids"]) > 1:
        FOUND.append((q.cross.f1, q.within.f1, false))
    lines = [
        f"{data['label']:22} cross {q.cross.precision:.3f}/{q.cross.recall:.3f}/"
        f"{q.cross.f1:.3f} within {q.within.precision:.3f}/{q.within.recall:.3f}/"
        f"{q.within.f1:.3f} household {false} cuts {scored.cuts[0]:.3f}/{scored.cuts[1]:.3f} "
        f"priors across {np.round(model.priors[0][:3], 4)}"
    ]
    if patterns:
        lines += field_patterns.table(
            data["across"], data["within"], scored, data["ids"], data["truth"], predicted
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--match", default="*.pkl")
    parser.add_argument("--patterns", action="store_true")
    parser.add_argument("--merge", type=float, help="the solver's merge threshold (default 0.9)")
    parser.add_argument("--identifiers", help="comparisons no two people share, e.g. nhs,local_id")
    args = parser.parse_args()
    for path in sorted(args.folder.glob(args.match)):
        started = time.monotonic()
        with open(path, "rb") as f:
            data = pickle.load(f)
        print(
            "\n".join(replay(data, args.patterns, args.identifiers, args.merge)),
            f"({time.monotonic() - started:.0f}s)",
        )
        sys.stdout.flush()
    if len(FOUND) > 1:
        cross, within, false = (np.array(x) for x in zip(*FOUND, strict=True))
        print(
            f"{len(FOUND)} settings: cross F1 mean {cross.mean():.5f} worst {cross.min():.3f}; "
            f"within F1 mean {within.mean():.5f} worst {within.min():.3f}; household false "
            f"pairs {int(false.sum())} (most {int(false.max())})"
        )


if __name__ == "__main__":
    main()
