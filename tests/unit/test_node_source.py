"""node.source: reading an organisation's CSV export, with errors naming file, row and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.source import InputError, ReadOptions, SourceRow, read_rows

FIELDS = ("given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number")
COLUMNS = {"given_name": "Forename", "family_name": "Surname", "date_of_birth": "DOB"}


def write_csv(tmp_path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / "children.csv"
    path.write_bytes(text.encode(encoding))
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


def test_rows_come_keyed_by_linkage_field_with_their_row_numbers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "ChildRef,Forename,Surname,DOB,Notes\n"
        "HV-001,Amelia,Pryce,03/04/2021,first visit\n"
        "\n"
        "HV-002,Oliver,Jenkins,15/11/2020,\n",
    )

    rows = read(path)

    assert rows == [
        SourceRow(
            2,
            "HV-001",
            {"given_name": "Amelia", "family_name": "Pryce", "date_of_birth": "03/04/2021"},
        ),
        SourceRow(
            4,
            "HV-002",
            {"given_name": "Oliver", "family_name": "Jenkins", "date_of_birth": "15/11/2020"},
        ),
    ]


def test_header_names_are_matched_after_trimming_spaces(tmp_path: Path) -> None:
    path = write_csv(tmp_path, " ChildRef , Forename,Surname ,DOB\nHV-001,Isla,Morgan,\n")
    assert read(path)[0].values["given_name"] == "Isla"


def test_a_missing_column_names_the_file_and_the_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "ChildRef,Forename,DOB\nHV-001,Cai,09/01/2023\n")

    with pytest.raises(InputError) as caught:
        read(path)

    message = str(caught.value)
    assert message.startswith(f"{path}:")
    assert "column 'Surname' (for family_name) is missing" in message


def test_a_missing_id_column_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "Ref,Forename,Surname,DOB\nHV-001,Cai,Rowlands,09/01/2023\n")
    with pytest.raises(InputError, match="column 'ChildRef' \\(for local id\\) is missing"):
        read(path)


def test_a_field_the_schema_does_not_have_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "ChildRef,Forename\nHV-001,Cai\n")
    with pytest.raises(InputError, match="maps 'middle_name'"):
        list(
            read_rows(
                path, id_column="ChildRef", columns={"middle_name": "Forename"}, fields=FIELDS
            )
        )


def test_a_repeated_local_id_names_the_row(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "ChildRef,Forename,Surname,DOB\n"
        "HV-001,Freya,Hughes,30/06/2021\n"
        "HV-002,Noah,Evans,01/02/2022\n"
        "HV-001,Evie,Thomas,12/12/2020\n",
    )

    with pytest.raises(InputError) as caught:
        read(path)

    assert (caught.value.row, caught.value.field) == (4, "ChildRef")
    assert f"{path}, row 4, field ChildRef: this local id appears on an earlier row" == str(
        caught.value
    )


def test_an_empty_local_id_names_the_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "ChildRef,Forename,Surname,DOB\n  ,Freya,Hughes,30/06/2021\n")
    with pytest.raises(InputError, match="row 2, field ChildRef: the local id is empty"):
        read(path)


@pytest.mark.parametrize("row", ["HV-002,Noah,Evans", "HV-002,Noah,Evans,01/02/2022,extra"])
def test_a_row_with_the_wrong_number_of_cells_names_the_row(tmp_path: Path, row: str) -> None:
    path = write_csv(
        tmp_path, f"ChildRef,Forename,Surname,DOB\nHV-001,Freya,Hughes,30/06/2021\n{row}\n"
    )

    with pytest.raises(InputError) as caught:
        read(path)

    assert caught.value.row == 3
    assert "where the header has 4" in str(caught.value)


def test_undecodable_bytes_suggest_setting_input_encoding(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "ChildRef,Forename,Surname,DOB\nHV-001,Zoë,O'Brien,03/04/2021\n",
        encoding="cp1252",
    )

    with pytest.raises(InputError) as caught:
        read(path, encoding="utf-8")

    message = str(caught.value)
    assert message.startswith(f"{path}, row ")
    assert "bytes that are not utf-8" in message
    assert "input.encoding" in message
    assert "cp1252" in message


def test_undecodable_bytes_are_reported_at_their_row(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "ChildRef,Forename,Surname,DOB\n"
        "HV-001,Freya,Hughes,30/06/2021\n"
        "HV-002,Zoë,Evans,01/02/2022\n",
        encoding="cp1252",
    )

    with pytest.raises(InputError) as caught:
        read(path, encoding="utf-8")

    assert caught.value.row == 3


def test_the_same_cp1252_file_reads_when_input_encoding_says_so(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "ChildRef,Forename,Surname,DOB\nHV-001,Zoë,O'Brien,03/04/2021\n",
        encoding="cp1252",
    )
    (row,) = read(path, encoding="cp1252")
    assert (row.values["given_name"], row.values["family_name"]) == ("Zoë", "O'Brien")


def test_utf8_with_a_byte_order_mark_reads_fine(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "ChildRef,Forename,Surname,DOB\nHV-001,Siân,Lloyd-Davies,1/5/2022\n",
        encoding="utf-8-sig",
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    (row,) = read(path)

    assert row.local_id == "HV-001"  # the first header is ChildRef, not '\ufeffChildRef'
    assert row.values["given_name"] == "Siân"


def test_an_empty_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        read(write_csv(tmp_path, ""))


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the file"):
        read(tmp_path / "absent.csv")
