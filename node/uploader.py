"""The node's side of the wire: fetch the project, upload in chunks, fetch keys.

This is the only node module that speaks gRPC. It sends exactly what
``node.encoder`` produced — tokens and encodings, plus consent counts — and
nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import grpc

from hublink.spec import UploadDigest
from hublink.v1 import (
    keys_pb2,
    keys_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    records_pb2,
    upload_pb2,
    upload_pb2_grpc,
)
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


@dataclass(frozen=True)
class Receipt:
    upload_id: str
    record_count: int
    digest_sha256: str
    audit_index: int


class NodeClient:
    """A node's connection to the coordinator over an already-built mutual-TLS channel."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = 60.0) -> None:
        self._projects = project_pb2_grpc.ProjectServiceStub(channel)
        self._uploads = upload_pb2_grpc.UploadServiceStub(channel)
        self._keys = keys_pb2_grpc.KeyServiceStub(channel)
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
        )

    def upload(
        self,
        project: RemoteProject,
        encoding_sha256: str,
        records: Sequence[EncodedRecord],
        *,
        chunk_records: int,
        consent: records_pb2.ConsentSummary | None = None,
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
                    consent=consent or records_pb2.ConsentSummary(),
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
                    )
                )
                digest.add(record.token, record.encodings)
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
            receipt.upload_id, receipt.record_count, receipt.digest_sha256, receipt.audit_index
        )

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


def _chunks(records: Sequence[EncodedRecord], size: int) -> Iterator[Sequence[EncodedRecord]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]
