"""One definition of a project: the project file's settings, defaults and fingerprint."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

import hublink
from coordinator.core.errors import InvalidRequest
from coordinator.core.model import Project
from coordinator.core.runs import Thresholds
from coordinator.projects import load_project
from hublink.config import ProjectConfig, default_of
from hublink.spec import LinkageSpec


def write(folder: Path, extra: str = "") -> Path:
    shutil.copyfile(
        Path(hublink.__file__).parent / "schemas" / "early-years.json", folder / "schema.json"
    )
    path = folder / "project.toml"
    path.write_text(
        'id = "p"\npurpose = "Test one definition"\norganisations = ["a", "b"]\n'
        f'schema = "schema.json"\n{extra}',
        encoding="utf-8",
    )
    return path


def test_the_core_project_takes_every_default_from_the_project_file() -> None:
    spec = LinkageSpec.default()
    project = Project("p", "x", ("a", "b"), spec.json_text, spec.sha256, spec.encodings, "")
    defaults = ProjectConfig("p", "x", ("a", "b"), Path("schema.json"))
    shared = {f.name for f in dataclasses.fields(Project)} & {
        f.name for f in dataclasses.fields(ProjectConfig)
    }
    shared -= {"id", "purpose", "organisations", "encoding_sha256", "disclosure"}
    assert "threshold" in shared and "auto_threshold" in shared
    for name in shared:
        assert getattr(project, name) == getattr(defaults, name), name
    assert project.disclosure.name == defaults.disclosure


def test_a_loaded_project_holds_the_file_as_written(tmp_path: Path) -> None:
    project = load_project(write(tmp_path, "threshold = 0.8\nauto_threshold = false\n"))
    assert (project.threshold, project.auto_threshold) == (0.8, False)


def test_a_field_scoring_project_names_the_identifiers_its_model_holds_apart(
    tmp_path: Path,
) -> None:
    assert load_project(write(tmp_path, "field_scoring = true\n")).field_identifiers == ("nhs",)
    assert load_project(write(tmp_path, "field_scoring = false\n")).field_identifiers == ()


@pytest.mark.parametrize(
    ("extra", "changes"),
    [
        ("threshold = 0.8\n", True),
        ("blocking_completeness = 0.99\n", True),
        ('disclosure = "strict"\n', True),
        ("retention_days = 30\n", True),
        ("max_chunk_records = 100\n", False),
        ("max_records = 1000\n", False),
    ],
)
def test_the_fingerprint_covers_the_keys_that_define_the_project(
    tmp_path: Path, extra: str, changes: bool
) -> None:
    plain = load_project(write(tmp_path)).definition_sha256
    other = load_project(write(tmp_path, extra)).definition_sha256
    assert (other != plain) is changes


def test_a_run_names_its_requested_fallback_and_auto_thresholds(tmp_path: Path) -> None:
    project = load_project(write(tmp_path))
    fallback = default_of(ProjectConfig, "threshold")
    assert Thresholds.plan(project, None) == Thresholds(None, fallback, True)
    assert Thresholds.plan(project, 0.9) == Thresholds(0.9, 0.9, False)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(InvalidRequest, match="between 0 and 1"):
            Thresholds.plan(project, bad)
