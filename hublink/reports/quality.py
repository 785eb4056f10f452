"""The linkage-quality report for a project's admin: one HTML page with embedded PNG charts.

It is drawn only from what the coordinator's GetQualityReport returns — a
histogram of best scores with small bins withheld, the fitted model's
precision/recall curve, per-organisation counts and per-attribute counts under
the project's disclosure rule — so it holds nothing about any record or pair.
Charts: the score distribution with the threshold used (and the estimated
one), estimated precision and recall against threshold, each organisation's
share of records linked elsewhere and of duplicate records, and the link rate
by value of each released attribute (area, age band). When the project weighs
per-field filters (field_scoring), a table of the duplicate model's own
estimates and weights follows. Same style and atomic writing as hublink.reports.charts.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from matplotlib.figure import Figure

from hublink.reports.charts import BAR, PALETTE, WITHHELD, png_bytes, write_atomically
from hublink.v1 import admin_pb2, runs_pb2


def figure_with_interval(
    point: float, low: float, high: float, sd: float, doubtful: bool = False
) -> str:
    """``0.994 (0.989 to 0.997)``; reports stored before intervals existed keep ``± sd``.
    ``doubtful`` (a caveat says not to rely on it): ``about 0.994 (0.989 to 0.997)``, so
    the point is not read as a measurement (three places still: two would round 0.996 to
    1.00, above its own interval)."""
    shown = f"about {point:.3f}" if doubtful else f"{point:.3f}"
    if low == 0.0 and high == 0.0:
        return f"{shown} ± {sd:.3f}"
    return f"{shown} ({low:.3f} to {high:.3f})"


def doubted(q: runs_pb2.RunQuality, kind: str = "") -> bool:
    """Whether an untrusted caveat covers the headline (``kind`` empty: any caveat not
    about pairs inside one organisation) or the within figures (``kind`` "within")."""
    for c in q.caveats:
        if not c.untrusted:
            continue
        if kind == "within" and not c.code.endswith("_across"):
            return True
        if not kind and not c.code.endswith("_within"):
            return True
    return False


def estimate_line(q: runs_pb2.RunQuality) -> str:
    """The estimate in one line, saying plainly when it cannot be trusted and why."""
    if not q.estimated:
        return f"no estimate ({q.not_estimated_because})"
    doubt = doubted(q)
    precision = figure_with_interval(
        q.precision, q.precision_low, q.precision_high, q.precision_sd, doubt
    )
    recall = figure_with_interval(q.recall, q.recall_low, q.recall_high, q.recall_sd, doubt)
    figures = f"estimated precision {precision}, recall {recall}"
    # a caveat that doubts only the figures inside one organisation is a note here: the
    # line's figures are the cross-organisation ones
    headline = [c for c in q.caveats if c.untrusted and not c.code.endswith("_within")]
    untrusted = [c.message for c in headline]
    others = [c.message for c in q.caveats if c not in headline]
    if untrusted:
        figures = f"NOT TO BE TRUSTED ({'; '.join(untrusted)}): {figures}"
    if others:
        figures += f" (note: {'; '.join(others)})"
    return figures


def score_figure(report: admin_pb2.QualityReport) -> Figure:
    """Histogram of best scores, withheld bins drawn as hatched outlines, threshold marked."""
    figure = Figure(figsize=(8, 4))
    axis = figure.add_subplot()
    width = report.bin_width or 0.01
    top = max((b.count for b in report.bins), default=1) or 1
    for b in report.bins:
        if b.suppressed:
            axis.bar(
                b.lower,
                top * 0.02,
                width=width,
                align="edge",
                fill=False,
                hatch="///",
                edgecolor=WITHHELD,
            )
        else:
            axis.bar(b.lower, b.count, width=width, align="edge", color=BAR)
    q = report.quality
    axis.axvline(report.threshold_used, color=PALETTE[2], label=f"used {report.threshold_used:.3f}")
    if q.estimated and abs(q.threshold_estimated - report.threshold_used) > 1e-9:
        axis.axvline(
            q.threshold_estimated,
            color=PALETTE[3],
            linestyle="--",
            label=f"estimated {q.threshold_estimated:.3f}",
        )
    axis.set_yscale("symlog", linthresh=10)
    axis.set_xlabel("Best cross-organisation similarity of a record (Dice)")
    axis.set_ylabel("Records (per other organisation)")
    axis.set_title("Score distribution")
    axis.legend(frameon=False, loc="upper center")
    figure.tight_layout()
    return figure


def curve_figure(report: admin_pb2.QualityReport) -> Figure:
    """Estimated precision and recall against threshold, from the fitted model."""
    figure = Figure(figsize=(8, 4))
    axis = figure.add_subplot()
    xs = [p.threshold for p in report.curve]
    axis.plot(xs, [p.precision for p in report.curve], color=PALETTE[0], label="precision")
    axis.plot(xs, [p.recall for p in report.curve], color=PALETTE[1], label="recall")
    axis.axvline(report.threshold_used, color=PALETTE[2], label="threshold used")
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("Threshold")
    axis.set_ylabel("Estimated (per record)")
    axis.set_title("Estimated precision and recall against threshold")
    axis.legend(frameon=False)
    figure.tight_layout()
    return figure


def rates_figure(report: admin_pb2.QualityReport) -> Figure:
    """Per organisation: share of records linked to another organisation, share duplicated."""
    figure = Figure(figsize=(8, 3.5))
    axis = figure.add_subplot()
    names = [d.organisation for d in report.datasets]
    linked = [d.linked / d.records if d.records else 0.0 for d in report.datasets]
    duplicated = [d.duplicates / d.records if d.records else 0.0 for d in report.datasets]
    positions = range(len(names))
    axis.bar([p - 0.2 for p in positions], linked, width=0.4, color=PALETTE[0], label="linked")
    axis.bar(
        [p + 0.2 for p in positions], duplicated, width=0.4, color=PALETTE[3], label="duplicate"
    )
    axis.set_xticks(list(positions), names)
    axis.set_ylim(0, 1)
    axis.set_ylabel("Share of the organisation's records")
    axis.set_title("Link and duplicate rates per organisation")
    axis.legend(frameon=False)
    figure.tight_layout()
    return figure


def _share(count: int, withheld: bool, records: int, records_withheld: bool) -> float | None:
    """A count as a share of its cell's records, or None when either was withheld or empty."""
    if withheld or records_withheld or not records:
        return None
    return count / records


def attribute_figure(report: admin_pb2.QualityReport, attribute: str) -> Figure:
    """Link rate by value of one released attribute, one bar per organisation in each group.

    Cells the project's disclosure rule withheld are drawn as hatched outlines
    at zero height, so a missing bar is never read as a link rate of zero.
    """
    cells = [a for a in report.attributes if a.attribute == attribute]
    values = sorted({a.value for a in cells})
    organisations = list(dict.fromkeys(a.organisation for a in cells))
    figure = Figure(figsize=(8, 3.8))
    axis = figure.add_subplot()
    width = 0.8 / max(1, len(organisations))
    labelled: set[str] = set()
    for k, organisation in enumerate(organisations):
        by_value = {a.value: a for a in cells if a.organisation == organisation}
        for i, value in enumerate(values):
            x = i - 0.4 + width * (k + 0.5)
            cell = by_value.get(value)
            share = (
                None
                if cell is None
                else _share(cell.linked, cell.linked_withheld, cell.records, cell.records_withheld)
            )
            if share is None:
                if cell is not None:
                    axis.bar(x, 0.02, width=width, fill=False, hatch="///", edgecolor=WITHHELD)
                continue
            axis.bar(
                x,
                share,
                width=width,
                color=PALETTE[k % len(PALETTE)],
                label=None if organisation in labelled else organisation,
            )
            labelled.add(organisation)
    axis.set_xticks(list(range(len(values))), values, rotation=30 if len(values) > 6 else 0)
    axis.set_ylim(0, 1)
    axis.set_xlabel(attribute.replace("_", " "))
    axis.set_ylabel("Share linked elsewhere")
    axis.set_title(f"Link rate by {attribute.replace('_', ' ')} (withheld cells hatched)")
    if labelled:
        axis.legend(frameon=False, fontsize="small")
    figure.tight_layout()
    return figure


def _attribute_table(report: admin_pb2.QualityReport) -> list[str]:
    """Protected counts and the rates they give, '*' where the rule withheld a count."""

    def shown(count: int, withheld: bool) -> str:
        return "*" if withheld else f"{count:,}"

    def rate(count: int, withheld: bool, a: admin_pb2.AttributeQuality) -> str:
        share = _share(count, withheld, a.records, a.records_withheld)
        return "—" if share is None else f"{share:.1%}"

    rows = [
        "<table><tr><th>Organisation</th><th>Attribute</th><th>Value</th><th>Records</th>"
        "<th>Linked elsewhere</th><th>Link rate</th><th>Duplicates</th><th>Duplicate rate</th></tr>"
    ]
    for a in report.attributes:
        rows.append(
            f"<tr><td>{html.escape(a.organisation)}</td><td>{html.escape(a.attribute)}</td>"
            f"<td>{html.escape(a.value)}</td>"
            f"<td class='n'>{shown(a.records, a.records_withheld)}</td>"
            f"<td class='n'>{shown(a.linked, a.linked_withheld)}</td>"
            f"<td class='n'>{rate(a.linked, a.linked_withheld, a)}</td>"
            f"<td class='n'>{shown(a.duplicates, a.duplicates_withheld)}</td>"
            f"<td class='n'>{rate(a.duplicates, a.duplicates_withheld, a)}</td></tr>"
        )
    rows.append("</table>")
    return rows


def _caveat_label(c: runs_pb2.Caveat) -> str:
    """Which figures a caveat withholds trust from: a within-only one leaves the headline."""
    if not c.untrusted:
        return "Read with care"
    if c.code.endswith("_within"):
        return "Do not rely on the duplicate figures"
    if c.code.endswith("_across"):
        return "Do not rely on the cross-organisation figures"
    return "Do not rely on the estimate"


def _summary_rows(report: admin_pb2.QualityReport) -> list[tuple[str, str]]:
    q = report.quality
    rows = [
        ("Run", report.run_id),
        ("Threshold used", f"{report.threshold_used:.3f}"),
        ("Threshold chosen from the data", "yes" if q.auto_threshold and q.estimated else "no"),
        ("Project's fixed threshold", f"{q.threshold_fixed:.3f}"),
    ]
    if q.estimated:
        rows += [
            ("Estimated threshold", f"{q.threshold_estimated:.3f} ± {q.threshold_sd:.3f}"),
            (
                "Non-matches held at runner-up scores",
                "yes (nearly every record found a match)" if q.non_matches_anchored else "no",
            ),
            (
                "Estimated precision" + (" (not to be relied on)" if doubted(q) else ""),
                figure_with_interval(
                    q.precision, q.precision_low, q.precision_high, q.precision_sd, doubted(q)
                ),
            ),
            (
                "Estimated recall" + (" (not to be relied on)" if doubted(q) else ""),
                figure_with_interval(
                    q.recall, q.recall_low, q.recall_high, q.recall_sd, doubted(q)
                ),
            ),
        ]
        rows += [(_caveat_label(c), c.message) for c in q.caveats]
    else:
        rows.append(("No estimate", q.not_estimated_because))
    rows += [
        ("Best scores the estimate rests on", f"{q.scores:,}"),
        ("Links within 0.02 of the threshold", f"{q.links_near_threshold:,}"),
        ("Records with more than one candidate", f"{q.records_with_several_candidates:,}"),
    ]
    return rows


def _level_label(index: int, levels: int) -> str:
    """Agreement levels by position: "best" first, "none" (below every cut) last."""
    if index == 0:
        return "best"
    return "none" if index == levels - 1 else str(index + 1)


def _anchor_kind(report: admin_pb2.QualityReport) -> str:
    """What the per-field model learnt one person's records from: links to other
    organisations, or (a project of one organisation) the organisation's own best pairs."""
    if len(report.datasets) == 1:
        return "within-organisation pairs, each the other's best"
    return "cross-organisation links"


#: Shown when a run weighed no per-field evidence, so the admin sees what it costs.
RECORD_ONLY = (
    "<h2>No per-field evidence (field_scoring = false)</h2>"
    "<p class='note'>This project decides every pair on the record CLK alone, at fixed Dice "
    "thresholds: duplicate referrals are not told apart from twins and siblings field by "
    "field. On hublink's generator that costs accuracy: with the salted record CLK at the "
    "default thresholds, cross-organisation F1 fell from about 0.98 with field scoring to "
    '0.78 (10% overlap) and within-organisation F1 by more (docs/benchmarks.md, "Private '
    'default"). Turn field_scoring on, the default, unless the organisations agreed not to '
    "send per-field filters.</p>"
)


def _duplicate_section(report: admin_pb2.QualityReport) -> list[str]:
    """The per-field duplicate model's aggregate figures; for a run without it (the project
    turned ``field_scoring`` off), what deciding on the record CLK alone costs."""
    if not report.quality.HasField("duplicates"):
        return [RECORD_ONLY]
    d = report.quality.duplicates
    doubtful = doubted(report.quality, "within")
    doubt = " (not to be relied on: see the caveats above)" if doubtful else ""
    parts = [
        "<h2>Duplicate referrals (per-field model)</h2>",
        "<p class='note'>Pairs of records within one organisation were weighed field by field "
        "(agreement of each field group's filter) by a model of one person's two records, "
        "relatives and strangers, fitted to this run's own pairs. The figures below are that "
        "model's estimates, made without the truth: precision of the pairs the run's groups "
        "hold inside one organisation, recall of those over every duplicate pair it expects, "
        "counting those that were never candidates, each with where it plausibly lies "
        "(reports from before these were estimated show figures over the weighed pairs "
        "only). Anchors are the cross-organisation pairs the model learnt from. Counts of "
        "pairs only; nothing here identifies a record.</p>",
        "<table>",
    ]
    rows = [
        ("Field groups weighed", ", ".join(d.groups)),
        ("Within-organisation pairs weighed", f"{d.weighed:,}"),
        ("Pairs linked (match probability at the cut-off)", f"{d.linked:,}"),
        (
            "Pairs left apart (each record links to a different person elsewhere)",
            f"{d.apart:,}",
        ),
        ("Estimated duplicate pairs", f"{d.estimated_duplicate_pairs:,.1f}"),
        (
            "Estimated precision of the duplicate pairs output" + doubt,
            _within_figure(d.precision, d.precision_low, d.precision_high, doubtful),
        ),
        (
            "Estimated recall of duplicate pairs" + doubt,
            _within_figure(d.recall, d.recall_low, d.recall_high, doubtful),
        ),
        (
            "Anchors",
            f"{d.match_anchors:,} {_anchor_kind(report)} (one person), "
            f"{d.relative_anchors:,} runner-up pairs (relatives)",
        ),
    ]
    for label, value in rows:
        parts.append(f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>")
    parts.append("</table>")
    if d.weights:
        levels = max(len(g.weights) for g in d.weights)
        parts.append(
            "<p class='note'>Weight of each agreement level, from the best (filters alike) to "
            "none (below every cut): log2 of how much likelier that agreement is for one "
            "person's two records than for strangers. Positive counts towards a duplicate.</p>"
        )
        parts.append(
            "<table><tr><th>Field group</th>"
            + "".join(f"<th>{_level_label(i, levels)}</th>" for i in range(levels))
            + "</tr>"
        )
        for g in d.weights:
            parts.append(
                f"<tr><td>{html.escape(g.group)}</td>"
                + "".join(f"<td class='n'>{w:+.1f}</td>" for w in g.weights)
                + "</tr>"
            )
        parts.append("</table>")
    return parts


def _within_figure(point: float, low: float, high: float, doubtful: bool = False) -> str:
    """A within-organisation figure with its interval; reports from before it was estimated
    on the groups have none, and say so rather than print a spread of zero."""
    if low == 0.0 and high == 0.0:
        return f"{point:.3f} (over the pairs weighed; no interval)"
    return figure_with_interval(point, low, high, 0.0, doubtful)


def html_page(report: admin_pb2.QualityReport) -> str:
    """A self-contained page: summary table, three charts, per-organisation table."""
    charts = [("Score distribution", score_figure(report))]
    if report.curve:
        charts.append(("Estimated precision and recall", curve_figure(report)))
    charts.append(("Link and duplicate rates", rates_figure(report)))
    for attribute in dict.fromkeys(a.attribute for a in report.attributes):
        charts.append(
            (f"Link rate by {attribute.replace('_', ' ')}", attribute_figure(report, attribute))
        )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>hublink linkage quality — {html.escape(report.project_id)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
        "td.n{text-align:right}p.note{font-size:.9em;color:#555}</style></head><body>",
        f"<h1>Linkage quality — {html.escape(report.project_id)}</h1>",
        "<p class='note'>Estimated by the coordinator from similarity scores alone, without "
        "the truth: a two-component mixture fitted to each record's best score. Precision and "
        "recall are per record (is a record's best partner a true match?), not per pair. "
        "Intervals span a bootstrap over records, other model fits and the run's own size; "
        "they do not count links the solver dropped. "
        "Histogram bins with few records are withheld (hatched), as the project's counts are. "
        "Nothing here identifies a record.</p>",
        "<table>",
    ]
    for label, value in _summary_rows(report):
        parts.append(f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>")
    parts.append("</table>")
    for title, figure in charts:
        encoded = base64.b64encode(png_bytes(figure)).decode()
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(
            f"<img alt='{html.escape(title)}' style='max-width:100%' "
            f"src='data:image/png;base64,{encoded}'>"
        )
    parts.append(
        "<table><tr><th>Organisation</th><th>Records</th><th>Linked elsewhere</th>"
        "<th>Duplicates</th></tr>"
    )
    for d in report.datasets:
        parts.append(
            f"<tr><td>{html.escape(d.organisation)}</td><td class='n'>{d.records:,}</td>"
            f"<td class='n'>{d.linked:,}</td><td class='n'>{d.duplicates:,}</td></tr>"
        )
    parts.append("</table>")
    parts.extend(_duplicate_section(report))
    if report.attributes:
        parts.append("<h2>By released attribute</h2>")
        parts.append(
            "<p class='note'>Each organisation's records by the value of each attribute the "
            "project releases, as the node sent it. Counts follow the project's disclosure "
            "rule: * is withheld (and a second cell where one alone could be worked out from "
            "the totals above), and rounded rules round them. A link rate much lower in one "
            "group than in others biases every count built on this linkage.</p>"
        )
        parts.extend(_attribute_table(report))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(path: Path, report: admin_pb2.QualityReport) -> None:
    """Write the report page through a temporary file and rename."""
    write_atomically(path, html_page(report).encode())
