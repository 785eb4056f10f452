"""`hublink demo --refreshes N`: months of births, leavers, moves and withdrawals, linked well.

The issue's bar: every month F1 across organisations at least 0.97 and at
least 99.5% of the keys that should stay put kept; only the changes travel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_plays_monthly_refreshes_and_keys_stay_put(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hublink",
            "demo",
            "--records",
            "1500",
            "--refreshes",
            "3",
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert "Monthly refreshes" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    months = summary["refreshes"]
    assert [m["month"] for m in months] == ["2026-04", "2026-05", "2026-06"]
    for month in months:
        assert month["f1_across"] >= 0.97, month
        assert month["keys_kept"] >= 0.995, month
        assert 0 < month["records_sent"] < 0.05 * summary["records"]  # only the changes
        assert month["records_added"] > 0 and month["records_removed"] > 0
        assert month["keys_changed"].get("added", 0) > 0
        assert month["incremental_run_s"] > 0 and month["full_run_s"] > 0
    for organisation in summary["display_names"]:
        changes = out / "nodes" / organisation / "changes.csv"
        assert changes.read_text().startswith("local_id,old_key,new_key,change")
