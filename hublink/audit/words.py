"""The audit log's words for people: actions in plain English, times with date and zone.

Why one place: the command line, the demo and the web console show the same
log, and an IG board member reading any of them should meet "Records
withdrawn" at "2026-12-07 04:22:33 UTC", never "records.withdrawn" at
"04:22". ``tests/unit/test_audit_words.py`` checks that every action the
coordinator can write has a label here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

ACTION_LABELS: dict[str, str] = {
    "project.created": "Project set up",
    "project.changed": "Project definition changed",
    "project.close_requested": "Closing the project requested (awaiting confirmation)",
    "project.close_confirmed": "Closing the project confirmed",
    "project.closed": "Project closed",
    "upload.started": "Upload started",
    "upload.committed": "Upload completed",
    "upload.rejected": "Upload refused",
    "run.started": "Matching run started",
    "run.completed": "Matching run finished",
    "run.failed": "Matching run failed",
    "run.cancelled": "Matching run cancelled",
    "keys.released": "Linkage keys released",
    "keys.lineage": "Linkage keys changed by a run (counts of merges, splits and removals)",
    "counts.released": "Count table released",
    "quality.read": "Quality report read",
    "records.withdrawn": "Records withdrawn",
    "retention.deleted": "Data deleted at its retention date",
    "access.refused": "Request refused",
    "secret.key_published": "Secret-exchange key published",
    "secret.epoch_started": "New linkage secret agreed",
    "secret.envelope_fetched": "Sealed linkage secret collected",
    "store.migrated": "Database upgraded",
}
"""Each action the coordinator writes, as a heading a reader understands."""


def action_label(action: str) -> str:
    """The plain-English label of an action; an unknown one in words, never a dotted name."""
    known = ACTION_LABELS.get(action)
    if known:
        return known
    words = action.replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else "(no action)"


def format_time(text: str) -> str:
    """An entry's RFC 3339 time as "2026-12-07 04:22:33 UTC" (date, time and zone, to the second).

    A time that cannot be read is shown as it is, so nothing is hidden.
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return f"{moment:%Y-%m-%d %H:%M:%S} (no time zone)"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


TIME_FORMAT_HELP = (
    "a date or time in ISO 8601 / RFC 3339: 2026-06-01, 2026-06, 2026-06-01T09:30, "
    "2026-06-01T09:30:00Z or 2026-06-01T09:30:00+01:00"
)
_PREFIX = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def time_filter(text: str) -> str:
    """A ``--since``/``--until`` value as the UTC prefix the log's times are compared with.

    A date, or year-month, is kept as a prefix (``--until 2026-06`` keeps all of
    June). A time of day is converted to UTC (no zone means UTC) and cut to the
    second. Raises ValueError naming the expected format.
    """
    value = text.strip()
    if not value:
        return ""
    if _PREFIX.fullmatch(value):
        try:
            datetime.strptime(value + "-01-01"[len(value) - 4 :], "%Y-%m-%d")
        except ValueError:
            raise ValueError(f"{text!r} is not a date; expected {TIME_FORMAT_HELP}") from None
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"{text!r} is not a date or time; expected {TIME_FORMAT_HELP}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}"
