"""The time-series view: children known to each combination of services, release by release.

One line per combination of services across releases, and below it bars of
children new since the previous release and children who left. A withheld
count is a gap in its line (and a hatched ``*`` bar), never a zero. Drawn
only from what the coordinator released (``hublink.clients.analyst.TimeSeries``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from matplotlib.figure import Figure

from hublink.clients.analyst import TimeSeries
from hublink.reports.charts import PALETTE, SUPPRESSED, WITHHELD, png_bytes, write_atomically

NEW = "new"
LEFT = "left"


def _label(label: str, names: Mapping[str, str]) -> str:
    return " + ".join(names.get(part, part) for part in label.split("+"))


def series_figure(series: TimeSeries, names: Mapping[str, str], title: str = "") -> Figure:
    """Lines per combination over releases, and new / left bars under them."""
    figure = Figure(figsize=(10, 6.5))
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1.4))
    x = list(range(len(series.releases)))
    ticks = [r.date[:10] or r.run_id[:8] for r in series.releases]
    labels = [
        c.label
        for c in (series.releases[0].cells if series.releases else ())
        if c.label not in (NEW, LEFT)
    ]
    for n, label in enumerate(labels):
        values = [r.value(label) for r in series.releases]
        if all(v is None or v == 0 for v in values):
            continue
        top.plot(
            x,
            [float("nan") if v is None else v for v in values],
            marker="o",
            color=PALETTE[n % len(PALETTE)],
            label=_label(label, names),
        )
    top.set_ylabel("children")
    top.set_title(title or "Children known to each combination of services, by release")
    top.legend(fontsize=8, loc="upper left", frameon=False)
    width = 0.38
    for offset, kind, colour in ((-width / 2, NEW, PALETTE[1]), (width / 2, LEFT, PALETTE[2])):
        for xi, release in zip(x, series.releases, strict=True):
            value = release.value(kind)
            if value is None:
                bottom.bar(xi + offset, 1, width, fill=False, hatch="//", edgecolor=WITHHELD)
                bottom.text(xi + offset, 1, SUPPRESSED, ha="center", va="bottom")
            else:
                bottom.bar(xi + offset, value, width, color=colour, label=kind if xi == 0 else None)
    bottom.set_ylabel("new / left")
    bottom.legend(fontsize=8, loc="upper left", frameon=False)
    bottom.set_xticks(x, ticks, rotation=30, fontsize=8)
    figure.text(0.01, 0.01, f"{SUPPRESSED} withheld. {series.rule}.", fontsize=7)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    return figure


def write_series_chart(
    path: Path, series: TimeSeries, names: Mapping[str, str] | None = None
) -> bytes:
    png = png_bytes(series_figure(series, names or {}))
    write_atomically(path, png)
    return png
