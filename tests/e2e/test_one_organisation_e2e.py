"""A council deduplicates its own referrals: a project of one organisation, end to end.

A real coordinator over mutual TLS, the node's own workflow and the admin's and
analyst's clients, on a deployment written by ``hublink.demo.write_deployment``
for one organisation. The council's generated file holds known duplicate
referrals (about 4% of its rows are a second copy of a child, with the
generator's usual errors); ``linked.csv`` must give one child's records one
key. Run with field filters (the demo's setting, the per-field model decides)
and without (``within_threshold`` decides); each prints its pairwise figures.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coordinator.app import start as start_coordinator
from coordinator.core import one_organisation
from hublink import synthetic
from hublink.clients import AdminClient, AnalystClient, Overlap, RunReport
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.reports.quality import write as write_quality_report
from hublink.tls import TlsFiles, secure_channel
from node.keys import fetch_keys
from node.workflow import upload

pytestmark = pytest.mark.e2e

RECORDS = 2000
LAYOUT = synthetic.DEFAULT_LAYOUTS[0]
COUNCIL = LAYOUT.organisation


@dataclass
class Deduplicated:
    data: synthetic.GeneratedData
    run: RunReport
    overlap: Overlap
    keys: dict[tuple[str, str], str]
    """(organisation, local id) -> linkage key, read from the node's linked.csv."""
    quality_page: str


def client(config_path: Path) -> tuple[ClientConfig, TlsFiles]:
    config = load(config_path, ClientConfig)
    return config, TlsFiles(config.tls.ca, config.tls.cert, config.tls.key)


@pytest.fixture(scope="module", params=[True, False], ids=["field-scoring", "record-level"])
def deduplicated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deduplicated]:
    root = tmp_path_factory.mktemp("one-organisation")
    data = synthetic.generate(
        root / "data",
        RECORDS,
        seed=23,
        layouts=[LAYOUT],
        rates=synthetic.ErrorRates(duplicate_referral=0.04),
    )
    configs = write_deployment(root, data, free_port(), field_scoring=request.param)
    coordinator = start_coordinator(load(configs["coordinator"], CoordinatorConfig))
    try:
        node = load(configs[COUNCIL], NodeConfig)
        node_tls = TlsFiles(ca=node.tls.ca, cert=node.tls.cert, key=node.tls.key)
        upload(node, channel=secure_channel(node.coordinator, node_tls))
        admin_config, admin_tls = client(configs["admin"])
        admin = AdminClient(secure_channel(admin_config.coordinator, admin_tls))
        run = admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID).run_id, timeout=300)
        linked = fetch_keys(node, channel=secure_channel(node.coordinator, node_tls)).output
        with linked.open(newline="") as handle:
            keys = {
                (COUNCIL, row["local_id"]): row["linkage_key"] for row in csv.DictReader(handle)
            }
        analyst_config, analyst_tls = client(configs["analyst"])
        overlap = AnalystClient(secure_channel(analyst_config.coordinator, analyst_tls)).overlap(
            PROJECT_ID
        )
        page = root / "quality.html"
        write_quality_report(page, admin.quality_report(PROJECT_ID))
        yield Deduplicated(data, run, overlap, keys, page.read_text())
    finally:
        coordinator.stop()


def test_the_run_completes_on_one_dataset(deduplicated: Deduplicated) -> None:
    run = deduplicated.run
    assert run.state == "completed", run.message
    assert run.records == len(deduplicated.keys)
    assert run.linked_entities == 0  # nothing to link to: no other organisation
    assert run.entities < run.records  # duplicate referrals grouped


def test_duplicate_referrals_get_one_key(
    deduplicated: Deduplicated, request: pytest.FixtureRequest
) -> None:
    keys = deduplicated.keys
    truth = {k: person for k, person in deduplicated.data.truth().items() if k in keys}
    found = synthetic.pairwise_quality(keys, truth).within
    print(
        f"\none organisation ({request.node.callspec.id}): {len(keys)} records, "
        f"{found.true_pairs} duplicate pairs, precision {found.precision:.3f}, "
        f"recall {found.recall:.3f}, F1 {found.f1:.3f}"
    )
    assert found.true_pairs > 40
    assert found.precision >= 0.9
    assert found.recall >= 0.85
    # Spelled out: nearly every child referred twice has one key for both records.
    children: dict[str, set[str]] = defaultdict(set)
    for record, person in truth.items():
        children[person].add(keys[record])
    twice = [person for person, n in Counter(truth.values()).items() if n > 1]
    assert sum(len(children[person]) == 1 for person in twice) >= 0.85 * len(twice)


def test_the_quality_report_says_why_there_is_no_estimate(deduplicated: Deduplicated) -> None:
    q = deduplicated.run.quality
    assert not q.estimated
    assert q.not_estimated_because == one_organisation.NOTE
    assert q.threshold_fixed == deduplicated.run.threshold
    assert "one organisation: there are no cross-organisation scores" in deduplicated.quality_page
    if q.HasField("duplicates"):  # the per-field model, anchored on the council's own pairs
        assert q.duplicates.match_anchors > 20
        assert "within-organisation pairs, each the other&#x27;s best" in deduplicated.quality_page


def test_analysts_count_the_councils_children(deduplicated: Deduplicated) -> None:
    [cell] = deduplicated.overlap.cells
    assert tuple(cell.datasets) == (COUNCIL,)
    children = len(set(deduplicated.keys.values()))
    # The demo project's rule (hospital-statistics): perturbed by at most one, rounded to 5.
    assert cell.value is not None and abs(cell.value - children) <= 3
