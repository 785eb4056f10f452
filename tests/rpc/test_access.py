"""Who may connect and call, decided from the verified certificate alone (issue 4).

A real coordinator on loopback with mutual TLS: bad certificates fail in the
handshake, revoked ones and ones from another organisation's CA are refused
after it, and every refusal after authentication is audited, logged by hublink
with the peer's address, and counted. Handshake failures reach only gRPC's own
log on standard error (docs/operations.md says why); a test pins that too.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509

import hublink
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.metrics import CoordinatorMetrics
from coordinator.projects import load_project
from coordinator.rpc.access import CertificatePolicy, RevocationList
from coordinator.rpc.server import create_server
from hublink.identity import Identity, Role, fingerprint
from hublink.pki import create_authority, issue_certificate, load_authority
from hublink.tls import TlsFiles, secure_channel
from hublink.v1 import (
    analyst_pb2,
    analyst_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    upload_pb2,
    upload_pb2_grpc,
)

PROJECT = "access-test"
HEALTH = Identity("health-visiting", Role.NODE)
FLYING = Identity("flying-start", Role.NODE)
OUTSIDER = Identity("a-school", Role.NODE)
ANALYST = Identity("hubs-analytics", Role.ANALYST)
AUDITOR = Identity("ig-office", Role.AUDITOR)
COORDINATOR = Identity("linkage-unit", Role.COORDINATOR)


@dataclass
class Server:
    core: Coordinator
    port: int
    ca_dir: Path
    revoked: Path
    tmp: Path
    metrics: CoordinatorMetrics

    def issue(self, identity: Identity, **kwargs: object) -> TlsFiles:
        files = issue_certificate(
            load_authority(self.ca_dir), identity, self.tmp / "issued", overwrite=True, **kwargs
        )
        return TlsFiles.from_certificate_files(files)

    def channel(self, tls: TlsFiles) -> grpc.Channel:
        return secure_channel(f"localhost:{self.port}", tls)

    def refused_certificates(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "hublink_certificates_refused_total", {"reason": reason}
        )
        return value or 0.0

    def refusals(self) -> list[dict[str, object]]:
        return [
            {"org": e.event.actor_organisation, **e.event.details}
            for e in self.core.store.audit_entries()
            if e.event.action == "access.refused"
        ]


def write_project(directory: Path) -> Path:
    schema = directory / "early-years.json"
    shutil.copyfile(Path(hublink.__file__).parent / "schemas" / "early-years.json", schema)
    path = directory / "project.toml"
    path.write_text(
        f'id = "{PROJECT}"\npurpose = "access tests"\n'
        'organisations = ["health-visiting", "flying-start"]\nschema = "early-years.json"\n'
    )
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    ca_dir = tmp_path / "ca"
    create_authority(ca_dir)
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("# revoked certificates\n")
    store = Store(tmp_path / "c.db")
    core = Coordinator(store, [load_project(write_project(tmp_path))])
    running = Server(core, 0, ca_dir, revoked, tmp_path, CoordinatorMetrics())
    grpc_server, port = create_server(
        core,
        "127.0.0.1:0",
        running.issue(COORDINATOR),
        policy=CertificatePolicy(RevocationList(revoked)),
        metrics=running.metrics,
    )
    grpc_server.start()
    running.port = port
    yield running
    grpc_server.stop(None)
    store.close()


def get_project(channel: grpc.Channel) -> project_pb2.Project:
    return project_pb2_grpc.ProjectServiceStub(channel).GetProject(
        project_pb2.GetProjectRequest(project_id=PROJECT), timeout=10
    )


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code()


# ---------------------------------------------------------------------- handshake
def test_a_client_without_a_certificate_cannot_connect(server: Server) -> None:
    ca = (server.ca_dir / "ca.pem").read_bytes()
    channel = grpc.secure_channel(
        f"localhost:{server.port}", grpc.ssl_channel_credentials(root_certificates=ca)
    )
    assert code_of(lambda: get_project(channel)) == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_from_another_ca_cannot_connect(server: Server, tmp_path: Path) -> None:
    other = create_authority(tmp_path / "other-ca")
    files = issue_certificate(other, HEALTH, tmp_path / "other")
    tls = TlsFiles(ca=server.ca_dir / "ca.pem", cert=files.cert, key=files.key)
    assert code_of(lambda: get_project(server.channel(tls))) == grpc.StatusCode.UNAVAILABLE


def test_an_expired_certificate_cannot_connect(server: Server) -> None:
    expired = server.issue(HEALTH, not_before=datetime.now(UTC) - timedelta(days=30), days=1)
    assert code_of(lambda: get_project(server.channel(expired))) == grpc.StatusCode.UNAVAILABLE


def test_a_handshake_failure_is_in_grpcs_own_log_and_nowhere_else(
    server: Server,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """gRPC gives hublink no hook on a failed handshake (docs/operations.md): its core
    writes one line to the process's standard error, with the reason and no peer address.
    Operators alert on that line; this pins that it is there and says what the docs say."""
    other = create_authority(tmp_path / "other-ca")
    files = issue_certificate(other, HEALTH, tmp_path / "other")
    tls = TlsFiles(ca=server.ca_dir / "ca.pem", cert=files.cert, key=files.key)
    with caplog.at_level(logging.DEBUG, logger="hublink"):
        assert code_of(lambda: get_project(server.channel(tls))) == grpc.StatusCode.UNAVAILABLE
    lines = [line for line in capfd.readouterr().err.splitlines() if "Handshake failed" in line]
    assert lines and "CERTIFICATE_VERIFY_FAILED" in lines[0], lines
    assert "ssl_transport_security" in lines[0]
    assert not [r for r in caplog.records if r.name.startswith("hublink")]
    assert server.refusals() == []


# --------------------------------------------------------------------- revocation
def test_a_revoked_certificate_is_refused_without_a_restart_and_audited(server: Server) -> None:
    tls = server.issue(HEALTH)
    assert get_project(server.channel(tls)).project_id == PROJECT

    certificate = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    with server.revoked.open("a") as handle:
        handle.write(f"sha256:{fingerprint(certificate)}  # health-visiting node, lost laptop\n")

    with pytest.raises(grpc.RpcError) as caught:
        get_project(server.channel(tls))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in caught.value.details()
    assert any(
        r["org"] == "health-visiting" and "revoked" in str(r["reason"]) for r in server.refusals()
    )
    assert server.refused_certificates("revoked") == 1
    # Another certificate of the same organisation still works.
    assert get_project(server.channel(server.issue(HEALTH))).project_id == PROJECT


def test_a_refused_certificate_is_logged_with_the_peers_address_and_reason(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    tls = server.issue(FLYING)
    serial = x509.load_pem_x509_certificate(tls.cert.read_bytes()).serial_number
    server.revoked.write_text(f"serial:{serial:x}\n")
    with caplog.at_level(logging.WARNING, logger="hublink.coordinator.access"):
        assert code_of(lambda: get_project(server.channel(tls))) == grpc.StatusCode.UNAUTHENTICATED
    [line] = [r for r in caplog.records if r.name == "hublink.coordinator.access"]
    assert line.getMessage() == "certificate refused after the TLS handshake: revoked"
    assert str(getattr(line, "peer", "")).startswith("ipv4:127.0.0.1:")
    assert getattr(line, "caller", "") == "node flying-start"
    assert server.refused_certificates("revoked") == 1


def test_revocation_by_serial_number(server: Server) -> None:
    tls = server.issue(FLYING)
    serial = x509.load_pem_x509_certificate(tls.cert.read_bytes()).serial_number
    server.revoked.write_text(f"serial:{serial:x}\n")
    assert code_of(lambda: get_project(server.channel(tls))) == grpc.StatusCode.UNAUTHENTICATED


def test_an_unreadable_revocation_list_fails_closed(server: Server) -> None:
    tls = server.issue(HEALTH)
    server.revoked.write_text("not a fingerprint\n")
    with pytest.raises(grpc.RpcError) as caught:
        get_project(server.channel(tls))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revocation list" in caught.value.details()


# ----------------------------------------------------------------- organisation CAs
def test_an_organisation_ca_cannot_issue_for_another_organisation(tmp_path: Path) -> None:
    health_ca = create_authority(tmp_path / "health-ca", name="Health CA")
    flying_ca = create_authority(tmp_path / "flying-ca", name="Flying Start CA")
    unit_ca = create_authority(tmp_path / "unit-ca", name="Linkage unit CA")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join(ca.cert.read_bytes() for ca in (health_ca, flying_ca, unit_ca)))

    def tls(authority: object, identity: Identity, name: str) -> TlsFiles:
        files = issue_certificate(authority, identity, tmp_path / name)  # type: ignore[arg-type]
        return TlsFiles(ca=bundle, cert=files.cert, key=files.key)

    store = Store(tmp_path / "c.db")
    core = Coordinator(store, [load_project(write_project(tmp_path))])
    policy = CertificatePolicy(
        organisation_cas={
            "health-visiting": health_ca.cert,
            "flying-start": flying_ca.cert,
            "linkage-unit": unit_ca.cert,
        }
    )
    grpc_server, port = create_server(
        core, "127.0.0.1:0", tls(unit_ca, COORDINATOR, "coord"), policy=policy
    )
    grpc_server.start()
    try:
        own = secure_channel(f"localhost:{port}", tls(health_ca, HEALTH, "own"))
        assert get_project(own).project_id == PROJECT
        forged = secure_channel(f"localhost:{port}", tls(flying_ca, HEALTH, "forged"))
        with pytest.raises(grpc.RpcError) as caught:
            get_project(forged)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "own certificate authority" in caught.value.details()
        refusals = [e for e in store.audit_entries() if e.event.action == "access.refused"]
        assert [e.event.actor_organisation for e in refusals] == ["health-visiting"]
    finally:
        grpc_server.stop(None)
        store.close()


# -------------------------------------------------------------------------- roles
def test_each_role_is_refused_what_it_may_not_do_and_each_refusal_is_audited(
    server: Server,
) -> None:
    analyst = server.channel(server.issue(ANALYST))
    auditor = server.channel(server.issue(AUDITOR))
    outsider = server.channel(server.issue(OUTSIDER))
    attempts = {
        "analyst uploads": lambda: upload_pb2_grpc.UploadServiceStub(analyst).BeginUpload(
            upload_pb2.BeginUploadRequest(project_id=PROJECT, upload_id="u-0000-0001"), timeout=10
        ),
        "analyst reads keys": lambda: list(
            keys_pb2_grpc.KeyServiceStub(analyst).GetLinkageKeys(
                keys_pb2.GetLinkageKeysRequest(project_id=PROJECT), timeout=10
            )
        ),
        "auditor queries counts": lambda: analyst_pb2_grpc.AnalystServiceStub(auditor).GetOverlap(
            analyst_pb2.GetOverlapRequest(project_id=PROJECT), timeout=10
        ),
        "outsider reads keys": lambda: list(
            keys_pb2_grpc.KeyServiceStub(outsider).GetLinkageKeys(
                keys_pb2.GetLinkageKeysRequest(project_id=PROJECT), timeout=10
            )
        ),
    }
    for what, attempt in attempts.items():
        assert code_of(attempt) == grpc.StatusCode.PERMISSION_DENIED, what
    refused = [(r["org"], r["attempted"]) for r in server.refusals()]
    assert refused == [
        ("hubs-analytics", "upload.begin"),
        ("hubs-analytics", "keys.read"),
        ("ig-office", "counts.overlap"),
        ("a-school", "keys.read"),
    ]
