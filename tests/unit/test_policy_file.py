"""Consent policies from TOML: every rule kind parses, and every mistake names its line."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from node.consent import (
    AgeBelow,
    AllOf,
    AnyOf,
    Blank,
    DateBefore,
    DateOnOrAfter,
    Equals,
    InList,
    NationalOptOut,
    OneOf,
    decide,
)
from node.policy_file import PolicyError, load_policy

FULL = """\
purpose = "Family Hub outreach"

[[rule]]
name = "consented"
action = "require"
column = "Consent"
equals = "Y"

[[rule]]
name = "service"
action = "require"
column = "Service"
one_of = ["HV", "FS"]

[[rule]]
name = "has-postcode"
action = "exclude"
column = "Postcode"
blank = true

[[rule]]
name = "objections"
action = "exclude"
column = "Ref"
in_file = "objections.txt"

[[rule]]
name = "under-5"
action = "require"
column = "DOB"
age_under = 5
on = 2026-03-31

[[rule]]
name = "closed-early"
action = "exclude"
column = "Closed"
before = "2025-04-01"

[[rule]]
name = "recent"
action = "require"
column = "Opened"
on_or_after = 2020-01-01

[[rule]]
name = "either"
action = "require"
any = [{ column = "Consent", equals = "Y" }, { all = [{ column = "Service", equals = "HV" }] }]

[[rule]]
name = "ndop"
column = "NHS"
opt_out_file = "lists/opted-out.csv"
allow_list_file = "lists/allowed.txt"
no_nhs_number = "exclude"
"""


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def lists(tmp_path: Path) -> Path:
    (tmp_path / "objections.txt").write_text("CC12\ncc13\n\n")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "opted-out.csv").write_text("nhs_number\n999 000 0026\n9990000034,x\n")
    (tmp_path / "lists" / "allowed.txt").write_text("9990000018\n")
    return tmp_path


def test_every_rule_kind_parses(lists):
    path = write(lists, FULL)
    loaded = load_policy(path)
    policy = loaded.policy
    assert policy.purpose == "Family Hub outreach"
    assert policy.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    kinds = [type(r.condition) for r in policy.rules]
    assert kinds == [
        Equals, OneOf, Blank, InList, AgeBelow, DateBefore, DateOnOrAfter, AnyOf, NationalOptOut
    ]  # fmt: skip
    assert [r.line for r in policy.rules] == [3, 9, 15, 21, 27, 34, 40, 46, 51]
    assert policy.rules[4].condition == AgeBelow("DOB", 5, date(2026, 3, 31))
    assert policy.rules[5].condition == DateBefore("Closed", date(2025, 4, 1))
    either = policy.rules[7].condition
    assert isinstance(either, AnyOf) and isinstance(either.parts[1], AllOf)
    ndop = policy.rules[8]
    assert ndop.action == "exclude"
    assert isinstance(ndop.condition, NationalOptOut)
    assert ndop.condition.opted_out == {"9990000026", "9990000034"}
    assert ndop.condition.allowed == {"9990000018"}
    assert ndop.condition.no_nhs_number == "exclude"
    assert {f.rule for f in loaded.lists} == {"objections", "ndop"}
    assert all(len(f.sha256) == 64 for f in loaded.lists)
    assert set(policy.columns()) == {
        "Consent", "Service", "Postcode", "Ref", "DOB", "Closed", "Opened", "NHS"
    }  # fmt: skip


def test_policy_decides_records(lists):
    policy = load_policy(write(lists, FULL)).policy
    record = {
        "Consent": "Y",
        "Service": "HV",
        "Postcode": "CF10 1AA",
        "Ref": "CC99",
        "DOB": "01/01/2024",
        "Closed": "",
        "Opened": "2024-01-01",
        "NHS": "9990000018",
    }
    assert decide(policy, record) == "included"
    assert decide(policy, {**record, "Ref": "cc12"}) == "objections"
    assert decide(policy, {**record, "NHS": "9990000026"}) == "ndop"
    assert decide(policy, {**record, "NHS": ""}) == "ndop"


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, text))
    return str(caught.value)


def test_a_syntax_error_names_the_line(tmp_path):
    message = error(tmp_path, '[[rule]]\nname = "a"\naction = require\n')
    assert "policy.toml, line 3:" in message and "not valid TOML" in message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[[rule]]\nname = "a"\naction = "keep"\ncolumn = "x"\nblank = true\n', 3, "action"),
        ('[[rule]]\nname = "a"\naction = "require"\ncolumn = "x"\nblnak = true\n', 5, "blnak"),
        ('[[rule]]\nname = "a"\naction = "require"\nequals = "Y"\n', 1, "needs column"),
        (
            '[[rule]]\nname = "a"\naction = "require"\ncolumn = "x"\nequals = "Y"\n'
            'one_of = ["Y"]\n',
            6,
            "exactly one",
        ),
        (
            '[[rule]]\nname = "a"\naction = "exclude"\ncolumn = "x"\nblank = true\n\n'
            '[[rule]]\nname = "a"\naction = "exclude"\ncolumn = "y"\nblank = true\n',
            7,
            "used twice",
        ),
        ('[[rule]]\nname = "a"\naction = "require"\ncolumn = "DOB"\nage_under = 5\n', 5, "on ="),
        (
            '[[rule]]\nname = "a"\naction = "exclude"\ncolumn = "C"\nbefore = "soon"\n',
            5,
            "date",
        ),
        ('\n[[rule]]\nname = "ndop"\ncolumn = "NHS"\nopt_out_file = "o.txt"\n', 2, "no_nhs_number"),
        ('colour = "red"\n', 1, "unknown key 'colour'"),
        (
            '[[rule]]\nname = "included"\naction = "exclude"\ncolumn = "x"\nblank = true\n',
            2,
            "reserved",
        ),
    ],
)
def test_semantic_errors_name_the_rule_line(tmp_path, text, line, words):
    message = error(tmp_path, text)
    assert f"policy.toml, line {line}:" in message
    assert words in message


def test_a_missing_opt_out_file_names_the_line_that_names_it(tmp_path):
    message = error(
        tmp_path,
        '[[rule]]\nname = "consented"\naction = "require"\ncolumn = "C"\nequals = "Y"\n\n'
        '[[rule]]\nname = "ndop"\ncolumn = "NHS"\nno_nhs_number = "include"\n'
        'opt_out_file = "missing.txt"\n',
    )
    assert "policy.toml, line 11:" in message
    assert "missing.txt" in message and "not found" in message


def test_an_invalid_list_entry_names_the_list_line_but_not_the_value(tmp_path):
    (tmp_path / "o.txt").write_text("9990000026\n9990000027\n")
    message = error(
        tmp_path,
        '[[rule]]\nname = "ndop"\ncolumn = "NHS"\nopt_out_file = "o.txt"\n'
        'no_nhs_number = "include"\n',
    )
    assert "o.txt, line 2:" in message and "policy.toml, line 4" in message
    assert "9990000027" not in message


def test_a_column_the_data_lacks_names_the_rule_line(tmp_path):
    loaded = load_policy(
        write(
            tmp_path,
            '[[rule]]\nname = "a"\naction = "exclude"\ncolumn = "Ref"\nblank = true\n\n'
            '[[rule]]\nname = "b"\naction = "require"\ncolumn = "Consent flag"\nequals = "Y"\n',
        )
    )
    loaded.check_columns(["Ref", "Consent flag"], Path("in.csv"))
    with pytest.raises(PolicyError) as caught:
        loaded.check_columns(["Ref", "Consent"], Path("in.csv"))
    assert "policy.toml, line 7:" in str(caught.value)
    assert "'Consent flag'" in str(caught.value) and "in.csv" in str(caught.value)


def test_a_missing_policy_file_is_named(tmp_path):
    with pytest.raises(PolicyError, match=r"nowhere\.toml"):
        load_policy(tmp_path / "nowhere.toml")
