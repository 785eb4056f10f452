"""The audit chain: every action, hash-linked so that a changed or removed entry shows.

Each entry's hash covers its own canonical content and the previous entry's
hash, so editing, deleting or reordering any entry breaks every hash after
it. Entries hold counts, hashes and names of organisations, never an
identifier, an encoding or a linkage key. The store writes each entry in the
same transaction as the action it records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hublink.spec import canonical_json

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    """An action to record, before it has a place in the chain."""

    action: str
    actor_organisation: str
    actor_role: str
    project_id: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    """An action with its place in the chain."""

    index: int
    time: str
    event: AuditEvent
    previous_hash: str
    entry_hash: str

    def content(self) -> dict[str, Any]:
        """The fields the hash covers, as plain data (also the export format)."""
        return entry_content(self.index, self.time, self.event)


def entry_content(index: int, time: str, event: AuditEvent) -> dict[str, Any]:
    return {
        "index": index,
        "time": time,
        "action": event.action,
        "actor_organisation": event.actor_organisation,
        "actor_role": event.actor_role,
        "project_id": event.project_id,
        "details": dict(event.details),
    }


def chain_hash(previous_hash: str, content: Mapping[str, Any]) -> str:
    """Hash of an entry: SHA-256 over the previous hash and the entry's canonical JSON."""
    payload = previous_hash.encode() + b"\n" + canonical_json(dict(content)).encode()
    return hashlib.sha256(payload).hexdigest()


def seal(index: int, time: str, event: AuditEvent, previous_hash: str) -> AuditEntry:
    """Give an event its place in the chain."""
    digest = chain_hash(previous_hash, entry_content(index, time, event))
    return AuditEntry(index, time, event, previous_hash, digest)


@dataclass(frozen=True)
class ChainProblem:
    """The first place a chain fails to verify."""

    index: int
    reason: str


def verify(entries: Iterable[AuditEntry]) -> ChainProblem | None:
    """Check indexes run 0, 1, 2… and every hash links; return the first problem or None."""
    previous = GENESIS
    for expected, entry in enumerate(entries):
        if entry.index != expected:
            return ChainProblem(expected, f"entry {expected} is missing (found {entry.index})")
        if entry.previous_hash != previous:
            return ChainProblem(entry.index, "does not follow the entry before it")
        if chain_hash(previous, entry.content()) != entry.entry_hash:
            return ChainProblem(entry.index, "its content does not match its hash")
        previous = entry.entry_hash
    return None
