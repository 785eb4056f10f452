"""Every consent rule kind, decided on plain records: one decision each, first exclusion wins."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node import consent
from node.consent import (
    AgeAtLeast,
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
    Policy,
    Rule,
    UndecidableRecord,
    decide,
    matches,
)

MARCH_31 = date(2026, 3, 31)
OPTED_OUT = "9990000026"  # test range, valid check digit
OTHER = "9990000018"


@pytest.mark.parametrize(
    ("condition", "record", "expected"),
    [
        (Equals("Consent", "Y"), {"Consent": " y "}, True),
        (Equals("Consent", "Y"), {"Consent": "N"}, False),
        (Equals("Consent", "Y"), {"Consent": ""}, False),
        (OneOf("Service", frozenset({"HV", "Flying Start"})), {"Service": "flying  start"}, True),
        (OneOf("Service", frozenset({"HV"})), {"Service": "CSC"}, False),
        (Blank("Closed"), {"Closed": "   "}, True),
        (Blank("Closed"), {"Closed": "01/01/2025"}, False),
        (Blank("Closed", blank=False), {"Closed": "01/01/2025"}, True),
        (Blank("Closed", blank=False), {"Closed": ""}, False),
        (InList("Ref", frozenset({"cc12"})), {"Ref": " CC12 "}, True),
        (InList("Ref", frozenset({"cc12"})), {"Ref": "CC13"}, False),
        (InList("NHS", frozenset({OPTED_OUT}), nhs_number=True), {"NHS": "999-000-0026"}, True),
        (InList("NHS", frozenset({OPTED_OUT}), nhs_number=True), {"NHS": "999 000 0027"}, False),
        (AgeBelow("DOB", 5, MARCH_31), {"DOB": "01/04/2021"}, True),  # 4 on 31 March 2026
        (AgeBelow("DOB", 5, MARCH_31), {"DOB": "31/03/2021"}, False),  # 5th birthday that day
        (AgeBelow("DOB", 5, MARCH_31), {"DOB": ""}, False),
        (AgeAtLeast("DOB", 5, MARCH_31), {"DOB": "2021-03-31"}, True),
        (AgeAtLeast("DOB", 5, MARCH_31), {"DOB": "2021-04-01"}, False),
        (DateBefore("Closed", date(2025, 4, 1)), {"Closed": "31-Mar-2025"}, True),
        (DateBefore("Closed", date(2025, 4, 1)), {"Closed": "01/04/2025"}, False),
        (DateBefore("Closed", date(2025, 4, 1)), {"Closed": ""}, False),
        (DateOnOrAfter("Start", date(2025, 4, 1)), {"Start": "2025-04-01"}, True),
        (DateOnOrAfter("Start", date(2025, 4, 1)), {"Start": "2025-03-31"}, False),
    ],
)
def test_each_condition_kind(condition, record, expected):
    assert matches(condition, record) is expected


def test_all_and_any_combine_conditions():
    consented = Equals("Consent", "Y")
    open_case = Blank("Closed")
    record = {"Consent": "Y", "Closed": "2024-01-01"}
    assert matches(AnyOf((consented, open_case)), record)
    assert not matches(AllOf((consented, open_case)), record)
    assert matches(AllOf((consented, AnyOf((open_case, Blank("Closed", blank=False))))), record)


@pytest.mark.parametrize(
    ("opted_out", "allowed", "missing", "nhs", "expected"),
    [
        (frozenset({OPTED_OUT}), None, "include", "999 000 0026", True),
        (frozenset({OPTED_OUT}), None, "include", OTHER, False),
        (frozenset({OPTED_OUT}), None, "include", "", False),
        (frozenset({OPTED_OUT}), None, "exclude", "", True),
        (frozenset({OPTED_OUT}), None, "exclude", "1234567890", True),  # invalid = missing
        (None, frozenset({OTHER}), "include", OTHER, False),
        (None, frozenset({OTHER}), "include", OPTED_OUT, True),  # not on the allow-list
        (None, frozenset({OTHER}), "include", "", False),
        (frozenset({OTHER}), frozenset({OTHER}), "include", OTHER, True),  # opt-out wins
    ],
)
def test_national_data_opt_out(opted_out, allowed, missing, nhs, expected):
    rule = NationalOptOut("NHS", opted_out, allowed, missing)
    assert matches(rule, {"NHS": nhs}) is expected


def test_first_rule_that_excludes_decides():
    policy = Policy(
        (
            Rule("consented", "require", Equals("Consent", "Y")),
            Rule("under-5", "require", AgeBelow("DOB", 5, MARCH_31)),
            Rule("closed", "exclude", Blank("Closed", blank=False)),
        )
    )
    assert decide(policy, {"Consent": "Y", "DOB": "01/01/2024", "Closed": ""}) == "included"
    assert decide(policy, {"Consent": "N", "DOB": "01/01/2010", "Closed": "x"}) == "consented"
    assert decide(policy, {"Consent": "Y", "DOB": "01/01/2010", "Closed": "x"}) == "under-5"
    assert decide(policy, {"Consent": "Y", "DOB": "01/01/2024", "Closed": "x"}) == "closed"


def test_an_unreadable_rule_date_is_undecidable_and_never_echoed():
    with pytest.raises(UndecidableRecord) as caught:
        matches(DateBefore("Closed", MARCH_31), {"Closed": "31/02/2025"})
    assert caught.value.column == "Closed"
    assert "31/02" not in str(caught.value)


def test_tally_keeps_every_rule_even_at_zero():
    policy = Policy((Rule("a", "exclude", Blank("x")), Rule("b", "exclude", Blank("y"))))
    counts = consent.tally(["included", "a", "included"], policy)
    assert counts == {"included": 2, "withdrawn": 0, "a": 1, "b": 0}
    assert list(counts) == ["included", "withdrawn", "a", "b"]


@given(
    st.lists(st.sampled_from(["Y", "N", "", "y "]), min_size=1, max_size=4),
    st.dictionaries(st.sampled_from(["c0", "c1", "c2", "c3"]), st.sampled_from(["Y", "N", ""])),
)
def test_decision_is_included_or_the_first_failing_rule(values, record):
    rules = tuple(
        Rule(f"r{i}", "require" if i % 2 else "exclude", Equals(f"c{i}", v))
        for i, v in enumerate(values)
    )
    decision = decide(Policy(rules), record)
    failing = [r.name for r in rules if matches(r.condition, record) != (r.action == "require")]
    assert decision == (failing[0] if failing else "included")
