"""Assembling a coordinator from its configuration: store, projects, core, server."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

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

#: How often a running coordinator erases uploads past their project's retention period.
RETENTION_SWEEP_SECONDS = 3600.0


@dataclass
class RunningCoordinator:
    """A started coordinator: its core, its server and the port it listens on."""

    core: Coordinator
    server: grpc.Server
    port: int
    stopping: threading.Event = field(default_factory=threading.Event)

    def stop(self, grace: float | None = 2.0) -> None:
        self.stopping.set()
        self.server.stop(grace).wait()
        self.core.store.close()


def _sweep_retention(core: Coordinator, stopping: threading.Event, every: float) -> None:
    """Erase expired uploads now and then every ``every`` seconds until stopped."""
    while True:
        try:
            core.purge_expired()
        except Exception:  # a failed sweep is retried at the next one; serving goes on
            log.exception("retention sweep failed")
        if stopping.wait(every):
            return


def start(config: CoordinatorConfig, *, address: str | None = None) -> RunningCoordinator:
    """Open the store, load every project file, and start serving with mutual TLS."""
    projects = [load_project(path) for path in config.projects]
    store = Store(
        config.database,
        signer=load_or_create_key(config.audit_key or default_audit_key(config.database)),
    )
    core = Coordinator(store, projects)
    stopping = threading.Event()
    threading.Thread(
        target=_sweep_retention,
        args=(core, stopping, RETENTION_SWEEP_SECONDS),
        name="retention",
        daemon=True,
    ).start()
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
    return RunningCoordinator(core, server, port, stopping)
