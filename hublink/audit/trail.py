"""The audit log in plain English, for readers who will never open a hash.

Why: an IG officer's first question is "who shared what, when, and what was
released", and the answer should be readable by a board member. Each entry
becomes one sentence with its time; hashes are shortened to their first
characters, which is enough to match them against a receipt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hublink.audit.log import LogEntry
from hublink.audit.words import action_label, format_time


def _who(organisation: str, names: Mapping[str, str]) -> str:
    return names.get(organisation, organisation)


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _short(digest: Any) -> str:
    text = str(digest or "")
    return f"{text[:4]}…" if text else "none"


def describe(
    entry: LogEntry,
    names: Mapping[str, str] | None = None,
    policy: str = "",
    *,
    with_project: bool = True,
) -> str:
    """One sentence for one entry, starting with its date and time (UTC).

    ``policy`` is the consent-policy hash of the upload an upload.committed
    entry closes (it is recorded when the upload starts).
    """
    names = names or {}
    d = entry.details
    who = _who(entry.actor_organisation, names)
    when = format_time(entry.time)
    project = f" in project {entry.project_id}" if entry.project_id and with_project else ""
    action = entry.action
    if action == "project.created":
        members = ", ".join(_who(o, names) for o in d.get("organisations", []))
        text = f"project {entry.project_id} was set up for {members}"
    elif action == "project.changed":
        text = f"the definition of project {entry.project_id} changed"
    elif action == "upload.started":
        consent = d.get("consent") or {}
        policy = str(consent.get("policy_sha256") or "") if isinstance(consent, Mapping) else ""
        text = f"{who} began uploading {_n(d.get('expected_records', '?'))} encoded records" + (
            f" under consent policy {_short(policy)}" if policy else ""
        )
    elif action == "upload.committed" and isinstance(d.get("refresh"), Mapping):
        r = d["refresh"]
        text = (
            f"{who} refreshed its records: {_n(r.get('added', 0))} added, "
            f"{_n(r.get('changed', 0))} changed, {_n(r.get('removed', 0))} removed, "
            f"{_n(r.get('unchanged', 0))} unchanged"
            + (f" under consent policy {_short(policy)}" if policy else "")
        )
    elif action == "upload.committed":
        text = (
            f"{who} uploaded {_n(d.get('records', '?'))} encoded records"
            + (f" under consent policy {_short(policy)}" if policy else "")
            + f" (digest {_short(d.get('digest_sha256'))})"
        )
    elif action == "keys.lineage":
        r = d.get("records") or {}
        moved = ", ".join(
            f"{_n(r.get(k, 0))} {label}"
            for k, label in (
                ("merge", "by a merge"),
                ("split", "by a split"),
                ("relinked", "relinked"),
                ("withdrawn", "withdrawn"),
                ("left the extract", "gone from an extract"),
            )
            if r.get(k)
        )
        text = (
            f"keys after matching: {_n(r.get('kept', 0))} records kept their key, "
            f"{_n(r.get('added', 0))} new" + (f"; changed: {moved}" if moved else "; none changed")
        )
    elif action == "upload.rejected":
        text = f"an upload from {who} was refused: {d.get('reason', '')}"
    elif action == "run.started":
        text = f"{who} started matching at similarity threshold {d.get('threshold', '?')}"
    elif action == "run.completed":
        text = (
            f"matching finished: {_n(d.get('records', '?'))} records formed "
            f"{_n(d.get('entities', '?'))} people, {_n(d.get('linked_entities', '?'))} of them "
            "known to more than one service"
        )
    elif action in ("run.failed", "run.cancelled"):
        text = f"matching {action.split('.')[1]}: {d.get('message', '')}"
    elif action == "keys.released":
        text = f"{who} received linkage keys for its own {_n(d.get('keys', '?'))} records"
    elif action == "counts.released":
        text = (
            f"{who} received a count table ({_n(d.get('query', 'query'))}): "
            f"{_n(d.get('cells', '?'))} cells, {_n(d.get('suppressed', 0))} withheld as too small"
        )
    elif action == "access.refused":
        text = f"{who} ({entry.actor_role}) was refused: {d.get('reason', '')}"
    else:
        text = f"{action_label(action)} by {who} ({entry.actor_role})"
    return f"{when} {text[:1].upper()}{text[1:]}{project if action != 'project.created' else ''}"


def trail(
    entries: Iterable[LogEntry],
    names: Mapping[str, str] | None = None,
    actions: frozenset[str] | None = None,
    *,
    with_project: bool = True,
) -> list[str]:
    """Sentences for the entries (only ``actions``, if given), each upload with its policy."""
    # Each organisation has its own upload ids (coordinator.core.upload_ids).
    policies: dict[tuple[str, str], str] = {}
    lines = []
    for entry in entries:
        upload_id = (entry.actor_organisation, str(entry.details.get("upload_id", "")))
        if entry.action == "upload.started":
            consent = entry.details.get("consent") or {}
            if isinstance(consent, Mapping):
                policies[upload_id] = str(consent.get("policy_sha256", ""))
        if actions is None or entry.action in actions:
            lines.append(
                describe(entry, names, policies.get(upload_id, ""), with_project=with_project)
            )
    return lines


TABLE_HEADINGS = ("#", "When", "Organisation", "Role", "What", "Project", "Details")


def _detail_words(details: Mapping[str, Any], width: int = 60) -> str:
    """The entry's scalar details as "key value" pairs, hashes shortened, cut to ``width``."""
    parts = []
    for key, value in sorted(details.items()):
        if isinstance(value, Mapping | list):
            continue
        text = str(value)
        if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
            text = _short(text)
        parts.append(f"{key.replace('_', ' ')} {_n(value) if isinstance(value, int) else text}")
    joined = ", ".join(parts)
    return joined if len(joined) <= width else joined[: width - 1] + "…"


def table(entries: Iterable[LogEntry], names: Mapping[str, str] | None = None) -> list[str]:
    """A plain-text table, one row per entry: number, time, who, what in words, project."""
    names = names or {}
    rows = [TABLE_HEADINGS] + [
        (
            str(e.index),
            format_time(e.time),
            _who(e.actor_organisation, names),
            e.actor_role,
            action_label(e.action),
            e.project_id or "-",
            _detail_words(e.details),
        )
        for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADINGS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
