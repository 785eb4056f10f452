"""A run's quality report over the core: estimated threshold, precision/recall, audit, access.

Real encodings of generated people (the node's encoder), a real SQLite store,
the coordinator's own run; no gRPC.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from coordinator.core import field_estimate
from coordinator.core.errors import NotAllowed, NotReady
from coordinator.core.model import ConsentSummary, IncomingRecord
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.projects import load_project
from hublink import synthetic
from hublink.identity import Identity, Role
from hublink.spec import LinkageSpec, UploadDigest
from node.encoder import Encoder
from node.synthetic_input import prepared_records

PROJECT = "quality-check"
ADMIN = Identity("hub-admin", Role.ADMIN)
ANALYST = Identity("hub-analytics", Role.ANALYST)
ORGANISATIONS = tuple(layout.organisation for layout in synthetic.DEFAULT_LAYOUTS)
SECRET = b"a-test-secret-of-16+chars"


def write_project(folder: Path, auto: bool) -> Path:
    schema = resources.files("hublink").joinpath("schemas", "early-years.json")
    with resources.as_file(schema) as source:
        shutil.copy(source, folder / "early-years.json")
    path = folder / "project.toml"
    path.write_text(
        f'id = "{PROJECT}"\n'
        'purpose = "Check linkage quality estimates"\n'
        f"organisations = {json.dumps(list(ORGANISATIONS))}\n"
        'admins = ["hub-admin"]\n'
        'schema = "early-years.json"\n'
        "field_scoring = false\n"  # the record CLK alone is sent
        "threshold = 0.83\n"
        f"auto_threshold = {'true' if auto else 'false'}\n"
        'disclosure = "unrounded"\n'
        "suppression_threshold = 8\n",
        encoding="utf-8",
    )
    return path


def encoded(data: synthetic.GeneratedData) -> dict[str, list[IncomingRecord]]:
    encoder = Encoder(LinkageSpec.default(), SECRET)
    spec = LinkageSpec.default()
    out: dict[str, list[IncomingRecord]] = {}
    for organisation, prepared in prepared_records(data, spec).items():
        clks = encoder.encode([p.values for p in prepared])
        out[organisation] = [
            IncomingRecord(f"{organisation[:2]}-tok-{i:05d}", [("clk", clk)])
            for i, clk in enumerate(clks)
        ]
    return out


def upload(core: Coordinator, organisation: str, sent: Sequence[IncomingRecord]) -> None:
    caller = Identity(organisation, Role.NODE)
    upload_id = f"upload-{organisation}"
    core.begin_upload(
        caller,
        PROJECT,
        upload_id,
        core._projects[PROJECT].encoding_sha256,
        len(sent),
        ConsentSummary("c0ffee" * 8 + "0" * 16, {"consented": len(sent)}),
    )
    core.put_chunk(caller, upload_id, 0, sent)
    digest = UploadDigest()
    for record in sent:
        digest.add(record.token, [bits for _, bits in record.encodings])
    core.commit_upload(caller, upload_id, 1, len(sent), digest.hexdigest())


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[IncomingRecord]]:
    folder = tmp_path_factory.mktemp("people")
    return encoded(synthetic.generate(folder, 400, seed=11, overlap=0.5))


def matched(folder: Path, sent: dict[str, list[IncomingRecord]], auto: bool) -> Coordinator:
    core = Coordinator(Store(folder / "c.db"), [load_project(write_project(folder, auto))])
    for organisation, records in sent.items():
        upload(core, organisation, records)
    run = core.start_run(ADMIN, PROJECT, background=False)
    assert run.state == "completed", run.message
    return core


@pytest.fixture
def auto_core(tmp_path: Path, generated: dict[str, list[IncomingRecord]]) -> Iterator[Coordinator]:
    core = matched(tmp_path, generated, auto=True)
    yield core
    core.store.close()


def test_an_auto_run_uses_the_estimated_threshold_and_reports_it(auto_core: Coordinator) -> None:
    state = auto_core.run_status(ADMIN, PROJECT)
    q = state.quality
    assert q is not None and q.fitted, q
    assert q.auto and state.threshold == q.threshold_used == q.threshold_estimated
    assert q.threshold_fixed == 0.83
    # Salted record CLK: chance best scores sit just above the 0.6 floor, true pairs at about
    # 0.95, 0.8 or 0.65 as none, one or two salt fields differ; the estimate goes between the
    # chance scores and the one-error peak.
    assert 0.6 < q.threshold_estimated < 0.78
    assert 0.9 < q.precision <= 1 and 0.85 < q.recall <= 1
    assert 0 < q.precision_sd < 0.05 and 0 < q.recall_sd < 0.05
    assert q.near_threshold > 0 and q.several_candidates > 0
    assert [d.organisation for d in q.datasets] == list(ORGANISATIONS)
    assert all(0 < d.linked < d.records for d in q.datasets)


def test_run_completed_audit_holds_the_aggregate_figures_only(auto_core: Coordinator) -> None:
    entry = next(
        e for e in reversed(auto_core.store.audit_entries()) if e.event.action == "run.completed"
    )
    figures = entry.event.details["quality"]
    assert isinstance(figures, dict)
    assert set(figures) == {
        "auto_threshold",
        "threshold_used",
        "threshold_fixed",
        "threshold_estimated",
        "threshold_sd",
        "estimated",
        "not_estimated_because",
        "precision",
        "precision_sd",
        "recall",
        "recall_sd",
        "scores",
        "links_near_threshold",
        "records_with_several_candidates",
        "non_matches_anchored",
        "precision_low",
        "precision_high",
        "recall_low",
        "recall_high",
        "caveats",
        "recall_on_output",
        "left_apart",
        "unscored",
    }
    assert all(not isinstance(v, list | dict) for v in figures.values())
    text = json.dumps(entry.event.details)
    assert "tok-" not in text and "histogram" not in text


def test_a_node_is_not_shown_the_quality(auto_core: Coordinator) -> None:
    state = auto_core.run_status(Identity(ORGANISATIONS[0], Role.NODE), PROJECT)
    assert state.quality is None


def test_the_quality_report_is_for_the_admin_withholds_small_bins_and_is_audited(
    auto_core: Coordinator,
) -> None:
    run_id, report, bins = auto_core.quality_report(ADMIN, PROJECT)
    assert run_id == auto_core.run_status(ADMIN, PROJECT).run_id
    assert report.curve and report.histogram
    assert all(b.count == 0 or b.count >= 8 for b in bins)
    stored = dict(report.histogram)
    withheld = [b.lower for b in bins if b.suppressed]
    assert withheld, "400 records a dataset leave some bins of 1-7 scores"
    assert all(0 < stored[lower] < 8 for lower in withheld)
    assert all(stored[b.lower] == b.count for b in bins if not b.suppressed)
    last = auto_core.store.audit_entries()[-1].event
    assert (last.action, last.actor_role, last.details["run_id"]) == (
        "quality.read",
        "admin",
        run_id,
    )
    with pytest.raises(NotAllowed):
        auto_core.quality_report(ANALYST, PROJECT)
    refused = auto_core.store.audit_entries()[-1].event
    assert refused.actor_organisation == ANALYST.organisation
    assert "quality.read" in json.dumps(refused.details)


def test_a_fixed_project_keeps_its_threshold_and_reports_the_estimate_beside_it(
    tmp_path: Path, generated: dict[str, list[IncomingRecord]]
) -> None:
    core = matched(tmp_path, generated, auto=False)
    try:
        state = core.run_status(ADMIN, PROJECT)
        q = state.quality
        assert q is not None and q.fitted
        assert not q.auto and state.threshold == q.threshold_used == 0.83
        assert q.threshold_estimated != 0.83
    finally:
        core.store.close()


def test_too_few_records_fall_back_to_the_project_threshold_and_say_so(
    tmp_path: Path, generated: dict[str, list[IncomingRecord]]
) -> None:
    few = {org: records[:10] for org, records in generated.items()}
    core = matched(tmp_path, few, auto=True)
    try:
        state = core.run_status(ADMIN, PROJECT)
        q = state.quality
        assert q is not None and not q.fitted
        assert "too few" in q.reason
        assert state.threshold == q.threshold_used == 0.83
    finally:
        core.store.close()


def test_no_quality_report_before_a_run(tmp_path: Path) -> None:
    core = Coordinator(Store(tmp_path / "c.db"), [load_project(write_project(tmp_path, True))])
    try:
        with pytest.raises(NotReady):
            core.quality_report(ADMIN, PROJECT)
    finally:
        core.store.close()


# --- a run with per-field filters: the field model decides every pair ------------------------
def field_encoded(data: synthetic.GeneratedData) -> dict[str, list[IncomingRecord]]:
    spec = LinkageSpec.from_json(LinkageSpec.default().json_text, field_scoring=True)
    encoder = Encoder(spec, SECRET)
    names = [e.name for e in spec.encodings]
    out: dict[str, list[IncomingRecord]] = {}
    for organisation, prepared in prepared_records(data, spec).items():
        tokens = [f"{organisation[:2]}-tok-{i:05d}" for i in range(len(prepared))]
        encoded = encoder.encode_all([p.values for p in prepared], tokens)
        out[organisation] = [
            IncomingRecord(token, list(zip(names, parts, strict=True)))
            for token, parts in zip(tokens, encoded, strict=True)
        ]
    return out


def field_run(tmp_path: Path, data: synthetic.GeneratedData) -> Coordinator:
    """A coordinator whose field-scoring project has linked ``data`` once (the caller closes
    its store)."""
    path = write_project(tmp_path, auto=True)
    path.write_text(
        path.read_text().replace("field_scoring = false", "field_scoring = true"), encoding="utf-8"
    )
    core = Coordinator(Store(tmp_path / "c.db"), [load_project(path)])
    for organisation, records in field_encoded(data).items():
        upload(core, organisation, records)
    run = core.start_run(ADMIN, PROJECT, background=False)
    assert run.state == "completed", run.message
    return core


def test_a_run_with_field_filters_scores_every_pair_with_one_model(tmp_path: Path) -> None:
    data = synthetic.generate(tmp_path / "people", 300, seed=5, overlap=0.5)
    truth = data.truth()
    core = field_run(tmp_path, data)
    try:
        report = json.loads(
            core.store.query_one("SELECT report FROM run_quality")["report"]  # type: ignore[index]
        )
        model = report["duplicates"]
        assert model["groups"] == ["given", "family", "birth", "place", "nhs"]
        # Cross pairs are the model's too: it scored them and linked most of the true ones.
        true_cross = sum(
            1 for (o1, _), p1 in truth.items() for (o2, _), p2 in truth.items()
            if o1 < o2 and p1 == p2
        )  # fmt: skip
        assert model["across_weighed"] > model["across_linked"] > 0.9 * true_cross
        assert 0.9 < model["across_precision"] <= 1.0
        assert 0.9 < model["across_recall"] <= 1.0
        assert 0.0 < model["cut_across"] < 1.0 and 0.0 < model["cut_within"] < 1.0
        assert model["weighed"] >= model["linked"] > 0
        completed = [
            e.event for e in core.store.audit_entries() if e.event.action == "run.completed"
        ]
        assert (
            completed[-1].details["quality"]["duplicates"]["across_linked"]
            == model["across_linked"]
        )
    finally:
        core.store.close()


def test_a_salted_run_reads_which_parts_caught_each_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = synthetic.generate(tmp_path / "people", 200, seed=6, overlap=0.5)
    seen: list[field_estimate.Prepared] = []
    real = field_estimate.prepare

    def spy(*args: Any, **kwargs: Any) -> field_estimate.Prepared:
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(field_estimate, "prepare", spy)
    field_run(tmp_path, data).store.close()
    prepared = seen[-1]
    assert prepared.parts == 3 and prepared.clear is not None
    assert len(prepared.clear) == len(prepared.chance)
    assert prepared.clear.min() >= 0 and prepared.clear.max() <= 7
    # Sure matches whose salts all agree have every part at its floor; every sure match
    # has some part there. Rows read from the wrong records would read chance everywhere.
    sure = prepared.chance > 0.99
    intact = sure & (prepared.broken == 0)
    assert intact.sum() > 50
    assert (prepared.clear[intact] == 7).mean() > 0.9
    assert (prepared.clear[sure] > 0).mean() > 0.95
