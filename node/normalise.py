"""Canonical forms for UK identifiers, applied inside a node before Bloom-filter encoding.

Two organisations can only link a person if they encode *the same string* for the
same fact. NHS and council exports disagree on case, accents, titles, separators,
date layouts and placeholder values, and a Bloom-filter encoding turns each of
those differences into lost similarity. Every function here maps the many ways a
value really arrives onto one canonical form, and maps "no real value" onto
``None`` so that a placeholder such as ``UNKNOWN`` or ``ZZ99 3VZ`` can never make
two unrelated people look alike.

Contract shared by every function:

* ``None``, the empty string and whitespace-only strings are missing (``None``).
* A placeholder, or a value that fails its own validation (a postcode of the wrong
  shape, an NHS number failing its check digit), is also missing (``None``):
  encoding a wrong value is worse than encoding nothing.
* Only :func:`date_of_birth` raises (:class:`NormalisationError`), because a date of
  birth that is present but unreadable usually means a broken row the node must
  report, and silently dropping it would hide the fault.

The functions are pure and know nothing of files, CSV, gRPC or clkhash. Any change
to what they output changes every encoding, so it must come with a new
:data:`NORMALISATION_VERSION`; that string is part of the project's pinned encoding
hash and lets two nodes refuse to compare encodings made under different rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Final, Literal

from hublink.nhs import is_valid as _nhs_checksum_ok
from node.errors import NodeError

__all__ = [
    "NORMALISATION_VERSION",
    "NhsNumberStatus",
    "NormalisationError",
    "date_of_birth",
    "family_name",
    "given_name",
    "nhs_number",
    "nhs_number_status",
    "postcode",
    "sex",
]

NORMALISATION_VERSION: Final[str] = "hublink-normalise-1"
"""Bump whenever any function here can return a different output for some input."""


class NormalisationError(NodeError, ValueError):
    """A value that is present but cannot be read, such as ``'31/02/2021'``.

    The message is a short human reason ("impossible calendar date") and never
    repeats the offending value, so it can be logged or counted without copying
    personal data into logs.
    """


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

# Apostrophe look-alikes seen in exports: ASCII, curly quotes, modifier letter,
# backtick, acute accent, prime and full-width. Removed (not spaced) so that
# O'Brien, O\u2019Brien (curly) and OBrien all agree.
_APOSTROPHES: Final[str] = "'\u2018\u2019\u02bc`\u00b4\u2032\uff07"
_DROP_APOSTROPHES: Final[dict[int, int | None]] = str.maketrans("", "", _APOSTROPHES)

# Latin letters that Unicode does not decompose into a base letter plus a mark, so
# NFKD alone would lose them. Mapped to the spelling an English-language system
# would most likely have used for the same person.
_LATIN_WITHOUT_DECOMPOSITION: Final[dict[int, str]] = str.maketrans(
    {
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "æ": "ae",
        "œ": "oe",
        "ħ": "h",
        "\u0131": "i",  # dotless i
        "ŧ": "t",
    }
)

# Titles typed into a name field. Removed only from the front, and only while
# another word follows, because "Master" (for one) is also a real surname.
_TITLES: Final[frozenset[str]] = frozenset({"mr", "mrs", "miss", "ms", "mx", "dr", "master"})
# Titles that cannot be a name on their own: a field holding only one of these is
# missing. "miss" and "master" are left alone because both occur as surnames.
_TITLE_ONLY_MISSING: Final[frozenset[str]] = frozenset({"mr", "mrs", "ms", "mx", "dr"})

# Placeholders recorded instead of a name, matched against the normalised words
# (so "N/A" is "n a" and "Baby-Boy" is "baby boy"). Newborns are often registered
# as "Baby of <mother>" or "Twin 1" before they are named; linking on those
# strings would join every such baby in the county together.
_PLACEHOLDER_NAME: Final[re.Pattern[str]] = re.compile(
    r"""
    unknown | not\ known | notknown | unk | n\ a | nk | n\ k
    | not\ stated | not\ specified | not\ given | null | none
    | x{2,}
    | (?:baby|infant)(?:\ (?:boy|girl))?(?:\ (?:[0-9]+|[a-z]|one|two|three))?
    | (?:baby|infant)\ of(?:\ .+)?
    | (?:baby\ )?twin(?:\ (?:boy|girl))?(?:\ (?:[0-9]+|[a-z]|one|two|three))?
    | (?:baby\ )?triplet(?:\ (?:[0-9]+|[a-z]|one|two|three))?
    """,
    re.VERBOSE,
)


def _fold_to_ascii_lower(raw: str) -> str:
    """Case-fold and strip diacritics so spellings with and without accents agree.

    Exports differ in whether they kept accents at all (Siân/Sian, Zoë/Zoe, Welsh
    ŵ and ŷ), so the accent carries no linking value and only causes mismatches.
    NFKD splits each accented letter into base letter plus combining mark and also
    unfolds compatibility forms (full-width letters, ligatures such as "ﬁ"); the
    marks are then dropped. Folding runs twice because case-folding can itself
    produce characters that decompose further.
    """
    text = raw.translate(_DROP_APOSTROPHES)
    for _ in range(2):
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("M"))
        text = text.casefold()
    text = text.translate(_LATIN_WITHOUT_DECOMPOSITION)
    return text.translate(_DROP_APOSTROPHES)


def _strip_titles(words: list[str]) -> list[str]:
    """Drop leading titles while a further word follows (repeatedly, so "Mr Dr X" → "x")."""
    while len(words) > 1 and words[0] in _TITLES:
        words = words[1:]
    return words


def _is_placeholder(words: list[str]) -> bool:
    return _PLACEHOLDER_NAME.fullmatch(" ".join(words)) is not None


#: Distinct raw values each cached normaliser remembers. Names and postcodes repeat a great
#: deal across a file (and an upload reads its file twice), and folding is the dear part.
_CACHED_VALUES: Final[int] = 1 << 16


@lru_cache(maxsize=_CACHED_VALUES)
def _name(raw: str | None) -> str | None:
    """Shared rules for given and family names; see :func:`given_name`."""
    if raw is None:
        return None
    folded = _fold_to_ascii_lower(raw)
    # First pass keeps digits so that "Twin 1" and "Baby 2" are recognised as
    # placeholders rather than surviving as the plausible-looking "twin"/"baby".
    alnum_words = _strip_titles(re.sub(r"[^a-z0-9]+", " ", folded).split())
    if _is_placeholder(alnum_words):
        return None
    # Second pass: letters only. Digits, hyphens and all other punctuation act as
    # word separators, and anything outside a-z (e.g. a non-Latin script) goes too.
    words = _strip_titles(re.sub(r"[^a-z]+", " ", folded).split())
    if not words:
        return None
    if len(words) == 1 and words[0] in _TITLE_ONLY_MISSING:
        return None
    if _is_placeholder(words):
        return None
    return " ".join(words)


def given_name(raw: str | None) -> str | None:
    """Canonical given name(s): lower-case ASCII letters separated by single spaces.

    Rules, and why:

    * Diacritics are dropped after Unicode NFKD and the text is case-folded
      (Siân → sian, Zoë → zoe, Chloé → chloe, Gwenllïan → gwenllian), because
      source systems disagree on whether accents and capitals were kept at all.
      A few Latin letters with no decomposition are transliterated (ø → o, ł → l,
      æ → ae, ß → ss via case-folding).
    * Apostrophes (straight, curly U+2019, backtick and other look-alikes) are
      removed, not spaced, so O'Brien, O`Brien and OBrien all become "obrien".
    * Hyphens, digits and all other punctuation become one space and runs of space
      collapse, so a double-barrelled Smith-Jones and "Smith  Jones" agree as
      "smith jones".
    * Leading titles (Mr, Mrs, Miss, Ms, Mx, Dr, Master, with or without a dot) are
      removed when a name follows them: they describe the person, not the name, and
      one system's "Mrs Jane" must meet another's "Jane". A field holding only Mr,
      Mrs, Ms, Mx or Dr is missing; a lone "Miss" or "Master" is kept because both
      are also surnames.
    * Placeholders (UNKNOWN, NOT KNOWN, UNK, N/A, NK, NULL, XXX, "-", "?", BABY,
      BABY BOY/GIRL, INFANT, BABY OF …, INFANT OF …, TWIN 1, TWIN A, …) are missing,
      because encoding them would make every unnamed baby or unknown person look
      like the same individual.
    * Letters outside a-z that survive folding (for example names written in a
      non-Latin script) are dropped; if nothing is left the name is missing. The
      hashing stage needs one alphabet, and an empty or partial string would match
      unrelated people.

    The output is a fixed point: ``given_name(given_name(x)) == given_name(x)``.
    """
    return _name(raw)


def family_name(raw: str | None) -> str | None:
    """Canonical family name(s); exactly the same rules as :func:`given_name`.

    The rules are shared on purpose: exports regularly swap or merge the two
    fields (titles typed into the surname column, "BABY OF SMITH" in either), and
    identical folding keeps a swapped pair comparable.
    """
    return _name(raw)


# ---------------------------------------------------------------------------
# Dates of birth
# ---------------------------------------------------------------------------

_MONTHS: Final[dict[str, int]] = {
    "jan": 1,
    "january": 1,
    "feb": 2,
    "february": 2,
    "mar": 3,
    "march": 3,
    "apr": 4,
    "april": 4,
    "may": 5,
    "jun": 6,
    "june": 6,
    "jul": 7,
    "july": 7,
    "aug": 8,
    "august": 8,
    "sep": 9,
    "sept": 9,
    "september": 9,
    "oct": 10,
    "october": 10,
    "nov": 11,
    "november": 11,
    "dec": 12,
    "december": 12,
}

# A time of day after a day-first date, as written by Excel and many SQL exports
# ("03/04/2021 00:00" or "03/04/2021 00:00:00"). The time is ignored.
_UK_TIME: Final[str] = r"(?:\s+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
# ISO 8601 time part, with "T" or a space, optional fraction and UTC offset.
_ISO_TIME: Final[str] = r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"

# Excel serial day numbers accepted as dates of birth. The floor keeps out four-digit
# values, which are far more likely to be a bare year ("1985") than 1905-06-07;
# 10000 is 1927-05-18 and 80000 is in 2119.
_EXCEL_SERIAL_MIN: Final[int] = 10_000
_EXCEL_SERIAL_MAX: Final[int] = 80_000

_IMPOSSIBLE: Final[str] = "impossible calendar date"
_FUTURE: Final[str] = "date is in the future"
_BEFORE_1900: Final[str] = "date is before 1900"
_UNRECOGNISED: Final[str] = "not a date in any accepted format"


def _excel_serial_to_date(serial: int) -> date:
    """Convert an Excel 1900-system serial day number to a date.

    Excel counts 1900-01-01 as day 1 and, copying a Lotus 1-2-3 bug, believes
    1900 was a leap year, so serial 60 is the non-existent 1900-02-29 and every
    later serial is one day ahead of a true count from 1899-12-31.
    """
    if serial == 60:
        raise NormalisationError(_IMPOSSIBLE)
    if serial < 60:
        return date(1899, 12, 31) + timedelta(days=serial)
    return date(1899, 12, 30) + timedelta(days=serial)


def _make_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise NormalisationError(_IMPOSSIBLE) from None


def _pivot_year(two_digit: int, pivot: int) -> int:
    return 2000 + two_digit if two_digit <= pivot else 1900 + two_digit


# A reader gets the match and the two-digit-year pivot and returns a date, raising
# NormalisationError when the text has the right shape but names no real day.
_Reader = Callable[[re.Match[str], int], date]


def _dmy(m: re.Match[str], _pivot: int) -> date:
    return _make_date(int(m["y"]), int(m["m"]), int(m["d"]))


def _dmy_two_digit(m: re.Match[str], pivot: int) -> date:
    return _make_date(_pivot_year(int(m["y"]), pivot), int(m["m"]), int(m["d"]))


def _month_number(word: str) -> int:
    number = _MONTHS.get(word.lower())
    if number is None:
        raise NormalisationError(_UNRECOGNISED)
    return number


def _d_mon_y(m: re.Match[str], _pivot: int) -> date:
    return _make_date(int(m["y"]), _month_number(m["mon"]), int(m["d"]))


def _d_mon_yy(m: re.Match[str], pivot: int) -> date:
    return _make_date(_pivot_year(int(m["y"]), pivot), _month_number(m["mon"]), int(m["d"]))


def _excel(m: re.Match[str], _pivot: int) -> date:
    serial = int(m["serial"])
    if not _EXCEL_SERIAL_MIN <= serial <= _EXCEL_SERIAL_MAX:
        raise NormalisationError(_UNRECOGNISED)
    return _excel_serial_to_date(serial)


def _layout(pattern: str) -> re.Pattern[str]:
    """Compile a date layout so that ``\\d`` means the ASCII digits 0-9 only.

    Python's ``\\d`` otherwise also matches digits from other scripts; no UK export
    writes them, and the NHS number rules refuse them too, so both stay consistent.
    """
    return re.compile(pattern, re.ASCII)


# Built-in layouts, in the order they are tried. Each regex must match the whole
# (stripped) value; the first reading that names a real calendar day wins.
_D_M_Y: Final[str] = r"(?P<d>\d{1,2})(?P<sep>[/.-])(?P<m>\d{1,2})(?P=sep)"
_D_MON: Final[str] = r"(?P<d>\d{1,2})[-/ ]?(?P<mon>[A-Za-z]{3,9})\.?[-/ ]?"
_BUILT_IN_LAYOUTS: Final[tuple[tuple[re.Pattern[str], _Reader], ...]] = (
    # Day first, as UK systems write it: 03/04/2021 is 3 April, never 4 March.
    # DD/MM/YYYY and D/M/YYYY, then the same with "-" or "." (one separator throughout).
    (_layout(_D_M_Y + r"(?P<y>\d{4})" + _UK_TIME), _dmy),
    (_layout(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})" + _ISO_TIME), _dmy),
    (_layout(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"), _dmy),
    # DDMMYYYY without separators. It never competes with YYYYMMDD: whenever one
    # reading is a real day from 1900 onwards, the other is not.
    (_layout(r"(?P<d>\d{2})(?P<m>\d{2})(?P<y>\d{4})"), _dmy),
    # 03-Apr-2021, 3 April 2021, 03APR2021 (SAS DATE9.).
    (_layout(_D_MON + r"(?P<y>\d{4})" + _UK_TIME), _d_mon_y),
    # Two-digit years: 03/04/21, 03-04-21, 03.04.21 and Oracle's default 03-APR-21.
    (_layout(_D_M_Y + r"(?P<y>\d{2})" + _UK_TIME), _dmy_two_digit),
    (_layout(_D_MON + r"(?P<y>\d{2})" + _UK_TIME), _d_mon_yy),
    # Excel serial day number, optionally with a fraction of a day ("44289.0").
    (_layout(r"(?P<serial>\d{5})(?:\.\d+)?"), _excel),
)


def _read_with_format(text: str, fmt: str, pivot: int) -> date | None:
    """Read ``text`` with one strptime format: a date, ``None`` if the shape differs.

    strptime reports a shape mismatch ("time data … does not match …",
    "unconverted data remains …") differently from a matching value that names no
    real day ("day is out of range for month"); only the latter is a bad date. A
    format containing ``%y`` gets this module's pivot instead of strptime's fixed
    1969 cut-off, so the caller's pivot applies to every format alike.
    """
    try:
        parsed = datetime.strptime(text, fmt)
    except ValueError as exc:
        message = str(exc)
        if message.startswith(("time data", "unconverted data remains")):
            return None
        if "directive" in message or "stray %" in message:
            raise ValueError(f"invalid date format {fmt!r}: {message}") from None
        raise NormalisationError(_IMPOSSIBLE) from None
    result = parsed.date()
    if "%y" in fmt and "%Y" not in fmt:
        result = _make_date(_pivot_year(result.year % 100, pivot), result.month, result.day)
    return result


def date_of_birth(
    raw: str | None,
    *,
    today: date | None = None,
    two_digit_pivot: int = 30,
    formats: Sequence[str] | None = None,
) -> date | None:
    """Read a date of birth written in any layout UK exports use; ``None`` if blank.

    Layouts are tried in this order, and the first that names a real day wins:

    1. ``formats`` (strptime formats), if given, so a node can pin the layout of a
       known export. If a value fits a given format's shape but names no real day,
       that is reported as impossible rather than re-read by a built-in layout.
    2. DD/MM/YYYY and D/M/YYYY, then DD-MM-YYYY and DD.MM.YYYY. Day first, because
       these are UK systems: 03/04/2021 is 3 April. A trailing time ("03/04/2021
       00:00:00", as Excel and SQL exports write it) is ignored.
    3. ISO 8601 YYYY-MM-DD, with or without a time part (2021-04-03T00:00:00,
       "2021-04-03 00:00:00", with fraction or UTC offset). The time and offset are
       ignored: a date of birth is a calendar day, not an instant, so it is never
       shifted between time zones.
    4. YYYYMMDD, then DDMMYYYY (never both real days from 1900 on, so unambiguous).
    5. Month names: 03-Apr-2021, 3 April 2021, 03APR2021 (month names and
       abbreviations in any case).
    6. Two-digit years — DD/MM/YY, DD-MM-YY, DD.MM.YY and 03-APR-21 — read with an
       explicit pivot: ``yy <= two_digit_pivot`` is 20yy, otherwise 19yy. The pivot
       is a parameter because the right cut-off depends on the population (a
       children's service and an older people's service want different ones).
    7. Excel serial day numbers such as "44289" or "44289.0" (from a date column
       that lost its formatting), 10000 to 80000 only, using Excel's 1900 system
       with its phantom 1900-02-29: serial 61 is 1900-03-01, serial 44289 is
       2021-04-03. Four-digit numbers are refused because they are more likely
       a bare year of birth.

    Raises :class:`NormalisationError` for a value that is present but unusable:
    "impossible calendar date" (31/02/2021, month 13), "date is before 1900",
    "date is in the future" (after ``today``, default :meth:`date.today`), or
    "not a date in any accepted format". A bad date of birth usually marks a bad
    row, and the caller, not this function, decides whether to drop or report it.
    """
    if two_digit_pivot < 0 or two_digit_pivot > 99:
        raise ValueError("two_digit_pivot must be between 0 and 99")
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    limit = date.today() if today is None else today

    found: date | None = None
    for fmt in formats or ():
        found = _read_with_format(text, fmt, two_digit_pivot)
        if found is not None:
            break

    if found is None:
        first_error: NormalisationError | None = None
        for pattern, reader in _BUILT_IN_LAYOUTS:
            match = pattern.fullmatch(text)
            if match is None:
                continue
            try:
                found = reader(match, two_digit_pivot)
            except NormalisationError as exc:
                first_error = first_error or exc
                continue
            break
        if found is None:
            raise first_error or NormalisationError(_UNRECOGNISED)

    if found.year < 1900:
        raise NormalisationError(_BEFORE_1900)
    if found > limit:
        raise NormalisationError(_FUTURE)
    return found


# ---------------------------------------------------------------------------
# Postcodes
# ---------------------------------------------------------------------------

# Royal Mail's six shapes with their letter restrictions:
#   position 1 never Q, V, X; position 2 never I, J, Z;
#   the letter in A9A is one of A B C D E F G H J K P S T U W;
#   the letter in AA9A is one of A B E H M N P R V W X Y;
#   the inward code's letters never C, I, K, M, O, V.
# Plus the Girobank special case GIR 0AA.
_P1: Final[str] = "[A-PR-UWYZ]"
_P2: Final[str] = "[A-HK-Y]"
_OUTWARD: Final[str] = (
    rf"(?:{_P1}[0-9]{{1,2}}"  # A9, A99
    rf"|{_P1}{_P2}[0-9]{{1,2}}"  # AA9, AA99
    rf"|{_P1}[0-9][A-HJKPSTUW]"  # A9A
    rf"|{_P1}{_P2}[0-9][ABEHMNPRVWXY])"  # AA9A
)
_INWARD: Final[str] = "[0-9][ABD-HJLNP-UW-Z]{2}"
CANONICAL_POSTCODE: Final[re.Pattern[str]] = re.compile(rf"(?:{_OUTWARD} {_INWARD}|GIR 0AA)")
"""Full-match pattern for every output of :func:`postcode` other than ``None``."""


@lru_cache(maxsize=_CACHED_VALUES)
def postcode(raw: str | None) -> str | None:
    """Canonical UK postcode, "SW1A 1AA" style; ``None`` if missing or not a real shape.

    Upper-cases, removes all whitespace and punctuation ("sw1a1aa", " SW1A  1AA ",
    "SW1A-1AA" all agree), then puts exactly one space before the last three
    characters, the inward code, which is always a digit and two letters.

    The result must fit one of the six UK shapes (A9 9AA, A99 9AA, AA9 9AA,
    AA99 9AA, A9A 9AA, AA9A 9AA) with Royal Mail's letter restrictions, or be
    GIR 0AA. Anything else is missing rather than guessed at: O/0 and I/1 typing
    slips are *not* repaired, because a repaired postcode that is wrong would
    pull two households together. This also makes the NHS pseudo-postcodes
    (ZZ99 3VZ "no fixed abode", ZZ99 3WZ "not known", ZZ99 …Z country codes)
    missing, since Z is not allowed in the second position.
    """
    if raw is None:
        return None
    compact = re.sub(r"[^A-Z0-9]", "", unicodedata.normalize("NFKC", raw).upper())
    if len(compact) < 5:
        return None
    candidate = f"{compact[:-3]} {compact[-3:]}"
    return candidate if CANONICAL_POSTCODE.fullmatch(candidate) else None


# ---------------------------------------------------------------------------
# NHS numbers
# ---------------------------------------------------------------------------

NhsNumberStatus = Literal["valid", "missing", "invalid"]


def _nhs_digits(raw: str | None) -> tuple[NhsNumberStatus, str | None]:
    if raw is None:
        return "missing", None
    # Spaces (including non-breaking) and any kind of dash are presentation only:
    # "943 476 5919" and "943-476-5919" are the same number.
    compact = "".join(ch for ch in raw if not ch.isspace() and unicodedata.category(ch) != "Pd")
    if not compact:
        return "missing", None
    if not any(ch.isdigit() for ch in compact):
        # "N/A", "Not known", "?": a placeholder, not a mistyped number.
        return "missing", None
    if re.fullmatch(r"[0-9]{10}", compact) is None:  # ASCII only: str.isdigit accepts other scripts
        return "invalid", None
    if len(set(compact)) == 1:
        # 0000000000 and 1111111111 … 9999999999 all pass modulus 11 but are
        # sentinels typed when the number is unknown.
        return "missing", None
    if not _nhs_checksum_ok(compact):
        return "invalid", None
    return "valid", compact


def nhs_number(raw: str | None) -> str | None:
    """Ten-digit NHS number with no separators, or ``None`` if missing or invalid.

    Spaces and hyphens are removed ("943 476 5919" → "9434765919"). The result must
    be exactly ten ASCII digits passing the modulus-11 check
    (:func:`hublink.nhs.is_valid`); a number failing it is a typing error, and
    encoding it would link to whoever owns the mistyped number. All-same-digit
    numbers, including 0000000000, pass the check but are sentinels for "unknown",
    so they are missing too. Use :func:`nhs_number_status` to tell invalid from
    missing, for example to count data-quality problems.
    """
    return _nhs_digits(raw)[1]


def nhs_number_status(raw: str | None) -> NhsNumberStatus:
    """Classify a raw NHS number as "valid", "missing" or "invalid".

    "missing": blank, a sentinel (all one digit) or text with no digits at all
    ("N/A", "Not known"). "invalid": something that looks like an attempt at a
    number but is not ten digits or fails the check digit. The node counts the
    invalid ones, because they point at a data-quality problem at source, whereas
    missing ones are simply unrecorded.
    """
    return _nhs_digits(raw)[0]


# ---------------------------------------------------------------------------
# Sex
# ---------------------------------------------------------------------------

# NHS Data Dictionary person stated gender code: 1 male, 2 female, 9 indeterminate,
# X / 0 not known. Anything that does not clearly say F or M becomes missing.
_SEX_CODES: Final[dict[str, str]] = {
    "f": "F",
    "female": "F",
    "girl": "F",
    "2": "F",
    "m": "M",
    "male": "M",
    "boy": "M",
    "1": "M",
}


def sex(raw: str | None) -> str | None:
    """Return "F" or "M", or ``None`` when the value does not clearly state one of them.

    Maps the codes systems actually use, ignoring case and surrounding or repeated
    whitespace: F/M, Female/Male, girl/boy, and the NHS Data Dictionary codes 2
    (female) and 1 (male). Everything else — 9 (indeterminate), 0 and X (not
    known), U, I, "Not known", "Not specified", "Indeterminate", blank, or any
    unrecognised code — is missing: guessing would put a wrong, confidently
    matching value into the encoding.
    """
    if raw is None:
        return None
    key = " ".join(raw.split()).casefold()
    return _SEX_CODES.get(key)
