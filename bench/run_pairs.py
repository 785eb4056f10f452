"""Candidate pairs found as a run finds them, for the benchmarks that link generated data.

A run's candidates come from ``coordinator.core.candidates.find``: all pairs at the
record CLK's floor, within-dataset pairs at the within floor, and for a salted record
CLK also the pairs whose best part reaches the part floor (``coordinator.core.part_pass``).
The benchmarks used to call ``matching.candidate_pairs`` (whole-row Dice only); this
keeps them measuring what a run links.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from coordinator.core import candidates, chance, hidden_cells


def rows_of(dataset: Sequence[Any]) -> np.ndarray:
    """A dataset of anonlink bitarrays as packed rows."""
    return np.frombuffer(b"".join(b.tobytes() for b in dataset), np.uint8).reshape(len(dataset), -1)


def run_pairs(
    datasets: Sequence[Sequence[Any]],
    record_clk: str,
    within: float = 0.0,
    part_floor: float | None = None,
    part_within: bool | None = None,
) -> candidates.Found:
    """What a run of a project with this record CLK finds (all pairs, never blocked), at
    floors lifted to the data's chance level as a run lifts them (``coordinator.core.chance``;
    ``within`` is a shipped within floor, lifted too); ``part_floor`` and ``part_within``
    measure other part-pass settings than the shipped."""
    rows = [rows_of(d) for d in datasets]
    level = chance.of_run(rows, record_clk)
    floor = level.whole_floor
    within = level.floor(within) if within and record_clk == "salted" else within
    parts = level.part_pass(field_scoring=True)
    if parts is not None and part_floor is not None:
        parts = dataclasses.replace(parts, floor=part_floor, floors=())
    if parts is not None and part_within is not None:
        parts = dataclasses.replace(parts, within=part_within)
    with candidates.InlineEngine().session() as session:
        return candidates.find(
            session,
            rows,
            low=floor,
            design=floor,
            within_threshold=within,
            blocking_mode="none",
            parts=parts,
        )


def clear_of(
    datasets: Sequence[Sequence[Any]], record_clk: str, pairs: tuple[np.ndarray, np.ndarray]
) -> np.ndarray | None:
    """Each candidate's record-CLK parts at or above the run's part floors, as bits, as a
    run reads them for its hidden-match count (``field_weighing.prepare_estimate``); None
    for an unsalted record CLK. ``pairs``: the candidates' global rows."""
    rows = [rows_of(d) for d in datasets]
    parts = chance.of_run(rows, record_clk).part_pass(field_scoring=True)
    if parts is None:
        return None
    every = np.concatenate(rows)
    dice = hidden_cells.part_dice(every[pairs[0]], every[pairs[1]], parts.count)
    return hidden_cells.clear_bits(dice, parts.part_floors)
