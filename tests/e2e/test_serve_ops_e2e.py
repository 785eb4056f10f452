"""`hublink coordinator serve` as a service: JSON logs, the operations port, SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hublink import synthetic
from hublink.demo import free_port, write_deployment
from hublink.logformat import ID_FIELDS

pytestmark = pytest.mark.e2e

SERVE = (sys.executable, "-m", "hublink", "coordinator", "serve")


@pytest.mark.slow
def test_json_logs_operations_port_and_a_clean_stop(tmp_path: Path) -> None:
    data = synthetic.generate(tmp_path / "data", 20, seed=2, layouts=synthetic.DEFAULT_LAYOUTS[:2])
    configs = write_deployment(tmp_path, data, free_port())
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*SERVE, "--log-format", "json", "--config", str(configs["coordinator"])],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    try:
        deadline = time.monotonic() + 30
        found = None
        while time.monotonic() < deadline and found is None:
            assert process.poll() is None, log.read_text()
            found = re.search(r"/metrics\) on port (\d+)", log.read_text())
            time.sleep(0.1)
        assert found is not None, log.read_text()
        port = int(found.group(1))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            assert b"hublink_match_runs" in answer.read()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()

    lines = log.read_text().splitlines()
    assert lines
    for line in lines:
        entry = json.loads(line)  # every line is one JSON object
        assert set(entry) <= {"time", "level", "logger", "message", "exception", *ID_FIELDS}, line
        assert {"time", "level", "logger", "message"} <= set(entry)
        assert entry["time"].endswith("Z")
    messages = " ".join(json.loads(line)["message"] for line in lines)
    assert "listening on port" in messages
