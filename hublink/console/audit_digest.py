"""What an IG officer reads in the audit entries: outcomes, consent per upload, refusals, periods.

Plain functions over ``LogEntry`` values, so the pages and their tests share
them and nothing here needs a coordinator. Every figure comes from entries
the officer was shown; none is about a record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hublink.audit.log import LogEntry
from hublink.audit.words import action_label

REFUSED = frozenset({"access.refused", "upload.rejected"})
FAILED = frozenset({"run.failed", "run.cancelled"})


def outcome(entry: LogEntry) -> tuple[str, str]:
    """The entry's outcome in a word and the tag colour it is shown in."""
    if entry.action in REFUSED:
        return "Refused", "red"
    if entry.action in FAILED:
        return ("Cancelled", "grey") if entry.action == "run.cancelled" else ("Failed", "red")
    if entry.action.endswith("_requested") or entry.action.endswith(".started"):
        return "Started", "blue"
    return "Done", "green"


def detail_rows(details: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """An entry's details flattened into (label, value) rows, nested keys joined with " / "."""
    rows: list[tuple[str, str]] = []
    for key in sorted(details):
        value = details[key]
        label = f"{prefix}{key.replace('_', ' ')}"
        if isinstance(value, Mapping):
            rows += detail_rows(value, f"{label} / ") if value else [(label, "none")]
        elif isinstance(value, list):
            rows.append((label, ", ".join(str(v) for v in value) or "none"))
        elif isinstance(value, bool):
            rows.append((label, "yes" if value else "no"))
        elif isinstance(value, int):
            rows.append((label, f"{value:,}"))
        else:
            rows.append((label, str(value)))
    return rows


@dataclass
class UploadConsent:
    """One upload's consent summary, as the node declared it when the upload began."""

    upload_id: str
    organisation: str
    project_id: str
    started: str
    expected_records: int | None
    policy_sha256: str
    rule_counts: dict[str, int] = field(default_factory=dict)
    committed: str = ""
    records: int | None = None
    state: str = "open"


def consent_summaries(entries: Iterable[LogEntry]) -> list[UploadConsent]:
    """Every upload seen, oldest first, with its policy hash, per-rule counts and outcome."""
    uploads: dict[str, UploadConsent] = {}
    for entry in entries:
        upload_id = str(entry.details.get("upload_id", ""))
        if not upload_id:
            continue
        if entry.action == "upload.started":
            consent = entry.details.get("consent") or {}
            counts = consent.get("counts", {}) if isinstance(consent, Mapping) else {}
            uploads[upload_id] = UploadConsent(
                upload_id,
                entry.actor_organisation,
                entry.project_id,
                entry.time,
                _int(entry.details.get("expected_records")),
                str(consent.get("policy_sha256", "")) if isinstance(consent, Mapping) else "",
                {str(k): int(v) for k, v in counts.items() if isinstance(v, int)},
            )
        elif upload_id in uploads and entry.action == "upload.committed":
            upload = uploads[upload_id]
            upload.committed, upload.state = entry.time, "completed"
            upload.records = _int(entry.details.get("records"))
        elif upload_id in uploads and entry.action == "upload.rejected":
            uploads[upload_id].state = "refused"
    return list(uploads.values())


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def refusals(entries: Iterable[LogEntry]) -> list[LogEntry]:
    """Refused requests and refused uploads, oldest first."""
    return [e for e in entries if e.action in REFUSED]


def is_revocation(entry: LogEntry) -> bool:
    """A refusal because the caller's certificate was revoked."""
    return entry.action == "access.refused" and "revoked" in str(entry.details.get("reason", ""))


@dataclass
class PeriodSummary:
    """A period of the log in figures, for an IG board."""

    since: str
    until: str
    entries: int
    first_time: str
    last_time: str
    by_action: list[tuple[str, int]]
    by_organisation: list[tuple[str, int]]
    projects: list[str]
    uploads: int
    records_uploaded: int
    runs_completed: int
    runs_failed: int
    count_tables: int
    cells_withheld: int
    keys_released: int
    refused: int
    revoked: int
    withdrawals: int


def period_summary(entries: Sequence[LogEntry], since: str = "", until: str = "") -> PeriodSummary:
    """Figures for the entries of a period (already filtered to it)."""
    actions = Counter(e.action for e in entries)
    organisations = Counter(e.actor_organisation for e in entries)
    return PeriodSummary(
        since=since,
        until=until,
        entries=len(entries),
        first_time=entries[0].time if entries else "",
        last_time=entries[-1].time if entries else "",
        by_action=sorted(
            ((action_label(a), n) for a, n in actions.items()), key=lambda item: (-item[1], item[0])
        ),
        by_organisation=sorted(organisations.items(), key=lambda item: (-item[1], item[0])),
        projects=sorted({e.project_id for e in entries if e.project_id}),
        uploads=actions["upload.committed"],
        records_uploaded=sum(
            _int(e.details.get("records")) or 0 for e in entries if e.action == "upload.committed"
        ),
        runs_completed=actions["run.completed"],
        runs_failed=actions["run.failed"],
        count_tables=actions["counts.released"],
        cells_withheld=sum(
            _int(e.details.get("suppressed")) or 0 for e in entries if e.action == "counts.released"
        ),
        keys_released=actions["keys.released"],
        refused=sum(actions[a] for a in REFUSED),
        revoked=sum(1 for e in entries if is_revocation(e)),
        withdrawals=actions["records.withdrawn"],
    )
