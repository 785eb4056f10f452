"""The overlap table: who is known to exactly which services, as a table and as plain data."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from hublink.clients.analyst import Overlap

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
