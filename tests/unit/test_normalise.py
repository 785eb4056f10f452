"""Unit tests for node.normalise: table-driven cases from real-looking exports plus properties.

All names are invented; all NHS numbers are synthetic (999 range, or the NHS's published
example 943 476 5919) with check digits computed by hublink.nhs.check_digit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hublink.nhs import check_digit
from node import normalise
from node.normalise import (
    NORMALISATION_VERSION,
    NormalisationError,
    date_of_birth,
    family_name,
    given_name,
    nhs_number,
    nhs_number_status,
    postcode,
    sex,
)

TODAY = date(2025, 6, 1)

# Written out independently of the module's own pattern so the property test can catch a
# wrong constant there. Outward: A9, A99, AA9, AA99, A9A, AA9A with Royal Mail letter rules.
CANONICAL_POSTCODE = re.compile(
    r"(?:[A-PR-UWYZ](?:[0-9]|[0-9][0-9]|[A-HK-Y][0-9]|[A-HK-Y][0-9][0-9]"
    r"|[0-9][ABCDEFGHJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY])"
    r" [0-9][ABDEFGHJLNPQRSTUWXYZ]{2}|GIR 0AA)"
)
NAME_SHAPE = re.compile(r"[a-z]+(?: [a-z]+)*")


def synthetic_nhs(prefix: str) -> str:
    """Ten-digit NHS number in the test range: nine digits plus a valid check digit."""
    digit = check_digit(prefix)
    assert digit is not None, f"{prefix} has no valid check digit"
    return f"{prefix}{digit}"


VALID_NHS = synthetic_nhs("999000001")  # 9990000018
VALID_NHS_2 = synthetic_nhs("999123457")
NHS_EXAMPLE = "9434765919"


def test_version_string() -> None:
    assert NORMALISATION_VERSION == "hublink-normalise-1"


def test_normalisation_error_is_value_error() -> None:
    assert issubclass(NormalisationError, ValueError)


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

NAME_CASES = [
    # missing
    (None, None),
    ("", None),
    ("   ", None),
    ("\t\n", None),
    # case and diacritics
    ("JOHN", "john"),
    ("Siân", "sian"),
    ("SIÂN", "sian"),
    ("Zoë", "zoe"),
    ("Chloé", "chloe"),
    ("Gwenllïan", "gwenllian"),
    ("Dafydd ap Gwilym", "dafydd ap gwilym"),
    ("Llŷr", "llyr"),
    ("Ŵyn", "wyn"),
    ("Ñuñez", "nunez"),
    ("Jørgen", "jorgen"),
    ("Strauß", "strauss"),
    ("Łucja", "lucja"),
    ("\uff2a\uff2f\uff28\uff2e", "john"),  # full-width JOHN, as pasted from some PDFs
    ("Sia\u0302n", "sian"),  # already decomposed: a + combining circumflex
    # apostrophes
    ("O'Brien", "obrien"),
    ("O\u2019Brien", "obrien"),
    ("O`Brien", "obrien"),
    ("d\u2019Arcy", "darcy"),
    ("O' Neill", "o neill"),
    # hyphens, punctuation, whitespace
    ("Smith-Jones", "smith jones"),
    ("Smith - Jones", "smith jones"),
    ("Smith--Jones", "smith jones"),
    ("  Mary   Anne  ", "mary anne"),
    ("Mary-Anne", "mary anne"),
    ("St. John", "st john"),
    ("Jones,", "jones"),
    ("Smith (nee Jones)", "smith nee jones"),
    ("Smith2", "smith"),
    # titles
    ("Mr John", "john"),
    ("Mr. John", "john"),
    ("MRS JANE", "jane"),
    ("Miss Ellie", "ellie"),
    ("Ms. Priya", "priya"),
    ("Mx Alex", "alex"),
    ("Dr Aled", "aled"),
    ("Dr. Aled", "aled"),
    ("Master Oliver", "oliver"),
    ("Mr.John", "john"),
    ("Mr Dr Ann", "ann"),
    ("Mr", None),
    ("Mrs.", None),
    ("DR", None),
    ("Master", "master"),  # also a surname
    ("Miss", "miss"),
    ("Mrsmith", "mrsmith"),  # only whole words are titles
    ("Drew", "drew"),
    ("Jones Mr", "jones mr"),  # titles only at the start
    # placeholders
    ("UNKNOWN", None),
    ("unknown", None),
    ("Not Known", None),
    ("NOT  KNOWN", None),
    ("UNK", None),
    ("N/A", None),
    ("n/a", None),
    ("NK", None),
    ("N/K", None),
    ("BABY", None),
    ("Baby Boy", None),
    ("BABY-GIRL", None),
    ("Baby 2", None),
    ("Baby A", None),
    ("INFANT", None),
    ("Infant of Smith", None),
    ("INFANT OF JANE SMITH", None),
    ("Baby of Jones", None),
    ("BABY OF O'BRIEN", None),
    ("Twin 1", None),
    ("TWIN 2", None),
    ("Twin A", None),
    ("twin b", None),
    ("XXX", None),
    ("xx", None),
    ("-", None),
    ("?", None),
    ("--", None),
    ("NULL", None),
    ("Mr Unknown", None),
    # names that merely contain a placeholder word stay
    ("Babyface", "babyface"),
    ("Twining", "twining"),
    ("Knowles", "knowles"),
    ("Na", "na"),
    ("Baby Smith", "baby smith"),
    # non-Latin scripts fold to nothing rather than to a partial string
    ("李", None),
    ("Анна", None),
    ("Anna 李", "anna"),
]


@pytest.mark.parametrize(("raw", "expected"), NAME_CASES)
def test_given_name(raw: str | None, expected: str | None) -> None:
    assert given_name(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), NAME_CASES)
def test_family_name_uses_same_rules(raw: str | None, expected: str | None) -> None:
    assert family_name(raw) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Siân Smith-Jones", "SIAN SMITH JONES"),
        ("O\u2019Brien", "OBRIEN"),
        ("Mrs Zoë  O'Neill", "zoe oneill"),
    ],
)
def test_names_that_must_agree(a: str, b: str) -> None:
    assert given_name(a) == given_name(b)
    assert given_name(a) is not None


name_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="abcdeéâïŵMrsDBYUNKWXO' -.?/`\u2019120", max_size=30),
    st.sampled_from([row[0] for row in NAME_CASES if row[0] is not None]),
)


@given(name_text)
@example("Mr Mrs John")
@example("1 Mr John")
@example("Mr Twin 1")
@example("XXX1")
def test_name_is_idempotent_and_well_formed(raw: str) -> None:
    for normaliser in (given_name, family_name):
        once = normaliser(raw)
        assert normaliser(once) == once
        if once is not None:
            assert NAME_SHAPE.fullmatch(once), once
            assert "  " not in once


# ---------------------------------------------------------------------------
# Dates of birth
# ---------------------------------------------------------------------------

DATE_CASES = [
    # DD/MM/YYYY, UK first
    ("03/04/2021", date(2021, 4, 3)),
    ("3/4/2021", date(2021, 4, 3)),
    ("13/04/2021", date(2021, 4, 13)),
    ("12/01/1950", date(1950, 1, 12)),
    (" 03/04/2021 ", date(2021, 4, 3)),
    ("03/04/2021 00:00", date(2021, 4, 3)),
    ("03/04/2021 00:00:00", date(2021, 4, 3)),
    ("03-04-2021", date(2021, 4, 3)),
    ("3-4-2021", date(2021, 4, 3)),
    ("03.04.2021", date(2021, 4, 3)),
    # ISO 8601
    ("2021-04-03", date(2021, 4, 3)),
    ("2021-04-03T00:00:00", date(2021, 4, 3)),
    ("2021-04-03 00:00:00", date(2021, 4, 3)),
    ("2021-04-03T00:00:00.000", date(2021, 4, 3)),
    ("2021-04-03T00:00:00Z", date(2021, 4, 3)),
    ("2021-04-03T23:00:00+01:00", date(2021, 4, 3)),  # the calendar day, never shifted
    ("1900-01-01", date(1900, 1, 1)),
    # compact
    ("20210403", date(2021, 4, 3)),
    ("19120512", date(1912, 5, 12)),
    ("03042021", date(2021, 4, 3)),
    # month names
    ("03-Apr-2021", date(2021, 4, 3)),
    ("03-APR-2021", date(2021, 4, 3)),
    ("3 April 2021", date(2021, 4, 3)),
    ("3 APRIL 2021", date(2021, 4, 3)),
    ("03 apr 2021", date(2021, 4, 3)),
    ("1 Sept 1988", date(1988, 9, 1)),
    ("1 Sep. 1988", date(1988, 9, 1)),
    ("25-Dec-1999", date(1999, 12, 25)),
    ("03APR2021", date(2021, 4, 3)),
    ("31 May 1970", date(1970, 5, 31)),
    # two-digit years with default pivot 30
    ("03/04/21", date(2021, 4, 3)),
    ("03/04/31", date(1931, 4, 3)),
    ("03/04/99", date(1999, 4, 3)),
    ("01/01/00", date(2000, 1, 1)),
    ("29/02/00", date(2000, 2, 29)),
    ("03-04-21", date(2021, 4, 3)),
    ("03.04.85", date(1985, 4, 3)),
    ("03-APR-21", date(2021, 4, 3)),
    ("03-Apr-85", date(1985, 4, 3)),
    # Excel serials (1900 system)
    ("44289", date(2021, 4, 3)),
    ("44289.0", date(2021, 4, 3)),
    ("44289.75", date(2021, 4, 3)),
    ("25569", date(1970, 1, 1)),
    ("36526", date(2000, 1, 1)),
    ("45292", date(2024, 1, 1)),
    # leap days
    ("29/02/2020", date(2020, 2, 29)),
    ("29/02/2000", date(2000, 2, 29)),
]


@pytest.mark.parametrize(("raw", "expected"), DATE_CASES)
def test_date_of_birth_accepts(raw: str, expected: date) -> None:
    assert date_of_birth(raw, today=TODAY) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "\t"])
def test_date_of_birth_missing(raw: str | None) -> None:
    assert date_of_birth(raw, today=TODAY) is None


DATE_ERRORS = [
    ("31/02/2021", "impossible calendar date"),
    ("29/02/2021", "impossible calendar date"),
    ("29/02/1900", "impossible calendar date"),  # 1900 was not a leap year
    ("00/01/2021", "impossible calendar date"),
    ("32/01/2021", "impossible calendar date"),
    ("01/13/2021", "impossible calendar date"),  # US month-first is not guessed at
    ("2021-02-30", "impossible calendar date"),
    ("2021-13-01", "impossible calendar date"),
    ("20210231", "impossible calendar date"),
    ("31-Feb-2021", "impossible calendar date"),
    ("31/02/21", "impossible calendar date"),
    ("02/06/2025", "date is in the future"),  # boundary: the day after TODAY
    ("01/01/2030", "date is in the future"),
    ("2099-12-31", "date is in the future"),
    ("03/04/29", "date is in the future"),  # pivot 30 → 2029
    ("31/12/1899", "date is before 1900"),
    ("1850-01-01", "date is before 1900"),
    ("18991231", "date is before 1900"),
    ("hello", "not a date in any accepted format"),
    ("1985", "not a date in any accepted format"),  # a bare year is not a date of birth
    ("04/2021", "not a date in any accepted format"),
    ("03 Foo 2021", "not a date in any accepted format"),
    ("03/04/2021/", "not a date in any accepted format"),
    ("2021/04/03x", "not a date in any accepted format"),
    ("9999", "not a date in any accepted format"),
    ("9999.0", "not a date in any accepted format"),  # below the Excel serial range
    ("85000", "not a date in any accepted format"),  # above the Excel serial range
    ("-44289", "not a date in any accepted format"),
    ("44289e0", "not a date in any accepted format"),
    ("03/04/2021 lunchtime", "not a date in any accepted format"),
    ("٠٣/٠٤/٢٠٢١", "not a date in any accepted format"),  # Arabic-Indic digits
]


@pytest.mark.parametrize(("raw", "reason"), DATE_ERRORS)
def test_date_of_birth_rejects(raw: str, reason: str) -> None:
    with pytest.raises(NormalisationError) as info:
        date_of_birth(raw, today=TODAY)
    assert str(info.value) == reason
    assert raw.strip() not in str(info.value)  # never echoes the value


def test_date_of_birth_today_is_allowed() -> None:
    assert date_of_birth("01/06/2025", today=TODAY) == TODAY


def test_date_of_birth_default_today_rejects_tomorrow() -> None:
    tomorrow = date.today() + timedelta(days=1)
    with pytest.raises(NormalisationError, match="future"):
        date_of_birth(tomorrow.isoformat())
    assert date_of_birth(date.today().isoformat()) == date.today()


@pytest.mark.parametrize(
    ("raw", "pivot", "expected"),
    [
        ("03/04/21", 30, date(2021, 4, 3)),
        ("03/04/21", 20, date(1921, 4, 3)),
        ("03/04/30", 29, date(1930, 4, 3)),
        ("03/04/30", 30, None),  # 2030: in the future, so an error (checked below)
        ("03/04/20", 20, date(2020, 4, 3)),
        ("03/04/00", 0, date(2000, 4, 3)),
        ("03/04/01", 0, date(1901, 4, 3)),
        ("03/04/24", 25, date(2024, 4, 3)),
        ("03-APR-24", 10, date(1924, 4, 3)),
    ],
)
def test_two_digit_pivot(raw: str, pivot: int, expected: date | None) -> None:
    if expected is None:
        with pytest.raises(NormalisationError, match="date is in the future"):
            date_of_birth(raw, today=TODAY, two_digit_pivot=pivot)
        return
    assert date_of_birth(raw, today=TODAY, two_digit_pivot=pivot) == expected


@pytest.mark.parametrize("pivot", [-1, 100])
def test_two_digit_pivot_out_of_range(pivot: int) -> None:
    with pytest.raises(ValueError, match="two_digit_pivot"):
        date_of_birth("03/04/21", today=TODAY, two_digit_pivot=pivot)


@pytest.mark.parametrize(
    ("raw", "formats", "expected"),
    [
        # A known US-layout export: the caller's format wins over the UK default.
        ("04/03/2021", ["%m/%d/%Y"], date(2021, 4, 3)),
        ("04/13/2021", ["%m/%d/%Y"], date(2021, 4, 13)),
        # A value that does not fit the given format falls back to the built-ins.
        ("2021-04-03", ["%m/%d/%Y"], date(2021, 4, 3)),
        ("13/04/2021", ["%m/%d/%Y"], date(2021, 4, 13)),
        # Formats are tried in order.
        ("2021/04/03", ["%d/%m/%Y", "%Y/%m/%d"], date(2021, 4, 3)),
        ("April 3, 2021", ["%B %d, %Y"], date(2021, 4, 3)),
        ("03/04/2021 10:15 AM", ["%d/%m/%Y %I:%M %p"], date(2021, 4, 3)),
        # %y uses this module's pivot, not strptime's 1969 cut-off.
        ("21/04/03", ["%y/%m/%d"], date(2021, 4, 3)),
        ("45/04/03", ["%y/%m/%d"], date(1945, 4, 3)),
        ("25/04/03", ["%y/%m/%d"], date(2025, 4, 3)),
    ],
)
def test_caller_formats_first(raw: str, formats: list[str], expected: date) -> None:
    assert date_of_birth(raw, today=TODAY, formats=formats) == expected


def test_caller_format_pivot_is_applied() -> None:
    assert date_of_birth("25/04/03", today=TODAY, formats=["%y/%m/%d"], two_digit_pivot=10) == (
        date(1925, 4, 3)
    )


@pytest.mark.parametrize(
    ("raw", "formats", "reason"),
    [
        ("02/30/2021", ["%m/%d/%Y"], "impossible calendar date"),
        ("12/31/2030", ["%m/%d/%Y"], "date is in the future"),
        ("12/31/1899", ["%m/%d/%Y"], "date is before 1900"),
        ("nonsense", ["%m/%d/%Y"], "not a date in any accepted format"),
    ],
)
def test_caller_formats_errors(raw: str, formats: list[str], reason: str) -> None:
    with pytest.raises(NormalisationError) as info:
        date_of_birth(raw, today=TODAY, formats=formats)
    assert str(info.value) == reason


def test_bad_caller_format_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="invalid date format") as info:
        date_of_birth("03/04/2021", today=TODAY, formats=["%Q"])
    assert not isinstance(info.value, NormalisationError)


@pytest.mark.parametrize(
    ("serial", "expected"),
    [
        (1, date(1900, 1, 1)),
        (59, date(1900, 2, 28)),
        (61, date(1900, 3, 1)),  # serial 60 is Excel's phantom 1900-02-29
        (25569, date(1970, 1, 1)),
        (44289, date(2021, 4, 3)),
    ],
)
def test_excel_serial_conversion(serial: int, expected: date) -> None:
    assert normalise._excel_serial_to_date(serial) == expected


def test_excel_phantom_leap_day_is_impossible() -> None:
    with pytest.raises(NormalisationError, match="impossible calendar date"):
        normalise._excel_serial_to_date(60)


LAYOUTS: list[Callable[[date], str]] = [
    lambda d: d.strftime("%d/%m/%Y"),
    lambda d: f"{d.day}/{d.month}/{d.year}",
    lambda d: d.strftime("%d-%m-%Y"),
    lambda d: d.strftime("%d.%m.%Y"),
    lambda d: d.isoformat(),
    lambda d: d.strftime("%Y-%m-%dT00:00:00"),
    lambda d: d.strftime("%Y-%m-%d 00:00:00"),
    lambda d: d.strftime("%Y%m%d"),
    lambda d: d.strftime("%d%m%Y"),
    lambda d: d.strftime("%d-%b-%Y"),
    lambda d: d.strftime("%d %B %Y").upper(),
    lambda d: d.strftime("%d/%m/%Y 00:00:00"),
]


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.sampled_from(range(len(LAYOUTS))),
)
def test_date_round_trips_through_every_layout(day: date, layout: int) -> None:
    assert date_of_birth(LAYOUTS[layout](day), today=TODAY) == day


@given(st.dates(min_value=date(1927, 5, 18), max_value=TODAY))
def test_excel_serial_round_trip(day: date) -> None:
    # Excel's serial for any date after 1900-02-28 is its offset from 1899-12-30.
    serial = (day - date(1899, 12, 30)).days
    assert date_of_birth(str(serial), today=TODAY) == day
    assert date_of_birth(f"{serial}.0", today=TODAY) == day


date_text = st.one_of(
    st.text(max_size=25),
    st.text(alphabet="0123456789/-.: TAprJunDec", max_size=20),
    st.builds(
        lambda d, m, y: f"{d}/{m}/{y}",
        st.integers(0, 40),
        st.integers(0, 14),
        st.integers(0, 2200),
    ),
    st.integers(0, 100_000).map(str),
)


@given(date_text, st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 1, 1)))
@example("01/01/30", date(2029, 12, 31))
@example("80000", TODAY)
def test_date_of_birth_never_future_and_idempotent(raw: str, today: date) -> None:
    try:
        result = date_of_birth(raw, today=today)
    except NormalisationError:
        return
    if result is None:
        assert raw.strip() == ""
        return
    assert date(1900, 1, 1) <= result <= today
    assert date_of_birth(result.isoformat(), today=today) == result
    assert date_of_birth(result.strftime("%d/%m/%Y"), today=today) == result


# ---------------------------------------------------------------------------
# Postcodes
# ---------------------------------------------------------------------------

POSTCODE_CASES = [
    (None, None),
    ("", None),
    ("   ", None),
    # every shape
    ("M1 1AE", "M1 1AE"),  # A9 9AA
    ("B33 8TH", "B33 8TH"),  # A99 9AA
    ("CR2 6XH", "CR2 6XH"),  # AA9 9AA
    ("DN55 1PT", "DN55 1PT"),  # AA99 9AA
    ("W1A 0AX", "W1A 0AX"),  # A9A 9AA
    ("EC1A 1BB", "EC1A 1BB"),  # AA9A 9AA
    ("SW1A 2AA", "SW1A 2AA"),
    ("N1C 4AG", "N1C 4AG"),
    ("CF10 1EP", "CF10 1EP"),
    ("LL57 2DG", "LL57 2DG"),
    ("GIR 0AA", "GIR 0AA"),
    ("gir0aa", "GIR 0AA"),
    # spacing, case and stray punctuation
    ("sw1a1aa", "SW1A 1AA"),
    ("SW1A1AA", "SW1A 1AA"),
    (" sw1a  1aa ", "SW1A 1AA"),
    ("S W 1 A 1 A A", "SW1A 1AA"),
    ("SW1A-1AA", "SW1A 1AA"),
    ("SW1A.1AA", "SW1A 1AA"),
    ("(CF10 1EP)", "CF10 1EP"),
    ("cf10\u00a01ep", "CF10 1EP"),  # non-breaking space
    ("ll57\t2dg", "LL57 2DG"),
    ("\uff33\uff37\uff11\uff21 \uff11\uff21\uff21", "SW1A 1AA"),  # full-width
    # wrong length or shape
    ("SW1A", None),
    ("SW1A 1A", None),
    ("SW1A 1AAA", None),
    ("SW1A1 1AA", None),
    ("1AA 1AA", None),
    ("123 456", None),
    ("N/A", None),
    ("UNKNOWN", None),
    ("NFA", None),
    # inward letters exclude C I K M O V
    ("SW1A 1AC", None),
    ("SW1A 1IA", None),
    ("SW1A 1AK", None),
    ("SW1A 1MA", None),
    ("SW1A 1AO", None),
    ("SW1A 1VA", None),
    # first position excludes Q V X
    ("QA1 1AA", None),
    ("V1 1AA", None),
    ("X11 1AA", None),
    # second position excludes I J Z
    ("AI1 1AA", None),
    ("BJ1 1AA", None),
    ("CZ1 1AA", None),
    # third position (A9A) and fourth position (AA9A) letter rules
    ("W1Z 1AA", None),
    ("W1L 1AA", None),
    ("EC1C 1AA", None),
    ("SW1Z 1AA", None),
    # O/0 and I/1 slips are not repaired
    ("SW1A 1A0", None),
    ("SWIA 1AA", None),
    ("S01 1AA", "S01 1AA"),  # S-zero-1 is a valid shape, so it is kept exactly as typed
    ("SO1 IAA", None),
    # NHS pseudo-postcodes are placeholders
    ("ZZ99 3VZ", None),
    ("ZZ99 3WZ", None),
    ("ZZ99 3CZ", None),
    # address text around a postcode is not guessed at
    ("Flat 2, SW1A 1AA", None),
]


@pytest.mark.parametrize(("raw", "expected"), POSTCODE_CASES)
def test_postcode(raw: str | None, expected: str | None) -> None:
    assert postcode(raw) == expected


def _postcode_shapes() -> st.SearchStrategy[str]:
    letters = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    digits = st.sampled_from("0123456789")
    piece = st.one_of(letters, digits)
    return st.lists(piece, min_size=5, max_size=7).map("".join)


postcode_text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz0123456789 -.", max_size=10),
    _postcode_shapes(),
    st.sampled_from([row[0] for row in POSTCODE_CASES if row[0] is not None]),
)


@given(postcode_text)
def test_postcode_is_idempotent_and_canonical(raw: str) -> None:
    once = postcode(raw)
    assert postcode(once) == once
    if once is not None:
        assert CANONICAL_POSTCODE.fullmatch(once), once
        assert postcode(once.replace(" ", "").lower()) == once


# ---------------------------------------------------------------------------
# NHS numbers
# ---------------------------------------------------------------------------

NHS_CASES = [
    (None, None, "missing"),
    ("", None, "missing"),
    ("   ", None, "missing"),
    (NHS_EXAMPLE, NHS_EXAMPLE, "valid"),
    ("943 476 5919", NHS_EXAMPLE, "valid"),
    ("943-476-5919", NHS_EXAMPLE, "valid"),
    (" 943 476 5919 ", NHS_EXAMPLE, "valid"),
    ("943\u00a0476\u00a05919", NHS_EXAMPLE, "valid"),
    ("943\u2013476\u20135919", NHS_EXAMPLE, "valid"),  # en dash from a word processor
    (VALID_NHS, VALID_NHS, "valid"),
    (f"{VALID_NHS_2[:3]} {VALID_NHS_2[3:6]} {VALID_NHS_2[6:]}", VALID_NHS_2, "valid"),
    # failing the check digit
    ("9434765918", None, "invalid"),
    ("9434765910", None, "invalid"),
    (VALID_NHS[:-1] + str((int(VALID_NHS[-1]) + 1) % 10), None, "invalid"),
    # wrong length / characters
    ("943476591", None, "invalid"),
    ("94347659190", None, "invalid"),
    ("943/476/5919", None, "invalid"),
    ("9434765919.0", None, "invalid"),
    ("NHS9434765919", None, "invalid"),
    ("\u0669\u0664\u0663\u0664\u0667\u0666\u0665\u0669\u0661\u0669", None, "invalid"),
    # sentinels and placeholders
    ("0000000000", None, "missing"),
    ("000 000 0000", None, "missing"),
    ("1111111111", None, "missing"),
    ("9999999999", None, "missing"),
    ("N/A", None, "missing"),
    ("Not known", None, "missing"),
    ("-", None, "missing"),
]


@pytest.mark.parametrize(("raw", "expected", "status"), NHS_CASES)
def test_nhs_number(raw: str | None, expected: str | None, status: str) -> None:
    assert nhs_number(raw) == expected
    assert nhs_number_status(raw) == status


def test_all_same_digit_numbers_pass_the_check_yet_are_missing() -> None:
    # Guards the reason for the sentinel rule: without it these would be "valid".
    for digit in "0123456789":
        number = digit * 10
        assert check_digit(number[:9]) == int(digit)
        assert nhs_number_status(number) == "missing"


@given(st.integers(0, 999_999))
@example(999_999)
def test_synthetic_nhs_numbers_survive_formatting(n: int) -> None:
    prefix = f"999{n:06d}"
    digit = check_digit(prefix)
    number = None if digit is None else f"{prefix}{digit}"
    if number is None:
        # No check digit exists for this prefix, so every completion is invalid.
        assert all(nhs_number_status(f"{prefix}{d}") == "invalid" for d in range(10))
        return
    if number == "9999999999":
        assert nhs_number_status(number) == "missing"  # sentinel, see the rule above
        return
    assert nhs_number(number) == number
    assert nhs_number(f"{number[:3]} {number[3:6]} {number[6:]}") == number
    assert nhs_number(nhs_number(number)) == number
    assert nhs_number_status(number) == "valid"


@given(st.text(alphabet="0123456789 -x", max_size=14))
def test_nhs_number_is_idempotent(raw: str) -> None:
    once = nhs_number(raw)
    assert nhs_number(once) == once
    assert (once is None) == (nhs_number_status(raw) != "valid")
    if once is not None:
        assert re.fullmatch(r"[0-9]{10}", once)


# ---------------------------------------------------------------------------
# Sex
# ---------------------------------------------------------------------------

SEX_CASES = [
    (None, None),
    ("", None),
    ("  ", None),
    ("F", "F"),
    ("f", "F"),
    (" F ", "F"),
    ("Female", "F"),
    ("FEMALE", "F"),
    ("female", "F"),
    ("girl", "F"),
    ("Girl", "F"),
    ("2", "F"),
    (" 2\n", "F"),
    ("M", "M"),
    ("m", "M"),
    ("Male", "M"),
    ("MALE", "M"),
    ("boy", "M"),
    ("BOY", "M"),
    ("1", "M"),
    ("9", None),
    ("0", None),
    ("X", None),
    ("x", None),
    ("U", None),
    ("I", None),
    ("Not known", None),
    ("NOT  KNOWN", None),
    ("Not specified", None),
    ("Indeterminate", None),
    ("Unknown", None),
    ("Fe male", None),
    ("3", None),
    ("12", None),
    ("FM", None),
]


@pytest.mark.parametrize(("raw", "expected"), SEX_CASES)
def test_sex(raw: str | None, expected: str | None) -> None:
    assert sex(raw) == expected


@given(st.one_of(st.text(max_size=15), st.sampled_from([r[0] for r in SEX_CASES if r[0]])))
def test_sex_is_idempotent(raw: str) -> None:
    once = sex(raw)
    assert sex(once) == once
    assert once in {None, "F", "M"}
