"""Verifying the part of the audit log an auditor may see, from the coordinator over gRPC.

An auditor is shown only its projects' entries (coordinator.core.audit_reads),
so it cannot rebuild the whole Merkle tree. Instead each entry it is shown is
checked on its own: its content must hash to its recorded leaf, and an
inclusion proof must lead from that leaf to the root of the latest checkpoint,
whose signature must verify under the coordinator's key the auditor holds.
One proof is fetched per entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hublink.audit import merkle
from hublink.audit.checkpoint import CheckpointError, Verifier
from hublink.audit.log import LogEntry
from hublink.clients.audit import AuditClient


@dataclass
class ScopedReport:
    """What was checked: entries proved into the signed checkpoint, and problems found."""

    entries: int = 0
    size: int = 0
    root: bytes = b""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_visible(
    client: AuditClient, entries: Iterable[LogEntry], verifier: Verifier
) -> ScopedReport:
    """Prove every entry in ``entries`` into the coordinator's latest signed checkpoint."""
    report = ScopedReport()
    try:
        checkpoint = verifier.open_checkpoint(client.checkpoint().note)
    except CheckpointError as exc:
        report.problems.append(f"the latest checkpoint does not verify: {exc}")
        return report
    report.size, report.root = checkpoint.size, checkpoint.root
    for entry in entries:
        if entry.index >= checkpoint.size:
            continue  # written after the checkpoint; the next one covers it
        report.entries += 1
        if entry.leaf().hex() != entry.entry_hash:
            report.problems.append(f"entry {entry.index}: its content does not match its hash")
            continue
        proved, _, proof = client.inclusion_proof(entry.index, checkpoint.size)
        try:
            if proved.entry_hash != entry.entry_hash:
                raise merkle.ProofError("the proof is for different content")
            merkle.verify_inclusion(
                entry.index, checkpoint.size, entry.leaf(), proof, checkpoint.root
            )
        except merkle.ProofError as exc:
            report.problems.append(f"entry {entry.index}: {exc}")
    return report
