"""Reading an XLSX export's cells as text, for the same column mapping as a CSV.

python-calamine (Rust's calamine) is used rather than openpyxl: it reads a
sheet many times faster (openpyxl parses the XML in Python, cell by cell), it
is released often, where openpyxl's last release was in 2024, and it has
wheels for every Python hublink supports. A workbook has no text encoding,
so nothing here ever gives encoding advice.

Cells come back typed; each becomes the text a CSV export of the same sheet
would hold, so the normalisers see one form: a date cell becomes ISO
``2021-04-03`` (a date of birth's layout is then never in doubt), a whole
number stored as a float (an NHS number typed into a number cell) becomes its
digits without ``.0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

from python_calamine import CalamineError, CalamineWorkbook

from node.errors import NodeError


class WorkbookError(NodeError, ValueError):
    """The workbook or its sheet cannot be read; the message names which and why."""


def cell_text(value: object) -> str:
    """One cell as the text a CSV export of it would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time | timedelta):
        return str(value)
    return str(value)


def sheet_rows(path: Path, sheet: str = "") -> Iterator[tuple[int, list[str]]]:
    """Yield (row number as Excel shows it, cells as text) of one sheet, the first if unnamed.

    Leading empty rows are skipped, so the first row yielded is the header.
    """
    try:
        book = CalamineWorkbook.from_path(str(path))
    except (CalamineError, OSError) as exc:
        raise WorkbookError(f"cannot read it as an XLSX workbook ({type(exc).__name__})") from None
    try:
        names = list(book.sheet_names)
        if sheet and sheet not in names:
            raise WorkbookError(
                f"the workbook has no sheet {sheet!r} (input.sheet); its sheets: {', '.join(names)}"
            )
        if not names:
            raise WorkbookError("the workbook has no sheets")
        chosen = book.get_sheet_by_name(sheet or names[0])
        started = False
        for number, cells in enumerate(chosen.iter_rows(), start=1):
            texts = [cell_text(cell) for cell in cells]
            if not started and not any(t.strip() for t in texts):
                continue
            started = True
            yield number, texts
    finally:
        book.close()
