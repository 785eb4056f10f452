"""Incremental runs give the entities a full re-link gives, month after month.

Three refresh sequences on a real deployment: each month the organisations
send changes (births, leavers, name changes, duplicates, a withdrawal), the
admin runs (incremental: only the changes are compared), the entities are
noted, then `--full` re-links everything and must find exactly the same
entities.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hublink.demo import PROJECT_ID
from hublink.reports.series_chart import write_series_chart
from tests.e2e.living import Deployment, log_entries, started

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with started(tmp_path_factory.mktemp("incremental"), records=250, seed=5) as running:
        yield running


def change(deployment: Deployment, organisation: str, month: int) -> None:
    """Next month's extract: a birth, a leaver, a name change and a duplicate referral."""
    fields, rows = deployment.rows(organisation)
    local, given, family = fields[0], fields[1], fields[2]
    del rows[3 + month]  # a leaver
    rows[10 + month][family] += "-Jones"  # a name change
    duplicate = dict(rows[20 + month])  # referred again from another service
    duplicate[local] = f"{duplicate[local]}-R{month}"
    duplicate[given] = duplicate[given][:-1] or duplicate[given]
    born = dict(rows[30 + month])  # a sibling born
    born[local] = f"{born[local]}-B{month}"
    born[given] = "Aneurin" if month % 2 else "Seren"
    rows += [duplicate, born]
    deployment.write_rows(organisation, fields, rows)


def matching_of(deployment: Deployment, run_id: str) -> dict[str, object]:
    done = [
        e
        for e in log_entries(deployment.database)
        if e.action == "run.completed" and e.details["run_id"] == run_id
    ]
    return dict(done[0].details["matching"])  # type: ignore[arg-type]


def test_incremental_runs_find_the_entities_a_full_relink_finds(deployment: Deployment) -> None:
    first, second = deployment.organisations
    for organisation in deployment.organisations:
        deployment.upload(organisation)
    first_run = deployment.run(full=True)
    first_overlap = deployment.analyst().overlap(PROJECT_ID)
    for month, senders in enumerate([[first], [first, second], [second]], start=1):
        for organisation in senders:
            change(deployment, organisation, month)
            deployment.upload(organisation)
        quick = deployment.run()
        details = matching_of(deployment, quick)
        assert details["incremental"] is True
        assert 0 < int(details["compared_afresh"]) < 20  # the changes, not every record
        incremental = deployment.entities()
        deployment.run(full=True)
        assert deployment.entities() == incremental, f"month {month}"

    # Counts as of an older release: the first month's, exactly as released then.
    analyst = deployment.analyst()
    assert analyst.overlap(PROJECT_ID, release=first_run).cells == first_overlap.cells
    series = analyst.time_series(PROJECT_ID)
    assert series.releases[0].run_id == first_run
    assert len(series.releases) == 7  # the first run, then an incremental and a full a month
    both = "+".join(deployment.organisations)
    assert series.releases[0].value(both) == dict(
        ("+".join(c.datasets), c.value) for c in first_overlap.cells
    ).get(both)
    chart = deployment.root / "series.png"
    write_series_chart(chart, series)
    assert chart.read_bytes()[:4] == b"\x89PNG"
