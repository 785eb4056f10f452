"""docs/configuration.md is generated from hublink.config and must match it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from click.testing import CliRunner

from hublink import config
from hublink.cli import main
from hublink.config_reference import missing_descriptions, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_has_a_description() -> None:
    assert missing_descriptions() == []


def test_the_committed_page_is_the_generated_one() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date: run "
        "`hublink config-reference --output docs/configuration.md`"
    )


def test_the_page_names_every_key_with_its_default() -> None:
    page = render()
    for kind, prefix in [
        (config.CoordinatorConfig, ""),
        (config.NodeConfig, ""),
        (config.ProjectConfig, ""),
        (config.ClientConfig, ""),
        (config.InputSection, "input."),
        (config.TlsSection, "tls."),
    ]:
        for f in dataclasses.fields(kind):
            if f.name in ("tls", "input"):
                continue
            assert f"| `{prefix}{f.name}` |" in page, f"{kind.__name__}.{f.name}"
    assert '| `ops_listen` | string | `"127.0.0.1:9100"` |' in page
    assert "| `retry_attempts` | integer | `5` |" in page


def test_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text("# old\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["config-reference", "--output", str(stale), "--check"])
    assert result.exit_code == 1 and "out of date" in result.output
    assert runner.invoke(main, ["config-reference", "--output", str(stale)]).exit_code == 0
    assert stale.read_text(encoding="utf-8") == render()
    result = runner.invoke(main, ["config-reference", "--output", str(stale), "--check"])
    assert result.exit_code == 0
