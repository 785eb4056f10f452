"""Reading a consent policy from TOML, with errors that name the policy's line.

A policy is written by an organisation's information-governance officer, not
a programmer, so every mistake must point at the line to fix: TOML syntax
errors carry tomllib's line, and semantic errors (an unknown key, a missing
list file, a column the data lacks) find their rule's ``[[rule]]`` header in
the text. The policy's SHA-256 is over the file's bytes, so the hash the
coordinator's audit records identifies exactly the text that governed an
upload. Lists (opt-outs, allow-lists, local objections) live in their own
files beside the policy; their hashes go in the node's local report.

Shape::

    purpose = "Family Hub outreach planning"   # optional, for the report

    [[rule]]
    name = "under-5-on-31-march"
    action = "require"                # or "exclude"
    column = "DOB"
    age_under = 5
    on = 2026-03-31

    [[rule]]
    name = "national-data-opt-out"
    column = "NHS Number"
    opt_out_file = "ndop-opted-out.txt"     # and/or allow_list_file
    no_nhs_number = "include"               # or "exclude"

Conditions: ``column`` with one of ``equals``, ``one_of``, ``blank``
(true/false), ``in_file`` (+ ``match = "nhs_number"``), ``age_under`` /
``age_at_least`` (+ ``on``), ``before``, ``on_or_after``; or ``all`` / ``any``
holding a list of conditions.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from hublink.spec import CONSENT_RULE_NAME
from node import consent
from node.consent import (
    AgeAtLeast,
    AgeBelow,
    AllOf,
    AnyOf,
    Blank,
    Condition,
    DateBefore,
    DateOnOrAfter,
    Equals,
    InList,
    NationalOptOut,
    OneOf,
    Policy,
    Rule,
)
from node.errors import NodeError

_NAME = re.compile(CONSENT_RULE_NAME)
_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_TOP_KEYS = {"purpose", "rule"}
_SIMPLE_KEYS = ("equals", "one_of", "blank", "in_file", "age_under", "age_at_least", "before")
_SIMPLE_KEYS_ALL = (*_SIMPLE_KEYS, "on_or_after")
_OPT_OUT_KEYS = {"opt_out_file", "allow_list_file", "no_nhs_number"}


class PolicyError(NodeError, ValueError):
    """A consent policy that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class ListFile:
    """A list a rule reads, for the report: where it is, its hash and how many entries."""

    rule: str
    path: Path
    sha256: str
    entries: int


@dataclass(frozen=True)
class LoadedPolicy:
    """A parsed policy with where it came from and the list files it read."""

    path: Path
    policy: Policy
    lists: tuple[ListFile, ...]

    def check_columns(self, header: Sequence[str], input_path: Path) -> None:
        """Refuse a policy that reads a column the input does not have, naming the rule's line."""
        present = {h.strip() for h in header}
        for column, line in self.policy.columns().items():
            if column not in present:
                raise PolicyError(
                    f"{self.path}, line {line}: column {column!r} is not in {input_path} "
                    f"(its header has: {', '.join(h.strip() for h in header)})"
                )


def load_policy(path: Path) -> LoadedPolicy:
    """Read and check the policy at ``path`` and every list file it names."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"{path}: consent policy file not found") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the consent policy: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: the consent policy is not UTF-8 text") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        where = f"{path}, line {found.group(1)}" if found else str(path)
        reason = _TOML_LINE.sub("", str(exc)).strip()
        raise PolicyError(f"{where}: not valid TOML: {reason}") from None
    reader = _Reader(path, text)
    return reader.read(document, hashlib.sha256(data).hexdigest())


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.headers = [i + 1 for i, line in enumerate(self.lines) if _RULE_HEADER.match(line)]
        self.lists: list[ListFile] = []

    # ---------------------------------------------------------------- places
    def _rule_line(self, index: int) -> int:
        return self.headers[index] if index < len(self.headers) else 1

    def _key_line(self, index: int, key: str) -> int:
        """The line of ``key =`` inside rule ``index`` (its header line if not found)."""
        start = self._rule_line(index)
        end = self.headers[index + 1] if index + 1 < len(self.headers) else len(self.lines) + 1
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(start, end):
            if pattern.match(self.lines[number - 1]):
                return number
        return start

    def _fail(self, line: int, message: str) -> PolicyError:
        return PolicyError(f"{self.path}, line {line}: {message}")

    # --------------------------------------------------------------- reading
    def read(self, document: Mapping[str, Any], sha256: str) -> LoadedPolicy:
        unknown = sorted(set(document) - _TOP_KEYS)
        if unknown:
            line = self._top_line(unknown[0])
            raise self._fail(
                line,
                f"unknown key {unknown[0]!r}; a policy has 'purpose' and [[rule]] tables",
            )
        purpose = document.get("purpose", "")
        if not isinstance(purpose, str):
            raise self._fail(self._top_line("purpose"), "purpose must be a string")
        tables = document.get("rule", [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise self._fail(1, "rules must be written as [[rule]] tables")
        if not tables:
            raise self._fail(1, "the policy has no [[rule]] tables")
        rules: list[Rule] = []
        seen: set[str] = set()
        for index, table in enumerate(tables):
            rule = self._rule(index, table)
            if rule.name in seen:
                raise self._fail(rule.line, f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
            rules.append(rule)
        return LoadedPolicy(self.path, Policy(tuple(rules), sha256, purpose), tuple(self.lists))

    def _top_line(self, key: str) -> int:
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number, line in enumerate(self.lines, start=1):
            if _RULE_HEADER.match(line):
                break
            if pattern.match(line):
                return number
        return 1

    def _rule(self, index: int, table: Mapping[str, Any]) -> Rule:
        line = self._rule_line(index)
        name = table.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise self._fail(
                self._key_line(index, "name") if "name" in table else line,
                "each rule needs a name: 1 to 64 lower-case letters, digits, '.', '_' or '-' "
                "(no spaces)",
            )
        if name in consent.RESERVED_NAMES:
            raise self._fail(self._key_line(index, "name"), f"{name!r} is a reserved name")
        body = {k: v for k, v in table.items() if k not in ("name", "action")}
        if _OPT_OUT_KEYS & set(body):
            if "action" in table:
                raise self._fail(
                    self._key_line(index, "action"),
                    "a National Data Opt-out rule always excludes; remove 'action'",
                )
            return Rule(name, "exclude", self._opt_out(index, name, body), line)
        action = table.get("action")
        if action not in ("require", "exclude"):
            raise self._fail(
                self._key_line(index, "action") if "action" in table else line,
                f'rule {name!r} needs action = "require" or "exclude"',
            )
        return Rule(name, action, self._condition(index, name, body), line)

    def _condition(self, index: int, name: str, body: Mapping[str, Any]) -> Condition:
        if "all" in body or "any" in body:
            key = "all" if "all" in body else "any"
            extra = sorted(set(body) - {key})
            if extra:
                raise self._fail(
                    self._key_line(index, extra[0]),
                    f"rule {name!r}: {key!r} cannot be combined with {extra[0]!r}",
                )
            parts = body[key]
            if (
                not isinstance(parts, list)
                or not parts
                or not all(isinstance(p, dict) for p in parts)
            ):
                raise self._fail(
                    self._key_line(index, key),
                    f"rule {name!r}: {key!r} must be a non-empty list of conditions",
                )
            built = tuple(self._condition(index, name, part) for part in parts)
            return AllOf(built) if key == "all" else AnyOf(built)
        column = body.get("column")
        if not isinstance(column, str) or not column.strip():
            raise self._fail(
                self._key_line(index, "column") if "column" in body else self._rule_line(index),
                f"rule {name!r} needs column = the input column it reads",
            )
        column = column.strip()
        kinds = [k for k in _SIMPLE_KEYS_ALL if k in body]
        unknown = sorted(set(body) - set(_SIMPLE_KEYS_ALL) - {"column", "on", "match"})
        if unknown:
            raise self._fail(
                self._key_line(index, unknown[0]),
                f"rule {name!r}: unknown key {unknown[0]!r}; expected one of: column, "
                f"{', '.join(_SIMPLE_KEYS_ALL)}, on, match, all, any, opt_out_file, "
                "allow_list_file, no_nhs_number",
            )
        if len(kinds) != 1:
            raise self._fail(
                self._key_line(index, kinds[1]) if len(kinds) > 1 else self._rule_line(index),
                f"rule {name!r} needs exactly one test of: {', '.join(_SIMPLE_KEYS_ALL)}",
            )
        kind = kinds[0]
        value = body[kind]
        at = self._key_line(index, kind)
        if "on" in body and kind not in ("age_under", "age_at_least"):
            raise self._fail(self._key_line(index, "on"), "'on' goes with age_under/age_at_least")
        if "match" in body and kind != "in_file":
            raise self._fail(self._key_line(index, "match"), "'match' goes with in_file")
        if kind == "equals":
            return Equals(column, self._string(value, at, kind))
        if kind == "one_of":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) for v in value)
            ):
                raise self._fail(at, "one_of must be a non-empty list of strings")
            return OneOf(column, frozenset(value))
        if kind == "blank":
            if not isinstance(value, bool):
                raise self._fail(at, "blank must be true or false")
            return Blank(column, value)
        if kind == "in_file":
            match = body.get("match", "text")
            if match not in ("text", "nhs_number"):
                raise self._fail(
                    self._key_line(index, "match"), 'match must be "text" or "nhs_number"'
                )
            nhs = match == "nhs_number"
            members = self._list(name, self._string(value, at, kind), at, nhs_number=nhs)
            return InList(column, members, nhs)
        if kind in ("age_under", "age_at_least"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 130:
                raise self._fail(at, f"{kind} must be a whole number of years")
            if "on" not in body:
                raise self._fail(at, f"{kind} needs on = the date the age is taken at")
            on = self._date(body["on"], self._key_line(index, "on"), "on")
            return (
                AgeBelow(column, value, on)
                if kind == "age_under"
                else AgeAtLeast(column, value, on)
            )
        when = self._date(value, at, kind)
        return DateBefore(column, when) if kind == "before" else DateOnOrAfter(column, when)

    def _opt_out(self, index: int, name: str, body: Mapping[str, Any]) -> NationalOptOut:
        unknown = sorted(set(body) - _OPT_OUT_KEYS - {"column"})
        if unknown:
            raise self._fail(
                self._key_line(index, unknown[0]),
                f"rule {name!r}: unknown key {unknown[0]!r} in a National Data Opt-out rule "
                "(it takes column, opt_out_file, allow_list_file, no_nhs_number)",
            )
        column = body.get("column")
        if not isinstance(column, str) or not column.strip():
            raise self._fail(
                self._rule_line(index), f"rule {name!r} needs column = the NHS number column"
            )
        choice = body.get("no_nhs_number")
        if choice not in ("include", "exclude"):
            raise self._fail(
                self._key_line(index, "no_nhs_number")
                if "no_nhs_number" in body
                else self._rule_line(index),
                f"rule {name!r} must say what happens to a record with no NHS number: "
                'no_nhs_number = "include" or "exclude"',
            )
        lists: dict[str, frozenset[str] | None] = {"opt_out_file": None, "allow_list_file": None}
        for key in lists:
            if key in body:
                at = self._key_line(index, key)
                lists[key] = self._list(name, self._string(body[key], at, key), at, nhs_number=True)
        if lists["opt_out_file"] is None and lists["allow_list_file"] is None:
            raise self._fail(
                self._rule_line(index), f"rule {name!r} needs opt_out_file or allow_list_file"
            )
        return NationalOptOut(
            column.strip(), lists["opt_out_file"], lists["allow_list_file"], choice
        )

    # ---------------------------------------------------------------- values
    def _string(self, value: Any, line: int, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self._fail(line, f"{key} must be a non-empty string")
        return value

    def _date(self, value: Any, line: int, key: str) -> date:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self._fail(line, f"{key} must be a date such as 2026-03-31")

    def _list(self, rule: str, name: str, line: int, *, nhs_number: bool) -> frozenset[str]:
        """Read a list file (one entry a line; a first line without digits is a header)."""
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = self.path.parent / path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise self._fail(line, f"rule {rule!r}: list file {path} not found") from None
        except OSError as exc:
            raise self._fail(line, f"rule {rule!r}: cannot read {path}: {exc.strerror}") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise self._fail(line, f"rule {rule!r}: list file {path} is not UTF-8 text") from None
        members: set[str] = set()
        for number, entry in enumerate(text.splitlines(), start=1):
            cell = entry.split(",")[0].strip().strip('"')
            if not cell or (number == 1 and nhs_number and not any(c.isdigit() for c in cell)):
                continue
            canonical = consent.canonical_list_entry(cell, nhs_number=nhs_number)
            if canonical is None:
                # Never echo the entry: it is an identifier.
                raise PolicyError(
                    f"{path}, line {number}: not a valid NHS number (named by rule {rule!r} "
                    f"at {self.path}, line {line})"
                )
            members.add(canonical)
        self.lists.append(ListFile(rule, path, hashlib.sha256(data).hexdigest(), len(members)))
        return frozenset(members)
