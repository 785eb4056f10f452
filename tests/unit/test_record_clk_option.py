"""The record_clk and field_scoring settings: a project or node file's defaults are the
private ones (the salted record CLK and salted per-field filters); "unsalted" stays loadable
for projects pinned to it, with the floors it always had and a warning naming its leak."""

from __future__ import annotations

import logging
import shutil
from importlib import resources
from pathlib import Path

import pytest

from coordinator.core import chance, field_scoring, runs
from coordinator.core.model import Project
from coordinator.core.runs import Thresholds, floor_for
from coordinator.projects import load_project
from hublink.config import NodeConfig, ProjectConfig
from hublink.config_loader import default_of
from hublink.spec import UNSALTED_LEAK, LinkageSpec


def project(record_clk: str, min_threshold: float = 0.6) -> Project:
    spec = LinkageSpec.from_json(LinkageSpec.default().json_text, record_clk=record_clk)
    return Project(
        id="early-years",
        purpose="test",
        organisations=("a", "b"),
        schema_json=spec.json_text,
        encoding_sha256=spec.sha256,
        encodings=spec.encodings,
        definition_sha256="",
        record_clk=record_clk,
        min_threshold=min_threshold,
    )


def test_both_sides_default_to_the_salted_record_clk_and_field_scoring() -> None:
    for side in (ProjectConfig, NodeConfig):
        assert default_of(side, "record_clk") == "salted"
        assert default_of(side, "field_scoring") is True
    assert default_of(ProjectConfig, "min_threshold") == 0.6
    assert LinkageSpec.default().record_clk == "salted"


def write(folder: Path, extra: str) -> Path:
    with resources.as_file(resources.files("hublink") / "schemas" / "early-years.json") as shipped:
        shutil.copy(shipped, folder / "early-years.json")
    path = folder / "p.toml"
    path.write_text(
        'id = "p"\npurpose = "x"\norganisations = ["a", "b"]\nschema = "early-years.json"\n'
        + extra,
        encoding="utf-8",
    )
    return path


def test_a_new_project_gets_the_private_default_silently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hublink"):
        project = load_project(write(tmp_path, ""))
    assert project.record_clk == "salted" and project.field_groups
    expected = LinkageSpec.from_json(
        LinkageSpec.default().json_text, field_scoring=True, record_clk="salted"
    )
    assert project.encoding_sha256 == expected.sha256
    assert not caplog.records


def test_a_project_pinned_to_the_unsalted_clk_loads_with_a_warning_naming_its_leak(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hublink"):
        project = load_project(write(tmp_path, 'record_clk = "unsalted"\n'))
    assert project.record_clk == "unsalted"
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "8.27%" in record.getMessage() and UNSALTED_LEAK in record.getMessage()
    assert str(tmp_path / "p.toml") in record.getMessage()


def test_salted_projects_search_candidates_lower_than_the_default() -> None:
    assert floor_for("unsalted") == 0.7
    assert floor_for("salted") == 0.6
    plain, salted = project("unsalted"), project("salted")
    thresholds = Thresholds(None, 0.83, True)
    unmeasured = {clk: chance.of_run([], clk) for clk in ("unsalted", "salted")}
    assert runs._score_floor(plain, thresholds, unmeasured["unsalted"]) == 0.7
    assert runs._score_floor(salted, thresholds, unmeasured["salted"]) == 0.6
    # A project's own min_threshold still bounds it.
    strict = project("salted", min_threshold=0.7)
    assert runs._score_floor(strict, thresholds, unmeasured["salted"]) == 0.7
    # Dense record CLKs (many fields mapped) lift the floor (coordinator.core.chance).
    dense = chance.Chance(whole=0.63, part=0.69)
    assert runs._score_floor(salted, thresholds, dense) == dense.whole_floor == 0.69
    assert field_scoring.within_floor("unsalted") == 0.8
    assert field_scoring.within_floor("salted") == 0.6
    assert plain.encodings[0].bits == 2048 and salted.encodings[0].bits == 3072
