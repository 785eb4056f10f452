"""The hublink command as operators run it: separate processes, config files, exit statuses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hublink import synthetic
from hublink.demo import PROJECT_ID, free_port, write_deployment
from tests.conftest import one_line_error
from tests.conftest import run_hublink as hublink

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("cli")
    data = synthetic.generate(root / "data", 300, seed=11, layouts=synthetic.DEFAULT_LAYOUTS[:2])
    port = free_port()
    return root, write_deployment(root, data, port)


@pytest.fixture(scope="module")
def coordinator(deployment) -> Iterator[subprocess.Popen[bytes]]:
    root, configs = deployment
    log = root / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hublink",
                "coordinator",
                "serve",
                "--config",
                str(configs["coordinator"]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if "listening on port" in log.read_text():
            break
        time.sleep(0.1)
    assert "listening on port" in log.read_text(), log.read_text()
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def rewrite(config: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = config.read_text()
    assert old in text
    changed = tmp_path / "node.toml"
    changed.write_text(text.replace(old, new))
    return changed


def test_missing_column_names_file_and_column(deployment, tmp_path):
    _, configs = deployment
    config = rewrite(
        configs["health-visiting"], tmp_path, 'given_name = "Forename"', 'given_name = "First Name"'
    )
    message = one_line_error(hublink("node", "upload", "--config", str(config)))
    assert "health-visiting.csv" in message and "'First Name'" in message


def test_malformed_date_names_file_row_and_field(deployment, tmp_path):
    """Over max_bad_share (5%) of bad rows stops the run, naming the first bad row and field.

    An impossible date of birth is only missing for linkage, but this organisation's consent
    policy has an age rule that reads the DOB column, so the record's consent cannot be
    decided and the row is a bad row (node.consent.UndecidableRecord)."""
    root, configs = deployment
    source = root / "data" / "health-visiting.csv"
    lines = source.read_text().splitlines()[:11]  # header and 10 rows: one bad row is 10%
    broken = tmp_path / "broken.csv"
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index("DOB")] = "31/02/2024"
    broken.write_text("\n".join([*lines[:3], ",".join(cells), *lines[4:]]) + "\n")
    config = rewrite(
        configs["health-visiting"], tmp_path, str(source.resolve()), str(broken.resolve())
    )
    message = one_line_error(hublink("node", "upload", "--config", str(config)))
    assert "broken.csv, row 4, field column 'DOB'" in message
    assert "impossible calendar date" in message
    assert "1 of 10 rows" in message and "max_bad_share" in message


def test_unreadable_file_is_named(deployment, tmp_path):
    root, configs = deployment
    source = root / "data" / "health-visiting.csv"
    config = rewrite(
        configs["health-visiting"], tmp_path, str(source.resolve()), str(tmp_path / "nowhere.csv")
    )
    message = one_line_error(hublink("node", "upload", "--config", str(config)))
    assert "nowhere.csv" in message and "cannot read" in message


def test_unknown_config_key_is_named(deployment, tmp_path):
    _, configs = deployment
    config = rewrite(configs["health-visiting"], tmp_path, "state_dir =", "state_dri =")
    message = one_line_error(hublink("node", "upload", "--config", str(config)))
    assert "unknown key state_dri" in message and "node.toml" in message


@pytest.mark.slow
def test_full_flow_through_the_command_line(deployment, coordinator, tmp_path):
    root, configs = deployment
    # A node whose schema differs from the project's refuses to encode, and says which.
    schema = json.loads((root / "config" / "early-years.json").read_text())
    schema["features"][1]["hashing"]["strategy"]["bitsPerToken"] = 21  # family name
    other = tmp_path / "other-schema.json"
    other.write_text(json.dumps(schema))
    mismatched = rewrite(
        configs["health-visiting"],
        tmp_path,
        str((root / "config" / "early-years.json").resolve()),
        str(other),
    )
    message = one_line_error(hublink("node", "upload", "--config", str(mismatched)))
    assert "other-schema.json" in message and PROJECT_ID in message and "refusing" in message

    included = {}
    for organisation in ("health-visiting", "flying-start"):
        result = hublink("node", "upload", "--config", str(configs[organisation]))
        assert result.returncode == 0, result.stderr
        report = root / "nodes" / organisation / "state" / "exclusion-report.json"
        included[organisation] = json.loads(report.read_text())["included"]
        assert 200 < included[organisation] < 300  # the demo policies exclude some
        assert f"uploaded {included[organisation]} encoded records" in result.stdout
    again = hublink("node", "upload", "--config", str(configs["health-visiting"]))
    assert again.returncode == 0, again.stderr  # the same extract again: a refresh, no change
    assert "0 added, 0 changed, 0 removed" in again.stdout

    early = hublink("node", "keys", "--config", str(configs["flying-start"]))
    assert "no completed matching run" in one_line_error(early)

    run = hublink("admin", "run", "--config", str(configs["admin"]), "--project", PROJECT_ID)
    assert run.returncode == 0, run.stderr
    assert "completed" in run.stdout

    for organisation in ("health-visiting", "flying-start"):
        result = hublink("node", "keys", "--config", str(configs[organisation]))
        assert result.returncode == 0, result.stderr
        assert f"wrote {included[organisation]} linkage keys" in result.stdout

    counts = hublink(
        "analyst",
        "overlap",
        "--config",
        str(configs["analyst"]),
        "--project",
        PROJECT_ID,
        "--format",
        "json",
    )
    assert counts.returncode == 0, counts.stderr
    table = json.loads(counts.stdout)
    assert [c["datasets"] for c in table["cells"]] == [
        ["health-visiting"],
        ["flying-start"],
        ["health-visiting", "flying-start"],
    ]
    assert all(c["value"] is None or c["value"] >= 10 for c in table["cells"])

    refused = hublink(
        "analyst", "overlap", "--config", str(configs["admin"]), "--project", PROJECT_ID
    )
    assert "PERMISSION_DENIED" in one_line_error(refused)

    # Breakdowns by a released attribute, as CSV, and an overlap chart with its report.
    analyst = ("--config", str(configs["analyst"]), "--project", PROJECT_ID)
    by_age = hublink("analyst", "counts", *analyst, "--by", "age_band", "--format", "csv")
    assert by_age.returncode == 0, by_age.stderr
    rows = [line.split(",") for line in by_age.stdout.strip().splitlines()]
    assert rows[0] == ["age_band", "count", "suppressed"]
    assert {r[0] for r in rows[1:]} >= {"0-1", "4-5", "Total"}
    assert all(r[1] == "" or int(r[1]) % 5 == 0 for r in rows[1:])
    chart, report = tmp_path / "overlap.png", tmp_path / "overlap.html"
    drawn = hublink("analyst", "counts", *analyst, "--chart", str(chart), "--html", str(report))
    assert drawn.returncode == 0, drawn.stderr
    assert "Children" in drawn.stdout and "hospital-statistics" in drawn.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in report.read_text()
    unreleased = hublink("analyst", "counts", *analyst, "--by", "ethnicity")
    assert "not an attribute this project releases" in one_line_error(unreleased)

    # The admin's linkage-quality report; an analyst is refused it.
    page = tmp_path / "quality.html"
    quality = hublink(
        "admin", "quality", "--config", str(configs["admin"]), "--project", PROJECT_ID,
        "--out", str(page),
    )  # fmt: skip
    assert quality.returncode == 0, quality.stderr
    assert "estimated precision" in quality.stdout and str(page) in quality.stdout
    assert re.search(r"estimated duplicate pairs \d+\.\d \(\d+ linked\)", quality.stdout)
    # Three charts, then a link-rate chart per released attribute the nodes sent (age band).
    assert page.read_text().count("data:image/png;base64,") == 4
    assert "Link rate by age band" in page.read_text()
    no_quality = hublink("admin", "quality", *analyst, "--out", str(tmp_path / "q2.html"))
    assert "PERMISSION_DENIED" in one_line_error(no_quality)
    assert not (tmp_path / "q2.html").exists()

    coordinator.send_signal(signal.SIGTERM)
    assert coordinator.wait(timeout=30) == 0
