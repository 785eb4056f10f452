"""Showing results to people: overlap tables, progress bars, plain-data forms of both."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from hublink.clients import Overlap

SUPPRESSED = "*"


def overlap_json(overlap: Overlap) -> dict[str, Any]:
    """The overlap table as plain data: every cell with its datasets, value (or null) and flag."""
    return {
        "project_id": overlap.project_id,
        "run_id": overlap.run_id,
        "disclosure_rule": overlap.rule,
        "cells": [
            {"datasets": list(c.datasets), "value": c.value, "suppressed": c.suppressed}
            for c in overlap.cells
        ],
    }


def overlap_table(overlap: Overlap, names: dict[str, str] | None = None) -> Table:
    """A table with one row per combination of datasets: who is known to exactly these services."""
    names = names or {}
    table = Table(
        title=f"Children known to exactly these services ({overlap.project_id})",
        caption=f"{SUPPRESSED} = suppressed: {overlap.rule}",
    )
    table.add_column("Services")
    table.add_column("Children", justify="right")
    for cell in overlap.cells:
        label = " + ".join(names.get(d, d) for d in cell.datasets)
        if len(cell.datasets) == 1:
            label += " only"
        table.add_row(label, SUPPRESSED if cell.value is None else f"{cell.value:,}")
    return table


def print_overlap(
    overlap: Overlap, names: dict[str, str] | None = None, console: Console | None = None
) -> None:
    (console or Console()).print(overlap_table(overlap, names))


class StageProgress:
    """A progress display for staged work; ``progress(stage, done, total)`` updates it.

    Disabled (a no-op) when output is not a terminal, so logs and CI stay clean.
    """

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console or Console(stderr=True),
            transient=False,
            disable=not enabled,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> StageProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, stage: str, done: int, total: int) -> None:
        task = self._tasks.get(stage)
        if task is None:
            task = self._progress.add_task(stage, total=total or None)
            self._tasks[stage] = task
        self._progress.update(task, completed=done, total=total or None)
