"""kill -9 the coordinator mid-upload and mid-run, restart it, and finish with nothing lost.

The coordinator runs as `hublink coordinator serve` in its own process and is
killed with SIGKILL: no clean shutdown, no chance to record anything. After a
restart on the same files, the interrupted upload resumes, every record is
stored exactly once, no run is left "running", a new run completes, both
nodes get their keys, and the audit log verifies.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import grpc
import pytest

from hublink import synthetic
from hublink.clients import AdminClient
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.tls import TlsFiles, secure_channel
from node.errors import RunError as NodeError
from node.keys import fetch_keys
from node.workflow import upload

pytestmark = pytest.mark.e2e

CHUNK = 25
PUT_CHUNK = "/hublink.v1.UploadService/PutChunk"


def serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `hublink coordinator serve` and wait until it listens (the log says so anew)."""
    before = log.read_text().count("listening on port") if log.exists() else 0
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "hublink", "coordinator", "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    deadline = time.monotonic() + 30
    while log.read_text().count("listening on port") == before:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return process


class KillAfter(grpc.UnaryUnaryClientInterceptor):
    """Sends SIGKILL to the coordinator once ``chunks`` chunks have been acknowledged."""

    def __init__(self, process: subprocess.Popen[bytes], chunks: int) -> None:
        self.process = process
        self.chunks = chunks
        self.acknowledged = 0

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        outcome = continuation(details, request)
        if details.method == PUT_CHUNK and outcome.exception() is None:
            self.acknowledged += 1
            if self.acknowledged == self.chunks:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait(timeout=30)
        return outcome


def node_config(path: Path) -> NodeConfig:
    return dataclasses.replace(
        load(path, NodeConfig),
        chunk_records=CHUNK,
        retry_attempts=2,
        retry_initial_seconds=0.01,
        retry_max_seconds=0.02,
    )


def client_channel(path: Path) -> grpc.Channel:
    config = load(path, ClientConfig)
    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    return secure_channel(config.coordinator, tls)


def audit_verifies(database: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hublink", "audit", "verify", "--database", str(database)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_kill_9_mid_upload_and_mid_run_loses_nothing(tmp_path: Path) -> None:
    data = synthetic.generate(tmp_path / "data", 300, seed=4, layouts=synthetic.DEFAULT_LAYOUTS[:2])
    configs = write_deployment(tmp_path, data, free_port())
    database = load(configs["coordinator"], CoordinatorConfig).database
    log = tmp_path / "serve.log"
    process = serve(configs["coordinator"], log)
    try:
        # --- killed in the middle of an upload -------------------------------------------
        health = node_config(configs["health-visiting"])
        tls = TlsFiles(ca=health.tls.ca, cert=health.tls.cert, key=health.tls.key)
        killer = KillAfter(process, chunks=4)
        dying = grpc.intercept_channel(secure_channel(health.coordinator, tls), killer)
        with pytest.raises(NodeError, match="resumes where it stopped"):
            upload(health, channel=dying)
        assert process.returncode == -signal.SIGKILL

        process = serve(configs["coordinator"], log)
        summary = upload(health)
        with closing(sqlite3.connect(database)) as db, db:
            stored, distinct = db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT token) FROM records WHERE upload_id = ?",
                (summary.upload_id,),
            ).fetchone()
            uploads = db.execute(
                "SELECT COUNT(*) FROM uploads WHERE organisation = 'health-visiting'"
            ).fetchone()[0]
        assert stored == distinct == summary.records
        assert uploads == 1  # resumed, not begun again

        flying = node_config(configs["flying-start"])
        upload(flying)

        # --- killed in the middle of a matching run --------------------------------------
        admin = AdminClient(client_channel(configs["admin"]))
        started = admin.start_run(PROJECT_ID)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

        process = serve(configs["coordinator"], log)
        with closing(sqlite3.connect(database)) as db, db:
            states = dict(db.execute("SELECT id, state FROM runs").fetchall())
        # Whether the kill came before or after the run finished, it is never left running.
        assert states[started.run_id] in ("completed", "failed")
        admin = AdminClient(client_channel(configs["admin"]))
        run = admin.start_run(PROJECT_ID)
        assert admin.wait(PROJECT_ID, run.run_id, poll=0.05).state == "completed"
        for config in (health, flying):
            keys = fetch_keys(config)
            assert keys.keys == len(config.output.read_text().splitlines()) - 1 > 0
        verified = audit_verifies(database)
        assert verified.returncode == 0, verified.stderr
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
