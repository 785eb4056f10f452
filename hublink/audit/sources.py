"""Where an audit log can be read from, and what each place can prove.

An IG officer verifies the log from an exported JSON Lines file on their own
machine; an operator on the coordinator's host reads its database directly.
Both give the same ``LogSource``: the entries, the signed checkpoints, and a
way to prove that a smaller tree is a prefix of a larger one. (Reading the
log over gRPC as an auditor is the third place; it needs a client, so it
lives with the ``hublink audit`` commands in ``hublink.cli.audit``.)

Nothing here imports the coordinator: the database is read read-only with
plain SQL over the two tables the audit log keeps, so reading never creates
or changes anything.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hublink.audit import merkle
from hublink.audit.checkpoint import Verifier, default_audit_key, load_or_create_key
from hublink.audit.log import AuditFileError, LogEntry, StoredCheckpoint, read_jsonl
from hublink.errors import HublinkError


class SourceError(HublinkError, ValueError):
    """The command was not told where the log is, or told two places."""


@dataclass
class LogSource:
    """A log read from somewhere, with what that place can prove."""

    entries: list[LogEntry]
    checkpoints: list[StoredCheckpoint]
    label: str
    own_key: Verifier | None = None
    consistency: Callable[[int, int], list[bytes]] | None = field(default=None, repr=False)
    display_names: dict[str, str] = field(default_factory=dict)
    """Organisations' display names, where the config that named the log has them."""


def read_export(log_file: Path) -> LogSource:
    """An exported JSON Lines log: entries and signed checkpoints, verifiable offline."""
    entries, checkpoints = read_jsonl(log_file)
    source = LogSource(entries, checkpoints, str(log_file))
    source.consistency = local_consistency(entries)
    return source


def read_database(path: Path, key_file: Path | None) -> LogSource:
    """Read the coordinator's database read-only (never creating or changing anything)."""
    if not path.exists():
        raise AuditFileError(f"{path}: no such database")
    try:
        db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT idx, time, action, actor_organisation, actor_role, project_id, "
                "details_json, entry_hash FROM audit ORDER BY idx"
            ).fetchall()
            notes = db.execute("SELECT note, time FROM checkpoints ORDER BY size").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise AuditFileError(f"{path}: not a coordinator database ({exc})") from None

    entries = []
    for row in rows:
        try:
            details = json.loads(row[6])
        except ValueError:
            details = {"unreadable_details_json": row[6]}
        entries.append(LogEntry(row[0], row[1], row[2], row[3], row[4], row[5], details, row[7]))
    own = None
    key_path = key_file or default_audit_key(path)
    if key_path.exists():
        own = load_or_create_key(key_path).verifier
    source = LogSource(entries, [StoredCheckpoint(n, t) for n, t in notes], str(path), own)
    source.consistency = local_consistency(entries)
    return source


def local_consistency(entries: Sequence[LogEntry]) -> Callable[[int, int], list[bytes]]:
    """A consistency prover over entries held in memory (the tree is rebuilt when asked)."""

    def prove(old: int, new: int) -> list[bytes]:
        tree = merkle.MemoryTree(e.leaf() for e in entries)
        return merkle.consistency_proof(tree, old, new)

    return prove
