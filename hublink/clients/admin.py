"""A project admin's client: start matching runs, follow them, read a project's state.

It holds a mutual-TLS channel and turns the coordinator's answers into plain
values; the CLI and the demo print them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from hublink.clients.refused import RequestRefused
from hublink.v1 import admin_pb2, admin_pb2_grpc, runs_pb2, runs_pb2_grpc


@dataclass(frozen=True)
class RunReport:
    run_id: str
    state: str
    records: int
    entities: int
    linked_entities: int
    threshold: float
    seconds: float
    message: str
    quality: runs_pb2.RunQuality | None = None
    """The run's estimated quality (admins only, completed runs only)."""
    stage: str = ""
    done: int = 0
    total: int = 0
    comparisons: int = 0
    comparisons_per_second: float = 0.0


def _report(status: runs_pb2.RunStatus) -> RunReport:
    return RunReport(
        status.run_id,
        status.state,
        status.records,
        status.entities,
        status.linked_entities,
        status.threshold,
        status.seconds,
        status.message,
        status.quality if status.HasField("quality") else None,
        stage=status.stage,
        done=status.done,
        total=status.total,
        comparisons=status.comparisons,
        comparisons_per_second=status.comparisons_per_second,
    )


class AdminClient:
    """A project admin's calls: start a matching run and follow it."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = 60.0) -> None:
        self._runs = runs_pb2_grpc.RunServiceStub(channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(channel)
        self.timeout = timeout

    def start_run(
        self, project_id: str, threshold: float = 0.0, *, full: bool = False
    ) -> RunReport:
        try:
            status = self._runs.StartRun(
                runs_pb2.StartRunRequest(project_id=project_id, threshold=threshold, full=full),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused(f"starting a run of {project_id!r}", exc) from None
        return _report(status)

    def run_status(self, project_id: str, run_id: str = "") -> RunReport:
        try:
            status = self._runs.GetRunStatus(
                runs_pb2.GetRunStatusRequest(project_id=project_id, run_id=run_id),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused(f"reading run status of {project_id!r}", exc) from None
        return _report(status)

    def cancel_run(self, project_id: str, run_id: str) -> RunReport:
        try:
            status = self._runs.CancelRun(
                runs_pb2.CancelRunRequest(project_id=project_id, run_id=run_id),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused(f"cancelling run {run_id} of {project_id!r}", exc) from None
        return _report(status)

    def wait(
        self,
        project_id: str,
        run_id: str,
        *,
        poll: float = 0.2,
        on_progress: Callable[[RunReport], None] | None = None,
        timeout: float = 3600.0,
    ) -> RunReport:
        """Poll a run until it ends; returns its final report."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.run_status(project_id, run_id)
            if on_progress:
                on_progress(report)
            if report.state not in ("queued", "running"):
                return report
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f} s")
            time.sleep(poll)

    def project_state(self, project_id: str) -> admin_pb2.ProjectState:
        try:
            state: admin_pb2.ProjectState = self._admin.GetProjectState(
                admin_pb2.GetProjectStateRequest(project_id=project_id), timeout=self.timeout
            )
            return state
        except grpc.RpcError as exc:
            raise RequestRefused(f"reading the state of {project_id!r}", exc) from None

    def request_close(self, project_id: str, reason: str) -> tuple[str, str]:
        """Ask to close a project: the coordinator announces it in the audit log and returns
        (confirmation code, expiry); nothing is erased until ``confirm_close``."""
        response = self._close(project_id, reason, "", "asking to close")
        return response.confirmation, response.expires_at

    def confirm_close(self, project_id: str, reason: str, confirmation: str) -> int:
        """Close a project with the code ``request_close`` returned; records erased."""
        response = self._close(project_id, reason, confirmation, "closing")
        return int(response.records_deleted)

    def close_project(self, project_id: str, reason: str) -> int:
        """Close a project in both steps at once: the coordinator erases everything it holds
        for it. Callers that should let a person confirm use the two steps instead."""
        confirmation, _ = self.request_close(project_id, reason)
        return self.confirm_close(project_id, reason, confirmation)

    def _close(
        self, project_id: str, reason: str, confirmation: str, doing: str
    ) -> admin_pb2.CloseProjectResponse:
        try:
            response: admin_pb2.CloseProjectResponse = self._admin.CloseProject(
                admin_pb2.CloseProjectRequest(
                    project_id=project_id, reason=reason, confirmation=confirmation
                ),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused(f"{doing} {project_id!r}", exc) from None
        return response

    def quality_report(self, project_id: str, run_id: str = "") -> admin_pb2.QualityReport:
        """A run's linkage-quality report (aggregates only; empty run id: the latest run)."""
        try:
            report: admin_pb2.QualityReport = self._admin.GetQualityReport(
                admin_pb2.GetQualityReportRequest(project_id=project_id, run_id=run_id),
                timeout=self.timeout,
            )
            return report
        except grpc.RpcError as exc:
            raise RequestRefused(f"reading the quality report of {project_id!r}", exc) from None
