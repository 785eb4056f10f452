"""gRPC servicers: translate the request, call the core, translate the answer.

Identity always comes from ``status.caller(context)`` — the verified client
certificate — and never from a field of the request.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from coordinator.core.service import Coordinator
from coordinator.rpc import convert
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
    runs_pb2,
    runs_pb2_grpc,
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
        receipt = self.core.commit_upload(
            caller(context),
            request.upload_id,
            request.chunk_count,
            request.record_count,
            request.digest_sha256,
        )
        return convert.upload_receipt(receipt)


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


class RunServicer(runs_pb2_grpc.RunServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self.core = core

    @translating_errors
    def StartRun(
        self, request: runs_pb2.StartRunRequest, context: grpc.ServicerContext
    ) -> runs_pb2.RunStatus:
        return convert.run_status(
            self.core.start_run(caller(context), request.project_id, request.threshold)
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
        run_id, table = self.core.overlap(caller(context), request.project_id)
        return convert.count_table(request.project_id, run_id, table)


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


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self.core = core

    @translating_errors
    def GetProjectState(
        self, request: admin_pb2.GetProjectStateRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ProjectState:
        return convert.project_state(self.core.project_state(caller(context), request.project_id))
