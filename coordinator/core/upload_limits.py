"""What one organisation may put into the coordinator with an upload it has not committed.

An upload's consent summary goes into the permanent audit log, which outlives
the project, so it is checked before anything is stored: the policy hash is 64
hex digits (or empty, with no counts, when the node has no policy), rule names
are short lower-case words (``hublink.spec.CONSENT_RULE_NAME``), counts are
whole numbers no larger than the project lets an upload be (and the count of
included records no larger than the upload's declared size), and the whole
summary fits in ``MAX_CONSENT_BYTES``. Open uploads are limited per
organisation and expire (``max_open_uploads``, ``open_upload_hours`` in the
project file), so that beginning uploads cannot fill the coordinator's disk.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from coordinator.core.errors import InvalidRequest, OverLimit
from coordinator.core.model import ConsentSummary, Project
from coordinator.core.store import Store
from hublink.spec import CONSENT_RULE_NAME, canonical_json

#: The largest consent summary accepted, as canonical JSON.
MAX_CONSENT_BYTES = 4096
#: Most decisions (rules, with "included" and "withdrawn") one summary may count.
MAX_CONSENT_RULES = 32
#: The decision count of records the node sends.
INCLUDED = "included"

_POLICY_HASH = re.compile(r"^[0-9a-f]{64}$")
_RULE = re.compile(CONSENT_RULE_NAME)


def check_consent(project: Project, consent: ConsentSummary, expected_records: int) -> None:
    """Refuse a consent summary that is not counts of a policy's decisions.

    Raises InvalidRequest with a sentence that quotes nothing the node sent (a
    rule name that is refused may be a person's name).
    """
    if not consent.policy_sha256 and not consent.counts:
        return  # nothing to check
    # A node with no consent policy sends no hash, but still counts what it included.
    if consent.policy_sha256 and not _POLICY_HASH.fullmatch(consent.policy_sha256):
        raise InvalidRequest(
            "consent summary: policy_sha256 must be 64 lower-case hex digits "
            "(the SHA-256 of the node's policy file)"
        )
    if len(consent.counts) > MAX_CONSENT_RULES:
        raise InvalidRequest(
            f"consent summary: {len(consent.counts)} decisions counted; at most "
            f"{MAX_CONSENT_RULES} are accepted"
        )
    for position, (name, count) in enumerate(consent.counts.items(), start=1):
        if not _RULE.fullmatch(name):
            raise InvalidRequest(
                f"consent summary: decision {position}'s rule name is not 1 to 64 lower-case "
                "letters, digits, '.', '_' or '-'"
            )
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidRequest(f"consent summary: the count of rule {name!r} is not a number")
        if not 0 <= count <= project.max_records:
            raise InvalidRequest(
                f"consent summary: the count of rule {name!r} is outside 0 to the project's "
                f"max_records ({project.max_records})"
            )
    if consent.counts.get(INCLUDED, 0) > expected_records:
        raise InvalidRequest(
            f"consent summary: {consent.counts[INCLUDED]} records included, more than the "
            f"{expected_records} the upload declares"
        )
    size = len(canonical_json(details(consent)).encode())
    if size > MAX_CONSENT_BYTES:
        raise InvalidRequest(
            f"consent summary: {size} bytes; at most {MAX_CONSENT_BYTES} are accepted"
        )


def admit(
    store: Store,
    project: Project,
    organisation: str,
    consent: ConsentSummary,
    expected_records: int,
) -> None:
    """Refuse a new upload whose consent summary is out of bounds (InvalidRequest) or that
    would pass the organisation's ``max_open_uploads`` (OverLimit)."""
    check_consent(project, consent, expected_records)
    check_open(store, project, organisation)


def expiry_reason(project: Project) -> str:
    """Why an upload was erased unfinished, for its ``upload.rejected`` audit entry."""
    hours = project.open_upload_hours
    return f"expired: not committed within the project's open_upload_hours ({hours})"


def details(consent: ConsentSummary) -> dict[str, object]:
    """The summary as stored with the upload and written to the audit log."""
    return {"policy_sha256": consent.policy_sha256, "counts": dict(consent.counts)}


def expired(store: Store, project: Project, now: datetime | None = None) -> list[str]:
    """Open uploads of the project begun more than ``open_upload_hours`` ago."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(hours=project.open_upload_hours)
    stamp = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    rows = store.query(
        "SELECT id FROM uploads WHERE project_id = ? AND state = 'open' AND created_at < ?",
        (project.id, stamp),
    )
    return [str(r["id"]) for r in rows]


def is_expired(store: Store, project: Project, upload_id: str) -> bool:
    """Whether this open upload has been open too long to be committed."""
    return upload_id in expired(store, project)


def check_open(store: Store, project: Project, organisation: str) -> None:
    """Refuse another upload while the organisation holds ``max_open_uploads`` open ones."""
    row = store.query_one(
        "SELECT COUNT(*) AS n FROM uploads WHERE project_id = ? AND organisation = ? "
        "AND state = 'open'",
        (project.id, organisation),
    )
    if row is not None and int(row["n"]) >= project.max_open_uploads:
        raise OverLimit(
            f"organisation {organisation!r} already has {project.max_open_uploads} open "
            f"uploads in project {project.id!r} (its max_open_uploads); commit one, or wait "
            "for one to expire"
        )
