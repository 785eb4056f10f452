"""The record_clk project setting: "unsalted" (the default) keeps the encoding and floors
hublink always had; "salted" changes the encoding hash and lowers the candidate floors."""

from __future__ import annotations

from coordinator.core import field_scoring, runs
from coordinator.core.model import Project
from coordinator.core.runs import Thresholds, floor_for
from hublink.config import NodeConfig, ProjectConfig
from hublink.config_loader import default_of
from hublink.spec import LinkageSpec


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


def test_both_sides_default_to_the_unsalted_record_clk() -> None:
    assert default_of(ProjectConfig, "record_clk") == "unsalted"
    assert default_of(NodeConfig, "record_clk") == "unsalted"
    assert default_of(ProjectConfig, "min_threshold") == 0.7


def test_salted_projects_search_candidates_lower_than_the_default() -> None:
    assert floor_for("unsalted") == 0.7
    assert floor_for("salted") == 0.6
    plain, salted = project("unsalted"), project("salted")
    thresholds = Thresholds(None, 0.83, True)
    assert runs._score_floor(plain, thresholds) == 0.7
    assert runs._score_floor(salted, thresholds) == 0.6
    # A project's own min_threshold still bounds it.
    assert runs._score_floor(project("salted", min_threshold=0.7), thresholds) == 0.7
    assert field_scoring.within_floor("unsalted") == 0.8
    assert field_scoring.within_floor("salted") == 0.6
    assert plain.encodings[0].bits == 2048 and salted.encodings[0].bits == 3072
