"""From the organisation's CSV to the records that may leave: read, decide consent, normalise.

Both ``upload`` and ``plan`` start here, so a dry run shows exactly what an
upload would do. The order matters:

1. the consent policy is loaded and its columns checked against the file's
   header, so a broken policy stops the run before any row is read;
2. rows that cannot be read (wrong number of cells, undecodable bytes, a
   repeated local id) go to the rejects list instead of stopping the run;
3. every readable row is normalised, whatever its decision, so a date of
   birth that is present but impossible makes a bad row and the share of
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
import os
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from hublink.config import ConfigError, NodeConfig
from node import consent
from node.encoder import Normaliser, PreparedRecord, RowError, normalise_row
from node.policy_file import LoadedPolicy, load_policy
from node.source import InputError, read_header, read_rows


@dataclass(frozen=True)
class BadRow:
    """A row that could not be used: its number (header is row 1), the field, and why."""

    row: int
    field: str
    reason: str


@dataclass(frozen=True)
class Intake:
    """What reading the input produced; ``prepared`` holds only included records."""

    input_path: Path
    prepared: tuple[PreparedRecord, ...]
    rows: int
    rejects: tuple[BadRow, ...]
    decisions: dict[str, int]
    policy: LoadedPolicy | None
    rejects_path: Path

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


def take_in(
    config: NodeConfig,
    fields: Sequence[str],
    rules: dict[str, Normaliser],
    *,
    withdrawn: Collection[str] = frozenset(),
) -> Intake:
    """Read, decide and normalise the input; raises before anything is hashed if it cannot."""
    source = config.input.path
    loaded = load_policy(config.consent_policy) if config.consent_policy else None
    policy = loaded.policy if loaded else consent.Policy(())
    header = read_header(source, encoding=config.input.encoding)
    if loaded:
        loaded.check_columns(header, source)
    attribute_columns = sorted({a.column for a in config.attributes.values()})
    extra = sorted({*policy.columns(), *attribute_columns})
    rejects: list[BadRow] = []

    unreadable = 0

    def reject(error: InputError) -> None:
        nonlocal unreadable
        unreadable += 1
        rejects.append(BadRow(error.row or 0, error.field or "", error.reason))

    rows = read_rows(
        source,
        id_column=config.input.id_column,
        columns=config.input.columns,
        fields=fields,
        encoding=config.input.encoding,
        extra_columns=extra,
        on_bad=reject,
    )
    decisions = consent.empty_tally(policy)
    prepared: list[PreparedRecord] = []
    readable = 0
    for row in rows:
        readable += 1
        # Every row is checked, whatever its decision, so the share of bad rows
        # says something about the file and the mapping, not about the policy.
        try:
            values = normalise_row(row, fields, rules)
        except RowError as exc:
            column = config.input.columns.get(exc.field, exc.field)
            rejects.append(BadRow(row.row, f"{exc.field} (column {column!r})", exc.reason))
            continue
        if row.local_id in withdrawn:
            decision = consent.WITHDRAWN
        else:
            try:
                decision = consent.decide(policy, row.extra)
            except consent.UndecidableRecord as exc:
                rejects.append(BadRow(row.row, f"column {exc.column!r}", exc.reason))
                continue
        if decision == consent.INCLUDED:
            kept = {c: row.extra.get(c, "") for c in attribute_columns}
            prepared.append(PreparedRecord(row.local_id, values, kept))
        decisions[decision] = decisions.get(decision, 0) + 1
    # Rows the reader rejected never reached the loop; the others are among the readable.
    total = readable + unreadable
    rejects.sort(key=lambda bad: bad.row)
    where = rejects_path(config)
    write_rejects(where, rejects)
    intake = Intake(source, tuple(prepared), total, tuple(rejects), decisions, loaded, where)
    _check_share(config, intake)
    return intake


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
