"""A real deployment on loopback: a coordinator, two nodes, an admin and an analyst.

Everything goes through the files and interfaces operators use: configs
written by ``hublink.demo.write_deployment``, certificates from the pilot CA,
a gRPC server with mutual TLS, and the node's own workflow. The whole flow
runs once per session; the tests then inspect what came out.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.clients import AdminClient, AnalystClient, Overlap, RunReport
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, exchange_secrets, free_port, write_deployment
from hublink.tls import TlsFiles, secure_channel
from node.keys import fetch_keys
from node.workflow import upload

RECORDS_PER_ORG = 800


class RecordingInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Keeps every request message a node sends, serialised as it goes on the wire."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self.sent.append((details.method, request))
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        self.sent.append((details.method, request))
        return continuation(details, request)


@dataclass
class LinkedDeployment:
    root: Path
    data: synthetic.GeneratedData
    configs: dict[str, Path]
    organisations: list[str]
    run: RunReport
    overlap: Overlap
    linked: dict[str, Path]
    log_file: Path
    database: Path
    wire: RecordingInterceptor
    extra: dict[str, Any] = field(default_factory=dict)

    def node_config(self, organisation: str) -> NodeConfig:
        return load(self.configs[organisation], NodeConfig)

    def client_channel(self, name: str) -> grpc.Channel:
        config = load(self.configs[name], ClientConfig)
        tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
        return secure_channel(config.coordinator, tls)

    def predicted(self) -> dict[tuple[str, str], str]:
        out = {}
        for organisation, path in self.linked.items():
            with path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    out[(organisation, row["local_id"])] = row["linkage_key"]
        return out


@contextmanager
def logged_to(log_file: Path) -> Iterator[None]:
    """Everything hublink logs, at every level, appended to ``log_file`` while inside."""
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("hublink")
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        handler.close()


@pytest.fixture(scope="session")
def linked_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinkedDeployment]:
    """The deployment, built (generated, exchanged, encoded, uploaded, linked) once a session.

    Three modules inspect the same flow (audit, linkage, privacy); building it takes a third of
    a minute, mostly encoding per-field filters. No test changes what the flow left behind.
    """
    root = tmp_path_factory.mktemp("deployment")
    data = synthetic.generate(
        root / "data", RECORDS_PER_ORG, seed=7, layouts=synthetic.DEFAULT_LAYOUTS[:2]
    )
    organisations = [layout.organisation for layout in data.layouts]
    # The nodes agree their linkage secret through the coordinator, as the demo does, so the
    # privacy tests see the exchange's messages too (tests/e2e/test_cli_e2e.py keeps the
    # plain secret-file option covered).
    configs = write_deployment(root, data, free_port(), secret_exchange=True)
    log_file = root / "coordinator.log"
    coordinator_config = load(configs["coordinator"], CoordinatorConfig)
    with logged_to(log_file):
        coordinator = start_coordinator(coordinator_config)
    wire = RecordingInterceptor()

    def recorded_channel(organisation: str) -> grpc.Channel:
        config = load(configs[organisation], NodeConfig)
        tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
        return grpc.intercept_channel(secure_channel(config.coordinator, tls), wire)

    try:
        with logged_to(log_file):
            exchange_secrets(configs, organisations, channel_for=recorded_channel)
            for organisation in organisations:
                upload(
                    load(configs[organisation], NodeConfig), channel=recorded_channel(organisation)
                )
            admin_config = load(configs["admin"], ClientConfig)
            admin = AdminClient(
                secure_channel(
                    admin_config.coordinator,
                    TlsFiles(admin_config.tls.ca, admin_config.tls.cert, admin_config.tls.key),
                )
            )
            run = admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID).run_id, timeout=120)
            linked = {}
            for organisation in organisations:
                config = load(configs[organisation], NodeConfig)
                linked[organisation] = fetch_keys(
                    config, channel=recorded_channel(organisation)
                ).output
            analyst_config = load(configs["analyst"], ClientConfig)
            overlap = AnalystClient(
                secure_channel(
                    analyst_config.coordinator,
                    TlsFiles(
                        analyst_config.tls.ca, analyst_config.tls.cert, analyst_config.tls.key
                    ),
                )
            ).overlap(PROJECT_ID)
        deployment = LinkedDeployment(
            root=root,
            data=data,
            configs=configs,
            organisations=organisations,
            run=run,
            overlap=overlap,
            linked=linked,
            log_file=log_file,
            database=coordinator_config.database,
            wire=wire,
        )
        deployment.extra["coordinator"] = coordinator
        yield deployment
    finally:
        with logged_to(log_file):
            coordinator.stop()


@pytest.fixture(scope="module")
def linked_deployment(linked_once: LinkedDeployment) -> Iterator[LinkedDeployment]:
    """The session's linked deployment, with the coordinator's log kept while a module uses it
    (so the log tests also see what the tests themselves asked of the coordinator)."""
    with logged_to(linked_once.log_file):
        yield linked_once
