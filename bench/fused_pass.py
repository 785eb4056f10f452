"""The part pass's cost: whole row only, whole row then a pass a part, and one fused pass.

A salted record CLK's all-pairs search keeps a pair when its whole-row Dice
reaches the salted floor or its best part's Dice reaches the part floor
(``coordinator.core.part_pass``). This times, in process CPU seconds (the
machine is shared; wall time would measure the neighbours), a run's all-pairs
search (``candidates.find``, no blocking, one process) over two organisations
of real salted encodings (``salted_blocking.data``: generated people, 60%
overlap, the node's encoder; cached), four ways:

* ``whole``: whole-row Dice only (no part pass);
* ``two-step``: the whole-row pass, then the kernel once more on each part's
  slice of the rows (the way before the fused kernel, and still anonlink's);
* ``fused``: ``kernel.dice_block_parts``, one pass counting every part;
* ``fused-no-exit``: the same without the bound inside the last part.

Each is checked to find the same pairs with the same scores as ``two-step``.

    python bench/fused_pass.py [--size 20000] [--within] [--repeat 1]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import salted_blocking

from coordinator.core import candidates, kernel
from coordinator.core.score_model import SALTED_FLOOR, part_pass_for


@contextmanager
def way(name: str) -> Iterator[None]:
    """The kernel as ``name`` runs it (module attributes swapped back afterwards)."""
    fusable, fused = kernel.fusable, kernel.dice_block_parts
    if name == "two-step":
        kernel.fusable = lambda rows, parts: False  # type: ignore[assignment]
    if name == "fused-no-exit":
        kernel.dice_block_parts = functools.partial(fused, early_exit=False)  # type: ignore[assignment]
    try:
        yield
    finally:
        kernel.fusable, kernel.dice_block_parts = fusable, fused  # type: ignore[method-assign]


def search(rows: list[np.ndarray], name: str, within: bool) -> candidates.Found:
    parts = None if name == "whole" else part_pass_for("salted", field_scoring=True)
    with way(name), candidates.InlineEngine().session() as session:
        return candidates.find(
            session,
            rows,
            low=SALTED_FLOOR,
            design=SALTED_FLOOR,
            within_threshold=SALTED_FLOOR if within else 0.0,
            blocking_mode="none",
            parts=parts,
        )


def as_set(found: candidates.Found) -> set[tuple[int, int, int, int, float]]:
    """Every pair found, across and within, with its score."""
    out = set()
    for sims, (d0, d1), (r0, r1) in (found.across, found.within):
        out |= set(zip(d0, d1, r0, r1, sims, strict=True))
    return out


def cpu(run: Callable[[], candidates.Found]) -> tuple[float, candidates.Found]:
    started = time.process_time()
    found = run()
    return time.process_time() - started, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20_000, help="people an organisation")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--within", action="store_true", help="within-dataset pairs too")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each way (best kept)")
    parser.add_argument("--ways", default="whole,two-step,fused,fused-no-exit")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "hublink-bench")
    args = parser.parse_args()
    rows, _ = salted_blocking.data(args.size, args.seed, args.cache)
    print(f"kernel {kernel.name()}; {len(rows[0]):,} x {len(rows[1]):,} salted rows of "
          f"{rows[0].shape[1]} bytes; within pairs {'on' if args.within else 'off'}")  # fmt: skip
    reference: set[tuple[int, int, int, int, float]] | None = None
    for name in args.ways.split(","):
        seconds = []
        for _ in range(args.repeat):
            spent, found = cpu(lambda name=name: search(rows, name, args.within))  # type: ignore[misc]
            seconds.append(spent)
        pairs = as_set(found)
        same = ""
        if name != "whole":
            reference = reference if reference is not None else pairs
            same = "same pairs and scores" if pairs == reference else "DIFFERENT pairs"
        print(f"{name:>14}: {min(seconds):7.1f} CPU s  {len(pairs):>9,} pairs  {same}", flush=True)


if __name__ == "__main__":
    main()
