"""hublink.config: one frozen, typed object per TOML file, unknown keys refused by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hublink.config import (
    ConfigError,
    CoordinatorConfig,
    NodeConfig,
    ProjectConfig,
    load,
)

TLS = """
[tls]
ca = "pki/ca.pem"
cert = "pki/node.pem"
key = "/etc/hublink/node.key"
"""

NODE = (
    """
coordinator = "coordinator.example:50051"
project = "early-years-2025"
schema = "early-years.json"
secret_file = "secrets/project-secret"
chunk_records = 500
timeout_seconds = 30

[input]
path = "exports/children.csv"
id_column = "ChildRef"
date_formats = ["%d/%m/%Y"]

[input.columns]
given_name = "Forename"
date_of_birth = "DOB"
"""
    + TLS
)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path, kind: type[object]) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path, kind)
    return str(caught.value)


# --- good files -----------------------------------------------------------------------------


def test_node_config_loads_into_a_frozen_typed_object(tmp_path: Path) -> None:
    folder = tmp_path / "nodes" / "health-visiting"
    node = load(write(folder, "node.toml", NODE), NodeConfig)

    assert node.coordinator == "coordinator.example:50051"
    assert node.project == "early-years-2025"
    assert node.chunk_records == 500
    assert node.timeout_seconds == 30.0
    assert isinstance(node.timeout_seconds, float)
    assert node.input.id_column == "ChildRef"
    assert dict(node.input.columns) == {"given_name": "Forename", "date_of_birth": "DOB"}
    assert node.input.date_formats == ("%d/%m/%Y",)
    assert node.input.encoding == "auto"  # default kept: detected when read
    assert node.secret_env == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.project = "another"  # type: ignore[misc]


def test_relative_paths_resolve_against_the_config_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "nodes" / "health-visiting"
    node = load(write(folder, "node.toml", NODE), NodeConfig)

    assert node.schema == folder / "early-years.json"
    assert node.secret_file == folder / "secrets" / "project-secret"
    assert node.input.path == folder / "exports" / "children.csv"
    assert node.tls.ca == folder / "pki" / "ca.pem"
    assert node.tls.key == Path("/etc/hublink/node.key")  # absolute paths stay as written


def test_optional_path_left_out_is_none(tmp_path: Path) -> None:
    text = NODE.replace('secret_file = "secrets/project-secret"\n', "")
    node = load(write(tmp_path, "node.toml", text), NodeConfig)
    assert node.secret_file is None


def test_coordinator_config_resolves_each_project_path(tmp_path: Path) -> None:
    text = (
        """
listen = "0.0.0.0:50051"
database = "state/coordinator.db"
projects = ["projects/early-years.toml", "/srv/hublink/other.toml"]
max_workers = 4
"""
        + TLS
    )
    folder = tmp_path / "coordinator"
    coordinator = load(write(folder, "coordinator.toml", text), CoordinatorConfig)

    assert coordinator.listen == "0.0.0.0:50051"
    assert coordinator.database == folder / "state" / "coordinator.db"
    assert coordinator.projects == (
        folder / "projects" / "early-years.toml",
        Path("/srv/hublink/other.toml"),
    )
    assert coordinator.max_workers == 4


def test_project_config_with_defaults(tmp_path: Path) -> None:
    text = """
id = "early-years-2025"
purpose = "Plan Family Hub outreach"
organisations = ["health-visiting", "childcare", "family-support"]
schema = "early-years.json"
threshold = 0.85
released_attributes = ["ward"]
"""
    project = load(write(tmp_path, "project.toml", text), ProjectConfig)

    assert project.organisations == ("health-visiting", "childcare", "family-support")
    assert project.schema == tmp_path / "early-years.json"
    assert project.threshold == 0.85
    assert project.released_attributes == ("ward",)
    assert project.suppression_threshold == 0  # the disclosure preset's
    assert project.disclosure == "hospital-statistics"
    assert project.analysts == ()
    assert project.max_chunk_records == 2000


# --- refusals -------------------------------------------------------------------------------


def test_unknown_top_level_key_is_refused_naming_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "node.toml", "chunk_recrods = 10\n" + NODE)
    message = refusal(path, NodeConfig)
    assert str(path) in message
    assert "unknown key chunk_recrods" in message
    assert "chunk_records" in message  # the expected keys are listed


def test_misspelt_nested_key_is_refused_with_its_full_name(tmp_path: Path) -> None:
    path = write(tmp_path, "node.toml", NODE.replace("[input.columns]", "[input.colums]"))
    message = refusal(path, NodeConfig)
    assert str(path) in message
    assert "unknown key input.colums" in message


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "node.toml", NODE.replace('id_column = "ChildRef"\n', ""))
    message = refusal(path, NodeConfig)
    assert str(path) in message
    assert "missing required key input.id_column" in message


def test_missing_required_table_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "node.toml", NODE.replace(TLS, ""))
    assert "missing required key tls" in refusal(path, NodeConfig)


@pytest.mark.parametrize(
    ("line", "replacement", "expected"),
    [
        ("chunk_records = 500", 'chunk_records = "500"', "chunk_records must be a whole number"),
        ("chunk_records = 500", "chunk_records = true", "chunk_records must be a whole number"),
        ("chunk_records = 500", "chunk_records = 500.0", "chunk_records must be a whole number"),
        ("timeout_seconds = 30", 'timeout_seconds = "30"', "timeout_seconds must be a number"),
        ("timeout_seconds = 30", "timeout_seconds = false", "timeout_seconds must be a number"),
        ('project = "early-years-2025"', "project = 2025", "project must be a string"),
        ('schema = "early-years.json"', 'schema = ""', "schema must be a path"),
        ('schema = "early-years.json"', "schema = 7", "schema must be a path"),
        ('date_formats = ["%d/%m/%Y"]', 'date_formats = "%d/%m/%Y"', "date_formats must be a list"),
        ('date_formats = ["%d/%m/%Y"]', "date_formats = [1]", "input.date_formats[0] must be"),
        ('given_name = "Forename"', "given_name = 3", "input.columns.given_name must be"),
    ],
)
def test_wrong_type_is_refused_naming_the_key(
    tmp_path: Path, line: str, replacement: str, expected: str
) -> None:
    assert line in NODE
    path = write(tmp_path, "node.toml", NODE.replace(line, replacement))
    message = refusal(path, NodeConfig)
    assert str(path) in message
    assert expected in message


def test_a_scalar_where_a_table_belongs_is_refused(tmp_path: Path) -> None:
    text = 'tls = "pki"\n' + NODE.replace(TLS, "")
    message = refusal(write(tmp_path, "node.toml", text), NodeConfig)
    assert "[tls] must be a table" in message


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "node.toml", 'coordinator = "unterminated\n')
    message = refusal(path, NodeConfig)
    assert str(path) in message
    assert "not valid TOML" in message


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    message = refusal(path, NodeConfig)
    assert str(path) in message
    assert "not found" in message
