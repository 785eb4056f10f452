"""Monthly refreshes on a real deployment: only what changed travels, keys stay put.

One coordinator and two nodes on loopback, configured as operators do. The
first organisation sends its extract, then next month's (records added, changed
and gone), then the same again (nothing changed), and the tests check what
went over the wire, what the coordinator did and what the audit trail says.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from hublink.audit.trail import trail
from hublink.clients import RequestRefused
from hublink.config import NodeConfig
from hublink.demo import PROJECT_ID
from node.errors import RunError
from node.plan import plan, render
from node.uploader import NodeClient, RetryPolicy
from node.withdraw import withdraw
from node.workflow import upload
from tests.conftest import InjectedRpcError
from tests.e2e.living import Deployment, log_entries, record_count, started

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with started(tmp_path_factory.mktemp("refresh")) as running:
        for organisation in running.organisations:
            running.upload(organisation)
        running.run()
        yield running


def edit_extract(path: Path, *, add: int = 0, change: int = 0, drop: int = 0) -> None:
    """Next month's extract: ``add`` new rows, ``change`` surnames, ``drop`` rows."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    id_column = fields[0]
    surname = next(f for f in fields if "surname" in f.lower() or "last" in f.lower())
    rows = rows[drop:]
    for row in rows[:change]:
        row[surname] = row[surname] + "son"
    for n in range(add):
        extra = dict(rows[-1 - n])
        extra[id_column] = f"NEW-{n}-{len(rows)}"
        rows.append(extra)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_a_refresh_sends_only_what_changed_and_keys_stay_put(deployment: Deployment) -> None:
    first = deployment.organisations[0]
    before = deployment.keys(first)

    edit_extract(deployment.data.csv_paths[first], add=2, change=3, drop=1)
    sent_before = deployment.records_sent()
    summary = upload(deployment.node(first), channel=deployment.channel(first))

    assert summary.refresh is not None
    assert (summary.refresh.added, summary.refresh.changed, summary.refresh.removed) == (2, 3, 1)
    assert summary.refresh.unchanged == len(before) - 3 - 1
    assert deployment.records_sent() - sent_before == 5  # only the added and the changed

    deployment.run()
    after = deployment.keys(first)
    assert len(after) == len(before) + 2 - 1
    stayed = [local for local in before if local in after]
    kept = sum(before[local] == after[local] for local in stayed)
    assert kept / len(stayed) >= 0.98
    report = (deployment.node(first).state_dir / "exclusion-report.txt").read_text()
    assert "left the extract:" in report and "changed (sent again, same token):" in report

    # The same extract again: nothing travels, and nothing changes.
    sent_before = deployment.records_sent()
    again = upload(deployment.node(first), channel=deployment.channel(first))
    assert again.refresh is not None
    assert (again.refresh.added, again.refresh.changed, again.refresh.removed) == (0, 0, 0)
    assert deployment.records_sent() == sent_before

    lines = trail(log_entries(deployment.database))
    assert any("2 added, 3 changed, 1 removed" in line for line in lines), lines[-5:]
    assert any("0 added, 0 changed, 0 removed" in line for line in lines)


def test_plan_previews_the_refresh_and_sends_nothing(deployment: Deployment) -> None:
    first = deployment.organisations[0]
    edit_extract(deployment.data.csv_paths[first], add=1, change=2, drop=1)
    sent_before, calls_before = deployment.records_sent(), len(deployment.wire.sent)

    shown = plan(deployment.node(first))

    assert shown.refresh is not None and not shown.refresh.unavailable
    counts = shown.refresh.counts
    assert (counts["added"], counts["changed"], counts["removed"]) == (1, 2, 1)
    assert shown.refresh.sent == 3
    text = render(shown)
    assert "Refresh preview" in text and "encodings that would travel: 3" in text
    assert (deployment.records_sent(), len(deployment.wire.sent)) == (sent_before, calls_before)
    # The upload then sends exactly what the preview said.
    summary = upload(deployment.node(first), channel=deployment.channel(first))
    assert summary.refresh is not None
    assert dataclasses.asdict(summary.refresh) == {
        key: counts[key] for key in dataclasses.asdict(summary.refresh)
    }
    assert deployment.records_sent() - sent_before == 3


def test_a_refresh_under_another_schema_or_epoch_is_refused_with_nothing_changed(
    deployment: Deployment,
) -> None:
    second = deployment.organisations[1]
    client = NodeClient(deployment.channel(second))
    project = client.project(PROJECT_ID)
    held = record_count(deployment.database)
    with pytest.raises(RequestRefused, match="encoding specification"):
        client.upload(project, "0" * 64, [], count=0, chunk_records=10, refresh=True)
    with pytest.raises(RequestRefused, match="epoch"):
        client.upload(
            dataclasses.replace(project, secret_epoch=project.secret_epoch + 1),
            project.encoding_sha256,
            [],
            count=0,
            chunk_records=10,
            refresh=True,
        )
    assert record_count(deployment.database) == held
    last = log_entries(deployment.database)[-1]
    assert last.action == "upload.rejected" and "nothing was changed" in last.details["reason"]


def test_consent_changed_or_withdrawn_between_refreshes(deployment: Deployment) -> None:
    second = deployment.organisations[1]
    deployment.keys(second)  # last month's keys, to tell changes from
    fields, rows = deployment.rows(second)
    id_column, dob = fields[0], fields[3]
    leaver, withdrawn = rows[5][id_column], rows[6][id_column]
    born = rows[5][dob]
    rows[5][dob] = "2001-01-01"  # now over five: the demo policy leaves the child out
    deployment.write_rows(second, fields, rows)
    withdraw(deployment.node(second), [withdrawn], channel=deployment.channel(second))

    left = deployment.upload(second)
    assert left.refresh is not None and left.refresh.removed == 1  # the withdrawn one went
    report = json.loads((deployment.node(second).state_dir / "exclusion-report.json").read_text())[
        "refresh"
    ]
    assert report["left_consent"] == 1 and report["removed"] == 1

    rows[5][dob] = born  # the date corrected: the child joins again, under a new token
    deployment.write_rows(second, fields, rows)
    back = deployment.upload(second)
    assert back.refresh is not None and back.refresh.added == 1
    report = json.loads((deployment.node(second).state_dir / "exclusion-report.json").read_text())[
        "refresh"
    ]
    assert report["rejoined"] == 1
    deployment.run()
    keys = deployment.keys(second)
    assert leaver in keys and withdrawn not in keys
    assert {c["local_id"]: c["change"] for c in deployment.changes(second)}[withdrawn] in (
        "withdrawn",
        "removed",
    )


class FailingChunks(grpc.UnaryUnaryClientInterceptor):
    """Every PutChunk after the first ``allowed`` fails as if the coordinator went away."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if details.method.endswith("PutChunk"):
            if self.allowed <= 0:
                raise InjectedRpcError()
            self.allowed -= 1
        return continuation(details, request)


def test_an_interrupted_refresh_resumes_where_it_stopped(deployment: Deployment) -> None:
    first = deployment.organisations[0]
    edit_extract(deployment.data.csv_paths[first], add=3, change=4)
    config = dataclasses.replace(deployment.node(first), chunk_records=2)
    broken = grpc.intercept_channel(deployment.channel(first), FailingChunks(allowed=1))
    held = record_count(deployment.database)
    with pytest.raises(RunError, match="interrupted"):
        upload_with_patience(config, broken)
    assert record_count(deployment.database) > held  # a chunk arrived but is not applied yet

    summary = upload(config, channel=deployment.channel(first))
    assert summary.refresh is not None
    assert (summary.refresh.added, summary.refresh.changed) == (3, 4)
    assert any("already held 1 chunk" in note for note in summary.notes)
    assert record_count(deployment.database) == held + 3


def test_a_refresh_interrupted_on_one_core_resumes_on_two_with_the_same_bytes(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coordinator takes a resumed chunk as already held only if its digest is the same,
    so a resume on two encoding workers of what one began shows the bytes are the same."""
    from node import encode_pool

    monkeypatch.setattr(encode_pool, "MIN_SLICE", 1)  # a 2-record chunk split over 2 workers
    first = deployment.organisations[0]
    edit_extract(deployment.data.csv_paths[first], add=3, change=4)
    one = dataclasses.replace(deployment.node(first), chunk_records=2, encode_workers=1)
    broken = grpc.intercept_channel(deployment.channel(first), FailingChunks(allowed=2))
    held = record_count(deployment.database)
    with pytest.raises(RunError, match="interrupted"):
        upload_with_patience(one, broken)

    two = dataclasses.replace(one, encode_workers=2)
    summary = upload(two, channel=deployment.channel(first))
    assert summary.refresh is not None
    assert (summary.refresh.added, summary.refresh.changed) == (3, 4)
    assert any("already held 2 chunk" in note for note in summary.notes)
    assert record_count(deployment.database) == held + 3


def upload_with_patience(config: NodeConfig, channel: grpc.Channel) -> None:
    """An upload that gives up at once on a transient failure (no backoff to wait through)."""
    from node import credentials

    original = credentials.client

    def impatient(config: NodeConfig, channel: grpc.Channel | None = None) -> NodeClient:
        client = original(config, channel)
        client.retry = RetryPolicy(attempts=1)
        return client

    credentials.client = impatient  # type: ignore[assignment]
    try:
        upload(config, channel=channel)
    finally:
        credentials.client = original  # type: ignore[assignment]
