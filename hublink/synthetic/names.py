"""The generator's word lists, read once from the data files beside this module.

Lists of common names are facts about the population, so they are data, not
code (as clkhash keeps its own): ``data/given_names.csv``,
``data/family_names.csv``, ``data/nicknames.json``,
``data/spelling_variants.json`` and ``data/outward_codes.csv``. Each CSV may
start with ``#`` comment lines that say where it came from. The generator
draws from these lists by position, so their order is part of what makes a
seed reproducible.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

_DATA = resources.files("hublink.synthetic") / "data"


def _rows(name: str) -> list[dict[str, str]]:
    text = (_DATA / name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def _given_names(sex: str) -> tuple[str, ...]:
    return tuple(row["given_name"] for row in _rows("given_names.csv") if row["sex"] == sex)


GIRLS: tuple[str, ...] = _given_names("F")
BOYS: tuple[str, ...] = _given_names("M")
SURNAMES: tuple[str, ...] = tuple(row["family_name"] for row in _rows("family_names.csv"))

NICKNAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        name: tuple(forms)
        for name, forms in json.loads((_DATA / "nicknames.json").read_text(encoding="utf-8"))[
            "nicknames"
        ].items()
    }
)
"""Given name -> informal forms a busy receptionist might type instead (William -> Bill)."""

SPELLING_VARIANTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        name: tuple(forms)
        for name, forms in json.loads(
            (_DATA / "spelling_variants.json").read_text(encoding="utf-8")
        )["variants"].items()
    }
)
"""Given name -> other spellings of the same name (Muhammad -> Mohammed, Zoë -> Zoe)."""

# Polish family names agree with the bearer's sex: Kowalski (him), Kowalska (her).
_GENDERED_ENDINGS = (("ski", "ska"), ("cki", "cka"), ("dzki", "dzka"))


def feminine_form(family_name: str) -> str | None:
    """The feminine form of a gendered (Polish) family name, or None if it has none.

    Only the last part of a double-barrelled name agrees (Nowak-Kowalska).
    """
    for masculine, feminine in _GENDERED_ENDINGS:
        if family_name.endswith(masculine):
            return family_name[: -len(masculine)] + feminine
    return None


def form_for(family_name: str, sex: str) -> str:
    """The family name as a person of ``sex`` ("F"/"M") bears it: Kowalska for a girl."""
    if sex == "F":
        return feminine_form(family_name) or family_name
    return family_name


OUTWARD_CODES: tuple[str, ...] = tuple(row["outward_code"] for row in _rows("outward_codes.csv"))
"""Postcode outward codes of every UK shape, weighted towards Wales."""
