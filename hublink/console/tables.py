"""Released count tables laid out for pages and downloads: grids, CSV and XLSX.

Downloads hold exactly what the coordinator released: one row per cell, in
the order it sent them, with the same columns ``hublink analyst counts
--format csv`` writes (``hublink.reports.counts.counts_rows``), withheld
cells empty and flagged. Nothing is recomputed: a total is the coordinator's
protected total, never a sum of protected cells.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass

from openpyxl import Workbook

from hublink.clients import Counts
from hublink.clients.analyst import TimeSeries
from hublink.reports.counts import TOTAL, counts_rows

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet run a cell as a formula (OWASP's list)."""


def label(dimension: str, value: str | None, names: Mapping[str, str]) -> str:
    """A coordinate as people read it: display names joined with "and", "Total" for a total."""
    if value is None:
        return TOTAL
    if dimension == "datasets":
        return " and ".join(names.get(d, d) for d in value.split("+"))
    return value


def heading(dimension: str) -> str:
    return "Services" if dimension == "datasets" else dimension.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Grid:
    """A two-dimension table: row labels down, column labels across, cells (None = withheld)."""

    down: str
    across: str
    rows: list[str | None]
    columns: list[str | None]
    cells: dict[tuple[str | None, str | None], int | None]

    def value(self, row: str | None, column: str | None) -> tuple[bool, int | None]:
        """(present, value): absent cells are blank, withheld ones present with None."""
        key = (row, column)
        return (key in self.cells, self.cells.get(key))


def grid(counts: Counts) -> Grid | None:
    """The table as a grid when it has exactly two dimensions; totals last."""
    if len(counts.dimensions) != 2:
        return None
    down, across = counts.dimensions
    rows: list[str | None] = []
    columns: list[str | None] = []
    cells: dict[tuple[str | None, str | None], int | None] = {}
    for cell in counts.cells:
        r, c = cell.coordinate(down), cell.coordinate(across)
        cells[(r, c)] = cell.value
        if r not in rows:
            rows.append(r)
        if c not in columns:
            columns.append(c)
    rows.sort(key=lambda v: (v is None, v or ""))
    columns.sort(key=lambda v: (v is None, v or ""))
    return Grid(down, across, rows, columns, cells)


def _safe(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_bytes(counts: Counts) -> bytes:
    """The released table as CSV (UTF-8), one row per cell as the coordinator sent it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in counts_rows(counts):
        writer.writerow([_safe(v) for v in row])
    return buffer.getvalue().encode("utf-8")


SERIES_COLUMNS = ["date", "run_id", "label", "count", "suppressed"]
"""The series download's columns: one row per released cell, as ``csv_bytes`` does for tables.

``label`` is the coordinator's: a combination of services ("a+b", short names),
or "new" / "left" since the previous release.
"""


def series_rows(series: TimeSeries) -> list[list[str]]:
    """Every cell of every release, oldest first, in the order the coordinator sent them."""
    rows = [SERIES_COLUMNS]
    for release in series.releases:
        for cell in release.cells:
            rows.append(
                [
                    release.date,
                    release.run_id,
                    cell.label,
                    "" if cell.value is None else str(cell.value),
                    "true" if cell.value is None else "false",
                ]
            )
    return rows


def series_csv_bytes(series: TimeSeries) -> bytes:
    """The released series as CSV (UTF-8); a withheld count is empty and flagged, never 0."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in series_rows(series):
        writer.writerow([_safe(v) for v in row])
    return buffer.getvalue().encode("utf-8")


def xlsx_bytes(counts: Counts) -> bytes:
    """The same rows as a workbook: counts as numbers, withheld ones blank; a sheet of caveats."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "counts"
    for r, row in enumerate(counts_rows(counts), start=1):
        for c, value in enumerate(row, start=1):
            is_count = r > 1 and c == len(row) - 1
            cell = sheet.cell(row=r, column=c)
            if is_count and value:
                cell.value = int(value)
            elif value:
                cell.value = value
                cell.data_type = "s"  # never a formula, whatever the text begins with
    about = book.create_sheet("about")
    for r, (name, value) in enumerate(
        (
            ("project", counts.project_id),
            ("run", counts.run_id),
            ("query", counts.query),
            ("disclosure rule", counts.rule),
            ("withheld cells", "count empty and suppressed true: too few children to release"),
        ),
        start=1,
    ):
        for c, text in enumerate((name, value), start=1):
            cell = about.cell(row=r, column=c)
            cell.value = text
            cell.data_type = "s"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
