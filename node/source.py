"""Reading an organisation's records, with errors that name file, row and field.

An export is a CSV (any of the encodings and delimiters ``node.detect``
tells apart), an XLSX workbook (``node.xlsx``) or a FHIR Bulk Data NDJSON
file of Patient resources (``node.fhir``); each is read into the same
header-and-cells form, so everything after reading is the same for all.
The node config maps each linkage field (``given_name``, ``date_of_birth`` …)
to a column of the organisation's export, because every system names its
columns differently. A ``full_name`` column is split into given and family
name (``node.names``); a field the node derives itself is never mapped. A
column the config names but the file lacks stops the run before anything is
read. A bad row stops it with the row number, unless
the caller passes ``on_bad``: then the row is reported there and skipped, so
a node can list bad rows in a rejects file and go on (see ``node.intake``).
Rows can also carry extra named columns (a consent flag, a closed date) that
consent rules read but that are never hashed.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

from node import fhir
from node.derived import DERIVATIONS
from node.detect import UnknownEncoding, detect_delimiter, detect_encoding
from node.errors import NodeError
from node.names import split_full_name
from node.xlsx import WorkbookError, sheet_rows


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


FORMATS: Final[tuple[str, ...]] = ("auto", "csv", "xlsx", "fhir-ndjson")
"""Values of ``input.format``; "auto" goes by the file's first bytes, then its suffix."""

FULL_NAME: Final[str] = "full_name"
"""The mapping key of a column holding whole names, split into given and family name."""

_NAME_FIELDS: Final[tuple[str, str]] = ("given_name", "family_name")


@dataclass(frozen=True)
class ReadOptions:
    """How to read the export (the node config's ``[input]`` beside its column mapping)."""

    format: str = "auto"
    encoding: str = "auto"
    """A Python codec name, or "auto" (or empty) to detect it (``node.detect``)."""
    delimiter: str = ""
    """One character, or empty to detect it among comma, semicolon, tab and pipe."""
    sheet: str = ""
    """XLSX only: the sheet to read; empty for the first."""


def file_format(path: Path, options: ReadOptions) -> str:
    """ "csv", "xlsx" or "fhir-ndjson": as configured, or told from the file itself."""
    if options.format not in FORMATS:
        raise InputError(
            path, f"unknown input.format {options.format!r}; use one of: {', '.join(FORMATS)}"
        )
    if options.format != "auto":
        return options.format
    try:
        with path.open("rb") as handle:
            head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as exc:
        raise InputError(path, f"cannot read the file: {exc.strerror}") from None
    suffix = path.suffix.lower()
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")) or suffix in (".xlsx", ".xls"):
        return "xlsx"
    if head.startswith(b"{") or suffix in (".ndjson", ".jsonl"):
        return "fhir-ndjson"
    return "csv"


_Cells = Generator[tuple[int, "list[str] | InputError"], None, None]


def _open(path: Path, encoding: str) -> TextIO:
    try:
        # surrogateescape keeps undecodable bytes as markers, so the row and field
        # that hold them can be named instead of the block the decoder was reading.
        return path.open(newline="", encoding=encoding, errors="surrogateescape")
    except LookupError:
        raise InputError(path, f"unknown input.encoding {encoding!r}") from None
    except OSError as exc:
        raise InputError(path, f"cannot read the file: {exc.strerror}") from None


def _encoding(path: Path, options: ReadOptions) -> str:
    if options.encoding not in ("", "auto"):
        return options.encoding
    try:
        return detect_encoding(path)
    except UnknownEncoding as exc:
        raise InputError(path, str(exc)) from None
    except OSError as exc:
        raise InputError(path, f"cannot read the file: {exc.strerror}") from None


def _csv_cells(path: Path, options: ReadOptions) -> _Cells:
    encoding = _encoding(path, options)
    with _open(path, encoding) as handle:
        delimiter = options.delimiter or detect_delimiter(handle.read(1 << 16))
        handle.seek(0)
        if len(delimiter) != 1:
            raise InputError(path, f"input.delimiter must be one character, not {delimiter!r}")
        reader = csv.reader(handle, delimiter=delimiter)
        header: list[str] | None = None
        row_number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row_number += 1
                if header is None:
                    raise InputError(path, f"cannot read the header: {exc}", row=1) from None
                yield row_number, InputError(path, f"cannot read the row: {exc}", row=row_number)
                continue
            row_number += 1
            if header is None:
                if cells:
                    cells[0] = cells[0].lstrip("\ufeff")
                header = cells
            _check_decoded(path, cells, row_number, header, encoding)
            yield row_number, cells


def _xlsx_cells(path: Path, options: ReadOptions) -> _Cells:
    try:
        yield from sheet_rows(path, options.sheet)
    except WorkbookError as exc:
        raise InputError(path, str(exc)) from None


def _fhir_cells(path: Path) -> _Cells:
    yield 0, list(fhir.COLUMNS)
    try:
        for number, cells in fhir.resource_rows(path):
            if isinstance(cells, fhir.ResourceError):
                yield number, InputError(path, f"the line {cells}", row=number)
            else:
                yield number, cells
    except OSError as exc:
        raise InputError(path, f"cannot read the file: {exc.strerror}") from None


def _cells(path: Path, options: ReadOptions) -> _Cells:
    """(row number, cells or the row's error) of the export, the header first."""
    kind = file_format(path, options)
    if kind == "xlsx":
        return _xlsx_cells(path, options)
    if kind == "fhir-ndjson":
        return _fhir_cells(path)
    return _csv_cells(path, options)


def read_header(path: Path, *, options: ReadOptions | None = None) -> list[str]:
    """The export's header row (stripped names), so columns can be checked before reading."""
    with closing(_cells(path, options or ReadOptions())) as cells:
        first = next(cells, None)
    if first is None:
        raise InputError(path, "the file is empty (no header row)")
    header = first[1]
    if isinstance(header, InputError):
        raise header
    return [name.strip() for name in header]


def default_columns(path: Path, options: ReadOptions) -> Mapping[str, str]:
    """The mapping to use when the config maps no columns: FHIR's standard one, else none."""
    return fhir.DEFAULT_COLUMNS if file_format(path, options) == "fhir-ndjson" else {}


def check_mapping(path: Path, columns: Mapping[str, str], fields: Sequence[str]) -> None:
    """Refuse a column mapping that would hash the wrong thing, or nothing, for a field."""
    for name in columns:
        if name in DERIVATIONS:
            source = DERIVATIONS[name].source
            raise InputError(
                path,
                f"the node config maps {name!r}, which the node derives from {source!r} "
                f"itself and never reads; map {source!r} instead",
            )
    if FULL_NAME in columns:
        if not set(_NAME_FIELDS) & set(fields):
            raise InputError(
                path, "the node config maps 'full_name' but the linkage schema has no names"
            )
        both = sorted(set(_NAME_FIELDS) & set(columns))
        if both:
            raise InputError(
                path,
                f"the node config maps both 'full_name' and {both[0]!r}; map whole names as "
                "'full_name' or the parts as 'given_name' and 'family_name', not both",
            )
    unknown = sorted(set(columns) - set(fields) - {FULL_NAME})
    if unknown:
        raise InputError(
            path,
            f"the node config maps {unknown[0]!r}, which the linkage schema "
            f"does not have (its fields: {', '.join(fields)})",
        )


def mapping_warnings(columns: Mapping[str, str], fields: Sequence[str]) -> list[str]:
    """Sentences about a mapping that works but will link worse than it could."""
    wanted = [f for f in _NAME_FIELDS if f in fields]
    if len(wanted) < 2 or FULL_NAME in columns:
        return []
    mapped = [f for f in wanted if f in columns]
    if len(mapped) != 1:
        return []
    other = next(f for f in wanted if f not in columns)
    return [
        f"only {mapped[0]} is mapped (column {columns[mapped[0]]!r}), not {other}: linkage "
        f"quality will fall, since every record then lacks a {other.replace('_', ' ')}. If "
        f"that column holds whole names, map it as full_name instead"
    ]


def local_ids(path: Path, id_column: str, options: ReadOptions | None = None) -> frozenset[str]:
    """Every non-empty local id in the export, whatever its other cells hold (any format the
    reader takes: CSV in any detected encoding, XLSX, FHIR)."""
    with closing(_cells(path, options or ReadOptions())) as cells:
        first = next(cells, None)
        if first is None or isinstance(first[1], InputError):
            return frozenset()
        header = [name.strip() for name in first[1]]
        if id_column not in header:
            return frozenset()
        at = header.index(id_column)
        return frozenset(
            row[at].strip()
            for _, row in cells
            if not isinstance(row, InputError) and len(row) > at and row[at].strip()
        )


def read_rows(
    path: Path,
    *,
    id_column: str,
    columns: Mapping[str, str],
    fields: Sequence[str],
    options: ReadOptions | None = None,
    extra_columns: Sequence[str] = (),
    on_bad: BadRowHandler | None = None,
) -> Iterator[SourceRow]:
    """Yield the rows of ``path`` with values keyed by linkage field.

    ``columns`` maps linkage field to column; fields of the schema it does
    not map are absent from the file (a childcare provider holds no NHS
    numbers) and come through as empty. A ``full_name`` column fills
    ``given_name`` and ``family_name``. A mapping ``check_mapping`` refuses,
    a missing column, a repeated or empty local id, or a row with the wrong
    number of cells is an ``InputError``; with ``on_bad``, a bad row's error
    goes there and the row is skipped. Header problems and bytes the
    encoding cannot decode always raise: a row is never left out because of
    how the file was decoded. ``extra_columns`` must be in the header too.
    """
    check_mapping(path, columns, fields)
    seen: set[str] = set()

    def bad(error: InputError) -> None:
        if on_bad is None:
            raise error
        on_bad(error)

    with closing(_cells(path, options or ReadOptions())) as cells:
        first = next(cells, None)
        if first is None:
            raise InputError(path, "the file is empty (no header row)")
        if isinstance(first[1], InputError):
            raise first[1]
        header = first[1]
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
        for row_number, row in cells:
            if isinstance(row, InputError):
                bad(row)
                continue
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                bad(
                    InputError(
                        path,
                        f"has {len(row)} cells where the header has {len(header)}",
                        row=row_number,
                    )
                )
                continue
            local_id = row[id_at].strip()
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
            values = {f: row[i] for f, i in wanted.items()}
            if FULL_NAME in values:
                values["given_name"], values["family_name"] = split_full_name(values.pop(FULL_NAME))
            yield SourceRow(row_number, local_id, values, {c: row[i] for c, i in extra_at.items()})


def _check_decoded(
    path: Path, cells: Sequence[str], row: int, header: Sequence[str] | None, encoding: str
) -> None:
    """Stop at bytes the encoding cannot decode, naming the row, column and encoding to set."""
    for position, cell in enumerate(cells):
        if any("\udc80" <= ch <= "\udcff" for ch in cell):
            column = header[position] if header and position < len(header) else None
            try:
                advice = f"set input.encoding = {detect_encoding(path)!r}, or leave it unset"
            except (UnknownEncoding, OSError):
                advice = "set input.encoding to the file's encoding"
            raise InputError(
                path,
                f"holds bytes that are not {encoding}; {advice}",
                row=row,
                field=f"column {column!r}" if column else None,
            )
