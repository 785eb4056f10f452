"""The synthetic generator's CSVs rewritten as other systems export them.

Each function takes one organisation's CSV (UTF-8, comma, LF, as
``hublink.synthetic`` writes it) and writes the same rows the way a real
export arrives: Windows-1252 with CRLF, UTF-8 with a byte-order mark,
semicolon-delimited, an XLSX workbook, one full-name column, or FHIR R4
Patient resources as Bulk Data NDJSON. Synthetic people only: the NHS
numbers are the generator's, from the 999 test range.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path

import xlsxwriter

from node.fhir import NHS_NUMBER_SYSTEM


def read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def _cp1252_safe(text: str) -> str:
    """Letters Windows-1252 lacks (Welsh ŵ, ŷ) lose their accent; one with no plain base
    becomes '?', as Excel writes it; every other accented letter stays."""
    out = []
    for ch in text:
        try:
            ch.encode("cp1252")
            out.append(ch)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", ch)[0]
            # A letter with no plain base (Turkish dotless i) is written as Excel writes it.
            out.append(base if base.encode("cp1252", errors="replace") != b"?" else "?")
    return "".join(out)


def write_text(
    source: Path, target: Path, *, encoding: str, delimiter: str = ",", newline: str = "\n"
) -> Path:
    header, rows = read(source)
    with target.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator=newline)
        for row in [header, *rows]:
            writer.writerow([_cp1252_safe(c) if encoding == "cp1252" else c for c in row])
    return target


def write_xlsx(source: Path, target: Path, *, dob_column: str, sheet: str = "Children") -> Path:
    """A workbook whose first sheet is a cover note and whose ``sheet`` holds the rows, with
    the date of birth as a real date cell, as Excel users keep them."""
    header, rows = read(source)
    book = xlsxwriter.Workbook(str(target))
    book.add_worksheet("Notes").write(0, 0, "Export of referrals")
    table = book.add_worksheet(sheet)
    dates = book.add_format({"num_format": "dd/mm/yyyy"})
    table.write_row(0, 0, header)
    at = header.index(dob_column)
    for r, row in enumerate(rows, start=1):
        for c, cell in enumerate(row):
            if c == at and cell:
                day, month, year = (int(p) for p in cell.split("/"))
                table.write_datetime(r, c, date(year, month, day), dates)  # type: ignore[arg-type]
            else:
                table.write_string(r, c, cell)
    book.close()
    return target


def write_full_name(
    source: Path, target: Path, *, given: str, family: str, style: Callable[[int], str]
) -> Path:
    """The given and family columns replaced by one "Child Name" column; ``style(row)`` is
    "forename-first" or "surname-comma" for each row."""
    header, rows = read(source)
    gi, fi = header.index(given), header.index(family)
    keep = [i for i in range(len(header)) if i not in (gi, fi)]
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Child Name", *(header[i] for i in keep)])
        for n, row in enumerate(rows):
            if style(n) == "surname-comma" and row[fi]:
                name = f"{row[fi].upper()}, {row[gi]}"
            else:
                name = f"{row[gi]} {row[fi]}".strip()
            writer.writerow([name, *(row[i] for i in keep)])
    return target


_GENDER = {"F": "female", "M": "male"}


def write_fhir(source: Path, target: Path, *, id_column: str, columns: Mapping[str, str]) -> Path:
    """One UK Core Patient resource a line, from a layout with day-first dates and F/M codes."""
    header, rows = read(source)
    at = {name: header.index(column) for name, column in columns.items()}
    with target.open("w", encoding="utf-8") as handle:
        for row in rows:
            resource: dict[str, object] = {
                "resourceType": "Patient",
                "id": row[header.index(id_column)],
                "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
                "name": [
                    {"use": "usual", "given": ["Nickname"], "family": "Other"},
                    {
                        "use": "official",
                        "given": row[at["given_name"]].split(),
                        "family": row[at["family_name"]],
                    },
                ],
            }
            dob = row[at["date_of_birth"]]
            if dob:
                day, month, year = dob.split("/")
                resource["birthDate"] = f"{year}-{month}-{day}"
            if row[at["sex"]] in _GENDER:
                resource["gender"] = _GENDER[row[at["sex"]]]
            if row[at["postcode"]]:
                resource["address"] = [
                    {"use": "old", "postalCode": "ZZ99 3WZ"},
                    {"use": "home", "postalCode": row[at["postcode"]]},
                ]
            number = "".join(ch for ch in row[at["nhs_number"]] if ch.isdigit())
            if number:
                resource["identifier"] = [
                    {"system": "https://example.org/local-id", "value": "L1"},
                    {"system": NHS_NUMBER_SYSTEM, "value": number},
                ]
            handle.write(json.dumps(resource) + "\n")
    return target
