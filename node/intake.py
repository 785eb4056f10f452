"""From the organisation's CSV to the records that may leave: read, decide consent, normalise.

Both ``upload`` and ``plan`` start here, so a dry run shows exactly what an
upload would do. The order matters:

1. the consent policy is loaded and its columns checked against the file's
   header, so a broken policy stops the run before any row is read;
2. rows that cannot be read (wrong number of cells, a repeated local id)
   go to the rejects list instead of stopping the run; bytes the encoding
   cannot decode stop it (``node.source``): no child is left out silently;
3. every readable row is normalised, whatever its decision. A value that is
   present but unusable (an impossible date of birth) is missing, counted
   per field with its reason (``node.checks``), and the record still goes;
   only a row with no usable identifier at all is a bad row, so the share of
   bad rows describes the file, not the policy;
4. each good row gets one consent decision — withdrawn, excluded by the
   first rule that excluded it, or included — and only included rows are
   kept: excluded records are never encoded and never sent.

The rejects file names row, field and reason and never the value; if more
than ``max_bad_share`` of the rows are bad the run stops, since that usually
means the column mapping or the encoding is wrong.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hublink.config import ConfigError, NodeConfig
from node import consent
from node.checks import FieldCounts, Tally, usable
from node.derived import DERIVATIONS
from node.errors import NodeError
from node.policy_file import LoadedPolicy, load_policy
from node.prepare import NO_IDENTIFIER, Normaliser, PreparedRecord, normalise_checked
from node.source import (
    InputError,
    ReadOptions,
    SourceRow,
    check_mapping,
    default_columns,
    mapping_warnings,
    read_header,
    read_rows,
)


@dataclass(frozen=True)
class BadRow:
    """A row that could not be used: its number (header is row 1), the field, and why."""

    row: int
    field: str
    reason: str


@dataclass(frozen=True)
class Intake:
    """What reading the input produced.

    ``prepared`` holds the included records only when the caller asked to
    keep them (a dry run, tests); an upload reads them again a batch at a
    time (``included_records``) and checks it met the same ones, in the same
    order, through ``included_sha256``.
    """

    input_path: Path
    prepared: tuple[PreparedRecord, ...]
    rows: int
    rejects: tuple[BadRow, ...]
    decisions: dict[str, int]
    policy: LoadedPolicy | None
    rejects_path: Path
    included_sha256: str = ""
    """SHA-256 over the included records' local ids, in file order."""
    columns: Mapping[str, str] = field(default_factory=dict)
    """The column mapping used (the config's, or FHIR's standard one)."""
    field_counts: tuple[FieldCounts, ...] = ()
    """Per field: its column and how many values were blank, placeholder or invalid
    (``node.checks.Tally.table``), over every readable row."""
    warnings: tuple[str, ...] = ()
    """Sentences for the operator, before anything is sent: rows that would be left out,
    fields with unusable values, a mapping that will link badly."""
    names_not_latin: Mapping[str, int] = field(default_factory=dict)
    """Included records per name field whose name, written only in a non-Latin script, was
    sent as missing (``node.normalise`` keeps a-z only): counted so the report says so."""

    @property
    def included(self) -> int:
        return self.decisions.get(consent.INCLUDED, 0)

    @property
    def excluded(self) -> int:
        return sum(n for name, n in self.decisions.items() if name != consent.INCLUDED)

    def summary(self) -> consent.Summary:
        """What the coordinator is told: the policy's hash and the decision counts, nothing more."""
        return consent.Summary(
            self.policy.policy.sha256 if self.policy else "", dict(self.decisions)
        )


def rejects_path(config: NodeConfig) -> Path:
    return config.rejects_file or config.state_dir / "rejects.csv"


def read_options(config: NodeConfig) -> ReadOptions:
    """How the node config says its export is to be read."""
    section = config.input
    return ReadOptions(section.format, section.encoding, section.delimiter, section.sheet)


def column_mapping(config: NodeConfig) -> Mapping[str, str]:
    """The config's column mapping or, if it maps none, the format's standard one (FHIR)."""
    return config.input.columns or default_columns(config.input.path, read_options(config))


@dataclass(frozen=True)
class _Opened:
    """The input opened for one pass: its readable rows, before any decision."""

    rows: Iterator[SourceRow]
    unreadable: list[BadRow]
    """Rows the reader rejected (filled as ``rows`` is consumed)."""
    policy: consent.Policy
    loaded: LoadedPolicy | None
    columns: Mapping[str, str]
    attribute_columns: Sequence[str]
    """Columns kept with an included record, for the attributes it releases."""

    def kept(self, row: SourceRow) -> dict[str, str]:
        return {c: row.extra.get(c, "") for c in self.attribute_columns}


def _open(config: NodeConfig, fields: Sequence[str]) -> _Opened:
    source = config.input.path
    loaded = load_policy(config.consent_policy) if config.consent_policy else None
    policy = loaded.policy if loaded else consent.Policy(())
    options = read_options(config)
    columns = column_mapping(config)
    check_mapping(source, columns, fields)
    header = read_header(source, options=options)
    if loaded:
        loaded.check_columns(header, source)
    attribute_columns = sorted({a.column for a in config.attributes.values()})
    extra = sorted({*policy.columns(), *attribute_columns})
    unreadable: list[BadRow] = []

    def reject(error: InputError) -> None:
        unreadable.append(BadRow(error.row or 0, error.field or "", error.reason))

    rows = read_rows(
        source,
        id_column=config.input.id_column,
        columns=columns,
        fields=fields,
        options=options,
        extra_columns=extra,
        on_bad=reject,
    )
    return _Opened(rows, unreadable, policy, loaded, columns, attribute_columns)


@dataclass(frozen=True)
class _Reading:
    """One pass over the input: its rows' decisions and the records that may leave."""

    rows: Iterator[PreparedRecord | BadRow | str]
    """Per readable row: the included record, a bad row, or the name of its other decision."""
    unreadable: list[BadRow]
    """Rows the reader rejected (filled as ``rows`` is consumed)."""
    policy: consent.Policy
    loaded: LoadedPolicy | None
    columns: Mapping[str, str]
    tally: Tally
    names_not_latin: Counter[str]
    """Filled as ``rows`` is consumed: see ``Intake.names_not_latin``."""


def _read(
    config: NodeConfig,
    fields: Sequence[str],
    rules: dict[str, Normaliser],
    withdrawn: Collection[str],
) -> _Reading:
    opened = _open(config, fields)
    rows, policy = opened.rows, opened.policy
    tally = Tally([f for f in fields if f not in DERIVATIONS])

    def decide() -> Iterator[PreparedRecord | BadRow | str]:
        for row in rows:
            # Every row is checked, whatever its decision, so the share of bad rows
            # says something about the file and the mapping, not about the policy.
            values, findings = normalise_checked(row, fields, rules)
            tally.add(findings)
            if not usable(fields, values, DERIVATIONS):
                yield BadRow(row.row, "", NO_IDENTIFIER)
                continue
            if row.local_id in withdrawn:
                yield consent.WITHDRAWN
                continue
            try:
                decision = consent.decide(policy, row.extra)
            except consent.UndecidableRecord as exc:
                yield BadRow(row.row, f"column {exc.column!r}", exc.reason)
                continue
            if decision == consent.INCLUDED:
                for name in _not_latin(row, fields, values):
                    not_latin[name] += 1
                yield PreparedRecord(row.local_id, values, opened.kept(row))
            else:
                yield decision

    not_latin: Counter[str] = Counter()
    return _Reading(
        decide(), opened.unreadable, policy, opened.loaded, opened.columns, tally, not_latin
    )


_NAME_FIELDS = ("given_name", "family_name")


def _not_latin(row: SourceRow, fields: Sequence[str], values: Sequence[str]) -> list[str]:
    """The name fields of ``row`` that hold letters, none of them Latin, and so went blank."""
    out = []
    for name in _NAME_FIELDS:
        if name not in fields or values[fields.index(name)]:
            continue
        raw = row.values.get(name, "")
        folded = unicodedata.normalize("NFKD", raw).casefold()
        if any(c.isalpha() for c in raw) and not any("a" <= c <= "z" for c in folded):
            out.append(name)
    return out


def take_in(
    config: NodeConfig,
    fields: Sequence[str],
    rules: dict[str, Normaliser],
    *,
    withdrawn: Collection[str] = frozenset(),
    keep: bool = True,
) -> Intake:
    """Read, decide and normalise the input; raises before anything is hashed if it cannot.

    With ``keep=False`` the included records are counted and fingerprinted,
    not kept: an upload of a million records reads them again in batches.
    """
    reading = _read(config, fields, rules, withdrawn)
    decisions = consent.empty_tally(reading.policy)
    rejects: list[BadRow] = []
    prepared: list[PreparedRecord] = []
    fingerprint = hashlib.sha256()
    readable = 0
    for outcome in reading.rows:
        readable += 1
        if isinstance(outcome, BadRow):
            rejects.append(outcome)
            continue
        decision = consent.INCLUDED if isinstance(outcome, PreparedRecord) else outcome
        decisions[decision] = decisions.get(decision, 0) + 1
        if isinstance(outcome, PreparedRecord):
            fingerprint.update(outcome.local_id.encode() + b"\0")
            if keep:
                prepared.append(outcome)
    # Rows the reader rejected never reached the loop; the others are among the readable.
    rejects.extend(reading.unreadable)
    total = readable + len(reading.unreadable)
    rejects.sort(key=lambda bad: bad.row)
    where = rejects_path(config)
    write_rejects(where, rejects)
    intake = Intake(
        config.input.path,
        tuple(prepared),
        total,
        tuple(rejects),
        decisions,
        reading.loaded,
        where,
        fingerprint.hexdigest(),
        columns=reading.columns,
        field_counts=tuple(reading.tally.table(reading.columns)),
        names_not_latin=dict(reading.names_not_latin),
    )
    intake = dataclasses.replace(intake, warnings=tuple(_warnings(intake, fields)))
    _check_share(config, intake)
    return intake


def _warnings(intake: Intake, fields: Sequence[str]) -> Iterator[str]:
    """What the operator must read before anything is sent, one sentence each."""
    yield from mapping_warnings(intake.columns, fields)
    if intake.rejects and intake.rows:
        share = len(intake.rejects) / intake.rows
        yield (
            f"{len(intake.rejects):,} of {intake.rows:,} rows ({share:.1%}) cannot be used and "
            f"would be left out; each is listed with its reason in {intake.rejects_path}"
        )
    for counts in intake.field_counts:
        if counts.invalid:
            why = "; ".join(f"{reason}: {n:,}" for reason, n in counts.invalid_reasons)
            yield (
                f"{counts.field}: {counts.invalid:,} values are invalid ({why}) and are sent as "
                "missing; those records still link on their other fields"
            )


class InputChanged(NodeError, RuntimeError):
    """The input file changed between reading it and sending it."""


class IncludedCheck:
    """Whether a second pass over the input meets the intake's included records, in order.

    ``add`` each included local id as the pass meets it; ``finish`` raises
    InputChanged (before the caller can commit anything) if the file no
    longer gives the same included records in the same order.
    """

    def __init__(self, intake: Intake) -> None:
        self._intake = intake
        self._fingerprint = hashlib.sha256()
        self._count = 0

    def add(self, local_id: str) -> None:
        self._fingerprint.update(local_id.encode() + b"\0")
        self._count += 1

    def finish(self) -> None:
        intake = self._intake
        if self._count != intake.included or self._fingerprint.hexdigest() != (
            intake.included_sha256
        ):
            raise InputChanged(
                f"{intake.input_path}: the file changed while it was being sent ({self._count} "
                f"records may leave now, {intake.included} when it was first read); nothing was "
                "committed, run `hublink node upload` again"
            )


def included_records(
    config: NodeConfig,
    fields: Sequence[str],
    rules: dict[str, Normaliser],
    intake: Intake,
    *,
    withdrawn: Collection[str] = frozenset(),
) -> Iterator[PreparedRecord]:
    """The included records again, one at a time, exactly as ``take_in`` met them.

    Raises InputChanged at the end (before the caller can commit anything)
    if the file no longer gives the same included records in the same order.
    """
    reading = _read(config, fields, rules, withdrawn)
    check = IncludedCheck(intake)
    for outcome in reading.rows:
        if isinstance(outcome, PreparedRecord):
            check.add(outcome.local_id)
            yield outcome
    check.finish()


@dataclass(frozen=True)
class Consented:
    """A readable row that consent lets leave, its linkage cells not yet normalised."""

    row: SourceRow
    """The row with its linkage cells only (what a normalising worker needs)."""
    kept: Mapping[str, str]
    """The columns its released attributes are derived from (``PreparedRecord.extra``)."""
    was_bad: bool
    """The intake found no usable identifier in it (it is among the rejects)."""


def consented_rows(
    config: NodeConfig,
    fields: Sequence[str],
    intake: Intake,
    *,
    withdrawn: Collection[str] = frozenset(),
) -> Iterator[Consented]:
    """The rows ``take_in`` would include if their identifiers are usable, in file order.

    The same decisions as ``take_in`` without normalising, so that the
    normalising can be done elsewhere (``node.encode_pool``): a row is
    included when it has a usable identifier, is not withdrawn and the policy
    includes it, and these three do not depend on each other. The caller
    normalises, ``IncludedCheck.add``s each usable one and calls ``finish``.
    """
    opened = _open(config, fields)
    bad = {reject.row for reject in intake.rejects}
    for row in opened.rows:
        if row.local_id in withdrawn:
            continue
        try:
            if consent.decide(opened.policy, row.extra) != consent.INCLUDED:
                continue
        except consent.UndecidableRecord:
            continue
        yield Consented(
            SourceRow(row.row, row.local_id, row.values), opened.kept(row), row.row in bad
        )


def _check_share(config: NodeConfig, intake: Intake) -> None:
    if not 0.0 <= config.max_bad_share <= 1.0:
        raise ConfigError(
            f"max_bad_share must be a share between 0 and 1, not {config.max_bad_share}"
        )
    if intake.rows == 0:
        raise InputError(intake.input_path, "the file has no records")
    if not intake.rejects:
        return
    share = len(intake.rejects) / intake.rows
    if share > config.max_bad_share:
        first = intake.rejects[0]
        raise InputError(
            intake.input_path,
            f"{first.reason}; {len(intake.rejects)} of {intake.rows} rows ({share:.1%}) cannot "
            f"be used, more than max_bad_share ({config.max_bad_share:.0%}) allows, so the column "
            f"mapping or input.encoding is probably wrong (all listed in {intake.rejects_path})",
            row=first.row or None,
            field=first.field or None,
        )


def write_rejects(path: Path, rejects: Sequence[BadRow]) -> None:
    """Write the rejects CSV (row, field, reason — never a value) through a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", "field", "reason"])
            writer.writerows((bad.row, bad.field, bad.reason) for bad in rejects)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
