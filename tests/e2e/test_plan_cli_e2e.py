"""`hublink node plan` and policy errors, with no coordinator running: nothing can be sent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from hublink import synthetic
from hublink.cli import main
from hublink.demo import free_port, write_deployment
from node.tokens import TokenStore
from tests.conftest import one_line_error
from tests.conftest import run_hublink as hublink

pytestmark = pytest.mark.e2e


@pytest.fixture
def node_config(tmp_path: Path) -> Path:
    """A demo node config whose coordinator port nothing listens on."""
    data = synthetic.generate(tmp_path / "data", 200, seed=5, layouts=synthetic.DEFAULT_LAYOUTS[:1])
    return write_deployment(tmp_path, data, free_port())["health-visiting"]


def in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The same command run in this process (quicker; the plan test above uses a real one)."""
    result = CliRunner().invoke(main, list(args))
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    stderr = "Traceback (an exception escaped)" if crashed else result.stderr
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, stderr)


@pytest.mark.parametrize("command", [["node", "plan"], ["node", "upload", "--dry-run"]])
def test_plan_shows_what_would_leave_and_sends_nothing(node_config, command):
    # One unreadable row: reported and listed, under the 5% that would stop the run.
    source = next((node_config.parent.parent.parent / "data").glob("health-visiting.csv"))
    lines = source.read_text().splitlines()
    lines[5] = lines[5] + ",extra cell"
    source.write_text("\n".join(lines) + "\n")

    result = hublink(*command, "--config", str(node_config))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "NOTHING WAS SENT" in out
    assert "given_name" in out and "from column 'Forename'" in out
    assert "Attributes released: age_band (age_band of column 'DOB')" in out
    assert "national-data-opt-out" in out and "under-5-on-31-march" in out
    state = node_config.parent / "state"
    report = json.loads((state / "exclusion-report.json").read_text())
    assert report["mode"] == "plan"
    assert report["rows"] == 200 and report["rejected"] == 1
    assert report["included"] + report["excluded"] == 199
    assert f"would be sent:   {report['included']:>9,}" in out
    assert report["policy"]["sha256"] in out and report["schema_sha256"] in out
    rejects = (state / "rejects.csv").read_text().splitlines()
    assert rejects[0] == "row,field,reason" and rejects[1].startswith("6,,has 8 cells")
    # No coordinator listens on the configured port: the run succeeded without one.
    with TokenStore(state / "tokens.sqlite") as store:
        assert store.committed_upload("early-years-demo") is None
    assert "mode=plan" in (state / "node.log").read_text()
    assert "upload.committed" not in (state / "node.log").read_text()


def test_a_policy_syntax_error_names_its_line_before_any_contact(node_config):
    policy = node_config.parent / "consent.toml"
    text = policy.read_text().replace('action = "require"', "action = require")
    policy.write_text(text)
    line = text.splitlines().index("action = require") + 1
    message = one_line_error(in_process("node", "upload", "--config", str(node_config)))
    assert f"consent.toml, line {line}: not valid TOML" in message


def test_a_missing_opt_out_file_names_the_policy_line(node_config):
    policy = node_config.parent / "consent.toml"
    (node_config.parent / "ndop-opted-out.csv").unlink()
    line = policy.read_text().splitlines().index('opt_out_file = "ndop-opted-out.csv"') + 1
    message = one_line_error(in_process("node", "upload", "--config", str(node_config)))
    assert f"consent.toml, line {line}:" in message and "not found" in message


def test_a_policy_column_the_data_lacks_names_the_policy_line(node_config):
    policy = node_config.parent / "consent.toml"
    text = policy.read_text().replace('column = "DOB"', 'column = "Date of Birth"')
    policy.write_text(text)
    line = text.splitlines().index('column = "Date of Birth"') + 1
    message = one_line_error(in_process("node", "plan", "--config", str(node_config)))
    assert "'Date of Birth'" in message
    assert f"consent.toml, line {line - 3}:" in message  # the rule's [[rule]] header


def test_withdraw_needs_ids(node_config):
    result = in_process("node", "withdraw", "--config", str(node_config))
    assert result.returncode != 0 and "local record ids" in result.stderr


def test_every_new_command_has_help():
    for command in (["node", "plan"], ["node", "withdraw"], ["node", "upload"]):
        result = in_process(*command, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout
