"""The node's side of the wire: fetch the project, upload in chunks, fetch keys.

This is the only node module that speaks gRPC. It sends exactly what
``node.encoder`` produced — tokens and encodings, plus consent counts — and
nothing else.

Every call has a deadline (``timeout``). Calls that may be repeated safely
are retried on transient failures (the coordinator unreachable, a deadline
missed, the coordinator busy) with exponential backoff and jitter, a bounded
number of times (``RetryPolicy``). An upload is resumable: BeginUpload with
the same upload id answers with the chunks already acknowledged, a chunk that
failed is checked with GetUploadStatus before it is sent again, and the
coordinator acknowledges a repeated chunk with the same content as a
duplicate, never storing it twice.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from hublink.audit.log import LogEntry
from hublink.audit.log import Receipt as AuditReceipt
from hublink.clients.refused import TRANSIENT, RequestRefused
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
from node.errors import NodeError

log = logging.getLogger("hublink.node")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    The n-th wait is drawn between half and all of ``initial_seconds * 2**n``
    (capped at ``max_seconds``), so nodes that lost the coordinator together do
    not all come back in the same instant.
    """

    attempts: int = 5
    """Tries per call, the first included (1: never retry)."""
    initial_seconds: float = 0.5
    max_seconds: float = 15.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (from 0)."""
        cap = min(self.max_seconds, self.initial_seconds * float(2**retry))
        return cap / 2 + rng.uniform(0, cap / 2)


class UploadRejected(NodeError, RuntimeError):
    """The coordinator no longer holds the upload being resumed (it rejected or erased it)."""


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
    chunks_already_held: int = 0
    """Chunks the coordinator held before this call (a resumed upload) and were not resent."""
    refresh: RefreshTally | None = None
    """A refresh only: what it did to the records the coordinator holds."""


@dataclass(frozen=True)
class RefreshTally:
    """What a refresh did at the coordinator (counts it computed itself)."""

    added: int
    changed: int
    removed: int
    unchanged: int


class NodeClient:
    """A node's connection to the coordinator over an already-built mutual-TLS channel."""

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._projects = project_pb2_grpc.ProjectServiceStub(channel)
        self._uploads = upload_pb2_grpc.UploadServiceStub(channel)
        self._keys = keys_pb2_grpc.KeyServiceStub(channel)
        self._audit = audit_pb2_grpc.AuditServiceStub(channel)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random()

    def _call(self, what: str, method: Callable[..., T], request: Any) -> T:
        """``method(request)`` with the deadline, retried on transient failures."""
        attempts = max(1, self.retry.attempts)
        for attempt in range(attempts):
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as exc:
                if exc.code() not in TRANSIENT or attempt + 1 == attempts:
                    raise RequestRefused(what, exc) from None
                wait = self.retry.delay(attempt, self._rng)
                log.warning(
                    "%s: %s; trying again in %.1f s (attempt %d of %d)",
                    what,
                    exc.code().name,
                    wait,
                    attempt + 2,
                    attempts,
                )
                self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def project(self, project_id: str) -> RemoteProject:
        p = self._call(
            f"fetching project {project_id!r}",
            self._projects.GetProject,
            project_pb2.GetProjectRequest(project_id=project_id),
        )
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
        records: Iterable[EncodedRecord],
        *,
        chunk_records: int,
        count: int | None = None,
        consent: Summary | None = None,
        upload_id: str | None = None,
        progress: Callable[[int], None] | None = None,
        refresh: bool = False,
        removed_tokens: Sequence[str] = (),
    ) -> Receipt:
        """Send every record in numbered chunks and commit; returns the coordinator's receipt.

        ``records`` may be a stream (``count`` then says how many it yields): a
        chunk's records are drawn from it only when that chunk is built, so a
        node never holds more than a chunk of its upload. With the
        ``upload_id`` of an upload begun earlier (by a run that was interrupted)
        and the same records in the same order, only the chunks the
        coordinator has not acknowledged are sent. A ``refresh`` (node.refresh)
        sends only records added or changed, and ``removed_tokens`` at commit.
        """
        if count is None:
            if not isinstance(records, Sized):
                raise TypeError("a stream of records needs its count")
            count = len(records)
        upload_id = upload_id or str(uuid.uuid4())
        size = max(1, min(chunk_records, project.max_chunk_records))
        status = self._call(
            "starting the upload",
            self._uploads.BeginUpload,
            upload_pb2.BeginUploadRequest(
                project_id=project.project_id,
                upload_id=upload_id,
                encoding_sha256=encoding_sha256,
                expected_records=count,
                consent=_consent_message(consent),
                secret_epoch=project.secret_epoch,
                refresh=refresh,
            ),
        )
        if status.upload_id and status.upload_id != upload_id:
            # This organisation used the id in another project: the coordinator opened the
            # upload under a fresh id of its choosing, which the rest of the upload uses.
            log.warning(
                "the upload id was used before in another project; the coordinator chose another",
                extra={"upload": status.upload_id, "project": project.project_id},
            )
            upload_id = status.upload_id
        if status.state not in ("open", "committed", "applied"):
            raise UploadRejected(
                f"upload {upload_id} is {status.state or 'gone'} at the coordinator; "
                "it cannot be resumed"
            )
        received = set(status.received_chunks)
        if received:
            log.info(
                "resuming an upload: the coordinator already holds %d chunk(s)",
                len(received),
                extra={"upload": upload_id, "project": project.project_id},
            )
        digest = UploadDigest()
        chunks = 0
        sent = 0
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
            if status.state == "open" and index not in received:
                self._put_chunk(message)
            chunks += 1
            sent += len(chunk)
            if progress:
                progress(len(chunk))
        if sent != count:
            raise UploadRejected(
                f"upload {upload_id}: {sent} records were produced for {count} announced; "
                "nothing was committed"
            )
        receipt = self._call(
            "committing the upload",
            self._uploads.CommitUpload,
            upload_pb2.CommitUploadRequest(
                upload_id=upload_id,
                chunk_count=chunks,
                record_count=count,
                digest_sha256=digest.hexdigest(),
                removed_tokens=list(removed_tokens),
            ),
        )
        if receipt.digest_sha256 != digest.hexdigest():
            raise RuntimeError("the coordinator's receipt does not match what was sent")
        return Receipt(
            receipt.upload_id,
            receipt.record_count,
            receipt.digest_sha256,
            receipt.audit_index,
            _audit_receipt(receipt),
            receipt.checkpoint.public_key,
            len(received) if status.state == "open" else chunks,
            RefreshTally(
                int(receipt.refresh.added),
                int(receipt.refresh.changed),
                int(receipt.refresh.removed),
                int(receipt.refresh.unchanged),
            )
            if receipt.HasField("refresh")
            else None,
        )

    def _put_chunk(self, message: upload_pb2.PutChunkRequest) -> None:
        """Send one chunk until acknowledged; before each resend, ask whether it arrived."""
        index = message.chunk_index
        attempts = max(1, self.retry.attempts)
        for attempt in range(attempts):
            if attempt:
                held = self.upload_status(message.upload_id)
                if index in held.received_chunks:
                    return  # it arrived; only the acknowledgement was lost
            try:
                ack = self._uploads.PutChunk(message, timeout=self.timeout)
            except grpc.RpcError as exc:
                if exc.code() not in TRANSIENT or attempt + 1 == attempts:
                    raise RequestRefused(f"sending chunk {index}", exc) from None
                wait = self.retry.delay(attempt, self._rng)
                log.warning(
                    "sending chunk %d: %s; checking and trying again in %.1f s",
                    index,
                    exc.code().name,
                    wait,
                )
                self._sleep(wait)
                continue
            if ack.chunk_index != index:
                raise RuntimeError(f"chunk {index} was acknowledged as {ack.chunk_index}")
            return

    def upload_status(self, upload_id: str) -> upload_pb2.UploadStatus:
        """What the coordinator holds of an upload (state and acknowledged chunks)."""
        status: upload_pb2.UploadStatus = self._call(
            "asking for the upload's status",
            self._uploads.GetUploadStatus,
            upload_pb2.GetUploadStatusRequest(upload_id=upload_id),
        )
        return status

    def withdraw(self, project_id: str, tokens: Sequence[str]) -> tuple[int, int]:
        """Tell the coordinator these tokens are withdrawn; (withdrawn, not found).

        Retried on transient failures: withdrawing is idempotent at the
        coordinator (a record already deleted is simply not found again), so a
        retry after a lost answer changes nothing but the counts it reports.
        """
        answer = self._call(
            "withdrawing records",
            self._keys.Withdraw,
            keys_pb2.WithdrawRequest(project_id=project_id, tokens=list(tokens)),
        )
        return int(answer.withdrawn), int(answer.not_found)

    def key_changes(
        self, project_id: str, since: int
    ) -> tuple[list[tuple[str, str, str, str]], int]:
        """(token, old key, new key, change) of this organisation's records whose keys
        changed after sequence ``since``, and the sequence they reach (``since`` next time).
        Read whole before returning, and started again on a transient failure."""

        def whole_stream(
            request: keys_pb2.GetKeyChangesRequest, timeout: float
        ) -> tuple[list[tuple[str, str, str, str]], int]:
            changes: list[tuple[str, str, str, str]] = []
            head = since
            for batch in self._keys.GetKeyChanges(request, timeout=timeout):
                head = int(batch.head)
                changes.extend((c.token, c.old_key, c.new_key, c.change) for c in batch.changes)
            return changes, head

        return self._call(
            "fetching key changes",
            whole_stream,
            keys_pb2.GetKeyChangesRequest(project_id=project_id, since=since),
        )

    def log_extension(self, old_size: int) -> tuple[str, list[bytes]]:
        """The coordinator's latest signed checkpoint and its proof that it extends ``old_size``."""
        answer = self._call(
            "fetching the audit log's consistency proof",
            self._audit.GetConsistencyProof,
            audit_pb2.GetConsistencyProofRequest(old_size=old_size),
        )
        return answer.checkpoint.note, [bytes(p) for p in answer.proof]

    def linkage_keys(self, project_id: str) -> list[tuple[str, str]]:
        """(token, linkage key) for every record this organisation uploaded.

        The stream is read whole before anything is returned: if it breaks
        on a transient failure it is started again from the beginning (with
        the same backoff as any call), so a caller never sees a partial or
        doubled set of keys.
        """

        def whole_stream(
            request: keys_pb2.GetLinkageKeysRequest, timeout: float
        ) -> list[tuple[str, str]]:
            return [
                (key.token, key.key)
                for batch in self._keys.GetLinkageKeys(request, timeout=timeout)
                for key in batch.keys
            ]

        return self._call(
            "fetching linkage keys",
            whole_stream,
            keys_pb2.GetLinkageKeysRequest(project_id=project_id),
        )


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


def _chunks(records: Iterable[EncodedRecord], size: int) -> Iterator[list[EncodedRecord]]:
    """Consecutive chunks of ``size`` records, drawn from ``records`` one chunk at a time."""
    stream = iter(records)
    while chunk := list(itertools.islice(stream, size)):
        yield chunk


def _consent_message(consent: Summary | None) -> records_pb2.ConsentSummary:
    if consent is None:
        return records_pb2.ConsentSummary()
    return records_pb2.ConsentSummary(
        policy_sha256=consent.policy_sha256,
        counts=[records_pb2.ConsentRuleCount(rule=r, count=n) for r, n in consent.counts.items()],
    )
