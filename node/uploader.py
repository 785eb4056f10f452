"""The node's side of the wire: fetch the project, upload in chunks, fetch keys.

This is the only node module that speaks gRPC. It sends exactly what
``node.encoder`` produced — tokens and encodings, plus consent counts — and
nothing else.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import grpc

from hublink.auditlog import LogEntry
from hublink.auditlog import Receipt as AuditReceipt
from hublink.spec import UploadDigest
from hublink.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    records_pb2,
    upload_pb2,
    upload_pb2_grpc,
)
from node.consent import Summary
from node.encoder import EncodedRecord


class CoordinatorRefused(RuntimeError):
    """The coordinator refused a call; the message is its sentence and status."""

    def __init__(self, what: str, error: grpc.RpcError) -> None:
        self.code = error.code()
        super().__init__(f"{what}: the coordinator said {self.code.name}: {error.details()}")


@dataclass(frozen=True)
class RemoteProject:
    project_id: str
    purpose: str
    organisations: tuple[str, ...]
    schema_json: str
    encoding_sha256: str
    encoding_names: tuple[str, ...]
    max_chunk_records: int
    secret_epoch: int = 0
    """Epoch of the exchanged linkage secret in force (0: none exchanged)."""
    node_key_fingerprints: tuple[tuple[str, str], ...] = ()
    """The project file's confirmed key fingerprints, as the coordinator serves them."""
    released_attributes: tuple[str, ...] = ()
    """Attributes the project accepts beside the encodings (node.attributes)."""
    reference_date: str = ""
    """Date at which age bands are computed (YYYY-MM-DD; empty: today)."""


@dataclass(frozen=True)
class Receipt:
    upload_id: str
    record_count: int
    digest_sha256: str
    audit_index: int
    audit: AuditReceipt | None = None
    """The signed receipt (entry, inclusion proof, checkpoint), checked by node.receipts."""
    coordinator_key: str = ""
    """The public key the coordinator offered with it (used only if none is pinned)."""


class NodeClient:
    """A node's connection to the coordinator over an already-built mutual-TLS channel."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = 60.0) -> None:
        self._projects = project_pb2_grpc.ProjectServiceStub(channel)
        self._uploads = upload_pb2_grpc.UploadServiceStub(channel)
        self._keys = keys_pb2_grpc.KeyServiceStub(channel)
        self._audit = audit_pb2_grpc.AuditServiceStub(channel)
        self.timeout = timeout

    def project(self, project_id: str) -> RemoteProject:
        try:
            p = self._projects.GetProject(
                project_pb2.GetProjectRequest(project_id=project_id), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise CoordinatorRefused(f"fetching project {project_id!r}", exc) from None
        return RemoteProject(
            p.project_id,
            p.purpose,
            tuple(p.organisations),
            p.schema_json,
            p.encoding_sha256,
            tuple(e.name for e in p.encodings),
            p.max_chunk_records or 1000,
            int(p.secret_epoch),
            tuple(sorted(p.node_key_fingerprints.items())),
            tuple(p.released_attributes),
            p.reference_date,
        )

    def upload(
        self,
        project: RemoteProject,
        encoding_sha256: str,
        records: Sequence[EncodedRecord],
        *,
        chunk_records: int,
        consent: Summary | None = None,
        upload_id: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Receipt:
        """Send every record in numbered chunks and commit; returns the coordinator's receipt."""
        upload_id = upload_id or str(uuid.uuid4())
        size = max(1, min(chunk_records, project.max_chunk_records))
        try:
            self._uploads.BeginUpload(
                upload_pb2.BeginUploadRequest(
                    project_id=project.project_id,
                    upload_id=upload_id,
                    encoding_sha256=encoding_sha256,
                    expected_records=len(records),
                    consent=_consent_message(consent),
                    secret_epoch=project.secret_epoch,
                ),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise CoordinatorRefused("starting the upload", exc) from None
        digest = UploadDigest()
        chunks = 0
        for index, chunk in enumerate(_chunks(records, size)):
            message = upload_pb2.PutChunkRequest(upload_id=upload_id, chunk_index=index)
            for record in chunk:
                message.records.append(
                    records_pb2.EncodedRecord(
                        token=record.token,
                        encodings=[
                            records_pb2.Encoding(name=n, bits=b)
                            for n, b in zip(project.encoding_names, record.encodings, strict=True)
                        ],
                        attributes=[
                            records_pb2.Attribute(name=n, value=v) for n, v in record.attributes
                        ],
                    )
                )
                digest.add(record.token, record.encodings, record.attributes)
            try:
                ack = self._uploads.PutChunk(message, timeout=self.timeout)
            except grpc.RpcError as exc:
                raise CoordinatorRefused(f"sending chunk {index}", exc) from None
            if ack.chunk_index != index:
                raise RuntimeError(f"chunk {index} was acknowledged as {ack.chunk_index}")
            chunks += 1
            if progress:
                progress(len(chunk))
        try:
            receipt = self._uploads.CommitUpload(
                upload_pb2.CommitUploadRequest(
                    upload_id=upload_id,
                    chunk_count=chunks,
                    record_count=len(records),
                    digest_sha256=digest.hexdigest(),
                ),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise CoordinatorRefused("committing the upload", exc) from None
        if receipt.digest_sha256 != digest.hexdigest():
            raise RuntimeError("the coordinator's receipt does not match what was sent")
        return Receipt(
            receipt.upload_id,
            receipt.record_count,
            receipt.digest_sha256,
            receipt.audit_index,
            _audit_receipt(receipt),
            receipt.checkpoint.public_key,
        )

    def withdraw(self, project_id: str, tokens: Sequence[str]) -> tuple[int, int]:
        """Tell the coordinator these tokens are withdrawn; (withdrawn, not found)."""
        try:
            answer = self._keys.Withdraw(
                keys_pb2.WithdrawRequest(project_id=project_id, tokens=list(tokens)),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise CoordinatorRefused("withdrawing records", exc) from None
        return int(answer.withdrawn), int(answer.not_found)

    def log_extension(self, old_size: int) -> tuple[str, list[bytes]]:
        """The coordinator's latest signed checkpoint and its proof that it extends ``old_size``."""
        try:
            answer = self._audit.GetConsistencyProof(
                audit_pb2.GetConsistencyProofRequest(old_size=old_size), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise CoordinatorRefused("fetching the audit log's consistency proof", exc) from None
        return answer.checkpoint.note, [bytes(p) for p in answer.proof]

    def linkage_keys(self, project_id: str) -> Iterator[tuple[str, str]]:
        """(token, linkage key) for every record this organisation uploaded."""
        try:
            for batch in self._keys.GetLinkageKeys(
                keys_pb2.GetLinkageKeysRequest(project_id=project_id), timeout=self.timeout
            ):
                for key in batch.keys:
                    yield key.token, key.key
        except grpc.RpcError as exc:
            raise CoordinatorRefused("fetching linkage keys", exc) from None


def _audit_receipt(message: upload_pb2.UploadReceipt) -> AuditReceipt | None:
    """The receipt as plain data, or None if the coordinator sent no signed checkpoint."""
    if not message.checkpoint.note or not message.HasField("entry"):
        return None
    e = message.entry
    return AuditReceipt(
        upload_id=message.upload_id,
        project_id=message.project_id,
        organisation=message.organisation,
        record_count=int(message.record_count),
        digest_sha256=message.digest_sha256,
        leaf_index=int(message.audit_index),
        entry=LogEntry(
            int(e.index),
            e.time,
            e.action,
            e.actor_organisation,
            e.actor_role,
            e.project_id,
            json.loads(e.details_json or "{}"),
            e.entry_hash,
        ),
        inclusion_proof=tuple(bytes(p) for p in message.inclusion_proof),
        checkpoint=message.checkpoint.note,
    )


def _chunks(records: Sequence[EncodedRecord], size: int) -> Iterator[Sequence[EncodedRecord]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


def _consent_message(consent: Summary | None) -> records_pb2.ConsentSummary:
    if consent is None:
        return records_pb2.ConsentSummary()
    return records_pb2.ConsentSummary(
        policy_sha256=consent.policy_sha256,
        counts=[records_pb2.ConsentRuleCount(rule=r, count=n) for r, n in consent.counts.items()],
    )
