"""Consent rules as data, and the one decision each record gets.

An organisation decides, record by record and under its own rules, what may
be shared for a project's purpose. The rules are data (a TOML policy read by
``node.policy_file``); this module holds their plain form and evaluates them.
It knows nothing of files, CSV or the network, so every rule kind can be
tested on its own and the same decision code serves ``upload`` and ``plan``.

A record is a mapping from the export's column names to raw cell text. Rules
are tried in policy order and the first that excludes a record decides it:

* ``require`` keeps only records its condition matches,
* ``exclude`` drops records its condition matches,
* a National Data Opt-out rule drops records whose NHS number is opted out
  (or missing from a cleaned allow-list), and says what happens to records
  with no usable NHS number, because council records often lack one.

A date a rule needs that is present but unreadable cannot be decided either
way, so it raises :class:`UndecidableRecord`; the caller puts the row in the
rejects file rather than guessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from node import normalise
from node.errors import NodeError

Action = Literal["require", "exclude"]
NoNhsNumber = Literal["include", "exclude"]

#: Decision names that are not rules: a record that passed every rule, and one
#: whose consent was withdrawn after an earlier upload.
INCLUDED = "included"
WITHDRAWN = "withdrawn"
RESERVED_NAMES = frozenset({INCLUDED, WITHDRAWN})

_LATEST = date(9999, 12, 31)


class UndecidableRecord(NodeError, ValueError):
    """A value a rule needs is present but unreadable; names the column, never the value."""

    def __init__(self, column: str, reason: str) -> None:
        self.column = column
        self.reason = reason
        super().__init__(f"column {column!r}: {reason}")


# ----------------------------------------------------------------- conditions
@dataclass(frozen=True)
class Equals:
    """The column's value equals ``value`` (spaces around and case ignored)."""

    column: str
    value: str


@dataclass(frozen=True)
class OneOf:
    """The column's value is one of ``values`` (spaces around and case ignored)."""

    column: str
    values: frozenset[str]


@dataclass(frozen=True)
class Blank:
    """The column is blank (``blank=True``) or holds something (``blank=False``)."""

    column: str
    blank: bool = True


@dataclass(frozen=True)
class InList:
    """The column's value is in a list held in a file (already read into ``members``).

    ``nhs_number`` compares canonical NHS numbers, so ``943 476 5919`` in the
    data matches ``9434765919`` in the list; otherwise text is compared with
    spaces around and case ignored.
    """

    column: str
    members: frozenset[str]
    nhs_number: bool = False


@dataclass(frozen=True)
class AgeBelow:
    """Age in whole years on ``on`` is below ``years`` (a blank date never matches)."""

    column: str
    years: int
    on: date


@dataclass(frozen=True)
class AgeAtLeast:
    """Age in whole years on ``on`` is ``years`` or more (a blank date never matches)."""

    column: str
    years: int
    on: date


@dataclass(frozen=True)
class DateBefore:
    """The column holds a date strictly before ``before`` (a blank date never matches)."""

    column: str
    before: date


@dataclass(frozen=True)
class DateOnOrAfter:
    """The column holds a date on or after ``date`` (a blank date never matches)."""

    column: str
    on_or_after: date


@dataclass(frozen=True)
class AllOf:
    """Every part matches."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one part matches."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class NationalOptOut:
    """Matches the records the National Data Opt-out says must not be used.

    ``opted_out`` is the list of opted-out NHS numbers; ``allowed`` is a
    cleaned allow-list (only those numbers may be used). Either or both may
    be given. A record with no valid NHS number matches when
    ``no_nhs_number`` is ``"exclude"``.
    """

    column: str
    opted_out: frozenset[str] | None
    allowed: frozenset[str] | None
    no_nhs_number: NoNhsNumber


Condition = (
    Equals
    | OneOf
    | Blank
    | InList
    | AgeBelow
    | AgeAtLeast
    | DateBefore
    | DateOnOrAfter
    | AllOf
    | AnyOf
    | NationalOptOut
)


@dataclass(frozen=True)
class Rule:
    """A named rule: keep only (``require``) or drop (``exclude``) records its condition matches.

    ``line`` is the line of the policy file the rule starts on, so later
    errors (a column the data lacks) can point at it.
    """

    name: str
    action: Action
    condition: Condition
    line: int = 0


@dataclass(frozen=True)
class Policy:
    """An ordered set of rules and the SHA-256 of the file they came from."""

    rules: tuple[Rule, ...]
    sha256: str = ""
    purpose: str = ""

    def columns(self) -> dict[str, int]:
        """Every column a rule reads, with the line of the first rule that reads it."""
        out: dict[str, int] = {}
        for rule in self.rules:
            for column in condition_columns(rule.condition):
                out.setdefault(column, rule.line)
        return out

    def rule_names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.rules)


@dataclass(frozen=True)
class Summary:
    """What leaves the node about consent: the policy's hash and counts per decision."""

    policy_sha256: str
    counts: dict[str, int]


def condition_columns(condition: Condition) -> list[str]:
    """The columns a condition reads, in order."""
    if isinstance(condition, AllOf | AnyOf):
        return [c for part in condition.parts for c in condition_columns(part)]
    return [condition.column]


# ------------------------------------------------------------------ deciding
def _text(value: str) -> str:
    return " ".join(value.split()).casefold()


def canonical_list_entry(value: str, *, nhs_number: bool) -> str | None:
    """How a list file's entry and a record's value are compared (None: unusable)."""
    if nhs_number:
        return normalise.nhs_number(value)
    return _text(value) or None


def _date(record: Mapping[str, str], column: str) -> date | None:
    raw = record.get(column, "")
    try:
        return normalise.date_of_birth(raw, today=_LATEST)
    except normalise.NormalisationError as exc:
        raise UndecidableRecord(column, str(exc)) from None


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def matches(condition: Condition, record: Mapping[str, str]) -> bool:
    """Whether ``record`` (column -> raw text) satisfies ``condition``."""
    if isinstance(condition, AllOf):
        return all(matches(part, record) for part in condition.parts)
    if isinstance(condition, AnyOf):
        return any(matches(part, record) for part in condition.parts)
    raw = record.get(condition.column, "")
    if isinstance(condition, Equals):
        return _text(raw) == _text(condition.value)
    if isinstance(condition, OneOf):
        return _text(raw) in {_text(v) for v in condition.values}
    if isinstance(condition, Blank):
        return (not raw.strip()) == condition.blank
    if isinstance(condition, InList):
        entry = canonical_list_entry(raw, nhs_number=condition.nhs_number)
        return entry is not None and entry in condition.members
    if isinstance(condition, AgeBelow | AgeAtLeast):
        born = _date(record, condition.column)
        if born is None:
            return False
        age = _age(born, condition.on)
        return age < condition.years if isinstance(condition, AgeBelow) else age >= condition.years
    if isinstance(condition, DateBefore):
        found = _date(record, condition.column)
        return found is not None and found < condition.before
    if isinstance(condition, DateOnOrAfter):
        found = _date(record, condition.column)
        return found is not None and found >= condition.on_or_after
    return _opted_out(condition, raw)


def _opted_out(condition: NationalOptOut, raw: str) -> bool:
    number = normalise.nhs_number(raw)
    if number is None:
        return condition.no_nhs_number == "exclude"
    if condition.opted_out is not None and number in condition.opted_out:
        return True
    return condition.allowed is not None and number not in condition.allowed


def decide(policy: Policy, record: Mapping[str, str]) -> str:
    """The record's one decision: ``INCLUDED``, or the name of the first rule that excluded it."""
    for rule in policy.rules:
        hit = matches(rule.condition, record)
        if hit != (rule.action == "require"):
            return rule.name
    return INCLUDED


def empty_tally(policy: Policy | None) -> dict[str, int]:
    """Decision counts in report order, every rule present even at zero."""
    names = policy.rule_names() if policy else ()
    return {INCLUDED: 0, WITHDRAWN: 0, **{name: 0 for name in names}}


def tally(decisions: Iterable[str], policy: Policy | None) -> dict[str, int]:
    """Count decisions per rule, keeping every rule of the policy (zeros too)."""
    counts = empty_tally(policy)
    for decision in decisions:
        counts[decision] = counts.get(decision, 0) + 1
    return counts
