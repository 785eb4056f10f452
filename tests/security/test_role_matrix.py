"""The identity and role matrix (issue 21): every caller against every method, over mutual TLS.

A real coordinator serves one project and trusts, besides the project's CA,
the own CAs of three organisations (``organisation_cas``). Each caller below
is a certificate: every role for an organisation the project names, for one
it does not, and issued by an organisation's own CA (which may issue node
certificates only), plus a certificate naming no hublink identity at all.
Each calls every method of every hublink service once. The outcome of each
call is compared with the table ``EXPECTED`` declared here, and every refusal
must have left an ``access.refused`` entry in the audit log.

``pytest -s`` prints the table of calls tried and refused; it is also written
to ``role-matrix.txt`` in the test's temporary directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import hublink
from coordinator.core.model import ConsentSummary
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.projects import load_project
from coordinator.rpc.access import CertificatePolicy
from coordinator.rpc.server import create_server
from hublink.identity import Identity, Role
from hublink.pki import CertificateFiles, create_authority, issue_certificate
from hublink.tls import TlsFiles, secure_channel
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
    secrets_pb2,
    secrets_pb2_grpc,
    upload_pb2,
    upload_pb2_grpc,
)

pytestmark = pytest.mark.e2e

PROJECT = "role-matrix"
MEMBER = "health-visiting"
"""A member organisation that runs its own CA; the project also names it in every role, so
that its own CA's admin, auditor and analyst certificates are refused for the CA alone."""
OUTSIDER = "evil-org"
"""An organisation the project does not name, with a CA of its own the coordinator trusts."""
UPLOAD_ID = "u-matrix-0001"
DEADLINE = 20


@dataclass(frozen=True)
class Caller:
    label: str
    identity: Identity | None
    """None: a certificate that names no hublink identity."""
    issuer: str
    """"project" (the project's CA) or the organisation whose own CA issued it."""


CALLERS = (
    Caller("node / in project", Identity(MEMBER, Role.NODE), MEMBER),
    Caller("node / not in project", Identity(OUTSIDER, Role.NODE), OUTSIDER),
    Caller("node / project CA", Identity(MEMBER, Role.NODE), "project"),
    Caller("admin / in project", Identity("linkage-unit", Role.ADMIN), "project"),
    Caller("admin / not in project", Identity(OUTSIDER, Role.ADMIN), "project"),
    Caller("admin / org CA", Identity(MEMBER, Role.ADMIN), MEMBER),
    Caller("auditor / in project", Identity("information-governance", Role.AUDITOR), "project"),
    Caller("auditor / not in project", Identity(OUTSIDER, Role.AUDITOR), "project"),
    Caller("auditor / org CA", Identity(MEMBER, Role.AUDITOR), MEMBER),
    Caller("analyst / in project", Identity("public-health", Role.ANALYST), "project"),
    Caller("analyst / not in project", Identity(OUTSIDER, Role.ANALYST), "project"),
    Caller("analyst / org CA", Identity(MEMBER, Role.ANALYST), MEMBER),
    Caller("no identity", None, "project"),
)

# Each method's request is one a permitted caller would send (or a harmless malformed one):
# what matters is whether the coordinator lets the caller past authorisation.
Call = Callable[[grpc.Channel, "Fixture"], object]


def _unary(stub: Any, method: str, request: Any) -> Call:
    return lambda channel, _: getattr(stub(channel), method)(request, timeout=DEADLINE)


def _stream(stub: Any, method: str, request: Any) -> Call:
    return lambda channel, _: list(getattr(stub(channel), method)(request, timeout=DEADLINE))


METHODS: dict[str, Call] = {
    "Project.GetProject": _unary(
        project_pb2_grpc.ProjectServiceStub,
        "GetProject",
        project_pb2.GetProjectRequest(project_id=PROJECT),
    ),
    "Project.ListProjects": _unary(
        project_pb2_grpc.ProjectServiceStub, "ListProjects", project_pb2.ListProjectsRequest()
    ),
    "Upload.BeginUpload": _unary(
        upload_pb2_grpc.UploadServiceStub,
        "BeginUpload",
        upload_pb2.BeginUploadRequest(project_id=PROJECT, upload_id=UPLOAD_ID),
    ),
    "Upload.PutChunk": _unary(
        upload_pb2_grpc.UploadServiceStub,
        "PutChunk",
        upload_pb2.PutChunkRequest(upload_id=UPLOAD_ID, chunk_index=0),
    ),
    "Upload.GetUploadStatus": _unary(
        upload_pb2_grpc.UploadServiceStub,
        "GetUploadStatus",
        upload_pb2.GetUploadStatusRequest(upload_id=UPLOAD_ID),
    ),
    "Upload.CommitUpload": _unary(
        upload_pb2_grpc.UploadServiceStub,
        "CommitUpload",
        upload_pb2.CommitUploadRequest(upload_id=UPLOAD_ID, chunk_count=1, record_count=1),
    ),
    "Keys.GetLinkageKeys": _stream(
        keys_pb2_grpc.KeyServiceStub,
        "GetLinkageKeys",
        keys_pb2.GetLinkageKeysRequest(project_id=PROJECT),
    ),
    "Keys.Withdraw": _unary(
        keys_pb2_grpc.KeyServiceStub, "Withdraw", keys_pb2.WithdrawRequest(project_id=PROJECT)
    ),
    "Run.StartRun": _unary(
        runs_pb2_grpc.RunServiceStub, "StartRun", runs_pb2.StartRunRequest(project_id=PROJECT)
    ),
    "Run.GetRunStatus": _unary(
        runs_pb2_grpc.RunServiceStub,
        "GetRunStatus",
        runs_pb2.GetRunStatusRequest(project_id=PROJECT),
    ),
    "Run.CancelRun": _unary(
        runs_pb2_grpc.RunServiceStub,
        "CancelRun",
        runs_pb2.CancelRunRequest(project_id=PROJECT, run_id="no-such-run"),
    ),
    "Analyst.GetOverlap": _unary(
        analyst_pb2_grpc.AnalystServiceStub,
        "GetOverlap",
        analyst_pb2.GetOverlapRequest(project_id=PROJECT),
    ),
    "Analyst.GetCounts": _unary(
        analyst_pb2_grpc.AnalystServiceStub,
        "GetCounts",
        analyst_pb2.GetCountsRequest(project_id=PROJECT),
    ),
    "Audit.ListEntries": _stream(
        audit_pb2_grpc.AuditServiceStub, "ListEntries", audit_pb2.ListEntriesRequest()
    ),
    "Audit.GetCheckpoint": _unary(
        audit_pb2_grpc.AuditServiceStub, "GetCheckpoint", audit_pb2.GetCheckpointRequest()
    ),
    "Audit.GetInclusionProof": lambda channel, fixture: audit_pb2_grpc.AuditServiceStub(
        channel
    ).GetInclusionProof(
        audit_pb2.GetInclusionProofRequest(index=fixture.project_entry), timeout=DEADLINE
    ),
    "Audit.GetConsistencyProof": _unary(
        audit_pb2_grpc.AuditServiceStub,
        "GetConsistencyProof",
        audit_pb2.GetConsistencyProofRequest(old_size=1),
    ),
    "Admin.GetProjectState": _unary(
        admin_pb2_grpc.AdminServiceStub,
        "GetProjectState",
        admin_pb2.GetProjectStateRequest(project_id=PROJECT),
    ),
    # The first of the two close calls: a permitted admin gets a code; nothing is erased.
    "Admin.CloseProject": _unary(
        admin_pb2_grpc.AdminServiceStub,
        "CloseProject",
        admin_pb2.CloseProjectRequest(project_id=PROJECT, reason="role matrix probe"),
    ),
    "Admin.GetQualityReport": _unary(
        admin_pb2_grpc.AdminServiceStub,
        "GetQualityReport",
        admin_pb2.GetQualityReportRequest(project_id=PROJECT),
    ),
    "Secret.PublishNodeKey": _unary(
        secrets_pb2_grpc.SecretServiceStub,
        "PublishNodeKey",
        secrets_pb2.PublishNodeKeyRequest(project_id=PROJECT),
    ),
    "Secret.ListNodeKeys": _unary(
        secrets_pb2_grpc.SecretServiceStub,
        "ListNodeKeys",
        secrets_pb2.ListNodeKeysRequest(project_id=PROJECT),
    ),
    "Secret.PutEnvelopes": _unary(
        secrets_pb2_grpc.SecretServiceStub,
        "PutEnvelopes",
        secrets_pb2.PutEnvelopesRequest(project_id=PROJECT, epoch=1),
    ),
    "Secret.GetEnvelope": _unary(
        secrets_pb2_grpc.SecretServiceStub,
        "GetEnvelope",
        secrets_pb2.GetEnvelopeRequest(project_id=PROJECT),
    ),
}

_PROJECT_LESS = {"Audit.GetCheckpoint", "Audit.GetConsistencyProof", "Project.ListProjects"}
_READ = {"Project.GetProject", *_PROJECT_LESS}
ALLOWED: dict[str, set[str]] = {
    "node / in project": _READ
    | {m for m in METHODS if m.split(".")[0] in ("Upload", "Keys", "Secret")}
    | {"Run.GetRunStatus"},
    "admin / in project": _READ | {m for m in METHODS if m.split(".")[0] in ("Admin", "Run")},
    "auditor / in project": _READ | {m for m in METHODS if m.startswith("Audit.")},
    "analyst / in project": _READ | {m for m in METHODS if m.startswith("Analyst.")},
}
"""What each caller may do; every other (caller, method) must be refused. Callers not
listed may do nothing: an organisation outside the project, a certificate from the wrong CA
(an organisation's own CA issues node certificates only), and a certificate with no
identity."""

EXPECTED = {(c.label, m): m in ALLOWED.get(c.label, set()) for c in CALLERS for m in METHODS}

_REFUSALS = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}
_UPLOAD_ID_METHODS = {"Upload.PutChunk", "Upload.GetUploadStatus", "Upload.CommitUpload"}


@dataclass
class Fixture:
    core: Coordinator
    port: int
    project_ca: CertificateFiles
    cas: dict[str, CertificateFiles]
    directory: Path
    project_entry: int

    def tls(self, caller: Caller) -> TlsFiles:
        authority = self.project_ca if caller.issuer == "project" else self.cas[caller.issuer]
        out = self.directory / "issued" / caller.label.replace(" / ", "-").replace(" ", "-")
        if caller.identity is None:
            cert, key = _certificate_without_identity(authority, out)
        else:
            files = issue_certificate(authority, caller.identity, out)
            cert, key = files.cert, files.key
        return TlsFiles(ca=self.project_ca.cert, cert=cert, key=key)

    def refusals(self) -> int:
        return sum(1 for e in self.core.store.audit_entries() if e.event.action == "access.refused")


def _certificate_without_identity(authority: CertificateFiles, out: Path) -> tuple[Path, Path]:
    """A certificate the project's CA signed that names no hublink identity (DNS name only)."""
    ca_cert = x509.load_pem_x509_certificate(authority.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(authority.key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nobody")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "nobody.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (out / "nobody.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return out / "nobody.pem", out / "nobody.key"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Fixture]:
    project_ca = create_authority(tmp_path / "project-ca", name="Project CA")
    cas = {
        org: create_authority(tmp_path / f"{org}-ca", name=f"{org} CA")
        for org in (MEMBER, "flying-start", OUTSIDER)
    }
    bundle = tmp_path / "client-cas.pem"
    bundle.write_bytes(b"".join(ca.cert.read_bytes() for ca in (project_ca, *cas.values())))
    shutil.copyfile(
        Path(hublink.__file__).parent / "schemas" / "early-years.json",
        tmp_path / "early-years.json",
    )
    definition = tmp_path / "project.toml"
    definition.write_text(
        f'id = "{PROJECT}"\npurpose = "Probe every role against every method"\n'
        f'organisations = ["{MEMBER}", "flying-start"]\nschema = "early-years.json"\n'
        f'admins = ["linkage-unit", "{MEMBER}"]\n'
        f'auditors = ["information-governance", "{MEMBER}"]\n'
        f'analysts = ["public-health", "{MEMBER}"]\n',
        encoding="utf-8",
    )
    project = load_project(definition)
    store = Store(tmp_path / "coordinator.db")
    core = Coordinator(store, [project])
    core.begin_upload(
        Identity(MEMBER, Role.NODE),
        PROJECT,
        UPLOAD_ID,
        project.encoding_sha256,
        1,
        ConsentSummary("0" * 64, {"consented": 1}),
    )
    [created] = [e for e in store.audit_entries() if e.event.action == "project.created"]
    served = issue_certificate(project_ca, Identity("coordinator", Role.COORDINATOR), tmp_path)
    server, port = create_server(
        core,
        "127.0.0.1:0",
        TlsFiles(ca=bundle, cert=served.cert, key=served.key),
        policy=CertificatePolicy(organisation_cas={o: ca.cert for o, ca in cas.items()}),
    )
    server.start()
    try:
        yield Fixture(core, port, project_ca, cas, tmp_path, created.index)
    finally:
        server.stop(None)
        store.close()


def _outcome(call: Call, channel: grpc.Channel, fixture: Fixture, method: str) -> str:
    try:
        call(channel, fixture)
    except grpc.RpcError as exc:
        code = exc.code()
        if code in _REFUSALS or (
            code is grpc.StatusCode.NOT_FOUND and method in _UPLOAD_ID_METHODS
        ):
            return f"refused {code.name}"
        return f"allowed {code.name}"
    return "allowed OK"


def test_every_caller_against_every_method_matches_the_declared_table(
    served: Fixture, tmp_path: Path
) -> None:
    outcomes: dict[tuple[str, str], str] = {}
    unaudited: list[tuple[str, str]] = []
    for caller in CALLERS:
        channel = secure_channel(f"localhost:{served.port}", served.tls(caller))
        try:
            for method, call in METHODS.items():
                before = served.refusals()
                outcomes[caller.label, method] = _outcome(call, channel, served, method)
                refused = outcomes[caller.label, method].startswith("refused")
                if refused and served.refusals() != before + 1:
                    unaudited.append((caller.label, method))
        finally:
            channel.close()

    table = _table(outcomes)
    (tmp_path / "role-matrix.txt").write_text(table, encoding="utf-8")
    print("\n" + table)

    wrong = [
        f"{who} {method}: expected {'allowed' if EXPECTED[who, method] else 'refused'}, "
        f"got {outcome}"
        for (who, method), outcome in outcomes.items()
        if outcome.startswith("allowed") != EXPECTED[who, method]
    ]
    assert not wrong, "\n".join(wrong)
    assert not unaudited, f"refusals without an audit entry: {unaudited}"
    # Nothing the probe did closed the project or erased the upload.
    state = served.core.store.query_one("SELECT state FROM projects WHERE id = ?", (PROJECT,))
    assert state is not None and state["state"] == "open"
    refused_by_edge = {
        e.event.details["reason"]
        for e in served.core.store.audit_entries()
        if e.event.action == "access.refused"
        and e.event.actor_organisation == MEMBER
        and e.event.actor_role != "node"
    }
    assert refused_by_edge == {
        f"the certificate of {role} {MEMBER} was issued by organisation {MEMBER!r}'s "
        "certificate authority, which may issue only node certificates"
        for role in ("admin", "auditor", "analyst")
    }
    unidentified = [
        e.event.details
        for e in served.core.store.audit_entries()
        if e.event.actor_organisation == "(unidentified)"
    ]
    assert len(unidentified) == len(METHODS)
    assert all(len(str(d["certificate_sha256"])) == 64 for d in unidentified)


def _table(outcomes: dict[tuple[str, str], str]) -> str:
    """Methods down, callers across: ✓ allowed, ✗ refused; then totals per caller."""
    width = max(len(m) for m in METHODS)
    short = [c.label for c in CALLERS]
    lines = ["role matrix (✓ allowed, ✗ refused)", ""]
    lines += [f"{'':{width}}  " + "  ".join(f"{i + 1:>2}" for i in range(len(short)))]
    for method in METHODS:
        marks = ["✓" if outcomes[c, method].startswith("allowed") else "✗" for c in short]
        lines.append(f"{method:{width}}  " + "  ".join(f"{m:>2}" for m in marks))
    lines.append("")
    for i, label in enumerate(short, start=1):
        row = [outcomes[label, m] for m in METHODS]
        refused = sum(1 for o in row if o.startswith("refused"))
        lines.append(
            f"{i:>2} {label:<26} tried {len(row):>2}  refused {refused:>2}  "
            f"allowed {len(row) - refused:>2}"
        )
    total = len(outcomes)
    refused = sum(1 for o in outcomes.values() if o.startswith("refused"))
    lines += [
        "",
        f"role matrix: {total} calls tried, {refused} refused (each audited), "
        f"{total - refused} allowed",
    ]
    return "\n".join(lines) + "\n"
