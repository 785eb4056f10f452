"""The audit log: every action, as a leaf of a Merkle log the coordinator signs.

Each entry's hash is its leaf hash, SHA-256(0x00 || canonical content), and
the entries form an RFC 6962 Merkle tree (``hublink.audit.merkle``) whose signed
checkpoints (``hublink.audit.checkpoint``) are handed to nodes with their receipts
and to auditors. An entry changed, removed, reordered or cut off after a
checkpoint was signed no longer matches that checkpoint. The store signs a
checkpoint after every entry, in the transaction that appends it, so no
action is acknowledged before a signed checkpoint covers its entry
(refusals included). Entries hold
counts, hashes and names of organisations, never an identifier, an encoding
or a linkage key. The store writes each entry in the same transaction as the
action it records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hublink.audit.log import LogEntry, content_leaf, entry_content


@dataclass(frozen=True)
class AuditEvent:
    """An action to record, before it has a place in the log."""

    action: str
    actor_organisation: str
    actor_role: str
    project_id: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    """An action with its place in the log and its leaf hash (hex)."""

    index: int
    time: str
    event: AuditEvent
    entry_hash: str

    def content(self) -> dict[str, Any]:
        """The fields the hash covers, as plain data (also the export format)."""
        e = self.event
        return entry_content(
            self.index,
            self.time,
            e.action,
            e.actor_organisation,
            e.actor_role,
            e.project_id,
            e.details,
        )

    def to_log_entry(self) -> LogEntry:
        e = self.event
        return LogEntry(
            self.index,
            self.time,
            e.action,
            e.actor_organisation,
            e.actor_role,
            e.project_id,
            dict(e.details),
            self.entry_hash,
        )


def seal(index: int, time: str, event: AuditEvent) -> AuditEntry:
    """Give an event its place in the log and its leaf hash."""
    unsealed = AuditEntry(index, time, event, "")
    return AuditEntry(index, time, event, content_leaf(unsealed.content()).hex())


@dataclass(frozen=True)
class ChainProblem:
    """The first entry that fails to verify on its own."""

    index: int
    reason: str


def verify(entries: Iterable[AuditEntry]) -> ChainProblem | None:
    """Check indexes run 0, 1, 2… and every entry matches its hash; the first problem or None.

    This checks the entries alone; checkpoints and receipts are checked by
    ``hublink.audit.log.verify_log``.
    """
    for expected, entry in enumerate(entries):
        if entry.index != expected:
            return ChainProblem(expected, f"entry {expected} is missing (found {entry.index})")
        if content_leaf(entry.content()).hex() != entry.entry_hash:
            return ChainProblem(entry.index, "its content does not match its hash")
    return None
