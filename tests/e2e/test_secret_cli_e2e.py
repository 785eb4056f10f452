"""`hublink node secret …` as operators run it: separate processes, config files, exit statuses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hublink import synthetic
from hublink.config import NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from node.secret_exchange import stored_secret
from tests.conftest import run_hublink as hublink

pytestmark = pytest.mark.e2e

SERVE = (sys.executable, "-m", "hublink", "coordinator", "serve")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("secret-cli")
    data = synthetic.generate(root / "data", 60, seed=5, layouts=synthetic.DEFAULT_LAYOUTS[:2])
    configs = write_deployment(root, data, free_port(), secret_exchange=True)
    log = root / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*SERVE, "--config", str(configs["coordinator"])],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "listening on port" not in log.read_text():
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    assert "listening on port" in log.read_text(), log.read_text()
    yield configs
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


@pytest.mark.slow
def test_the_secret_commands_agree_a_secret_the_nodes_then_upload_with(deployment) -> None:
    first, second = [
        org for org in deployment if org not in ("coordinator", "admin", "analyst", "auditor")
    ]
    keygen = hublink("node", "secret", "keygen", "--config", str(deployment[first]))
    assert keygen.returncode == 0, keygen.stderr
    assert "kept existing node key" in keygen.stdout and "sha256:" in keygen.stdout

    early = hublink("node", "secret", "create", "--config", str(deployment[first]))
    assert early.returncode == 2  # could not run (exit 1 is kept for a check that said no)
    assert "no secret-exchange key published yet" in early.stderr
    assert "Traceback" not in early.stderr

    for org in (first, second):
        published = hublink("node", "secret", "publish", "--config", str(deployment[org]))
        assert published.returncode == 0, published.stderr
        assert f"{org}: published node key sha256:" in published.stdout
    created = hublink("node", "secret", "create", "--config", str(deployment[first]))
    assert created.returncode == 0, created.stderr
    assert "started secret epoch 1" in created.stdout
    # The second node never ran `fetch`: upload fetches, verifies and opens its envelope.
    assert stored_secret(load(deployment[second], NodeConfig).state_dir, PROJECT_ID, 1) is None
    uploaded = hublink("node", "upload", "--config", str(deployment[second]))
    assert uploaded.returncode == 0, uploaded.stderr
    held = {
        stored_secret(load(deployment[org], NodeConfig).state_dir, PROJECT_ID, 1)
        for org in (first, second)
    }
    assert len(held) == 1 and None not in held


def test_the_secret_commands_have_help() -> None:
    result = hublink("node", "secret", "--help")
    assert result.returncode == 0
    for command in ("keygen", "publish", "create", "fetch"):
        assert command in result.stdout
    fetch = hublink("node", "secret", "fetch", "--help")
    assert fetch.returncode == 0 and "--config" in fetch.stdout and "--epoch" in fetch.stdout
