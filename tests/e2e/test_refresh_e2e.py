"""Monthly refreshes on a real deployment: only what changed travels, keys stay put.

One coordinator and two nodes on loopback, configured as operators do. The
first organisation sends its extract, then next month's (a record added, one
changed, one gone), then the same again (nothing changed), and the tests
check what went over the wire, what the coordinator did and what the audit
trail says.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.audit.log import LogEntry
from hublink.audit.trail import trail
from hublink.clients import AdminClient, RequestRefused
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.tls import TlsFiles, secure_channel
from node.keys import fetch_keys
from node.uploader import NodeClient
from node.workflow import upload
from tests.e2e.conftest import RecordingInterceptor

pytestmark = pytest.mark.e2e

RECORDS = 200


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

    def admin(self) -> AdminClient:
        config = load(self.configs["admin"], ClientConfig)
        tls = TlsFiles(config.tls.ca, config.tls.cert, config.tls.key)
        return AdminClient(secure_channel(config.coordinator, tls))

    def run(self) -> None:
        admin = self.admin()
        report = admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID).run_id, timeout=120)
        assert report.state == "completed", report

    def keys(self, organisation: str) -> dict[str, str]:
        out = fetch_keys(self.node(organisation), channel=self.channel(organisation)).output
        with out.open(newline="") as handle:
            return {row["local_id"]: row["linkage_key"] for row in csv.DictReader(handle)}

    def records_sent(self) -> int:
        return sum(
            len(message.records)
            for method, message in self.wire.sent
            if method.endswith("PutChunk")
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("refresh")
    data = synthetic.generate(
        root / "data", RECORDS, seed=11, layouts=synthetic.DEFAULT_LAYOUTS[:2]
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


def edit_extract(path: Path, *, add: int = 0, change: int = 0, drop: int = 0) -> None:
    """Next month's extract: ``add`` new rows, ``change`` surnames, ``drop`` rows."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    id_column = fields[0]
    surname = next(f for f in fields if "surname" in f.lower() or "last" in f.lower())
    rows = rows[drop:]
    for row in rows[:change]:
        row[surname] = row[surname] + "son"
    for n in range(add):
        extra = dict(rows[-1 - n])
        extra[id_column] = f"NEW-{n}-{len(rows)}"
        rows.append(extra)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_a_refresh_sends_only_what_changed_and_keys_stay_put(deployment: Deployment) -> None:
    first = deployment.organisations[0]
    for organisation in deployment.organisations:
        upload(deployment.node(organisation), channel=deployment.channel(organisation))
    deployment.run()
    before = deployment.keys(first)

    edit_extract(deployment.data.csv_paths[first], add=2, change=3, drop=1)
    sent_before = deployment.records_sent()
    summary = upload(deployment.node(first), channel=deployment.channel(first))

    assert summary.refresh is not None
    assert (summary.refresh.added, summary.refresh.changed, summary.refresh.removed) == (2, 3, 1)
    assert summary.refresh.unchanged == len(before) - 3 - 1
    assert deployment.records_sent() - sent_before == 5  # only the added and the changed

    deployment.run()
    after = deployment.keys(first)
    assert len(after) == len(before) + 2 - 1
    stayed = [local for local in before if local in after]
    kept = sum(before[local] == after[local] for local in stayed)
    assert kept / len(stayed) >= 0.98
    report = (deployment.node(first).state_dir / "exclusion-report.txt").read_text()
    assert "left the extract:" in report and "changed (sent again, same token):" in report

    # The same extract again: nothing travels, and nothing changes.
    sent_before = deployment.records_sent()
    again = upload(deployment.node(first), channel=deployment.channel(first))
    assert again.refresh is not None
    assert (again.refresh.added, again.refresh.changed, again.refresh.removed) == (0, 0, 0)
    assert deployment.records_sent() == sent_before

    lines = trail(log_entries(deployment.database))
    assert any("2 added, 3 changed, 1 removed" in line for line in lines), lines[-5:]
    assert any("0 added, 0 changed, 0 removed" in line for line in lines)


def log_entries(database: Path) -> list[LogEntry]:
    """The coordinator's audit log as a reader sees it (read-only, beside the server)."""
    with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True) as db:
        return [
            LogEntry(i, t, a, o, r, p, json.loads(d), h)
            for i, t, o, r, a, p, d, h in db.execute("SELECT * FROM audit ORDER BY idx")
        ]


def test_a_refresh_under_another_schema_or_epoch_is_refused_with_nothing_changed(
    deployment: Deployment,
) -> None:
    second = deployment.organisations[1]
    client = NodeClient(deployment.channel(second))
    project = client.project(PROJECT_ID)
    held = record_count(deployment.database)
    with pytest.raises(RequestRefused, match="encoding specification"):
        client.upload(project, "0" * 64, [], count=0, chunk_records=10, refresh=True)
    with pytest.raises(RequestRefused, match="epoch"):
        client.upload(
            dataclasses.replace(project, secret_epoch=project.secret_epoch + 1),
            project.encoding_sha256,
            [],
            count=0,
            chunk_records=10,
            refresh=True,
        )
    assert record_count(deployment.database) == held
    last = log_entries(deployment.database)[-1]
    assert last.action == "upload.rejected" and "nothing was changed" in last.details["reason"]


def record_count(database: Path) -> int:
    with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
