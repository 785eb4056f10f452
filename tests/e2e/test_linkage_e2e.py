"""Two organisations link over real mutual TLS; keys and counts are checked against the truth."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict

import pytest

from coordinator.core.audit import verify
from coordinator.core.field_levels import LEVELS
from coordinator.core.store import Store
from hublink import synthetic
from hublink.clients import AdminClient
from hublink.demo import PROJECT_ID
from hublink.reports.quality import write as write_quality_report

pytestmark = pytest.mark.e2e


def test_every_uploaded_record_gets_exactly_one_key(linked_deployment):
    predicted = linked_deployment.predicted()
    for organisation in linked_deployment.organisations:
        with linked_deployment.data.csv_paths[organisation].open(newline="") as handle:
            layout = next(
                lay for lay in linked_deployment.data.layouts if lay.organisation == organisation
            )
            local_ids = {row[layout.id_column] for row in csv.DictReader(handle)}
        keyed = {lid for org, lid in predicted if org == organisation}
        # The demo's consent policies exclude some records; every included one has a key.
        report = linked_deployment.node_config(organisation).state_dir / "exclusion-report.json"
        included = json.loads(report.read_text())["included"]
        assert keyed <= local_ids
        assert len(keyed) == included < len(local_ids)


def test_linked_csv_holds_only_local_ids_and_keys(linked_deployment):
    for path in linked_deployment.linked.values():
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            assert next(reader) == ["local_id", "linkage_key"]
            assert all(len(row) == 2 for row in reader)


def uploaded_truth(deployment) -> dict[tuple[str, str], str]:
    """The truth about the records that were uploaded (excluded ones have no key)."""
    predicted = deployment.predicted()
    return {k: person for k, person in deployment.data.truth().items() if k in predicted}


def test_links_agree_with_the_truth(linked_deployment):
    quality = synthetic.pairwise_quality(
        linked_deployment.predicted(), uploaded_truth(linked_deployment)
    )
    assert quality.cross.true_pairs > 300
    assert quality.cross.precision >= 0.95
    assert quality.cross.recall >= 0.95


def test_per_field_filters_decide_duplicate_referrals(linked_deployment, tmp_path):
    """The demo's project sends per-field filters; the run weighs them and says how it went."""
    store = Store(linked_deployment.database)
    try:
        row = store.query_one("SELECT report FROM run_quality")
        assert row is not None
        report = json.loads(row["report"])
        completed = [e.event for e in store.audit_entries() if e.event.action == "run.completed"]
    finally:
        store.close()
    found = report["duplicates"]
    assert found["groups"] == ["given", "family", "birth", "place", "nhs"]
    assert found["weighed"] > found["linked"] > 0
    assert found["match_anchors"] > 100
    assert 0.8 < found["precision"] <= 1.0
    assert completed[-1].details["quality"]["duplicates"]["linked"] == found["linked"]
    # The admin's quality.html, from the real GetQualityReport, shows the same figures.
    page = tmp_path / "quality.html"
    write_quality_report(
        page, AdminClient(linked_deployment.client_channel("admin")).quality_report(PROJECT_ID)
    )
    text = page.read_text()
    assert "<h2>Duplicate referrals (per-field model)</h2>" in text
    shown = re.search(r"<th>Estimated duplicate pairs</th><td>([\d,]+\.\d)</td>", text)
    assert shown is not None
    estimated = float(shown.group(1).replace(",", ""))
    assert estimated > 0
    assert estimated == pytest.approx(found["estimated_duplicate_pairs"], abs=0.051)
    assert f"the cut-off)</th><td>{found['linked']:,}</td>" in text
    assert f"elsewhere)</th><td>{found['apart']:,}</td>" in text
    for group in found["groups"]:
        assert re.search(
            rf"<tr><td>{group}</td>(<td class='n'>[+-]\d+\.\d</td>){{{LEVELS}}}</tr>", text
        )
    within = synthetic.pairwise_quality(
        linked_deployment.predicted(), uploaded_truth(linked_deployment)
    ).within
    assert within.true_pairs > 5
    assert within.precision >= 0.9
    assert within.recall >= 0.8


def test_overlap_counts_match_the_keys_handed_out(linked_deployment):
    members: dict[str, set[str]] = defaultdict(set)
    for (organisation, _), key in linked_deployment.predicted().items():
        members[key].add(organisation)
    a, b = linked_deployment.organisations
    expected = {
        (a,): sum(1 for m in members.values() if m == {a}),
        (b,): sum(1 for m in members.values() if m == {b}),
        (a, b): sum(1 for m in members.values() if m == {a, b}),
    }
    cells = {cell.datasets: cell for cell in linked_deployment.overlap.cells}
    assert set(cells) == set(expected)
    for combo, value in expected.items():
        # The demo project's rule (hospital-statistics): 1 to 7 withheld, others
        # perturbed by at most one and rounded to the nearest 5.
        if cells[combo].suppressed:
            assert 0 < value < 8
        else:
            released = cells[combo].value
            assert released is not None and released % 5 == 0
            assert abs(released - value) <= 3
    assert linked_deployment.run.entities == len(members)


def test_overlap_is_close_to_the_true_overlap(linked_deployment):
    truth = uploaded_truth(linked_deployment)
    people: dict[str, set[str]] = defaultdict(set)
    for (organisation, _), person in truth.items():
        people[person].add(organisation)
    true_both = sum(1 for orgs in people.values() if len(orgs) == 2)
    both = next(c for c in linked_deployment.overlap.cells if len(c.datasets) == 2)
    assert both.value is not None
    assert abs(both.value - true_both) <= 0.05 * true_both


def test_audit_chain_records_the_whole_flow_and_verifies(linked_deployment):
    store = Store(linked_deployment.database)
    try:
        entries = store.audit_entries()
    finally:
        store.close()
    assert verify(entries) is None
    actions = [e.event.action for e in entries]
    assert actions.count("upload.committed") == 2
    # Each node's first fetch releases every key once (with its upload id); the node also
    # asks for the change sequence it has reached, which is audited as a release too.
    full = [
        e for e in entries if e.event.action == "keys.released" and "upload_id" in e.event.details
    ]
    assert len(full) == 2
    assert "run.completed" in actions
    assert "counts.released" in actions
    committed = [e for e in entries if e.event.action == "upload.committed"]
    assert {e.event.actor_organisation for e in committed} == set(linked_deployment.organisations)
