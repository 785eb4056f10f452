"""The per-field duplicate model's figures on their way to the admin: core → protobuf → page."""

from __future__ import annotations

import dataclasses
import re

from coordinator.core import one_organisation
from coordinator.core.quality import DatasetRates, DuplicateEstimate, RunQuality
from coordinator.rpc import convert
from hublink.reports.quality import html_page
from hublink.v1 import admin_pb2, runs_pb2

DUPLICATES = DuplicateEstimate(
    groups=("given", "family", "birth"),
    weighed=412,
    linked=37,
    estimated_duplicate_pairs=35.25,
    precision=0.9375,
    recall=0.875,
    match_anchors=1210,
    relative_anchors=388,
    apart=3,
    weights=(
        ("given", (6.5, 4.25, 1.5, -0.75, -3.0)),
        ("family", (5.0, 3.5, 0.25, -1.25, -4.5)),
        ("birth", (7.75, 2.0, 0.5, -2.5, -6.25)),
    ),
)

QUALITY = RunQuality(
    auto=False,
    threshold_used=0.85,
    threshold_fixed=0.85,
    fitted=False,
    reason="too few candidate scores to estimate (3 < 50)",
    threshold_estimated=0.0,
    threshold_sd=0.0,
    precision=0.0,
    precision_sd=0.0,
    recall=0.0,
    recall_sd=0.0,
    scores=3,
    near_threshold=0,
    several_candidates=0,
    histogram=((0.8, 0), (0.81, 12)),
    datasets=(DatasetRates("health-visiting", 100, 40, 9), DatasetRates("childcare", 60, 40, 2)),
    duplicates=DUPLICATES,
)


def back(message: runs_pb2.DuplicateModel) -> DuplicateEstimate:
    return DuplicateEstimate(
        groups=tuple(message.groups),
        weighed=message.weighed,
        linked=message.linked,
        estimated_duplicate_pairs=message.estimated_duplicate_pairs,
        precision=message.precision,
        recall=message.recall,
        match_anchors=message.match_anchors,
        relative_anchors=message.relative_anchors,
        weights=tuple((g.group, tuple(g.weights)) for g in message.weights),
        apart=message.apart,
        precision_interval=(message.precision_low, message.precision_high),
        recall_interval=(message.recall_low, message.recall_high),
    )


def page(q: RunQuality) -> str:
    return html_page(convert.quality_report("p", "run-1", q, ()))


def test_the_duplicate_estimate_survives_the_wire() -> None:
    sent = convert.run_quality(QUALITY).SerializeToString()
    received = runs_pb2.RunQuality.FromString(sent)
    assert received.HasField("duplicates")
    assert back(received.duplicates) == DUPLICATES
    # The quality report carries the same message.
    report = admin_pb2.QualityReport.FromString(
        convert.quality_report("p", "run-1", QUALITY, ()).SerializeToString()
    )
    assert back(report.quality.duplicates) == DUPLICATES


def test_the_within_intervals_survive_the_wire_and_reach_the_page() -> None:
    estimated = dataclasses.replace(
        DUPLICATES, precision_interval=(0.875, 0.96875), recall_interval=(0.8125, 0.9375)
    )
    q = dataclasses.replace(QUALITY, duplicates=estimated)
    received = runs_pb2.RunQuality.FromString(convert.run_quality(q).SerializeToString())
    assert back(received.duplicates) == estimated
    text = page(q)
    assert "<td>0.938 (0.875 to 0.969)</td>" in text
    assert "<td>0.875 (0.812 to 0.938)</td>" in text
    assert RunQuality.from_json(q.to_json()).duplicates == estimated


def test_without_field_scoring_the_message_has_no_duplicates() -> None:
    plain = dataclasses.replace(QUALITY, duplicates=None)
    assert not convert.run_quality(plain).HasField("duplicates")


def test_the_page_shows_the_models_figures_and_weights() -> None:
    text = page(QUALITY)
    assert "<h2>Duplicate referrals (per-field model)</h2>" in text
    assert "made without the truth" in text
    assert "<th>Field groups weighed</th><td>given, family, birth</td>" in text
    assert "<th>Within-organisation pairs weighed</th><td>412</td>" in text
    assert "<th>Pairs linked (match probability at the cut-off)</th><td>37</td>" in text
    assert "<th>Pairs left apart (each record links to a different person elsewhere)</th>" in text
    assert "elsewhere)</th><td>3</td>" in text
    assert "<th>Estimated duplicate pairs</th><td>35.2</td>" in text
    # A report stored before the figures were estimated on the groups has no interval, and
    # says so instead of printing a spread of zero.
    assert (
        "<th>Estimated precision of the duplicate pairs output</th>"
        "<td>0.938 (over the pairs weighed; no interval)</td>"
    ) in text
    assert "<th>Estimated recall of duplicate pairs</th><td>0.875 (over the pairs" in text
    assert "± 0.000" not in text
    assert "1,210 cross-organisation links (one person), 388 runner-up pairs" in text
    header = "<tr><th>Field group</th><th>best</th><th>2</th><th>3</th><th>4</th><th>none</th>"
    assert header in text
    assert (
        "<tr><td>birth</td><td class='n'>+7.8</td><td class='n'>+2.0</td>"
        "<td class='n'>+0.5</td><td class='n'>-2.5</td><td class='n'>-6.2</td></tr>"
    ) in text


def test_a_one_organisation_run_says_what_the_model_learnt_from_and_why_no_estimate() -> None:
    alone = dataclasses.replace(
        QUALITY, reason=one_organisation.NOTE, datasets=QUALITY.datasets[:1]
    )
    text = page(alone)
    assert "1,210 within-organisation pairs, each the other&#x27;s best (one person)" in text
    assert "cross-organisation links" not in text
    assert "<th>No estimate</th><td>one organisation: there are no cross-organisation" in text


def test_the_weights_table_needs_weights() -> None:
    text = page(
        dataclasses.replace(QUALITY, duplicates=dataclasses.replace(DUPLICATES, weights=()))
    )
    assert "Estimated duplicate pairs" in text
    assert "<th>Field group</th>" not in text


def test_without_the_model_the_page_says_what_record_only_linkage_costs() -> None:
    text = page(dataclasses.replace(QUALITY, duplicates=None))
    assert "Duplicate referrals" not in text
    assert "Estimated duplicate pairs" not in text
    assert "No per-field evidence (field_scoring = false)" in text
    assert "cross-organisation F1 fell" in text and "docs/benchmarks.md" in text
    # The rest of the page is still there.
    assert re.search(r"<td>health-visiting</td><td class='n'>100</td>", text)
