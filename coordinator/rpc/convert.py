"""Protobuf messages to the core's plain dataclasses and back, and the range check every request
passes before it is converted."""

from __future__ import annotations

import math

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from coordinator.core import model, quality, queries
from coordinator.core.audit import AuditEntry
from coordinator.core.auditstore import SignedCheckpoint
from coordinator.core.counts import CountTable
from coordinator.core.errors import InvalidRequest
from coordinator.core.refreshes import RefreshCounts
from hublink.audit.checkpoint import parse_note
from hublink.spec import canonical_json
from hublink.v1 import (
    admin_pb2,
    analyst_pb2,
    audit_pb2,
    keys_pb2,
    project_pb2,
    records_pb2,
    runs_pb2,
    upload_pb2,
)

#: The largest value an integer field of a request may hold, where the default is too loose:
#: a chunk index or count beyond any upload a project allows, an epoch beyond any exchange.
MAX_CHUNKS = 2**24
INTEGER_LIMITS: dict[str, int] = {
    "PutChunkRequest.chunk_index": MAX_CHUNKS - 1,
    "CommitUploadRequest.chunk_count": MAX_CHUNKS,
    "GetLinkageKeysRequest.batch_size": 1_000_000,
}
#: Every other integer field: what SQLite stores (a signed 64-bit integer), and for 32-bit
#: fields the signed 32-bit range, so no value wraps or overflows on the way to storage.
_DEFAULT_LIMIT = {
    FieldDescriptor.TYPE_UINT64: 2**63 - 1,
    FieldDescriptor.TYPE_INT64: 2**63 - 1,
    FieldDescriptor.TYPE_UINT32: 2**31 - 1,
    FieldDescriptor.TYPE_INT32: 2**31 - 1,
}


def check_ranges(request: Message) -> None:
    """Refuse a request with an integer field out of range or a number that is not finite.

    Walks every field of the request, nested messages and repeated fields
    included, so a new field is covered without a line here; raises
    InvalidRequest naming the field (never its neighbours' values).
    """
    for descriptor, value in request.ListFields():
        name = f"{request.DESCRIPTOR.name}.{descriptor.name}"
        values = value if descriptor.is_repeated else [value]
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            entry = descriptor.message_type
            if entry is not None and entry.GetOptions().map_entry:
                values = [v for v in value.values() if isinstance(v, Message)]
            for item in values:
                check_ranges(item)
            continue
        if descriptor.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            if any(not math.isfinite(v) for v in values):
                raise InvalidRequest(f"{name} must be a finite number")
            continue
        limit = INTEGER_LIMITS.get(name, _DEFAULT_LIMIT.get(descriptor.type))
        if limit is None:
            continue
        for item in values:
            if not 0 <= item <= limit:
                raise InvalidRequest(f"{name} must be from 0 to {limit}, not {item}")


def project_message(project: model.Project) -> project_pb2.Project:
    return project_pb2.Project(
        project_id=project.id,
        purpose=project.purpose,
        organisations=list(project.organisations),
        schema_json=project.schema_json,
        encoding_sha256=project.encoding_sha256,
        encodings=[project_pb2.EncodingSpec(name=e.name, bits=e.bits) for e in project.encodings],
        released_attributes=list(project.released_attributes),
        secret_epoch=project.secret_epoch,
        max_chunk_records=project.max_chunk_records,
        node_key_fingerprints=dict(project.node_keys),
        reference_date=project.reference_date,
    )


def requested_threshold(request: runs_pb2.StartRunRequest) -> float | None:
    """The threshold requested with a run; the proto's 0 means none (the project's rule)."""
    return request.threshold or None


def consent(message: records_pb2.ConsentSummary) -> model.ConsentSummary:
    return model.ConsentSummary(
        policy_sha256=message.policy_sha256,
        counts={c.rule: int(c.count) for c in message.counts},
    )


def incoming_records(request: upload_pb2.PutChunkRequest) -> list[model.IncomingRecord]:
    return [
        model.IncomingRecord(
            token=r.token,
            encodings=[(e.name, bytes(e.bits)) for e in r.encodings],
            attributes=[(a.name, a.value) for a in r.attributes],
        )
        for r in request.records
    ]


def upload_status(state: model.UploadState) -> upload_pb2.UploadStatus:
    return upload_pb2.UploadStatus(
        upload_id=state.upload_id,
        project_id=state.project_id,
        state=state.state,
        received_chunks=list(state.received_chunks),
        records_received=state.records_received,
    )


def chunk_ack(receipt: model.ChunkReceipt) -> upload_pb2.ChunkAck:
    return upload_pb2.ChunkAck(
        upload_id=receipt.upload_id,
        chunk_index=receipt.chunk_index,
        duplicate=receipt.duplicate,
        records_received=receipt.records_received,
    )


def upload_receipt(
    receipt: model.UploadReceipt, refresh: RefreshCounts | None = None
) -> upload_pb2.UploadReceipt:
    counts = (
        upload_pb2.RefreshCounts(
            added=refresh.added,
            changed=refresh.changed,
            removed=refresh.removed,
            unchanged=refresh.unchanged,
        )
        if refresh
        else None
    )
    return upload_pb2.UploadReceipt(
        refresh=counts,
        upload_id=receipt.upload_id,
        project_id=receipt.project_id,
        organisation=receipt.organisation,
        record_count=receipt.record_count,
        digest_sha256=receipt.digest_sha256,
        audit_index=receipt.audit_index,
        checkpoint=note_checkpoint(receipt.checkpoint, public_key=receipt.public_key),
        entry=audit_entry(receipt.entry),
        inclusion_proof=list(receipt.inclusion_proof),
    )


def note_checkpoint(note: str, signed_at: str = "", public_key: str = "") -> records_pb2.Checkpoint:
    """A Checkpoint message from a signed note (size and root read from its body)."""
    stated = parse_note(note)
    return records_pb2.Checkpoint(
        note=note,
        tree_size=stated.size,
        root_hash=stated.root,
        signed_at=signed_at,
        public_key=public_key,
    )


def checkpoint(signed: SignedCheckpoint | None) -> records_pb2.Checkpoint:
    if signed is None:
        return records_pb2.Checkpoint()
    return note_checkpoint(signed.note, signed.time, signed.public_key)


def inclusion_proof(
    entry: AuditEntry, signed: SignedCheckpoint, proof: list[bytes]
) -> audit_pb2.InclusionProof:
    return audit_pb2.InclusionProof(
        entry=audit_entry(entry), checkpoint=checkpoint(signed), proof=proof
    )


def consistency_proof(
    newer: SignedCheckpoint, older: SignedCheckpoint | None, proof: list[bytes]
) -> audit_pb2.ConsistencyProof:
    return audit_pb2.ConsistencyProof(
        checkpoint=checkpoint(newer), old_checkpoint=checkpoint(older), proof=proof
    )


def run_status(state: model.RunState) -> runs_pb2.RunStatus:
    return runs_pb2.RunStatus(
        run_id=state.run_id,
        project_id=state.project_id,
        state=state.state,
        done=state.done,
        total=state.total,
        records=state.records,
        entities=state.entities,
        linked_entities=state.linked_entities,
        threshold=state.threshold,
        seconds=state.seconds,
        message=state.message,
        quality=run_quality(state.quality) if state.quality is not None else None,
        stage=state.stage,
        comparisons=state.comparisons,
        comparisons_per_second=state.comparisons_per_second,
    )


def run_quality(q: quality.RunQuality) -> runs_pb2.RunQuality:
    return runs_pb2.RunQuality(
        auto_threshold=q.auto,
        threshold_fixed=q.threshold_fixed,
        estimated=q.fitted,
        not_estimated_because=q.reason,
        threshold_estimated=q.threshold_estimated,
        threshold_sd=q.threshold_sd,
        precision=q.precision,
        precision_sd=q.precision_sd,
        recall=q.recall,
        recall_sd=q.recall_sd,
        scores=q.scores,
        links_near_threshold=q.near_threshold,
        records_with_several_candidates=q.several_candidates,
        non_matches_anchored=q.anchored,
        duplicates=duplicate_model(q.duplicates) if q.duplicates is not None else None,
        precision_low=q.precision_interval[0],
        precision_high=q.precision_interval[1],
        recall_low=q.recall_interval[0],
        recall_high=q.recall_interval[1],
        caveats=[
            runs_pb2.Caveat(code=c.code, message=c.message, untrusted=c.untrusted)
            for c in q.caveats
        ],
    )


def duplicate_model(d: quality.DuplicateEstimate) -> runs_pb2.DuplicateModel:
    return runs_pb2.DuplicateModel(
        groups=list(d.groups),
        weighed=d.weighed,
        linked=d.linked,
        estimated_duplicate_pairs=d.estimated_duplicate_pairs,
        precision=d.precision,
        recall=d.recall,
        match_anchors=d.match_anchors,
        relative_anchors=d.relative_anchors,
        weights=[runs_pb2.GroupWeights(group=g, weights=list(w)) for g, w in d.weights],
        apart=d.apart,
        precision_low=d.precision_interval[0],
        precision_high=d.precision_interval[1],
        recall_low=d.recall_interval[0],
        recall_high=d.recall_interval[1],
    )


def quality_report(
    project_id: str,
    run_id: str,
    q: quality.RunQuality,
    bins: tuple[quality.ReleasedBin, ...],
) -> admin_pb2.QualityReport:
    return admin_pb2.QualityReport(
        project_id=project_id,
        run_id=run_id,
        threshold_used=q.threshold_used,
        quality=run_quality(q),
        bin_width=quality.BIN_WIDTH,
        bins=[
            admin_pb2.ScoreBin(lower=b.lower, count=b.count, suppressed=b.suppressed) for b in bins
        ],
        curve=[admin_pb2.CurvePoint(threshold=t, precision=p, recall=r) for t, p, r in q.curve],
        datasets=[
            admin_pb2.DatasetQuality(
                organisation=d.organisation,
                records=d.records,
                linked=d.linked,
                duplicates=d.duplicates,
            )
            for d in q.datasets
        ],
        attributes=[
            admin_pb2.AttributeQuality(
                organisation=a.organisation,
                attribute=a.attribute,
                value=a.value,
                records=a.records or 0,
                records_withheld=a.records is None,
                linked=a.linked or 0,
                linked_withheld=a.linked is None,
                duplicates=a.duplicates or 0,
                duplicates_withheld=a.duplicates is None,
            )
            for a in q.attributes
        ],
    )


def key_batch(batch: model.KeyBatch) -> keys_pb2.LinkageKeyBatch:
    return keys_pb2.LinkageKeyBatch(
        run_id=batch.run_id,
        keys=[keys_pb2.LinkageKey(token=t, key=k) for t, k in batch.keys],
        total=batch.total,
    )


def count_table(project_id: str, run_id: str, table: CountTable) -> analyst_pb2.CountTable:
    return analyst_pb2.CountTable(
        project_id=project_id,
        run_id=run_id,
        cells=[
            analyst_pb2.CountCell(
                datasets=list(c.datasets), value=c.value or 0, suppressed=c.suppressed
            )
            for c in table.cells
        ],
        disclosure_rule=table.rule,
    )


def count_query(request: analyst_pb2.GetCountsRequest) -> queries.CountQuery:
    return queries.CountQuery(
        by=tuple(request.by),
        datasets_in=tuple(request.datasets_in),
        datasets_out=tuple(request.datasets_out),
    )


def released_table(
    project_id: str, run_id: str, table: queries.ReleasedTable
) -> analyst_pb2.CountTable:
    cells = []
    for c in table.cells:
        cell = analyst_pb2.CountCell(
            value=c.value or 0,
            suppressed=c.suppressed,
            reason=c.reason,
            totalled=[d for d, v in zip(table.dimensions, c.coordinates, strict=True) if v is None],
        )
        for dimension, value in zip(table.dimensions, c.coordinates, strict=True):
            if value is None:
                continue
            if dimension == queries.DATASETS:
                cell.datasets.extend(value.split("+"))
            else:
                cell.attributes[dimension] = value
        cells.append(cell)
    return analyst_pb2.CountTable(
        project_id=project_id,
        run_id=run_id,
        cells=cells,
        disclosure_rule=table.rule,
        dimensions=list(table.dimensions),
        query=table.query,
    )


def project_state(state: model.ProjectState) -> admin_pb2.ProjectState:
    return admin_pb2.ProjectState(
        project_id=state.project_id,
        state=state.state,
        latest_run_id=state.latest_run_id,
        datasets=[
            admin_pb2.DatasetState(
                organisation=d.organisation, upload_id=d.upload_id, records=d.records
            )
            for d in state.datasets
        ],
    )


def audit_entry(entry: AuditEntry) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        index=entry.index,
        time=entry.time,
        actor_organisation=entry.event.actor_organisation,
        actor_role=entry.event.actor_role,
        action=entry.event.action,
        project_id=entry.event.project_id,
        details_json=canonical_json(dict(entry.event.details)),
        entry_hash=entry.entry_hash,
    )
