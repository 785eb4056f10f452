"""An IG officer's connection to the coordinator's audit log, over mutual TLS.

Why a client of its own: an auditor should not need shell access to the
coordinator's host. Everything it receives is checked here or by
``hublink.audit.log`` against the coordinator's public key, never trusted
because it came over an authenticated channel.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from hublink.audit.log import LogEntry, StoredCheckpoint
from hublink.clients.refused import RequestRefused
from hublink.v1 import audit_pb2, audit_pb2_grpc, records_pb2


def log_entry(message: audit_pb2.AuditEntry) -> LogEntry:
    """An AuditEntry message as the shared plain entry."""
    return LogEntry(
        int(message.index),
        message.time,
        message.action,
        message.actor_organisation,
        message.actor_role,
        message.project_id,
        json.loads(message.details_json or "{}"),
        message.entry_hash,
    )


def stored_checkpoint(message: records_pb2.Checkpoint) -> StoredCheckpoint:
    return StoredCheckpoint(message.note, message.signed_at)


@dataclass(frozen=True)
class Filters:
    """Which entries to list; empty fields match everything."""

    project_id: str = ""
    organisation: str = ""
    action: str = ""
    since: str = ""
    until: str = ""


class AuditClient:
    """The auditor's calls: list entries, fetch checkpoints and proofs."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = 60.0) -> None:
        self._stub = audit_pb2_grpc.AuditServiceStub(channel)
        self.timeout = timeout

    def entries(self, filters: Filters = Filters()) -> Iterator[LogEntry]:
        request = audit_pb2.ListEntriesRequest(
            project_id=filters.project_id,
            organisation=filters.organisation,
            action=filters.action,
            since=filters.since,
            until=filters.until,
        )
        try:
            for message in self._stub.ListEntries(request, timeout=self.timeout):
                yield log_entry(message)
        except grpc.RpcError as exc:
            raise RequestRefused("listing audit entries", exc) from None

    def checkpoint(self) -> StoredCheckpoint:
        try:
            message = self._stub.GetCheckpoint(
                audit_pb2.GetCheckpointRequest(), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise RequestRefused("fetching the audit checkpoint", exc) from None
        return stored_checkpoint(message)

    def checkpoints(self, first_size: int = 0, last_size: int = 0) -> list[StoredCheckpoint]:
        """Every checkpoint the coordinator signed between two sizes (0: no bound)."""
        request = audit_pb2.ListCheckpointsRequest(first_size=first_size, last_size=last_size)
        try:
            return [
                stored_checkpoint(m)
                for m in self._stub.ListCheckpoints(request, timeout=self.timeout)
            ]
        except grpc.RpcError as exc:
            raise RequestRefused("listing audit checkpoints", exc) from None

    def inclusion_proof(
        self, index: int, tree_size: int = 0
    ) -> tuple[LogEntry, StoredCheckpoint, list[bytes]]:
        try:
            message = self._stub.GetInclusionProof(
                audit_pb2.GetInclusionProofRequest(index=index, tree_size=tree_size),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused(f"fetching the inclusion proof of entry {index}", exc) from None
        return log_entry(message.entry), stored_checkpoint(message.checkpoint), list(message.proof)

    def consistency_proof(
        self, old_size: int, new_size: int = 0
    ) -> tuple[StoredCheckpoint, StoredCheckpoint | None, list[bytes]]:
        try:
            message = self._stub.GetConsistencyProof(
                audit_pb2.GetConsistencyProofRequest(old_size=old_size, new_size=new_size),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused(
                f"fetching the consistency proof from {old_size} entries", exc
            ) from None
        older = stored_checkpoint(message.old_checkpoint) if message.old_checkpoint.note else None
        return stored_checkpoint(message.checkpoint), older, list(message.proof)
