"""Reading an organisation's records from CSV, with errors that name file, row and field.

The node config maps each linkage field (``given_name``, ``date_of_birth`` …)
to a column of the organisation's export, because every system names its
columns differently. A column the config names but the file lacks stops the
run before anything is read. A bad row stops it with the row number, unless
the caller passes ``on_bad``: then the row is reported there and skipped, so
a node can list bad rows in a rejects file and go on (see ``node.intake``).
Rows can also carry extra named columns (a consent flag, a closed date) that
consent rules read but that are never hashed.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from node.errors import NodeError


class InputError(NodeError, ValueError):
    """Bad input: the message names the file and, where there is one, the row and field."""

    def __init__(
        self, path: Path, message: str, *, row: int | None = None, field: str | None = None
    ) -> None:
        self.path = path
        self.reason = message
        self.row = row
        self.field = field
        where = str(path)
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class SourceRow:
    """One input row: its row number in the file (header is row 1), local id and raw values.

    ``values`` is keyed by linkage field; ``extra`` by column name, holding the
    columns the caller asked for beyond the linkage fields.
    """

    row: int
    local_id: str
    values: Mapping[str, str]
    extra: Mapping[str, str] = field(default_factory=dict)


BadRowHandler = Callable[[InputError], None]
"""Called with the error of a row that cannot be read, instead of raising it."""


def _open(path: Path, encoding: str) -> TextIO:
    try:
        # surrogateescape keeps undecodable bytes as markers, so the row and field
        # that hold them can be named instead of the block the decoder was reading.
        return path.open(newline="", encoding=encoding, errors="surrogateescape")
    except LookupError:
        raise InputError(path, f"unknown input.encoding {encoding!r}") from None
    except OSError as exc:
        raise InputError(path, f"cannot read the file: {exc.strerror}") from None


def read_header(path: Path, *, encoding: str = "utf-8-sig") -> list[str]:
    """The file's header row (stripped names), so columns can be checked before reading."""
    handle = _open(path, encoding)
    with handle:
        try:
            header = next(csv.reader(handle), None)
        except csv.Error as exc:
            raise InputError(path, f"cannot read the header: {exc}", row=1) from None
    if header is None:
        raise InputError(path, "the file is empty (no header row)")
    _check_decoded(path, header, 1, None, encoding)
    return [name.strip() for name in header]


def read_rows(
    path: Path,
    *,
    id_column: str,
    columns: Mapping[str, str],
    fields: Sequence[str],
    encoding: str = "utf-8-sig",
    extra_columns: Sequence[str] = (),
    on_bad: BadRowHandler | None = None,
) -> Iterator[SourceRow]:
    """Yield the rows of ``path`` with values keyed by linkage field.

    ``columns`` maps linkage field to CSV column; fields of the schema it does
    not map are absent from the file (a childcare provider holds no NHS
    numbers) and come through as empty. A mapped field the schema does not
    know, a missing column, a repeated or empty local id, or a row with the
    wrong number of cells is an ``InputError``; with ``on_bad``, a bad row's
    error goes there and the row is skipped (header problems always raise).
    ``extra_columns`` (column names) must be in the header too.
    """
    unknown = sorted(set(columns) - set(fields))
    if unknown:
        raise InputError(
            path,
            f"the node config maps {unknown[0]!r}, which the linkage schema "
            f"does not have (its fields: {', '.join(fields)})",
        )
    handle = _open(path, encoding)
    seen: set[str] = set()

    def bad(error: InputError) -> None:
        if on_bad is None:
            raise error
        on_bad(error)

    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise InputError(path, f"cannot read the header: {exc}", row=1) from None
        if header is None:
            raise InputError(path, "the file is empty (no header row)")
        _check_decoded(path, header, 1, None, encoding)
        position = {name.strip(): i for i, name in enumerate(header)}
        needed = {"local id": id_column, **columns}
        needed.update({f"column {c!r}": c for c in extra_columns})
        for field_name, column in needed.items():
            if column not in position:
                raise InputError(
                    path,
                    f"column {column!r} (for {field_name}) is missing; the "
                    f"header has: {', '.join(header)}",
                )
        wanted = {f: position[c] for f, c in columns.items()}
        id_at = position[id_column]
        extra_at = {c: position[c] for c in extra_columns}
        row_number = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row_number += 1
                bad(InputError(path, f"cannot read the row: {exc}", row=row_number))
                continue
            row_number += 1
            if not cells or all(not c.strip() for c in cells):
                continue
            try:
                _check_decoded(path, cells, row_number, header, encoding)
            except InputError as exc:
                bad(exc)
                continue
            if len(cells) != len(header):
                bad(
                    InputError(
                        path,
                        f"has {len(cells)} cells where the header has {len(header)}",
                        row=row_number,
                    )
                )
                continue
            local_id = cells[id_at].strip()
            if not local_id:
                bad(InputError(path, "the local id is empty", row=row_number, field=id_column))
                continue
            if local_id in seen:
                bad(
                    InputError(
                        path,
                        "this local id appears on an earlier row",
                        row=row_number,
                        field=id_column,
                    )
                )
                continue
            seen.add(local_id)
            yield SourceRow(
                row_number,
                local_id,
                {f: cells[i] for f, i in wanted.items()},
                {c: cells[i] for c, i in extra_at.items()},
            )


def _check_decoded(
    path: Path, cells: Sequence[str], row: int, header: Sequence[str] | None, encoding: str
) -> None:
    """Name the row and column of bytes the encoding could not decode."""
    for position, cell in enumerate(cells):
        if any("\udc80" <= ch <= "\udcff" for ch in cell):
            column = header[position] if header and position < len(header) else None
            raise InputError(
                path,
                f"holds bytes that are not {encoding}; set input.encoding "
                "(e.g. 'cp1252' for Windows exports)",
                row=row,
                field=f"column {column!r}" if column else None,
            )
