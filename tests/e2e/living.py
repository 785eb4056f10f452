"""A small real deployment for refresh tests: a coordinator and two nodes on loopback.

Shared by the refresh, key-lineage and counts-over-time tests; each module
starts its own (``started``), so their months do not mix.
"""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.audit.log import LogEntry
from hublink.clients import AdminClient, AnalystClient
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.tls import TlsFiles, secure_channel
from node.keys import fetch_keys
from node.workflow import UploadSummary, upload
from tests.e2e.conftest import RecordingInterceptor


@dataclass
class Deployment:
    root: Path
    data: synthetic.GeneratedData
    configs: dict[str, Path]
    organisations: list[str]
    wire: RecordingInterceptor
    database: Path

    def node(self, organisation: str) -> NodeConfig:
        return load(self.configs[organisation], NodeConfig)

    def channel(self, organisation: str) -> grpc.Channel:
        config = self.node(organisation)
        tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
        return grpc.intercept_channel(secure_channel(config.coordinator, tls), self.wire)

    def analyst(self) -> AnalystClient:
        config = load(self.configs["analyst"], ClientConfig)
        tls = TlsFiles(config.tls.ca, config.tls.cert, config.tls.key)
        return AnalystClient(secure_channel(config.coordinator, tls))

    def admin(self) -> AdminClient:
        config = load(self.configs["admin"], ClientConfig)
        tls = TlsFiles(config.tls.ca, config.tls.cert, config.tls.key)
        return AdminClient(secure_channel(config.coordinator, tls))

    def run(self, *, full: bool = False) -> str:
        admin = self.admin()
        report = admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID, full=full).run_id, timeout=120)
        assert report.state == "completed", report
        return report.run_id

    def entities(self) -> set[frozenset[int]]:
        """The latest run's entities as sets of record ids (what "the same entities" means)."""
        groups: dict[str, set[int]] = {}
        with closing(
            sqlite3.connect(f"{self.database.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            for record_id, entity_id in db.execute("SELECT record_id, entity_id FROM entities"):
                groups.setdefault(entity_id, set()).add(int(record_id))
        return {frozenset(g) for g in groups.values()}

    def keys(self, organisation: str) -> dict[str, str]:
        out = fetch_keys(self.node(organisation), channel=self.channel(organisation)).output
        with out.open(newline="") as handle:
            return {row["local_id"]: row["linkage_key"] for row in csv.DictReader(handle)}

    def upload(self, organisation: str) -> UploadSummary:
        return upload(self.node(organisation), channel=self.channel(organisation))

    def changes(self, organisation: str) -> list[dict[str, str]]:
        path = self.node(organisation).output.with_name("changes.csv")
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def rows(self, organisation: str) -> tuple[list[str], list[dict[str, str]]]:
        with self.data.csv_paths[organisation].open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            return list(reader.fieldnames or []), list(reader)

    def write_rows(self, organisation: str, fields: list[str], rows: list[dict[str, str]]) -> None:
        with self.data.csv_paths[organisation].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    def records_sent(self) -> int:
        return sum(
            len(message.records)
            for method, message in self.wire.sent
            if method.endswith("PutChunk")
        )


@contextmanager
def started(root: Path, records: int = 200, seed: int = 11) -> Iterator[Deployment]:
    data = synthetic.generate(
        root / "data", records, seed=seed, layouts=synthetic.DEFAULT_LAYOUTS[:2]
    )
    organisations = [layout.organisation for layout in data.layouts]
    configs = write_deployment(root, data, free_port())
    config = load(configs["coordinator"], CoordinatorConfig)
    coordinator = start_coordinator(config)
    logging.getLogger("hublink").setLevel(logging.WARNING)
    try:
        yield Deployment(
            root, data, configs, organisations, RecordingInterceptor(), config.database
        )
    finally:
        coordinator.stop()


def log_entries(database: Path) -> list[LogEntry]:
    """The coordinator's audit log as a reader sees it (read-only, beside the server)."""
    with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
        return [
            LogEntry(i, t, a, o, r, p, json.loads(d), h)
            for i, t, o, r, a, p, d, h in db.execute("SELECT * FROM audit ORDER BY idx")
        ]


def record_count(database: Path) -> int:
    with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
