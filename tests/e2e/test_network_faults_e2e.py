"""Real network faults between a node and the coordinator, and the node killed mid-upload.

A TCP relay (``faultrelay.TcpRelay``) sits between the node and a real
coordinator (mutual TLS, SQLite): it closes the connection in the middle of
an upload or of the linkage-key stream, or holds it silent while the node's
process is killed with SIGKILL. The node must recover on its own (retry) or
on the operator's next run (resume), and the coordinator must end up with
every record exactly once and an audit log that verifies.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from faultrelay import TcpRelay

from coordinator.app import RunningCoordinator
from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.clients import AdminClient
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.tls import TlsFiles, secure_channel
from node.keys import fetch_keys
from node.tokens import TokenStore
from node.workflow import upload

pytestmark = pytest.mark.e2e

RECORDS = 200
CHUNK = 10


@dataclasses.dataclass
class Deployment:
    root: Path
    configs: dict[str, Path]
    coordinator: RunningCoordinator
    database: Path

    def node(self, organisation: str, relay: TcpRelay | None = None) -> NodeConfig:
        config = load(self.configs[organisation], NodeConfig)
        return dataclasses.replace(
            config,
            coordinator=f"localhost:{relay.port}" if relay else config.coordinator,
            chunk_records=CHUNK,
            retry_initial_seconds=0.01,
            retry_max_seconds=0.05,
        )

    def node_file(self, organisation: str, relay: TcpRelay | None, name: str) -> Path:
        """A copy of the organisation's node.toml for a `hublink node` process (same folder)."""
        original = self.configs[organisation]
        text = original.read_text()
        if relay is not None:
            text = re.sub(
                r'^coordinator = ".*"$',
                f'coordinator = "localhost:{relay.port}"',
                text,
                count=1,
                flags=re.M,
            )
        settings = (
            f"chunk_records = {CHUNK}\nretry_initial_seconds = 0.01\nretry_max_seconds = 0.05\n"
        )
        path = original.with_name(name)
        path.write_text(settings + text)
        return path

    def held(self, organisation: str) -> dict[str, tuple[int, int, int, str]]:
        """upload id -> (records, distinct tokens, chunks, state) held for the organisation."""
        with closing(sqlite3.connect(self.database)) as db, db:
            rows = db.execute(
                "SELECT u.id, u.state, "
                "(SELECT COUNT(*) FROM records r WHERE r.upload_id = u.id), "
                "(SELECT COUNT(DISTINCT token) FROM records r WHERE r.upload_id = u.id), "
                "(SELECT COUNT(*) FROM chunks c WHERE c.upload_id = u.id) "
                "FROM uploads u WHERE u.organisation = ?",
                (organisation,),
            ).fetchall()
        return {r[0]: (int(r[2]), int(r[3]), int(r[4]), str(r[1])) for r in rows}

    def audit_verifies(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "hublink", "audit", "verify", "--database", str(self.database)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    data = synthetic.generate(
        tmp_path / "data", RECORDS, seed=11, layouts=synthetic.DEFAULT_LAYOUTS[:2]
    )
    configs = write_deployment(tmp_path, data, free_port())
    config = load(configs["coordinator"], CoordinatorConfig)
    coordinator = start_coordinator(config)
    try:
        yield Deployment(tmp_path, configs, coordinator, config.database)
    finally:
        coordinator.stop(grace=None)


def coordinator_port(deployment: Deployment) -> int:
    return int(
        load(deployment.configs["health-visiting"], NodeConfig).coordinator.rsplit(":", 1)[1]
    )


def upload_bytes(deployment: Deployment, organisation: str) -> int:
    """Bytes a clean upload by ``organisation`` sends up, to aim faults at a similar one.

    Measured rather than assumed, so the faults still land mid-upload if the
    encodings' size changes.
    """
    relay = TcpRelay(coordinator_port(deployment))
    try:
        upload(deployment.node(organisation, relay))
    finally:
        relay.stop()
    return relay.carried["up"]


def test_a_connection_cut_mid_upload_is_retried_and_every_record_arrives_once(
    deployment: Deployment,
) -> None:
    size = upload_bytes(deployment, "flying-start")
    relay = TcpRelay(coordinator_port(deployment))
    try:
        # About a third of the way into the upload, in the middle of some chunk's bytes.
        relay.cut("up", size // 3)
        summary = upload(deployment.node("health-visiting", relay))
    finally:
        relay.stop()
    assert relay.cuts == 1
    assert relay.connections >= 2  # the channel reconnected through the relay
    held = deployment.held("health-visiting")
    assert held == {
        summary.upload_id: (summary.records,) * 2 + (-(-summary.records // CHUNK), "committed")
    }
    assert summary.notes == ()  # recovered within the run: nothing to resume
    deployment.audit_verifies()


@pytest.mark.slow
def test_the_key_stream_cut_mid_way_is_restarted_and_linked_csv_is_the_same(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    for organisation in ("health-visiting", "flying-start"):
        upload(deployment.node(organisation))
    admin_config = load(deployment.configs["admin"], ClientConfig)
    admin = AdminClient(
        secure_channel(
            admin_config.coordinator,
            TlsFiles(admin_config.tls.ca, admin_config.tls.cert, admin_config.tls.key),
        )
    )
    run = admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID).run_id, poll=0.05)
    assert run.state == "completed", run.message
    measure = TcpRelay(coordinator_port(deployment))
    try:
        clean = fetch_keys(deployment.node("health-visiting", measure))
    finally:
        measure.stop()
    expected = clean.output.read_bytes()
    clean.output.unlink()

    relay = TcpRelay(coordinator_port(deployment))
    try:
        # Past the handshake (a few kB down) and into the keys (about 65 bytes each), which
        # are most of what comes down.
        relay.cut("down", measure.carried["down"] // 2)
        with caplog.at_level(logging.WARNING, logger="hublink.node"):
            again = fetch_keys(deployment.node("health-visiting", relay))
    finally:
        relay.stop()
    assert relay.cuts == 1
    assert any("fetching linkage keys" in r.getMessage() for r in caplog.records), caplog.text
    assert again.keys == clean.keys > 0
    assert again.output.read_bytes() == expected
    assert not [p for p in again.output.parent.iterdir() if p.name.endswith(".tmp")]
    deployment.audit_verifies()


@pytest.mark.slow
def test_the_node_killed_mid_upload_resumes_from_the_last_acknowledged_chunk(
    deployment: Deployment,
) -> None:
    size = upload_bytes(deployment, "health-visiting")
    relay = TcpRelay(coordinator_port(deployment))
    try:
        node_file = deployment.node_file("flying-start", relay, "node-relay.toml")
        # The relay lets some chunks through, then goes silent in the middle of one:
        # the node is waiting for an acknowledgement when it is killed.
        relay.hold("up", size * 2 // 5)
        process = subprocess.Popen(
            [sys.executable, "-m", "hublink", "node", "upload", "--config", str(node_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        try:
            assert relay.held.wait(120), "the upload never reached the relay's hold point"
            process.send_signal(signal.SIGKILL)
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=30)  # reaps it and closes the pipes
        assert process.returncode == -signal.SIGKILL
        relay.release()
    finally:
        relay.stop()

    [(upload_id, (records, distinct, chunks, state))] = deployment.held("flying-start").items()
    assert state == "open" and records == distinct == chunks * CHUNK and chunks > 0
    with TokenStore(deployment.node("flying-start").state_dir / "tokens.sqlite") as store:
        interrupted = store.interrupted_upload(PROJECT_ID)
        assert interrupted is not None and interrupted[0] == upload_id
        total, _ = store.upload_input(upload_id)
    assert chunks < -(-total // CHUNK)

    # The operator runs the same command again, straight to the coordinator this time.
    direct = deployment.node_file("flying-start", None, "node-direct.toml")
    rerun = subprocess.run(
        [sys.executable, "-m", "hublink", "node", "upload", "--config", str(direct)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed upload {upload_id}: the coordinator already held {chunks} chunk(s)" in (
        rerun.stdout
    )
    assert deployment.held("flying-start") == {
        upload_id: (total, total, -(-total // CHUNK), "committed")
    }
    log = (deployment.node("flying-start").state_dir / "node.log").read_text()
    assert f"upload.resumed project={PROJECT_ID} upload_id={upload_id}" in log
    deployment.audit_verifies()
