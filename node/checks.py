"""Why a value was not used: blank, a placeholder, or invalid — counted, never kept.

Missing is missing: a date of birth that is impossible or in the future, a
postcode of no UK shape or an NHS number failing its check digit is hashed as
missing, and the record still links on its other fields. Dropping the whole
record would leave out a child over one mistyped digit. What the node keeps
instead is a count per field of each kind of gap and, for invalid values, the
reason ("impossible calendar date"), so the exclusion report and the plan can
say how much of each column was unusable; the value itself is never kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from node import normalise

Status = Literal["blank", "placeholder", "invalid"]

#: Fields whose values, alone, cannot tell one child from another (sex has two values).
NOT_IDENTIFYING: Final[frozenset[str]] = frozenset({"sex"})

_SEX_NOT_STATED: Final[frozenset[str]] = frozenset(
    {"9", "0", "x", "u", "i", "unknown", "not known", "not stated", "not specified",
     "indeterminate", "other", "unspecified", "prefer not to say"}
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One value that was not used: the field, what kind of gap, and why (never the value)."""

    field: str
    status: Status
    reason: str = ""


def _postcode_finding(raw: str) -> Finding:
    compact = re.sub(r"[^A-Z0-9]", "", unicodedata.normalize("NFKC", raw).upper())
    if compact.startswith("ZZ99"):
        return Finding("postcode", "placeholder", "NHS pseudo-postcode")
    return Finding("postcode", "invalid", "not a UK postcode")


def _nhs_finding(raw: str) -> Finding:
    if normalise.nhs_number_status(raw) == "missing":
        return Finding("nhs_number", "placeholder", "a placeholder, not a number")
    digits = "".join(ch for ch in raw if ch.isdigit())
    if len(digits) == 10:
        return Finding("nhs_number", "invalid", "fails the check digit")
    return Finding("nhs_number", "invalid", "not ten digits")


def finding(name: str, raw: str, error: str = "") -> Finding:
    """Why the raw value of field ``name`` normalised to nothing (``error``: the normaliser's)."""
    if not raw.strip():
        return Finding(name, "blank")
    if error:
        return Finding(name, "invalid", error)
    if name in ("given_name", "family_name"):
        folded = unicodedata.normalize("NFKD", raw).casefold()
        if any(ch.isalpha() for ch in raw) and not any("a" <= ch <= "z" for ch in folded):
            return Finding(name, "invalid", "no Latin letters")
        return Finding(name, "placeholder", "a placeholder, not a name")
    if name == "postcode":
        return _postcode_finding(raw)
    if name == "nhs_number":
        return _nhs_finding(raw)
    if name == "sex":
        if " ".join(raw.split()).casefold() in _SEX_NOT_STATED:
            return Finding(name, "placeholder", "not stated")
        return Finding(name, "invalid", "not a recognised code")
    return Finding(name, "invalid", "cannot be used")


def usable(fields: Sequence[str], values: Sequence[str], derived: Iterable[str]) -> bool:
    """Whether a record has at least one identifying value to link on."""
    skip = set(derived) | NOT_IDENTIFYING
    return any(v for f, v in zip(fields, values, strict=True) if f not in skip)


@dataclass
class Tally:
    """Counts of findings per field and kind, and of invalid values per reason."""

    fields: Sequence[str]
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    reasons: dict[str, Counter[str]] = field(default_factory=dict)
    rows: int = 0

    def add(self, findings: Iterable[Finding]) -> None:
        self.rows += 1
        for found in findings:
            self.counts.setdefault(found.field, Counter())[found.status] += 1
            if found.status == "invalid":
                self.reasons.setdefault(found.field, Counter())[found.reason] += 1

    def table(self, columns: Mapping[str, str]) -> list[FieldCounts]:
        """Per field, in schema order: its column and counts (what the report holds)."""
        out: list[FieldCounts] = []
        for name in self.fields:
            counts = self.counts.get(name, Counter())
            column = columns.get(name, "")
            if not column and name in ("given_name", "family_name") and "full_name" in columns:
                column = columns["full_name"]
            out.append(
                FieldCounts(
                    name,
                    column,
                    counts["blank"],
                    counts["placeholder"],
                    counts["invalid"],
                    tuple(sorted(self.reasons.get(name, Counter()).items())),
                )
            )
        return out


@dataclass(frozen=True)
class FieldCounts:
    """How many of one field's values were not used, by kind; invalid ones by reason."""

    field: str
    column: str
    blank: int
    placeholder: int
    invalid: int
    invalid_reasons: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "field": self.field,
            "column": self.column,
            "blank": self.blank,
            "placeholder": self.placeholder,
            "invalid": self.invalid,
            "invalid_reasons": dict(self.invalid_reasons),
        }
