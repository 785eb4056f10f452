"""`hublink schema export` and `hublink schema hash`: the schema to hand out, the hash to pin."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from coordinator.projects import load_project
from hublink.cli import main
from hublink.spec import LinkageSpec
from tests.conftest import one_line_error, run_hublink

#: The shipped schema; a default project hashes it with field scoring and the salted record CLK.
SHIPPED = LinkageSpec.default()
DEFAULT = LinkageSpec.from_json(SHIPPED.json_text, field_scoring=True, record_clk="salted")


def hublink(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_hash_is_a_default_projects_printed_whole() -> None:
    assert hublink("schema", "hash") == DEFAULT.sha256 + "\n"
    assert hublink("schema", "hash", "--field-scoring", "--record-clk", "salted") == (
        DEFAULT.sha256 + "\n"
    )
    assert len(DEFAULT.sha256) == 64


def test_each_setting_is_part_of_the_hash() -> None:
    def spec(**settings: object) -> str:
        return LinkageSpec.from_json(
            SHIPPED.json_text,
            **{"field_scoring": True, **settings},  # type: ignore[arg-type]
        ).sha256

    record_only = spec(field_scoring=False)
    legacy = spec(record_clk="unsalted")
    unhardened = spec(hardening="none")
    renormalised = spec(normalisation="hublink-normalise-0")
    assert hublink("schema", "hash", "--no-field-scoring").strip() == record_only
    assert hublink("schema", "hash", "--record-clk", "unsalted").strip() == legacy
    assert hublink("schema", "hash", "--hardening", "none").strip() == unhardened
    assert (
        hublink("schema", "hash", "--normalisation", "hublink-normalise-0").strip() == renormalised
    )
    assert len({DEFAULT.sha256, record_only, legacy, unhardened, renormalised}) == 5


def test_an_exported_schema_hashes_as_the_shipped_one(tmp_path: Path) -> None:
    out = tmp_path / "early-years.json"
    result = CliRunner().invoke(main, ["schema", "export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"encoding_sha256 {DEFAULT.sha256}" in result.stderr
    assert json.loads(out.read_text()) == SHIPPED.schema
    assert hublink("schema", "hash", "--schema", str(out)) == DEFAULT.sha256 + "\n"
    # Printed, it is the same schema.
    assert json.loads(hublink("schema", "export")) == SHIPPED.schema


def test_a_project_files_hash_is_the_one_the_coordinator_loads(tmp_path: Path) -> None:
    hublink("schema", "export", "--output", str(tmp_path / "schema.json"))
    project = tmp_path / "project.toml"
    project.write_text(
        'id = "p"\npurpose = "Check the pinned hash"\norganisations = ["a", "b"]\n'
        'schema = "schema.json"\nfield_scoring = true\nhardening = "none"\n',
        encoding="utf-8",
    )
    printed = hublink("schema", "hash", "--project", str(project)).strip()
    assert printed == load_project(project).encoding_sha256
    assert printed != DEFAULT.sha256
    assert json.loads(hublink("schema", "export", "--project", str(project))) == SHIPPED.schema


def test_project_and_settings_together_are_refused(tmp_path: Path) -> None:
    hublink("schema", "export", "--output", str(tmp_path / "schema.json"))
    project = tmp_path / "project.toml"
    project.write_text(
        'id = "p"\npurpose = "x"\norganisations = ["a"]\nschema = "schema.json"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["schema", "hash", "--project", str(project), "--field-scoring"]
    )
    assert result.exit_code == 2
    assert "leave out --field-scoring" in result.output


def test_a_schema_that_is_not_clkhash_v3_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 2}', encoding="utf-8")
    line = one_line_error(run_hublink("schema", "hash", "--schema", str(bad)))
    assert line == f"Error: {bad}: not a clkhash v3 linkage schema (version must be 3)"


def test_field_scoring_needs_the_features_its_filters_hash(tmp_path: Path) -> None:
    schema = SHIPPED.schema
    schema["features"] = [f for f in schema["features"] if f["identifier"] != "postcode"]
    thin = tmp_path / "thin.json"
    thin.write_text(json.dumps(schema), encoding="utf-8")
    result = CliRunner().invoke(main, ["schema", "export", "--schema", str(thin)])
    assert result.exit_code == 2
    assert "field_scoring needs the feature(s)" in result.output
