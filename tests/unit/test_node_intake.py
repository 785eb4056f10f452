"""Reading a node's input: rejects file, the bad-share stop, encodings, and consent decisions."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hublink.config import ConfigError, InputSection, NodeConfig, TlsSection
from hublink.spec import LinkageSpec
from node.intake import IncludedCheck, InputChanged, consented_rows, take_in
from node.policy_file import PolicyError
from node.prepare import NO_IDENTIFIER, RowError, normalise_row, normalisers
from node.source import InputError

FIELDS = LinkageSpec.default().all_fields
COLUMNS = {
    "given_name": "Forename",
    "family_name": "Surname",
    "date_of_birth": "DOB",
    "postcode": "Postcode",
    "nhs_number": "NHS",
}
HEADER = "Ref,Forename,Surname,DOB,Postcode,NHS,Consent,Closed"


def good_row(n: int, *, dob: str = "03/04/2022", consent: str = "Y", closed: str = "") -> str:
    return f"R{n},Amelia,Jones,{dob},CF10 1AA,,{consent},{closed}"


def config(tmp_path: Path, path: Path, **extra: object) -> NodeConfig:
    tls = TlsSection(tmp_path / "ca.pem", tmp_path / "n.pem", tmp_path / "n.key")
    encoding = str(extra.pop("encoding", "utf-8-sig"))
    return NodeConfig(
        coordinator="localhost:1",
        project="p",
        schema=tmp_path / "schema.json",
        input=InputSection(path=path, id_column="Ref", columns=COLUMNS, encoding=encoding),
        tls=tls,
        state_dir=tmp_path / "state",
        **extra,  # type: ignore[arg-type]
    )


def run(cfg: NodeConfig, **kwargs: object):
    return take_in(cfg, FIELDS, normalisers(), **kwargs)  # type: ignore[arg-type]


def write_csv(tmp_path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path = tmp_path / "in.csv"
    path.write_bytes(("\n".join([HEADER, *lines]) + "\n").encode(encoding))
    return path


def rejects(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_bad_rows_go_to_the_rejects_file_without_their_values(tmp_path):
    lines = [good_row(n) for n in range(100)]
    lines[10] = good_row(10, dob="31/02/2022")  # impossible date: still sent, DOB missing
    lines[20] = "R20,Amelia,Jones"  # wrong number of cells: row 22
    lines[30] = good_row(5)  # repeated local id: row 32
    lines[40] = "R40,Unknown,,31/02/2022,ZZ99 3VZ,,Y,"  # nothing usable: row 42
    intake = run(config(tmp_path, write_csv(tmp_path, lines)))
    assert intake.rows == 100
    assert len(intake.prepared) == 97
    listed = rejects(tmp_path / "state" / "rejects.csv")
    assert [(r["row"], r["field"]) for r in listed] == [("22", ""), ("32", "Ref"), ("42", "")]
    assert "cells" in listed[0]["reason"]
    assert "no usable identifier" in listed[2]["reason"]
    text = (tmp_path / "state" / "rejects.csv").read_text()
    assert "31/02/2022" not in text and "Jones" not in text


def test_an_impossible_date_of_birth_is_missing_and_counted_not_a_lost_record(tmp_path):
    lines = [good_row(n) for n in range(10)]
    lines[3] = good_row(3, dob="31/02/2022")
    lines[4] = good_row(4, dob="01/01/2099")
    intake = run(config(tmp_path, write_csv(tmp_path, lines)))
    by_id = {r.local_id: r.values for r in intake.prepared}
    assert len(by_id) == 10 and not intake.rejects
    assert by_id["R3"][:2] == ("amelia", "jones") and by_id["R3"][2] == ""
    dob = next(c for c in intake.field_counts if c.field == "date_of_birth")
    assert (dob.column, dob.invalid, dob.blank) == ("DOB", 2, 0)
    assert dict(dob.invalid_reasons) == {
        "date is in the future": 1,
        "impossible calendar date": 1,
    }
    assert any("date_of_birth: 2 values are invalid" in w for w in intake.warnings)
    assert not any("31/02/2022" in w for w in intake.warnings)


def test_the_report_counts_blank_placeholder_and_invalid_values_per_column(tmp_path):
    lines = [
        "R1,Amelia,Jones,03/04/2022,CF10 1AA,943 476 5919,Y,",
        "R2,UNKNOWN,Jones,03/04/2022,ZZ99 3VZ,0000000000,Y,",
        "R3,Amelia,,03/04/2022,CF10,9434765918,Y,",
    ]
    intake = run(config(tmp_path, write_csv(tmp_path, lines)))
    counts = {c.field: (c.blank, c.placeholder, c.invalid) for c in intake.field_counts}
    assert counts["given_name"] == (0, 1, 0)
    assert counts["family_name"] == (1, 0, 0)
    assert counts["postcode"] == (0, 1, 1)
    assert counts["nhs_number"] == (0, 1, 1)
    assert len(intake.prepared) == 3


def test_more_than_the_allowed_share_of_bad_rows_stops_the_run(tmp_path):
    lines = [good_row(n) for n in range(20)]
    lines[2] = "R2,Unknown,,31/02/2022,,,Y,"  # row 4: nothing left to link on
    lines[7] = "R7,,,not a date,,,Y,"
    with pytest.raises(InputError) as caught:
        run(config(tmp_path, write_csv(tmp_path, lines)))  # 2 of 20 = 10% > 5%
    message = str(caught.value)
    assert "in.csv, row 4: no usable identifier" in message
    assert "2 of 20 rows" in message and "rejects.csv" in message
    assert len(rejects(tmp_path / "state" / "rejects.csv")) == 2
    # The same file passes when the organisation allows a larger share.
    assert run(config(tmp_path, write_csv(tmp_path, lines), max_bad_share=0.1)).rows == 20


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_utf8_with_or_without_bom_and_windows_1252(tmp_path, encoding):
    path = write_csv(tmp_path, ["R1,Siân,Núñez,03/04/2022,CF10 1AA,,Y,"], encoding=encoding)
    cfg = config(tmp_path, path, encoding="cp1252" if encoding == "cp1252" else "utf-8-sig")
    (record,) = run(cfg).prepared
    assert record.values[:2] == ("sian", "nunez")


def test_windows_1252_read_as_utf8_is_rejected_with_a_hint(tmp_path):
    path = write_csv(tmp_path, ["R1,Siân,Jones,03/04/2022,CF10 1AA,,Y,"], encoding="cp1252")
    with pytest.raises(InputError, match="cp1252") as caught:
        run(config(tmp_path, path))
    assert "row 2" in str(caught.value)


def policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "consent.toml"
    path.write_text(text)
    return path


def test_consent_rules_read_columns_that_are_not_linkage_fields(tmp_path):
    lines = [
        good_row(1),
        good_row(2, consent="N"),
        good_row(3, closed="2024-01-01"),
        good_row(4, dob="01/01/2019"),
        good_row(5),
    ]
    cfg = config(
        tmp_path,
        write_csv(tmp_path, lines),
        consent_policy=policy(
            tmp_path,
            '[[rule]]\nname = "consented"\naction = "require"\ncolumn = "Consent"\nequals = "Y"\n'
            '\n[[rule]]\nname = "closed"\naction = "exclude"\ncolumn = "Closed"\n'
            "before = 2025-04-01\n"
            '\n[[rule]]\nname = "under-5"\naction = "require"\ncolumn = "DOB"\nage_under = 5\n'
            "on = 2026-03-31\n",
        ),
    )
    intake = run(cfg, withdrawn={"R5"})
    assert [p.local_id for p in intake.prepared] == ["R1"]
    assert intake.decisions == {
        "included": 1,
        "withdrawn": 1,
        "consented": 1,
        "closed": 1,
        "under-5": 1,
    }
    summary = intake.summary()
    assert len(summary.policy_sha256) == 64 and summary.counts == intake.decisions


def test_an_unreadable_date_a_rule_needs_is_a_bad_row(tmp_path):
    lines = [good_row(n) for n in range(40)]
    lines[3] = good_row(3, closed="32/13/2024")
    cfg = config(
        tmp_path,
        write_csv(tmp_path, lines),
        consent_policy=policy(
            tmp_path,
            '[[rule]]\nname = "closed"\naction = "exclude"\ncolumn = "Closed"\n'
            "before = 2025-04-01\n",
        ),
    )
    intake = run(cfg)
    assert [(b.row, b.field) for b in intake.rejects] == [(5, "column 'Closed'")]
    assert len(intake.prepared) == 39


def test_a_policy_naming_a_column_the_data_lacks_stops_before_reading(tmp_path):
    cfg = config(
        tmp_path,
        write_csv(tmp_path, [good_row(1)]),
        consent_policy=policy(
            tmp_path,
            '# policy\n\n[[rule]]\nname = "flag"\naction = "require"\ncolumn = "Consent Flag"\n'
            'equals = "Y"\n',
        ),
    )
    with pytest.raises(PolicyError, match=r"consent\.toml, line 3: column 'Consent Flag'"):
        run(cfg)
    assert not (tmp_path / "state" / "rejects.csv").exists()


def test_a_share_outside_0_to_1_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="max_bad_share"):
        run(config(tmp_path, write_csv(tmp_path, [good_row(1)]), max_bad_share=5.0))


def test_the_exclusion_report_says_per_column_what_was_not_used_and_warns_in_words(tmp_path):
    from node import exclusions

    lines = [good_row(n) for n in range(30)]
    lines[3] = good_row(3, dob="31/02/2022")
    lines[5] = "R5,Unknown,,,ZZ99 3VZ,,Y,"  # nothing usable: left out
    intake = run(config(tmp_path, write_csv(tmp_path, lines)))
    report = exclusions.build(
        intake, mode="plan", organisation="o", project_id="p", schema_sha256="0" * 64
    )
    text = exclusions.render_text(report)
    dob_line = next(line for line in text.splitlines() if line.startswith("  date_of_birth"))
    assert dob_line.split()[-3:] == ["1", "0", "1"]  # blank, placeholder, invalid
    assert "1 of 30 rows (3.3%) cannot be used and would be left out" in text
    assert "date_of_birth: 1 values are invalid (impossible calendar date: 1)" in text
    assert "31/02/2022" not in text and "Unknown" not in text


def second_pass(cfg: NodeConfig, intake, **kwargs: object) -> list[str]:
    """What an upload's stream does (node.stream): consent here, normalising as a worker
    would, each usable row checked against the intake."""
    check = IncludedCheck(intake)
    sent = []
    for consented in consented_rows(cfg, FIELDS, intake, **kwargs):  # type: ignore[arg-type]
        try:
            normalise_row(consented.row, FIELDS, normalisers())
        except RowError:
            continue
        check.add(consented.row.local_id)
        if not consented.was_bad:
            sent.append(consented.row.local_id)
    check.finish()
    return sent


def test_consent_decided_apart_from_normalising_includes_the_same_records(tmp_path):
    lines = [good_row(1), good_row(2, consent="N"), "R3,,,,,,Y,", good_row(4), good_row(5)]
    lines += [good_row(n) for n in range(6, 30)]
    cfg = config(
        tmp_path,
        write_csv(tmp_path, lines),
        consent_policy=policy(
            tmp_path,
            '[[rule]]\nname = "consented"\naction = "require"\ncolumn = "Consent"\nequals = "Y"\n',
        ),
    )
    intake = run(cfg, withdrawn={"R5"})
    assert [(b.row, b.reason) for b in intake.rejects] == [(4, NO_IDENTIFIER)]

    sent = second_pass(cfg, intake, withdrawn={"R5"})

    assert (
        sent
        == [p.local_id for p in intake.prepared]
        == ["R1", "R4", *(f"R{n}" for n in range(6, 30))]
    )
    # the consented rows carry their linkage cells only, not the policy's columns
    first = next(consented_rows(cfg, FIELDS, intake, withdrawn={"R5"}))
    assert first.row.extra == {} and first.row.values["given_name"] == "Amelia"


@pytest.mark.parametrize(
    "edit",
    [
        lambda lines: [*lines[:2], "R3,Isla,Pryce,01/01/2020,CF10 1AA,,Y,", *lines[3:]],
        lambda lines: ["R1,,,,,,Y,", *lines[1:]],
    ],
    ids=["a bad row became usable", "a usable row became bad"],
)
def test_a_row_whose_usability_changed_since_the_intake_is_a_changed_file(tmp_path, edit):
    lines = [good_row(1), good_row(2), "R3,,,,,,Y,", *(good_row(n) for n in range(4, 30))]
    cfg = config(tmp_path, write_csv(tmp_path, lines))
    intake = run(cfg)
    assert second_pass(cfg, intake) == [p.local_id for p in intake.prepared]

    write_csv(tmp_path, edit(lines))
    with pytest.raises(InputChanged, match="changed while it was being sent"):
        second_pass(cfg, intake)
