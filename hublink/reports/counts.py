"""Protected count tables as people and tools read them: a terminal table, CSV rows, JSON.

Each form carries every cell the coordinator released, withheld ones
included (value null / ``*``), its coordinates in every dimension ("Total"
where a dimension is summed over) and the disclosure rule, so a table pasted
into a report keeps its caveat.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rich.table import Table

from hublink.clients.analyst import Counts

SUPPRESSED = "*"
TOTAL = "Total"


def counts_json(counts: Counts) -> dict[str, Any]:
    """Plain data: every cell with its datasets or attribute values, value (or null) and flags."""
    return {
        "project_id": counts.project_id,
        "run_id": counts.run_id,
        "query": counts.query,
        "dimensions": list(counts.dimensions),
        "disclosure_rule": counts.rule,
        "cells": [
            {
                "datasets": list(c.datasets),
                "attributes": dict(c.attributes),
                "totalled": list(c.totalled),
                "value": c.value,
                "suppressed": c.suppressed,
                **({"reason": c.reason} if c.reason else {}),
            }
            for c in counts.cells
        ],
    }


def counts_rows(counts: Counts) -> Iterator[list[str]]:
    """CSV rows: a header of the dimensions, then ``count`` and ``suppressed``."""
    yield [*counts.dimensions, "count", "suppressed"]
    for cell in counts.cells:
        coordinates = [cell.coordinate(d) for d in counts.dimensions]
        yield [
            *(TOTAL if v is None else v for v in coordinates),
            "" if cell.value is None else str(cell.value),
            "true" if cell.suppressed else "false",
        ]


def counts_table(counts: Counts, names: Mapping[str, str] | None = None) -> Table:
    """A terminal table; dataset combinations use display names where given."""
    names = names or {}
    table = Table(
        title=f"Children: {counts.query} ({counts.project_id})",
        caption=f"{SUPPRESSED} = withheld; {counts.rule}",
    )
    for dimension in counts.dimensions:
        table.add_column(dimension.replace("_", " "))
    table.add_column("Children", justify="right")
    for cell in counts.cells:
        row = []
        for dimension in counts.dimensions:
            value = cell.coordinate(dimension)
            if value is None:
                row.append(TOTAL)
            elif dimension == "datasets":
                row.append(" + ".join(names.get(d, d) for d in value.split("+")))
            else:
                row.append(value)
        row.append(SUPPRESSED if cell.value is None else f"{cell.value:,}")
        table.add_row(*row, style="bold" if cell.totalled else None)
    return table


def pivot_table(counts: Counts, names: Mapping[str, str] | None = None) -> Table:
    """A two-dimension table laid out as a grid: first dimension down, second across, totals."""
    if len(counts.dimensions) != 2:
        return counts_table(counts, names)
    names = names or {}
    down, across = counts.dimensions
    grid: dict[tuple[str | None, str | None], str] = {}
    rows: list[str | None] = []
    columns: list[str | None] = []
    for cell in counts.cells:
        r, c = cell.coordinate(down), cell.coordinate(across)
        grid[(r, c)] = SUPPRESSED if cell.value is None else f"{cell.value:,}"
        if r not in rows:
            rows.append(r)
        if c not in columns:
            columns.append(c)
    rows.sort(key=lambda v: v is None)
    columns.sort(key=lambda v: v is None)

    def label(dimension: str, value: str | None) -> str:
        if value is None:
            return TOTAL
        if dimension == "datasets":
            return " + ".join(names.get(d, d) for d in value.split("+"))
        return value

    table = Table(
        title=f"Children: {counts.query} ({counts.project_id})",
        caption=f"{SUPPRESSED} = withheld; {counts.rule}",
    )
    table.add_column(f"{down.replace('_', ' ')} \\ {across.replace('_', ' ')}")
    for c in columns:
        table.add_column(label(across, c), justify="right", style="bold" if c is None else None)
    for r in rows:
        table.add_row(
            label(down, r),
            *(grid.get((r, c), "") for c in columns),
            style="bold" if r is None else None,
        )
    return table
