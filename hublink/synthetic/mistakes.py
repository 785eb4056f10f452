"""One organisation's copy of a child: the true details, independent mistakes, its house style.

Every copy draws each kind of mistake on its own (``ErrorRates``), so two
organisations rarely make the same one, which is what real linkage has to
cope with; ``messy`` forms are recoverable by a normaliser, mistakes are not.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import date

from hublink.synthetic.layouts import ErrorRates, OrganisationLayout
from hublink.synthetic.names import NICKNAMES, SPELLING_VARIANTS, SURNAMES
from hublink.synthetic.places import area_code, moved_postcode
from hublink.synthetic.population import REFERENCE_DATE, Child

_MONTH_ABBREVIATIONS = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip

_TYPO_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _typo(rng: random.Random, name: str) -> str:
    """One keyboard slip, never touching the capitalised first letter."""
    for _ in range(8):
        op = rng.randrange(4)
        length = len(name)
        if op == 0:
            i = rng.randint(1, length)
            out = name[:i] + rng.choice(_TYPO_LETTERS) + name[i:]
        elif op == 1 and length >= 3:
            i = rng.randrange(1, length)
            out = name[:i] + name[i + 1 :]
        elif op == 2 and length >= 2:
            i = rng.randrange(1, length)
            out = name[:i] + rng.choice(_TYPO_LETTERS) + name[i + 1 :]
        elif op == 3 and length >= 3:
            i = rng.randrange(1, length - 1)
            out = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        else:
            continue
        if out != name:
            return out
    return name + rng.choice(_TYPO_LETTERS)


def _changed_family_name(rng: random.Random, family_name: str) -> str:
    other = rng.choice(SURNAMES)
    while other == family_name:
        other = rng.choice(SURNAMES)
    style = rng.randrange(3)
    if style == 0:
        return other
    if style == 1:
        return f"{family_name}-{other}"
    return f"{other}-{family_name}"


def _digit_error(rng: random.Random, born: date) -> date:
    """Move the last digit of the day or of the year by one, keeping a real date.

    Half the time the day changes, half the year; when only one of them can
    (the 30th of a 30-day month cannot move its day's last digit, 29 February
    cannot move its year) the other is used. A date after the reference date is
    never produced: source systems refuse future dates of birth at entry.
    """

    def shifted(part: str, value: int) -> list[date]:
        options = []
        for step in (-1, 1):
            if 0 <= value % 10 + step <= 9:
                try:
                    moved = born.replace(**{part: value + step})
                except ValueError:
                    continue
                if moved <= REFERENCE_DATE:
                    options.append(moved)
        return options

    days = shifted("day", born.day)
    years = shifted("year", born.year)
    if days and (not years or rng.random() < 0.5):
        return rng.choice(days)
    return rng.choice(years) if years else born


def _names(
    rng: random.Random, child: Child, rates: ErrorRates, layout: OrganisationLayout
) -> tuple[str, str, bool]:
    """The given and family names as this copy holds them, and whether they are a placeholder.

    A placeholder "Baby" record holds the mother's family name and leaves the
    rest alone: it was made before anyone chose a name to misspell.
    """
    if (
        layout.registers_newborns
        and (REFERENCE_DATE - child.date_of_birth).days < 365
        and rng.random() < rates.baby_placeholder
    ):
        return rng.choice(("Baby", "BABY")), child.mother_family_name or child.family_name, True
    given = child.given_name
    if rng.random() < min(1.0, rates.nickname * layout.nickname_factor) and given in NICKNAMES:
        given = rng.choice(NICKNAMES[given])
    elif rng.random() < rates.spelling_variant and given in SPELLING_VARIANTS:
        given = rng.choice(SPELLING_VARIANTS[given])
    family = child.family_name
    if child.other_family_form and rng.random() < rates.surname_other_form:
        family = child.other_family_form
    if "-" in family and rng.random() < rates.hyphen_part_dropped:
        family = rng.choice(family.split("-"))
    if rng.random() < rates.family_name_change:
        family = _changed_family_name(rng, family)
    return given, family, False


def _format_date(born: date, date_format: str) -> str:
    # %b depends on the C locale; spell the English abbreviation out so files
    # are identical on every machine.
    if "%b" in date_format:
        date_format = date_format.replace("%b", _MONTH_ABBREVIATIONS[born.month - 1])
    return born.strftime(date_format)


def copy_of(
    rng: random.Random, child: Child, rates: ErrorRates, layout: OrganisationLayout
) -> dict[str, str]:
    """One organisation's version of a child: true details, independent errors, house style."""
    given, family, placeholder = _names(rng, child, rates, layout)
    if not placeholder and rng.random() < rates.typo:
        if rng.random() < 0.5:
            given = _typo(rng, given)
        else:
            family = _typo(rng, family)

    born = child.date_of_birth
    if (
        rng.random() < rates.dob_day_month_swap
        and born.day <= 12
        and born.month <= 12
        and born.day != born.month
    ):
        born = date(born.year, born.day, born.month)
    if rng.random() < rates.dob_digit_error:
        born = _digit_error(rng, born)

    sex = "" if rng.random() < rates.sex_missing else layout.sex_codes.get(child.sex, "")

    postcode = child.postcode
    area = area_code(postcode)
    if rng.random() < rates.missing_postcode:
        postcode = ""
    else:
        if rng.random() < rates.moved_postcode:
            postcode = moved_postcode(rng, postcode)
            area = area_code(postcode)
        if rng.random() < layout.postcode_untidy_share:
            style = rng.randrange(3)
            if style != 1:
                postcode = postcode.replace(" ", "")
            if style != 0:
                postcode = postcode.lower()

    nhs_number = ""
    if (
        "nhs_number" in layout.columns
        and rng.random() < layout.nhs_number_coverage
        and rng.random() >= rates.missing_nhs_number
    ):
        nhs_number = child.nhs_number
        if rng.random() < layout.nhs_number_spaced_share:
            nhs_number = f"{nhs_number[:3]} {nhs_number[3:6]} {nhs_number[6:]}"

    values = {
        "area": area,
        "given_name": given,
        "family_name": family,
        "date_of_birth": _format_date(born, layout.date_format),
        "sex": sex,
        "postcode": postcode,
        "nhs_number": nhs_number,
    }
    if rates.messy:
        _make_messy(rng, values, born, child.sex, rates.messy)
    return values


_TITLES = {"F": ("Miss", "Ms"), "M": ("Master", "Mr")}
_PLACEHOLDERS = ("BABY", "UNKNOWN", "Baby Girl", "Baby Boy", "INFANT OF {family}", "Twin 1")
_MESSY_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%b-%Y", "%d.%m.%Y", "%d/%m/%y", "%Y%m%d")
_MESSY_SEX = {"F": ("female", "FEMALE", "2", "f", "Girl"), "M": ("male", "MALE", "1", "m", "Boy")}


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _messy_name(rng: random.Random, name: str, sex: str, family: str, given: bool) -> str:
    kind = rng.randrange(5 if given else 4)
    if kind == 0:
        return f"  {name}   " if rng.random() < 0.5 else name.replace("-", " - ").replace(" ", "  ")
    if kind == 1:
        return name.upper() if rng.random() < 0.5 else name.lower()
    if kind == 2:
        stripped = _strip_accents(name)
        return stripped if stripped != name else name.upper()
    if kind == 3:
        return f"{rng.choice(_TITLES[sex])} {name}" if given else f"{name.upper()} "
    return rng.choice(_PLACEHOLDERS).format(family=family.upper())


def _make_messy(
    rng: random.Random, values: dict[str, str], born: date, sex: str, rate: float
) -> None:
    """Rewrite some fields in messy forms a normaliser should undo (or treat as missing)."""
    family = values["family_name"]
    if rng.random() < rate:
        values["given_name"] = _messy_name(rng, values["given_name"], sex, family, True)
    if rng.random() < rate:
        values["family_name"] = _messy_name(rng, family, sex, family, False)
    if rng.random() < rate:
        values["date_of_birth"] = _format_date(born, rng.choice(_MESSY_DATE_FORMATS))
    if rng.random() < rate and values["sex"]:
        values["sex"] = rng.choice(_MESSY_SEX.get(sex, ("",)))
    if rng.random() < rate and values["postcode"]:
        code = values["postcode"]
        style = rng.randrange(3)
        values["postcode"] = (
            code.replace(" ", "") if style == 0 else code.lower() if style == 1 else f" {code} "
        )
    if rng.random() < rate and values["nhs_number"]:
        digits = values["nhs_number"].replace(" ", "")
        sep = rng.choice(("-", " "))
        values["nhs_number"] = f"{digits[:3]}{sep}{digits[3:6]}{sep}{digits[6:]}"
