"""Assembling a coordinator from its configuration: store, projects, core, server."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health

from coordinator.core.candidates import Engine
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.metrics import CoordinatorMetrics
from coordinator.ops import OpsServer
from coordinator.parallel import (
    DaskEngine,
    DaskSettings,
    ProcessEngine,
    dask_security,
    sweep_stale_segments,
)
from coordinator.projects import load_project
from coordinator.rpc.access import CertificatePolicy, RevocationList
from coordinator.rpc.operability import is_serving
from coordinator.rpc.server import BindError, create_server
from hublink.audit.checkpoint import default_audit_key, load_or_create_key
from hublink.config import ConfigError, CoordinatorConfig
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
    health: health.HealthServicer | None = None
    ops: OpsServer | None = None
    metrics: CoordinatorMetrics | None = None

    @property
    def ops_port(self) -> int | None:
        """Port of /healthz, /readyz and /metrics, or None if they are not served."""
        return None if self.ops is None else self.ops.port

    def stop(self, grace: float | None = 2.0) -> None:
        """Stop cleanly: report not ready, finish requests and runs in flight, close the store.

        Requests get ``grace`` seconds; matching runs still going get the same
        again, then are recorded as failed (Coordinator.settle_runs).
        """
        if self.stopping.is_set():
            return  # already stopped
        self.stopping.set()
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        failed = self.core.settle_runs(grace or 0.0)
        if failed:
            log.warning(
                "%d matching run(s) did not finish in time and were recorded as failed", len(failed)
            )
        if self.ops is not None:
            self.ops.stop()
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


def start(
    config: CoordinatorConfig, *, address: str | None = None, ops_address: str | None = None
) -> RunningCoordinator:
    """Open the store, load every project file, and start serving with mutual TLS.

    ``address`` and ``ops_address`` replace the config's ``listen`` and
    ``ops_listen`` (an empty ``ops_address`` serves no operations port).
    """
    projects = [load_project(path) for path in config.projects]
    # Encodings a coordinator killed mid-run left in shared memory (its workers died with it).
    sweep_stale_segments()
    store = Store(
        config.database,
        signer=load_or_create_key(config.audit_key or default_audit_key(config.database)),
    )
    core = Coordinator(store, projects, engine=matching_engine(config))
    stopping = threading.Event()
    threading.Thread(
        target=_sweep_retention,
        args=(core, stopping, RETENTION_SWEEP_SECONDS),
        name="retention",
        daemon=True,
    ).start()
    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    policy = CertificatePolicy(RevocationList(config.revocation_list), config.organisation_cas)
    metrics = CoordinatorMetrics(store)
    health_servicer = health.HealthServicer()
    server, port = create_server(
        core,
        address or config.listen,
        tls,
        max_workers=config.max_workers,
        policy=policy,
        metrics=metrics,
        health_servicer=health_servicer,
    )
    ops_at = config.ops_listen if ops_address is None else ops_address
    ops = None
    if ops_at:
        try:
            ops = OpsServer(ops_at, metrics, lambda: _ready(health_servicer, core))
        except (OSError, ValueError) as exc:
            stopping.set()
            store.close()
            raise BindError(f"cannot serve the operations port on {ops_at}: {exc}") from None
    server.start()
    if ops is not None:
        ops.start()
    log.info(
        "coordinator listening on port %d with %d project(s)",
        port,
        len(projects),
        extra={"project": ",".join(p.id for p in projects)},
    )
    return RunningCoordinator(core, server, port, stopping, health_servicer, ops, metrics)


def matching_engine(config: CoordinatorConfig) -> Engine:
    """Where runs compare records: the configured Dask cluster, else worker processes here."""
    if config.dask_scheduler:
        settings = DaskSettings(
            config.dask_scheduler, ca=config.dask_ca, cert=config.dask_cert, key=config.dask_key
        )
        try:
            dask_security(settings)  # refuse a cluster without TLS now, not at the first run
        except ValueError as exc:
            raise ConfigError(f"coordinator configuration: {exc}") from None
        return DaskEngine(settings)
    return ProcessEngine(config.matching_workers)


def _ready(health_servicer: health.HealthServicer, core: Coordinator) -> bool:
    """Ready while gRPC health says SERVING and the database answers a query."""
    return is_serving(health_servicer) and core.store.query_one("SELECT 1") is not None
