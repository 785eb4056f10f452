"""The linkage-quality report over real mutual TLS: the project's admin only, every read audited.

The run's estimated quality travels in RunStatus to the admin alone, and the
GetQualityReport RPC (aggregate histogram bins, curve, per-organisation
counts) refuses nodes and analysts with PERMISSION_DENIED, each refusal in the
audit log.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from test_coordinator_rpc import (
    ADMIN,
    ANALYST,
    DEADLINE,
    FLYING_START,
    HEALTH_VISITING,
    SPEC,
    audited,
    encode,
    made_up_people,
    refused,
)

from hublink.clients import AdminClient
from hublink.identity import Identity
from hublink.v1 import admin_pb2, admin_pb2_grpc, runs_pb2, runs_pb2_grpc
from node.uploader import NodeClient


@pytest.fixture
def matched(coordinator: Any) -> str:
    """Two organisations sharing 60 of 160 made-up people each, matched once; the run id."""
    people = made_up_people(260, seed=41)
    shared, hv_only, fs_only = people[:60], people[60:160], people[160:]
    for node, group in ((HEALTH_VISITING, shared + hv_only), (FLYING_START, fs_only + shared)):
        client = NodeClient(coordinator.channel(node), timeout=DEADLINE)
        client.upload(
            client.project(coordinator.project_id), SPEC.sha256, encode(group), chunk_records=500
        )
    admin = AdminClient(coordinator.channel(ADMIN), timeout=DEADLINE)
    run = admin.wait(coordinator.project_id, admin.start_run(coordinator.project_id).run_id)
    assert run.state == "completed", run.message
    return run.run_id


def test_the_admin_gets_the_quality_in_run_status_and_a_node_does_not(
    coordinator: Any, matched: str
) -> None:
    request = runs_pb2.GetRunStatusRequest(project_id=coordinator.project_id, run_id=matched)
    admin = runs_pb2_grpc.RunServiceStub(coordinator.channel(ADMIN)).GetRunStatus(
        request, timeout=DEADLINE
    )
    node = runs_pb2_grpc.RunServiceStub(coordinator.channel(HEALTH_VISITING)).GetRunStatus(
        request, timeout=DEADLINE
    )
    assert admin.HasField("quality")
    assert admin.quality.scores > 0
    assert admin.quality.threshold_fixed == pytest.approx(coordinator.project.threshold)
    assert not node.HasField("quality")


def test_the_admin_reads_the_quality_report_and_the_read_is_audited(
    coordinator: Any, matched: str
) -> None:
    report = AdminClient(coordinator.channel(ADMIN), timeout=DEADLINE).quality_report(
        coordinator.project_id
    )
    assert report.run_id == matched
    assert report.bins and report.bin_width == pytest.approx(0.01)
    threshold = coordinator.project.suppression_threshold
    assert all(b.count == 0 or b.count >= threshold for b in report.bins)
    assert all(b.count == 0 for b in report.bins if b.suppressed)
    assert [d.organisation for d in report.datasets] == ["health-visiting", "flying-start"]
    assert [d.records for d in report.datasets] == [160, 160]
    [entry] = audited(coordinator, "quality.read")
    assert entry.event.actor_role == "admin"
    assert entry.event.details["run_id"] == matched


@pytest.mark.parametrize("caller", [HEALTH_VISITING, ANALYST], ids=["node", "analyst"])
def test_nodes_and_analysts_are_refused_the_quality_report_and_audited(
    coordinator: Any, matched: str, caller: Identity
) -> None:
    stub = admin_pb2_grpc.AdminServiceStub(coordinator.channel(caller))
    refused(
        lambda: stub.GetQualityReport(
            admin_pb2.GetQualityReportRequest(project_id=coordinator.project_id),
            timeout=DEADLINE,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        mentions=["may not read linkage-quality reports", "needs the role admin"],
    )
    [entry] = audited(coordinator, "access.refused")
    assert entry.event.actor_organisation == caller.organisation
    assert entry.event.details["attempted"] == "quality.read"
    assert not audited(coordinator, "quality.read")
