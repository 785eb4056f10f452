"""Assembling a coordinator from its configuration: store, projects, core, server."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc

from coordinator.core.service import Coordinator
from coordinator.core.store import Store, default_audit_key
from coordinator.projects import load_project
from coordinator.rpc.access import CertificatePolicy, RevocationList
from coordinator.rpc.server import create_server
from hublink.checkpoint import load_or_create_key
from hublink.config import CoordinatorConfig
from hublink.tls import TlsFiles

log = logging.getLogger("hublink.coordinator")


@dataclass
class RunningCoordinator:
    """A started coordinator: its core, its server and the port it listens on."""

    core: Coordinator
    server: grpc.Server
    port: int

    def stop(self, grace: float | None = 2.0) -> None:
        self.server.stop(grace).wait()
        self.core.store.close()


def start(config: CoordinatorConfig, *, address: str | None = None) -> RunningCoordinator:
    """Open the store, load every project file, and start serving with mutual TLS."""
    projects = [load_project(path) for path in config.projects]
    store = Store(
        config.database,
        signer=load_or_create_key(config.audit_key or default_audit_key(config.database)),
    )
    core = Coordinator(store, projects)
    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    policy = CertificatePolicy(RevocationList(config.revocation_list), config.organisation_cas)
    server, port = create_server(
        core, address or config.listen, tls, max_workers=config.max_workers, policy=policy
    )
    server.start()
    log.info(
        "coordinator listening on port %d with %d project(s): %s",
        port,
        len(projects),
        ", ".join(p.id for p in projects) or "none",
    )
    return RunningCoordinator(core, server, port)
