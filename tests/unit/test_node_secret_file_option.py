"""`--secret-file` on `hublink node upload|plan`: where systemd's LoadCredential= puts the secret.

A unit names its credentials directory only as ``%d`` on its command line, so
the option overrides the config's secret_file (and secret_env).
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hublink import synthetic
from hublink.cli import main
from hublink.demo import free_port, write_deployment


def node_config(tmp_path: Path) -> Path:
    data = synthetic.generate(tmp_path / "data", 30, seed=3, layouts=synthetic.DEFAULT_LAYOUTS[:1])
    return write_deployment(tmp_path, data, free_port())["health-visiting"]


def test_plan_reads_the_secret_from_the_credentials_directory_given(tmp_path: Path) -> None:
    config = node_config(tmp_path)
    # As under systemd: the configured file is not readable by the service, its copy is.
    configured = tmp_path / "secrets" / "project-secret"
    secret = configured.read_text()
    configured.unlink()
    credentials = tmp_path / "run-credentials"
    credentials.mkdir()
    (credentials / "project-secret").write_text(secret)

    without = CliRunner().invoke(main, ["node", "plan", "--config", str(config)])
    assert without.exit_code != 0 and "cannot read the linkage secret" in without.output

    given = credentials / "project-secret"
    result = CliRunner().invoke(
        main, ["node", "plan", "--config", str(config), "--secret-file", str(given)]
    )
    assert result.exit_code == 0, result.output
    assert "NOTHING WAS SENT" in result.output


def test_a_short_secret_in_the_given_file_is_refused_naming_that_file(tmp_path: Path) -> None:
    config = node_config(tmp_path)
    short = tmp_path / "short-secret"
    short.write_text("too short\n")
    result = CliRunner().invoke(
        main, ["node", "upload", "--dry-run", "--config", str(config), "--secret-file", str(short)]
    )
    assert result.exit_code != 0
    assert f"{short}: the linkage secret must be at least 16 characters" in result.output
