"""`hublink demo` as a new user runs it: default size, one command, results in one folder."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_links_the_default_data_well_and_leaves_every_artefact(tmp_path):
    out = tmp_path / "hublink-demo"
    result = subprocess.run(
        [sys.executable, "-m", "hublink", "demo", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert "Children known to exactly these services" in result.stdout
    assert "Linkage quality" in result.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == 15000
    assert summary["precision"] >= 0.95
    assert summary["recall"] >= 0.95
    assert summary["f1"] >= 0.95
    assert summary["seconds"] > 0
    assert len(summary["overlap"]) == 7

    for organisation, path in summary["files"]["linked"].items():
        with (out / path).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == summary["records_per_organisation"][organisation]
    for artefact in (
        "coordinator/coordinator.db",
        "coordinator.log",
        "counts.json",
        "config/project.toml",
        "pki/ca.pem",
        "data/truth.csv",
    ):
        assert (out / artefact).exists(), artefact


def test_demo_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hublink",
            "demo",
            "--out",
            str(tmp_path),
            "--quiet",
            "--records",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode != 0
    assert "not empty" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
