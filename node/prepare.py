"""Normalising rows: from the raw cells of a source row to the values the encoder hashes.

The stage between reading (``node.source``, with consent decided by
``node.consent``) and encoding (``node.encoder``). Values are normalised
before clkhash sees them, both so that the same child written two ways
hashes alike, and because clkhash 0.18.3's own date handling raises on
impossible calendar dates. The per-field rules live in ``node.normalise``;
this module applies them to whole rows, in schema order. What it returns is
still identifying and never leaves the node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from hublink.spec import LinkageSpec
from node import fields as added
from node import normalise
from node.checks import Finding, finding, usable
from node.derived import DERIVATIONS, derive_values
from node.errors import NodeError
from node.source import SourceRow

#: How each linkage field is normalised; the output is the string clkhash hashes.
Normaliser = Callable[[str], str | None]


def _date_text(value: date | None) -> str | None:
    return None if value is None else value.strftime("%d%m%Y")


NO_IDENTIFIER = (
    "no usable identifier: every name, date of birth, postcode and NHS number is blank, "
    "a placeholder or invalid"
)


class RowError(NodeError, ValueError):
    """A row that cannot be used; names the field (if one is to blame) and why."""

    def __init__(self, row: int, field: str, reason: str) -> None:
        self.row = row
        self.field = field
        self.reason = reason
        super().__init__(f"row {row}, field {field}: {reason}" if field else f"row {row}: {reason}")

    def __reduce__(self) -> tuple[type[RowError], tuple[int, str, str]]:
        # Pickled as its parts, so one raised in an encode worker (node.encode_pool) reaches
        # the node as the same error, row, field and reason.
        return (RowError, (self.row, self.field, self.reason))


@dataclass(frozen=True)
class PreparedRecord:
    """A row after normalisation, before hashing: still identifying, never leaves the node."""

    local_id: str
    values: tuple[str, ...]
    extra: Mapping[str, str] = field(default_factory=dict)
    """Raw cells of the columns released attributes are derived from (node.attributes)."""


def normalisers(
    date_formats: Sequence[str] = (), spec: LinkageSpec | None = None
) -> dict[str, Normaliser]:
    """The normaliser for each field: the six built in and, with ``spec``, its postcode
    country and the fields it adds beyond the six, each by the normaliser it names
    (``node.fields``)."""
    formats = list(date_formats) or None

    def dob(raw: str) -> str | None:
        return _date_text(normalise.date_of_birth(raw, formats=formats))

    rules: dict[str, Normaliser] = {
        "given_name": normalise.given_name,
        "family_name": normalise.family_name,
        "date_of_birth": dob,
        "sex": normalise.sex,
        "postcode": normalise.postcode,
        "nhs_number": normalise.nhs_number,
    }
    if spec is not None:
        rules["postcode"] = added.postcode_for(spec.postcode_country)
        rules.update({name: added.NORMALISERS[rule] for name, rule in spec.added_fields.items()})
    return rules


def normalise_checked(
    row: SourceRow, fields: Sequence[str], rules: Mapping[str, Normaliser]
) -> tuple[tuple[str, ...], list[Finding]]:
    """The row's values in schema order, normalised, and why any of them is missing.

    Missing is missing: a value that is present but unusable (an impossible
    date of birth, a postcode of no shape its country uses, an NHS number
    failing its check, a placeholder such as "N/A" in an added field) becomes
    '' like a blank one, and the record still links on its
    other fields; the finding says which field and why (``node.checks``),
    never the value. Features the schema derives from others
    (``node.derived``, e.g. the canonical given name) are computed from the
    normalised values, never read.
    """
    out = []
    findings: list[Finding] = []
    for name in fields:
        if name in DERIVATIONS:
            out.append("")
            continue
        raw = row.values.get(name, "")
        rule = rules.get(name)
        found: Finding | None = None
        try:
            value = rule(raw) if rule else (raw.strip() or None)
        except added.Placeholder as exc:
            value, found = None, Finding(name, "placeholder", str(exc))
        except normalise.NormalisationError as exc:
            value, found = None, finding(name, raw, str(exc))
        if not value:
            findings.append(found or finding(name, raw))
        out.append(value or "")
    return derive_values(tuple(fields), tuple(out)), findings


def normalise_row(
    row: SourceRow, fields: Sequence[str], rules: Mapping[str, Normaliser]
) -> tuple[str, ...]:
    """The row's values in schema order, normalised; a missing or unusable value becomes ''.

    Raises RowError only when no identifying value is left (``node.checks.usable``).
    """
    values, _ = normalise_checked(row, fields, rules)
    if not usable(fields, values, DERIVATIONS):
        raise RowError(row.row, "", NO_IDENTIFIER)
    return values


def prepare_rows(
    rows: Iterable[SourceRow], fields: Sequence[str], rules: Mapping[str, Normaliser]
) -> list[PreparedRecord]:
    """Normalise every row (raising RowError at the first unusable one) without hashing anything.

    Kept apart from encoding so that bad input is reported before the node
    contacts the coordinator, and nothing is hashed before the project's
    encoding hash has been checked.
    """
    return [PreparedRecord(row.local_id, normalise_row(row, fields, rules)) for row in rows]
