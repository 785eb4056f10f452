"""Health checking, reflection, the operations port and metrics, on a real mTLS server."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

import hublink
from coordinator.app import RunningCoordinator, start
from hublink.config import CoordinatorConfig, TlsSection
from hublink.identity import Identity, Role
from hublink.tls import secure_channel
from hublink.v1 import project_pb2, project_pb2_grpc

HUBLINK_SERVICES = {
    "hublink.v1.ProjectService",
    "hublink.v1.UploadService",
    "hublink.v1.KeyService",
    "hublink.v1.RunService",
    "hublink.v1.AnalystService",
    "hublink.v1.AuditService",
    "hublink.v1.AdminService",
    "hublink.v1.SecretService",
}
NODE = Identity("health-visiting", Role.NODE)
OUTSIDER = Identity("housing", Role.NODE)


def test_every_service_reports_serving_over_mutual_tls(coordinator) -> None:
    stub = health_pb2_grpc.HealthStub(coordinator.channel(NODE))
    for service in ("", *HUBLINK_SERVICES):
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.RpcError) as caught:
        stub.Check(health_pb2.HealthCheckRequest(service="hublink.v1.NoSuch"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_hublinks_services(coordinator) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(coordinator.channel(NODE))
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (answer,) = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
    names = {s.name for s in answer.list_services_response.service}
    assert names >= HUBLINK_SERVICES | {"grpc.health.v1.Health"}


def write_project(folder: Path, organisations: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(
        Path(hublink.__file__).parent / "schemas" / "early-years.json", folder / "s.json"
    )
    definition = folder / "ops-test.toml"
    definition.write_text(
        'id = "ops-test"\npurpose = "Test the operations port"\n'
        f'organisations = {json.dumps(list(organisations))}\nschema = "s.json"\n',
        encoding="utf-8",
    )
    return definition


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@pytest.fixture
def running(pilot_pki, tmp_path: Path):
    tls = pilot_pki.issue(Identity("coordinator", Role.COORDINATOR))
    config = CoordinatorConfig(
        tls=TlsSection(tls.ca, tls.cert, tls.key),
        database=tmp_path / "c.db",
        projects=(write_project(tmp_path / "projects", (NODE.organisation, "childcare")),),
        ops_listen="127.0.0.1:0",
    )
    coordinator = start(config, address="127.0.0.1:0")
    try:
        yield coordinator
    finally:
        coordinator.stop(grace=None)


def test_the_operations_port_answers_health_readiness_and_metrics(
    running: RunningCoordinator, pilot_pki
) -> None:
    assert running.ops_port is not None
    assert get(running.ops_port, "/healthz") == (200, "ok\n")
    assert get(running.ops_port, "/readyz") == (200, "ok\n")
    assert get(running.ops_port, "/nothing")[0] == 404

    def project_stub(identity: Identity) -> project_pb2_grpc.ProjectServiceStub:
        channel = secure_channel(f"127.0.0.1:{running.port}", pilot_pki.issue(identity))
        return project_pb2_grpc.ProjectServiceStub(channel)

    request = project_pb2.GetProjectRequest(project_id="ops-test")
    project_stub(NODE).GetProject(request, timeout=10)
    with pytest.raises(grpc.RpcError) as refused:
        project_stub(OUTSIDER).GetProject(request, timeout=10)
    status, text = get(running.ops_port, "/metrics")
    assert status == 200
    call = {
        "grpc_type": "unary",
        "grpc_service": "hublink.v1.ProjectService",
        "grpc_method": "GetProject",
    }
    assert metric(text, "grpc_server_started_total", **call) == 2
    assert metric(text, "grpc_server_handled_total", **call, grpc_code="OK") == 1
    code = refused.value.code().name
    assert code != "OK"
    assert metric(text, "grpc_server_handled_total", **call, grpc_code=code) == 1
    # The latency histogram: both calls, in cumulative buckets up to +Inf.
    assert metric(text, "grpc_server_handling_seconds_count", **call) == 2
    assert metric(text, "grpc_server_handling_seconds_bucket", **call, le="+Inf") == 2
    assert metric(text, "grpc_server_handling_seconds_bucket", **call, le="120.0") == 2
    assert 0 < metric(text, "grpc_server_handling_seconds_sum", **call) < 20
    assert "# TYPE grpc_server_handling_seconds histogram" in text
    assert metric(text, "hublink_match_run_seconds_count") == 0
    assert "ops-test" not in text.replace('project="ops-test"', "")


def test_readiness_fails_once_shutdown_begins(running: RunningCoordinator) -> None:
    assert running.health is not None and running.ops_port is not None
    running.health.enter_graceful_shutdown()
    assert get(running.ops_port, "/readyz") == (503, "not ready\n")
    assert get(running.ops_port, "/healthz") == (200, "ok\n")
