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
        # About 70 s alone; the suite runs a test on each core beside it, and a loaded
        # machine has taken over 300 s.
        timeout=600,
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
    # Cross- and within-organisation quality are reported apart, beside the coordinator's
    # own estimate (made without the truth) and the threshold it chose from the scores.
    assert summary["cross_organisation"]["f1"] >= 0.95
    assert summary["within_organisation"]["f1"] > 0.8
    estimate = summary["estimated_quality"]
    assert estimate["estimated"] is True
    assert estimate["threshold_used"] == estimate["threshold_estimated"]
    assert abs(summary["threshold"] - estimate["threshold_used"]) < 1e-4
    assert abs(estimate["precision"] - summary["cross_organisation"]["precision"]) < 0.05
    assert abs(estimate["recall"] - summary["cross_organisation"]["recall"]) < 0.05
    page = (out / summary["files"]["quality_report"]).read_text()
    # Score distribution, precision/recall, per-organisation rates, then one link-rate chart
    # per released attribute (age band, area) with the counts under the disclosure rule.
    assert page.count("data:image/png;base64,") == 5
    assert "Estimated precision" in page and "Link and duplicate rates" in page
    assert "Link rate by age band" in page and "Link rate by area" in page
    assert "By released attribute" in page
    # The demo weighs per-field filters, so the duplicate model's figures are shown (no chart).
    assert "<h2>Duplicate referrals (per-field model)</h2>" in page
    assert "Estimated by the coordinator without the truth" in result.stdout

    for organisation, path in summary["files"]["linked"].items():
        with (out / path).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        consent = summary["consent"][organisation]
        assert len(rows) == consent["included"]
        assert consent["included"] + consent["excluded"] == consent["rows"]
        assert consent["rows"] == summary["records_per_organisation"][organisation]
        rules = list(consent["decisions"])
        assert any("opt-out" in r or "objection" in r for r in rules), rules
        assert any(r.startswith("under-") for r in rules), rules
        assert consent["excluded"] > 0 and len(consent["policy_sha256"]) == 64
    for artefact in (
        "coordinator/coordinator.db",
        "coordinator.log",
        "counts.json",
        "config/project.toml",
        "pki/ca.pem",
        "data/truth.csv",
    ):
        assert (out / artefact).exists(), artefact

    # The demo ends by verifying its own exported log offline, and telling it in words.
    assert "audit verify passed" in result.stdout
    assert "Audit trail" in result.stdout
    # Consent policies leave some records out, so each node uploads its included count.
    included = summary["consent"]["health-visiting"]["included"]
    assert f"uploaded {included:,} encoded records" in result.stdout
    assert summary["audit"]["verified"] is True
    assert summary["audit"]["receipts"] == 3
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "hublink",
            "audit",
            "verify",
            "audit.jsonl",
            "--key",
            "coordinator.pub",
            "--checkpoint",
            "auditor-checkpoint.note",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=out,
    )
    assert check.returncode == 0, check.stderr
    assert "audit verify passed" in check.stdout
    # The demo leaves an auditor identity an IG officer can practise with (issue 24).
    auditor = (out / "config" / "auditor.toml").read_text()
    assert "auditor-information-governance.pem" in auditor
    assert '"health-visiting" = "Health visiting (NHS)"' in auditor or (
        'health-visiting = "Health visiting (NHS)"' in auditor
    )
    table = subprocess.run(
        [sys.executable, "-m", "hublink", "audit", "show", "audit.jsonl", "--names",
         "config/auditor.toml", "--action", "upload.committed"],
        capture_output=True, text=True, timeout=120, cwd=out,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "Health visiting (NHS)" in table.stdout and "Upload completed" in table.stdout
    assert " UTC " in table.stdout


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
