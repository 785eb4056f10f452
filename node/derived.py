"""Values derived at the node from normalised identifiers, so that common errors still overlap.

A record-level Bloom filter scores two records by how many hashed tokens they
share. Some differences between two records of one child are not errors of
spelling that n-grams absorb, but a change of form: a short form of the given
name (Libby for Elizabeth), day and month written the other way round, a
hyphenated or changed surname, a new postcode in the same district after a
move. For each, a schema feature can carry a derived value that the two forms
share. The derivations run inside the node on already normalised values, before
hashing; nothing derived leaves the node except inside the encoding.

A schema opts in by naming a feature after a derivation (``DERIVATIONS``);
the feature's value is then computed from the feature it derives from and
never read from the node's file. The canonical-name table is data
(``hublink/schemas/given-names.csv``); its digest is pinned in the project's
encoding hash (``hublink.spec``) so that two nodes with different tables never
have their encodings compared.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from hublink.spec import NAME_TABLE_FEATURE, NAME_TABLE_FILE

NAME_TABLE = NAME_TABLE_FILE


def _read_table(text: str) -> dict[str, str]:
    """form -> canonical, from the CSV text (comment lines start with '#'); chains refused."""
    rows = csv.reader(line for line in io.StringIO(text) if not line.startswith("#"))
    header = next(rows, None)
    if header != ["form", "canonical"]:
        raise ValueError(f"{NAME_TABLE}: the header must be form,canonical, not {header}")
    table: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        if len(row) != 2 or not all(part.strip() for part in row):
            raise ValueError(f"{NAME_TABLE}: line {number} must be form,canonical")
        form, canonical = (part.strip() for part in row)
        if form in table:
            raise ValueError(f"{NAME_TABLE}: {form!r} is listed twice")
        table[form] = canonical
    chained = sorted(set(table.values()) & set(table))
    if chained:
        raise ValueError(f"{NAME_TABLE}: {chained[0]!r} is both a form and a canonical name")
    return table


@cache
def name_table() -> Mapping[str, str]:
    """The shipped canonical-name table (read once)."""
    text = resources.files("hublink").joinpath("schemas", NAME_TABLE).read_text("utf-8")
    return _read_table(text)


def canonical_given_name(given: str) -> str:
    """Each word of a normalised given name replaced by its canonical form, if it has one.

    "libby" and "elizabeth" both give "elizabeth"; "mary jane" stays itself.
    """
    table = name_table()
    return " ".join(table.get(word, word) for word in given.split())


def date_sorted(ddmmyyyy: str) -> str:
    """Day and month in ascending order, then the year: a day/month swap gives the same value.

    "03042021" and "04032021" both give "03042021". Positional unigrams of this
    value still cost one token for a one-digit error in the day or year.
    """
    if len(ddmmyyyy) != 8:
        return ""
    day, month, year = ddmmyyyy[:2], ddmmyyyy[2:4], ddmmyyyy[4:]
    low, high = sorted((day, month))
    return f"{low}{high}{year}"


def date_order(ddmmyyyy: str) -> str:
    """Whether the day is above the month ("D"), below ("M") or equal ("E"): what sorting lost."""
    if len(ddmmyyyy) != 8:
        return ""
    day, month = ddmmyyyy[:2], ddmmyyyy[2:4]
    return "D" if day > month else "M" if day < month else "E"


def family_name_first(family: str) -> str:
    """The first part of a family name ("bell" of "bell vaughan"; normalised parts are spaced)."""
    parts = family.split()
    return parts[0] if parts else ""


def family_name_last(family: str) -> str:
    """The last part of a family name ("vaughan" of "bell vaughan"; "bell" of "bell")."""
    parts = family.split()
    return parts[-1] if parts else ""


def year_of_birth(ddmmyyyy: str) -> str:
    """The year of a DDMMYYYY date ("2021" of "03042021"): kept by day/month swaps and day slips."""
    return ddmmyyyy[-4:]


def day_month_smaller(ddmmyyyy: str) -> str:
    """The smaller of the day and the month ("04" of "15042021"; "03" of "03042021" and "04032021").

    For most dates (a day above 12) this is the month. A day/month swap keeps it,
    an error in the year keeps it, and a slip in the day changes it only when the
    day is the smaller of the two (about one date in six). What salts the given
    name (hublink/schemas/field-groups.json): a salt that a typing error changes
    makes a duplicate's given names look unrelated.
    """
    return date_sorted(ddmmyyyy)[:2]


def postcode_outward(postcode: str) -> str:
    """The outward code of a canonical postcode ("CF10" of "CF10 1AA"): kept by local moves."""
    return postcode.split(" ")[0] if " " in postcode else ""


@dataclass(frozen=True)
class Derivation:
    """A derived feature: the feature it is computed from, and how."""

    source: str
    derive: Callable[[str], str]


#: Feature identifier -> how its value is derived. A schema feature with one of
#: these names is derived; every other feature is read from the node's file.
DERIVATIONS: Mapping[str, Derivation] = {
    NAME_TABLE_FEATURE: Derivation("given_name", canonical_given_name),
    "date_of_birth_sorted": Derivation("date_of_birth", date_sorted),
    "date_of_birth_order": Derivation("date_of_birth", date_order),
    "family_name_first": Derivation("family_name", family_name_first),
    "family_name_last": Derivation("family_name", family_name_last),
    "postcode_outward": Derivation("postcode", postcode_outward),
    "year_of_birth": Derivation("date_of_birth", year_of_birth),
    "day_month_smaller": Derivation("date_of_birth", day_month_smaller),
}


def derivable(name: str, fields: tuple[str, ...]) -> bool:
    """Whether a record's value of ``name`` can be read from ``fields`` or derived from them."""
    return name in fields or (name in DERIVATIONS and DERIVATIONS[name].source in fields)


def derived_value(name: str, fields: tuple[str, ...], values: tuple[str, ...]) -> str:
    """One feature's value from a record's values: read when in ``fields``, else derived
    (``derivable`` says whether it can be)."""
    if name in fields:
        return values[fields.index(name)]
    derivation = DERIVATIONS[name]
    source = values[fields.index(derivation.source)] if derivation.source in fields else ""
    return derivation.derive(source) if source else ""


def derive_values(fields: tuple[str, ...], values: tuple[str, ...]) -> tuple[str, ...]:
    """``values`` (normalised, in ``fields`` order) with every derived feature filled in."""
    if not any(name in DERIVATIONS for name in fields):
        return values
    position = {name: i for i, name in enumerate(fields)}
    out = list(values)
    for i, name in enumerate(fields):
        derivation = DERIVATIONS.get(name)
        if derivation is not None:
            source = position.get(derivation.source)
            out[i] = (
                derivation.derive(values[source]) if source is not None and values[source] else ""
            )
    return tuple(out)
