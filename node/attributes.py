"""Coarse attributes a node derives from its own columns and sends with each record.

An attribute is sent only if the node's config defines it *and* the project
releases it; the coordinator refuses any other anyway. Values are coarsened
here, inside the organisation: a date of birth leaves only as a whole-year
age band at the project's reference date, never as a date. Every value must
be a short code (at most 32 letters, digits, spaces or . _ + -), which keeps
free text and dates out; a row whose value is not one is sent without that
attribute and counted. Which columns may become attributes at all is the
project's decision (``released_attributes``), checked on both sides.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from hublink.config import AttributeSection
from node import normalise
from node.encoder import EncodedRecord
from node.errors import NodeError
from node.prepare import PreparedRecord

DERIVATIONS = ("age_band", "code", "flag")

#: Age bands in whole years; a child of five or more is "5+".
AGE_BANDS = ("0-1", "1-2", "2-3", "3-4", "4-5")
OLDER = "5+"

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,31}$")
_YES = {"y", "yes", "true", "1"}
_NO = {"n", "no", "false", "0", ""}


class AttributeConfigError(NodeError, ValueError):
    """The node's attributes cannot be sent to this project; the message says which and why."""


@dataclass(frozen=True)
class Derived:
    """Each record's attributes, in input order, and how many values could not be used."""

    attributes: tuple[tuple[tuple[str, str], ...], ...]
    unusable: Mapping[str, int]


def check(specs: Mapping[str, AttributeSection], released: Sequence[str]) -> None:
    """Refuse, before anything is sent, attributes the project does not release."""
    for name, spec in specs.items():
        if spec.derive not in DERIVATIONS:
            raise AttributeConfigError(
                f"attributes.{name}.derive must be one of {', '.join(DERIVATIONS)}, "
                f"not {spec.derive!r}"
            )
        if name not in released:
            raise AttributeConfigError(
                f"attribute {name!r} is configured but the project does not release it "
                f"(it releases: {', '.join(released) or 'none'}); remove [attributes.{name}]"
            )


def age_band(born: date, on: date) -> str | None:
    """Whole years of age at ``on`` as a band ("0-1" … "4-5", "5+"); None if born after ``on``."""
    if born > on:
        return None
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return AGE_BANDS[years] if years < len(AGE_BANDS) else OLDER


def derive_one(
    raw: str, spec: AttributeSection, reference: date, date_formats: Sequence[str]
) -> str | None:
    """One attribute value from one raw cell, or None when it is missing or unusable."""
    text = raw.strip()
    if spec.derive == "age_band":
        try:
            born = normalise.date_of_birth(text, formats=list(date_formats) or None)
        except normalise.NormalisationError:
            return None
        return age_band(born, reference) if born else None
    if spec.derive == "flag":
        lowered = text.lower()
        if lowered in _YES:
            return "yes"
        return "no" if lowered in _NO else None
    if not text:
        return None
    return text.upper() if _CODE.fullmatch(text) else None


def derive(
    rows: Sequence[Mapping[str, str]],
    specs: Mapping[str, AttributeSection],
    reference: date,
    date_formats: Sequence[str] = (),
) -> Derived:
    """Every row's attributes (raw cells keyed by column in, coarse codes out)."""
    unusable = dict.fromkeys(specs, 0)
    out = []
    for row in rows:
        pairs = []
        for name, spec in sorted(specs.items()):
            value = derive_one(row.get(spec.column, ""), spec, reference, date_formats)
            if value is None:
                if row.get(spec.column, "").strip():
                    unusable[name] += 1
                continue
            pairs.append((name, value))
        out.append(tuple(pairs))
    return Derived(tuple(out), unusable)


def attach(
    records: Sequence[EncodedRecord],
    prepared: Sequence[PreparedRecord],
    specs: Mapping[str, AttributeSection],
    released: Sequence[str],
    reference_date: str,
    date_formats: Sequence[str] = (),
) -> list[EncodedRecord]:
    """The encoded records with their released attributes, derived from the prepared rows.

    ``records`` and ``prepared`` are in the same order (``encode_records``
    keeps it). Raises AttributeConfigError if the node defines an attribute
    the project does not release.
    """
    if not specs:
        return list(records)
    check(specs, released)
    reference = date.fromisoformat(reference_date) if reference_date else date.today()
    derived = derive([p.extra for p in prepared], specs, reference, date_formats)
    return [
        dataclasses.replace(record, attributes=pairs)
        for record, pairs in zip(records, derived.attributes, strict=True)
    ]
