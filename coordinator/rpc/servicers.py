"""gRPC servicers: translate the request, call the core, translate the answer.

Identity always comes from ``status.caller(context)`` — the verified client
certificate — and never from a field of the request.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from coordinator.core.secret_relay import SecretRelay
from coordinator.core.service import Coordinator
from coordinator.rpc import convert, secret_convert
from coordinator.rpc.status import caller, translating_errors, translating_stream_errors
from hublink.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    analyst_pb2,
    analyst_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    records_pb2,
    runs_pb2,
    runs_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
    upload_pb2,
    upload_pb2_grpc,
)


class ProjectServicer(project_pb2_grpc.ProjectServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self.core = core

    @translating_errors
    def GetProject(
        self, request: project_pb2.GetProjectRequest, context: grpc.ServicerContext
    ) -> project_pb2.Project:
        return convert.project_message(self.core.project(caller(context), request.project_id))

    @translating_errors
    def ListProjects(
        self, request: project_pb2.ListProjectsRequest, context: grpc.ServicerContext
    ) -> project_pb2.ListProjectsResponse:
        projects = self.core.projects_for(caller(context))
        return project_pb2.ListProjectsResponse(
            projects=[convert.project_message(p) for p in projects]
        )


class UploadServicer(upload_pb2_grpc.UploadServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self.core = core

    @translating_errors
    def BeginUpload(
        self, request: upload_pb2.BeginUploadRequest, context: grpc.ServicerContext
    ) -> upload_pb2.UploadStatus:
        state = self.core.begin_upload(
            caller(context),
            request.project_id,
            request.upload_id,
            request.encoding_sha256,
            request.expected_records,
            convert.consent(request.consent),
            request.secret_epoch,
            request.refresh,
        )
        return convert.upload_status(state)

    @translating_errors
    def PutChunk(
        self, request: upload_pb2.PutChunkRequest, context: grpc.ServicerContext
    ) -> upload_pb2.ChunkAck:
        receipt = self.core.put_chunk(
            caller(context),
            request.upload_id,
            request.chunk_index,
            convert.incoming_records(request),
        )
        return convert.chunk_ack(receipt)

    @translating_errors
    def GetUploadStatus(
        self, request: upload_pb2.GetUploadStatusRequest, context: grpc.ServicerContext
    ) -> upload_pb2.UploadStatus:
        return convert.upload_status(self.core.upload_status(caller(context), request.upload_id))

    @translating_errors
    def CommitUpload(
        self, request: upload_pb2.CommitUploadRequest, context: grpc.ServicerContext
    ) -> upload_pb2.UploadReceipt:
        who = caller(context)
        receipt = self.core.commit_upload(
            who,
            request.upload_id,
            request.chunk_count,
            request.record_count,
            request.digest_sha256,
            list(request.removed_tokens),
        )
        return convert.upload_receipt(receipt, self.core.refresh_counts(who, receipt.upload_id))


class KeyServicer(keys_pb2_grpc.KeyServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self.core = core

    @translating_stream_errors
    def GetLinkageKeys(
        self, request: keys_pb2.GetLinkageKeysRequest, context: grpc.ServicerContext
    ) -> Iterator[keys_pb2.LinkageKeyBatch]:
        for batch in self.core.linkage_keys(
            caller(context), request.project_id, request.batch_size
        ):
            yield convert.key_batch(batch)

    @translating_errors
    def Withdraw(
        self, request: keys_pb2.WithdrawRequest, context: grpc.ServicerContext
    ) -> keys_pb2.WithdrawResponse:
        done = self.core.withdraw(caller(context), request.project_id, list(request.tokens))
        return keys_pb2.WithdrawResponse(withdrawn=done.withdrawn, not_found=done.not_found)

    @translating_stream_errors
    def GetKeyChanges(
        self, request: keys_pb2.GetKeyChangesRequest, context: grpc.ServicerContext
    ) -> Iterator[keys_pb2.KeyChangeBatch]:
        changes, head = self.core.key_changes(caller(context), request.project_id, request.since)
        for start in range(0, max(1, len(changes)), 5000):
            yield keys_pb2.KeyChangeBatch(
                changes=[
                    keys_pb2.KeyChange(
                        token=c.token, old_key=c.old_key, new_key=c.new_key, change=c.change
                    )
                    for c in changes[start : start + 5000]
                ],
                head=head,
            )


class RunServicer(runs_pb2_grpc.RunServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self.core = core

    @translating_errors
    def StartRun(
        self, request: runs_pb2.StartRunRequest, context: grpc.ServicerContext
    ) -> runs_pb2.RunStatus:
        return convert.run_status(
            self.core.start_run(
                caller(context),
                request.project_id,
                convert.requested_threshold(request),
                full=request.full,
            )
        )

    @translating_errors
    def GetRunStatus(
        self, request: runs_pb2.GetRunStatusRequest, context: grpc.ServicerContext
    ) -> runs_pb2.RunStatus:
        return convert.run_status(
            self.core.run_status(caller(context), request.project_id, request.run_id)
        )

    @translating_errors
    def CancelRun(
        self, request: runs_pb2.CancelRunRequest, context: grpc.ServicerContext
    ) -> runs_pb2.RunStatus:
        return convert.run_status(
            self.core.cancel_run(caller(context), request.project_id, request.run_id)
        )


class AnalystServicer(analyst_pb2_grpc.AnalystServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self.core = core

    @translating_errors
    def GetOverlap(
        self, request: analyst_pb2.GetOverlapRequest, context: grpc.ServicerContext
    ) -> analyst_pb2.CountTable:
        run_id, table = self.core.overlap(caller(context), request.project_id, request.release)
        return convert.count_table(request.project_id, run_id, table)

    @translating_errors
    def GetCounts(
        self, request: analyst_pb2.GetCountsRequest, context: grpc.ServicerContext
    ) -> analyst_pb2.CountTable:
        run_id, table = self.core.counts(
            caller(context),
            request.project_id,
            convert.count_query(request),
            release=request.release,
        )
        return convert.released_table(request.project_id, run_id, table)

    @translating_errors
    def GetTimeSeries(
        self, request: analyst_pb2.GetTimeSeriesRequest, context: grpc.ServicerContext
    ) -> analyst_pb2.TimeSeries:
        points = self.core.time_series(caller(context), request.project_id)
        project = self.core.guard.project(request.project_id)
        return analyst_pb2.TimeSeries(
            project_id=request.project_id,
            disclosure_rule=project.disclosure.describe(),
            releases=[
                analyst_pb2.Release(
                    run_id=p.run_id,
                    date=p.date,
                    cells=[
                        analyst_pb2.SeriesCell(
                            label=c.label,
                            datasets=list(c.datasets),
                            value=c.value or 0,
                            suppressed=c.suppressed,
                        )
                        for c in p.cells
                    ],
                )
                for p in points
            ],
        )


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self.core = core

    @translating_stream_errors
    def ListEntries(
        self, request: audit_pb2.ListEntriesRequest, context: grpc.ServicerContext
    ) -> Iterator[audit_pb2.AuditEntry]:
        entries = self.core.audit_entries(
            caller(context),
            request.project_id,
            request.organisation,
            request.action,
            request.since,
            request.until,
        )
        for entry in entries:
            yield convert.audit_entry(entry)

    @translating_errors
    def GetCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: grpc.ServicerContext
    ) -> records_pb2.Checkpoint:
        return convert.checkpoint(self.core.audit_checkpoint(caller(context)))

    @translating_stream_errors
    def ListCheckpoints(
        self, request: audit_pb2.ListCheckpointsRequest, context: grpc.ServicerContext
    ) -> Iterator[records_pb2.Checkpoint]:
        signed = self.core.audit_checkpoints(caller(context), request.first_size, request.last_size)
        for checkpoint in signed:
            yield convert.checkpoint(checkpoint)

    @translating_errors
    def GetInclusionProof(
        self, request: audit_pb2.GetInclusionProofRequest, context: grpc.ServicerContext
    ) -> audit_pb2.InclusionProof:
        entry, signed, proof = self.core.audit_inclusion_proof(
            caller(context), request.index, request.tree_size
        )
        return convert.inclusion_proof(entry, signed, proof)

    @translating_errors
    def GetConsistencyProof(
        self, request: audit_pb2.GetConsistencyProofRequest, context: grpc.ServicerContext
    ) -> audit_pb2.ConsistencyProof:
        newer, older, proof = self.core.audit_consistency_proof(
            caller(context), request.old_size, request.new_size
        )
        return convert.consistency_proof(newer, older, proof)


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self.core = core

    @translating_errors
    def GetProjectState(
        self, request: admin_pb2.GetProjectStateRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ProjectState:
        return convert.project_state(self.core.project_state(caller(context), request.project_id))

    @translating_errors
    def CloseProject(
        self, request: admin_pb2.CloseProjectRequest, context: grpc.ServicerContext
    ) -> admin_pb2.CloseProjectResponse:
        who = caller(context)
        if not request.confirmation:
            asked = self.core.request_close(who, request.project_id, request.reason)
            return admin_pb2.CloseProjectResponse(
                confirmation=asked.code, expires_at=asked.expires_at
            )
        erased = self.core.close_project(
            who, request.project_id, request.reason, request.confirmation
        )
        return admin_pb2.CloseProjectResponse(records_deleted=erased, closed=True)

    @translating_errors
    def GetQualityReport(
        self, request: admin_pb2.GetQualityReportRequest, context: grpc.ServicerContext
    ) -> admin_pb2.QualityReport:
        run_id, report, bins = self.core.quality_report(
            caller(context), request.project_id, request.run_id
        )
        return convert.quality_report(request.project_id, run_id, report, bins)


class SecretServicer(secrets_pb2_grpc.SecretServiceServicer):
    """Relays the linkage-secret exchange; it never sees a secret in the clear."""

    def __init__(self, relay: SecretRelay) -> None:
        self.relay = relay

    @translating_errors
    def PublishNodeKey(
        self, request: secrets_pb2.PublishNodeKeyRequest, context: grpc.ServicerContext
    ) -> secrets_pb2.PublishNodeKeyResponse:
        stored = self.relay.publish_key(
            caller(context), request.project_id, secret_convert.node_key(request.key)
        )
        return secrets_pb2.PublishNodeKeyResponse(fingerprint=stored.fingerprint)

    @translating_errors
    def ListNodeKeys(
        self, request: secrets_pb2.ListNodeKeysRequest, context: grpc.ServicerContext
    ) -> secrets_pb2.ListNodeKeysResponse:
        keys = self.relay.node_keys(caller(context), request.project_id)
        return secrets_pb2.ListNodeKeysResponse(
            keys=[secret_convert.node_key_message(k) for k in keys]
        )

    @translating_errors
    def PutEnvelopes(
        self, request: secrets_pb2.PutEnvelopesRequest, context: grpc.ServicerContext
    ) -> secrets_pb2.PutEnvelopesResponse:
        epoch = self.relay.put_envelopes(
            caller(context),
            request.project_id,
            request.epoch,
            [secret_convert.envelope(e) for e in request.envelopes],
        )
        return secrets_pb2.PutEnvelopesResponse(epoch=epoch)

    @translating_errors
    def GetEnvelope(
        self, request: secrets_pb2.GetEnvelopeRequest, context: grpc.ServicerContext
    ) -> secrets_pb2.SecretEnvelope:
        found = self.relay.envelope(caller(context), request.project_id, request.epoch)
        return secret_convert.envelope_message(found)
