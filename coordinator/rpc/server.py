"""Building the coordinator's gRPC server: services, mutual TLS, bound port."""

from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health

from coordinator.core.secret_relay import SecretRelay
from coordinator.core.service import Coordinator
from coordinator.metrics import CoordinatorMetrics
from coordinator.rpc import servicers
from coordinator.rpc.access import AccessInterceptor, CertificatePolicy
from coordinator.rpc.operability import MetricsInterceptor, add_health_and_reflection
from hublink.tls import TlsFiles, server_credentials
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

MAX_MESSAGE_BYTES = 8 * 1024 * 1024


_SERVICES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (project_pb2, "ProjectService"),
        (upload_pb2, "UploadService"),
        (keys_pb2, "KeyService"),
        (runs_pb2, "RunService"),
        (analyst_pb2, "AnalystService"),
        (audit_pb2, "AuditService"),
        (admin_pb2, "AdminService"),
        (secrets_pb2, "SecretService"),
    )
)
"""Full names of hublink's services, for health checking and reflection."""


class BindError(OSError):
    """The server could not listen on the address asked for."""


def create_server(
    core: Coordinator,
    address: str,
    tls: TlsFiles,
    *,
    max_workers: int = 16,
    policy: CertificatePolicy | None = None,
    metrics: CoordinatorMetrics | None = None,
    health_servicer: health.HealthServicer | None = None,
) -> tuple[grpc.Server, int]:
    """A coordinator server listening on ``address`` with mutual TLS; returns it and its port.

    Pass port 0 (``127.0.0.1:0``) to let the system choose, as tests do. The
    server is not started: the caller starts and stops it. ``policy`` adds
    revocation and organisation-CA checks in front of every method. Standard
    health checking and reflection are always registered; pass
    ``health_servicer`` to flip it to NOT_SERVING at shutdown, and ``metrics``
    to count calls (coordinator.metrics).
    """
    metrics = metrics or CoordinatorMetrics()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        interceptors=[
            MetricsInterceptor(metrics),
            AccessInterceptor(core, policy or CertificatePolicy(), metrics),
        ],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    project_pb2_grpc.add_ProjectServiceServicer_to_server(servicers.ProjectServicer(core), server)
    upload_pb2_grpc.add_UploadServiceServicer_to_server(servicers.UploadServicer(core), server)
    keys_pb2_grpc.add_KeyServiceServicer_to_server(servicers.KeyServicer(core), server)
    runs_pb2_grpc.add_RunServiceServicer_to_server(servicers.RunServicer(core), server)
    analyst_pb2_grpc.add_AnalystServiceServicer_to_server(servicers.AnalystServicer(core), server)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(servicers.AuditServicer(core), server)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(servicers.AdminServicer(core), server)
    secrets_pb2_grpc.add_SecretServiceServicer_to_server(
        servicers.SecretServicer(SecretRelay(core)), server
    )
    add_health_and_reflection(server, _SERVICES, health_servicer)
    try:
        port = server.add_secure_port(address, server_credentials(tls))
    except RuntimeError as exc:
        raise BindError(f"cannot listen on {address}: {exc}") from None
    if port == 0:
        raise BindError(f"cannot listen on {address}: the address is in use or not local")
    return server, port
