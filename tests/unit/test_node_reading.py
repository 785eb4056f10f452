"""node.detect, node.xlsx, node.fhir, node.source: every everyday export read, or a named stop."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st

from node.detect import UnknownEncoding, detect_delimiter, detect_encoding
from node.fhir import NHS_NUMBER_SYSTEM, patient_cells
from node.source import InputError, ReadOptions, SourceRow, read_header, read_rows
from node.xlsx import cell_text

FIELDS = ("given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number")
COLUMNS = {"given_name": "Forename", "family_name": "Surname", "date_of_birth": "DOB"}
ROWS = [("HV-1", "Siân", "Jones", "03/04/2021"), ("HV-2", "José", "Núñez", "1/5/2022"),
        ("HV-3", "Zoë", "O'Brien", "30/06/2021")]  # fmt: skip


def write(tmp_path: Path, *, encoding: str, delimiter: str = ",", newline: str = "\n") -> Path:
    lines = [delimiter.join(("ChildRef", "Forename", "Surname", "DOB"))]
    lines += [delimiter.join(row) for row in ROWS]
    path = tmp_path / "children.csv"
    path.write_bytes((newline.join(lines) + newline).encode(encoding))
    return path


def read(path: Path, **options: str) -> list[SourceRow]:
    return list(
        read_rows(
            path,
            id_column="ChildRef",
            columns=COLUMNS,
            fields=FIELDS,
            options=ReadOptions(**options),
        )
    )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_every_encoding_and_line_ending_reads_every_row_without_being_told(
    tmp_path: Path, encoding: str, newline: str
) -> None:
    rows = read(write(tmp_path, encoding=encoding, newline=newline))
    assert [(r.values["given_name"], r.values["family_name"]) for r in rows] == [
        (given, family) for _, given, family, _ in ROWS
    ]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_detected(tmp_path: Path, delimiter: str) -> None:
    rows = read(write(tmp_path, encoding="utf-8", delimiter=delimiter))
    assert [r.local_id for r in rows] == ["HV-1", "HV-2", "HV-3"]


def test_a_semicolon_file_with_commas_inside_quoted_cells() -> None:
    sample = 'Ref;Name;Address\n1;"Jones, Siân";"1 High St, Cardiff"\n2;Ann;"2 Low Rd, Bath"\n'
    assert detect_delimiter(sample) == ";"


@given(st.lists(st.text(alphabet="abcXYZ '", min_size=1, max_size=6), min_size=2, max_size=5))
def test_the_delimiter_of_a_consistent_table_is_found(cells: list[str]) -> None:
    for delimiter in ",;\t|":
        line = delimiter.join(cells)
        assert detect_delimiter("\n".join([line] * 4) + "\n") == delimiter


def test_a_file_in_another_code_page_stops_naming_the_encoding_to_set(tmp_path: Path) -> None:
    path = tmp_path / "polish.csv"
    path.write_bytes("ChildRef,Forename\n1,Łukasz Świątek\n".encode("cp1250"))
    with pytest.raises(UnknownEncoding, match=r"set input\.encoding"):
        detect_encoding(path)
    with pytest.raises(InputError) as caught:
        read_header(path)
    assert "input.encoding" in str(caught.value) and "\n" not in str(caught.value)


def test_a_wrong_explicit_encoding_stops_the_run_instead_of_dropping_rows(tmp_path: Path) -> None:
    path = write(tmp_path, encoding="cp1252")
    with pytest.raises(InputError) as caught:
        read(path, encoding="utf-8")
    assert caught.value.row == 2
    assert "set input.encoding = 'cp1252'" in str(caught.value)
    assert "Siân" not in str(caught.value)


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown input\.format 'parquet'"):
        read(write(tmp_path, encoding="utf-8"), format="parquet")


# --- XLSX -----------------------------------------------------------------------------------


def workbook(tmp_path: Path) -> Path:
    path = tmp_path / "export.xlsx"
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("Cover").write(0, 0, "Referrals, March")
    sheet = book.add_worksheet("Children")
    dates = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet.write_row(2, 0, ["ChildRef", "Forename", "Surname", "DOB", "NHS"])  # two empty rows first
    sheet.write_row(3, 0, ["HV-1", "Siân", "Jones"])
    sheet.write_datetime(3, 3, datetime(2021, 4, 3), dates)
    sheet.write_number(3, 4, 9434765919)
    sheet.write_row(4, 0, ["HV-2", "Zoë", "O'Brien", "30/06/2021", ""])
    book.close()
    return path


def test_an_xlsx_sheet_reads_through_the_same_mapping(tmp_path: Path) -> None:
    path = workbook(tmp_path)
    columns = {**COLUMNS, "nhs_number": "NHS"}
    rows = list(
        read_rows(
            path, id_column="ChildRef", columns=columns, fields=FIELDS,
            options=ReadOptions(sheet="Children"),
        )
    )  # fmt: skip
    assert [(r.row, r.local_id) for r in rows] == [(4, "HV-1"), (5, "HV-2")]
    assert rows[0].values == {
        "given_name": "Siân",
        "family_name": "Jones",
        "date_of_birth": "2021-04-03",
        "nhs_number": "9434765919",
    }


def test_a_missing_sheet_is_named_and_xlsx_gets_no_encoding_advice(tmp_path: Path) -> None:
    path = workbook(tmp_path)
    with pytest.raises(InputError) as caught:
        read_header(path, options=ReadOptions(sheet="Kids"))
    assert "no sheet 'Kids'" in str(caught.value) and "Cover, Children" in str(caught.value)
    with pytest.raises(InputError) as caught:
        read(path)  # the first sheet is the cover note: its header lacks the columns
    assert "encoding" not in str(caught.value)


def test_a_broken_workbook_is_an_input_error_without_encoding_advice(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError) as caught:
        read_header(path)
    assert "XLSX" in str(caught.value) and "encoding" not in str(caught.value)


def test_cells_become_the_text_a_csv_would_hold() -> None:
    assert cell_text(9434765919.0) == "9434765919"
    assert cell_text(date(2021, 4, 3)) == "2021-04-03"
    assert cell_text(datetime(2021, 4, 3)) == "2021-04-03"
    assert cell_text(2.5) == "2.5"
    assert cell_text(None) == "" and cell_text(True) == "TRUE"


# --- FHIR -----------------------------------------------------------------------------------


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [
        {"use": "old", "family": "Before", "given": ["Old"]},
        {"use": "official", "family": "Jones", "given": ["Siân", "Mair"]},
    ],
    "birthDate": "2021-04-03",
    "gender": "female",
    "address": [
        {"use": "home", "postalCode": "CF99 1AA", "period": {"end": "2022-01-01"}},
        {"use": "home", "postalCode": "CF10 1AA"},
    ],
    "identifier": [
        {"system": "https://example.org/mrn", "value": "X1"},
        {"system": NHS_NUMBER_SYSTEM, "value": "9434765919"},
    ],
}


def test_a_patient_resource_becomes_cells_preferring_official_and_current() -> None:
    assert patient_cells(PATIENT) == [
        "p1", "Siân Mair", "Jones", "2021-04-03", "female", "CF10 1AA", "9434765919",
    ]  # fmt: skip
    assert patient_cells({"resourceType": "Patient"}) == ["", "", "", "", "", "", ""]


def test_an_ndjson_export_reads_with_the_standard_mapping_and_names_bad_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "Patient.ndjson"
    lines = [json.dumps(PATIENT), "", "{not json", json.dumps({"resourceType": "Observation"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad: list[InputError] = []
    rows = list(
        read_rows(
            path, id_column="id", columns={"given_name": "name.given", "nhs_number":
            "identifier.nhs-number"}, fields=FIELDS, on_bad=bad.append,
        )
    )  # fmt: skip
    assert [(r.row, r.local_id, r.values["given_name"]) for r in rows] == [(1, "p1", "Siân Mair")]
    assert [(e.row, e.reason) for e in bad] == [
        (3, "the line is not a JSON resource"),
        (4, "the line holds a Observation resource, not a Patient"),
    ]


# --- mapping --------------------------------------------------------------------------------


def test_mapping_a_derived_field_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, encoding="utf-8")
    with pytest.raises(InputError, match=r"derives from 'given_name'.*map 'given_name' instead"):
        list(
            read_rows(
                path, id_column="ChildRef", columns={"given_name_canonical": "Forename"},
                fields=(*FIELDS, "given_name_canonical"),
            )
        )  # fmt: skip


def test_a_full_name_column_fills_given_and_family_name(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text('Ref,Name\n1,Rhys ap Gwilym\n2,"JONES, Siân Mair"\n', encoding="utf-8")
    rows = list(read_rows(path, id_column="Ref", columns={"full_name": "Name"}, fields=FIELDS))
    assert [(r.values["given_name"], r.values["family_name"]) for r in rows] == [
        ("Rhys", "ap Gwilym"),
        ("Siân Mair", "JONES"),
    ]
    with pytest.raises(InputError, match="both 'full_name' and 'given_name'"):
        list(
            read_rows(
                path, id_column="Ref", columns={"full_name": "Name", "given_name": "Name"},
                fields=FIELDS,
            )
        )  # fmt: skip
