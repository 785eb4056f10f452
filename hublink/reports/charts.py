"""Charts and an HTML report of protected counts, readable in a board paper.

An overlap table (datasets only) is drawn UpSet-style: one bar per exact
combination of services, with a dot matrix underneath saying which services
the bar's children are known to, so seven combinations of three services
read more easily than a Venn diagram of rounded numbers. A breakdown is drawn
as bars (grouped by its second dimension, if any). Withheld cells are drawn
as an empty hatched outline labelled ``*`` so a reader never mistakes them
for zero. Only what the coordinator released is drawn: the charts are built
from the analyst's ``Counts``, never from exact values.

matplotlib runs with the Agg backend (no display needed); files are written
through a temporary file and renamed, so a failed run leaves nothing half
written.
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from hublink.clients.analyst import CountCell, Counts

SUPPRESSED = "*"
BAR = "#1d5b79"
WITHHELD = "#9aa5ad"
PALETTE = ("#1d5b79", "#468b97", "#ef6262", "#f3aa60", "#7a9e7e", "#8e7dbe", "#c07f5f")
DATASETS = "datasets"


def _label(dimension: str, value: str, names: Mapping[str, str]) -> str:
    if dimension == DATASETS:
        return " + ".join(names.get(d, d) for d in value.split("+"))
    return value


def _title_of(dimension: str) -> str:
    return {"age_band": "Age band (years)", "area": "Local authority", DATASETS: "Services"}.get(
        dimension, dimension.replace("_", " ").capitalize()
    )


def _values(cells: Sequence[CountCell]) -> list[float]:
    return [0.0 if c.value is None else float(c.value) for c in cells]


def _mark_withheld(axis: Any, x: float, width: float, height: float) -> None:
    axis.bar(x, height, width, fill=False, hatch="///", edgecolor=WITHHELD, linewidth=1.0, zorder=2)
    axis.text(
        x, height, SUPPRESSED, ha="center", va="bottom", fontsize=14, color="#444", weight="bold"
    )


def overlap_figure(counts: Counts, names: Mapping[str, str], title: str = "") -> Figure:
    """An UpSet-style chart of an overlap table: bars per combination over a membership matrix."""
    cells = [c for c in counts.inner if c.datasets]
    datasets: list[str] = []
    for cell in cells:
        for d in cell.datasets:
            if d not in datasets:
                datasets.append(d)
    order = sorted(
        range(len(cells)), key=lambda i: (-(cells[i].value or 0), len(cells[i].datasets))
    )
    cells = [cells[i] for i in order]
    heights = _values(cells)
    top = max(heights or [1.0]) or 1.0
    figure, (bars, matrix) = plt.subplots(
        2,
        1,
        figsize=(10, 6.2),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1.3], "hspace": 0.05},
    )
    xs = list(range(len(cells)))
    for x, cell, height in zip(xs, cells, heights, strict=True):
        if cell.suppressed:
            _mark_withheld(bars, x, 0.7, top * 0.04)
        else:
            bars.bar(x, height, 0.7, color=BAR, zorder=2)
            bars.text(x, height, f"{int(height):,}", ha="center", va="bottom", fontsize=11)
    bars.set_ylim(0, top * 1.15)
    bars.set_ylabel("Children", fontsize=12)
    bars.spines[["top", "right"]].set_visible(False)
    bars.grid(axis="y", color="#e5e5e5", zorder=0)
    bars.set_title(title or "Children known to exactly these services", fontsize=14, loc="left")
    for row, dataset in enumerate(datasets):
        y = len(datasets) - 1 - row
        matrix.scatter(xs, [y] * len(xs), s=90, color="#dddddd", zorder=1)
        members = [x for x, cell in zip(xs, cells, strict=True) if dataset in cell.datasets]
        matrix.scatter(members, [y] * len(members), s=90, color="#222222", zorder=2)
    for x, cell in zip(xs, cells, strict=True):
        ys = [len(datasets) - 1 - datasets.index(d) for d in cell.datasets]
        if len(ys) > 1:
            matrix.plot([x, x], [min(ys), max(ys)], color="#222222", linewidth=2, zorder=1)
    matrix.set_yticks(range(len(datasets)))
    matrix.set_yticklabels([names.get(d, d) for d in reversed(datasets)], fontsize=11)
    matrix.set_ylim(-0.6, len(datasets) - 0.4)
    matrix.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        matrix.spines[side].set_visible(False)
    matrix.tick_params(axis="y", length=0)
    figure.text(0.01, 0.01, _caption(counts), fontsize=9, color="#444", wrap=True)
    figure.subplots_adjust(left=0.24, right=0.98, top=0.93, bottom=0.1)
    return figure


def breakdown_figure(counts: Counts, names: Mapping[str, str], title: str = "") -> Figure:
    """Bars of a breakdown: by its first dimension, grouped by its second (others totalled)."""
    dims = counts.dimensions
    if not dims:
        raise ValueError("a table with no dimensions has nothing to chart")
    shown = dims[:2]
    cells = [
        c
        for c in counts.cells
        if set(c.totalled) == set(dims[2:]) or (not dims[2:] and not c.totalled)
    ]
    xs_values = _ordered(c.coordinate(shown[0]) for c in cells)
    groups = _ordered(c.coordinate(shown[1]) for c in cells) if len(shown) > 1 else [""]
    if len(shown) > 1:
        # A group released as zero everywhere (often "unknown") only takes up room.
        groups = [
            g for g in groups if any(c.coordinate(shown[1]) == g and c.value != 0 for c in cells)
        ] or groups
    lookup = {
        (c.coordinate(shown[0]), c.coordinate(shown[1]) if len(shown) > 1 else ""): c for c in cells
    }
    width = 0.8 / len(groups)
    figure, axis = plt.subplots(figsize=(11, 5.8))
    top = max([c.value or 0 for c in cells] + [1])
    for g, group in enumerate(groups):
        colour = PALETTE[g % len(PALETTE)]
        for x, value in enumerate(xs_values):
            cell = lookup.get((value, group))
            if cell is None:
                continue
            at = x - 0.4 + width * (g + 0.5)
            if cell.suppressed:
                _mark_withheld(axis, at, width * 0.9, top * 0.03)
            else:
                axis.bar(at, cell.value or 0, width * 0.9, color=colour, zorder=2)
    axis.set_xticks(range(len(xs_values)))
    axis.set_xticklabels(
        [_label(shown[0], v, names) for v in xs_values],
        rotation=20 if len(xs_values) > 5 else 0,
        ha="right" if len(xs_values) > 5 else "center",
        fontsize=11,
    )
    axis.set_xlabel(_title_of(shown[0]), fontsize=12)
    axis.set_ylabel("Children", fontsize=12)
    axis.spines[["top", "right"]].set_visible(False)
    axis.grid(axis="y", color="#e5e5e5", zorder=0)
    axis.set_ylim(0, top * 1.12)
    handles = []
    if len(shown) > 1:
        handles = [
            Patch(color=PALETTE[g % len(PALETTE)], label=_label(shown[1], group, names))
            for g, group in enumerate(groups)
        ]
    handles.append(Patch(fill=False, hatch="///", edgecolor=WITHHELD, label="* withheld"))
    axis.legend(
        handles=handles,
        title=_title_of(shown[1]) if len(shown) > 1 else None,
        fontsize=10,
        title_fontsize=10,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    axis.set_title(
        title or f"Children by {' and '.join(_title_of(d).lower() for d in shown)}",
        fontsize=14,
        loc="left",
    )
    figure.text(0.01, 0.01, _caption(counts), fontsize=9, color="#444", wrap=True)
    figure.subplots_adjust(left=0.08, right=0.84, top=0.92, bottom=0.2)
    return figure


def _ordered(values: Any) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value is not None and value not in seen:
            seen.append(value)
    return seen


def _caption(counts: Counts) -> str:
    text = f"{SUPPRESSED} withheld. {counts.rule}. Run {counts.run_id[:12]}."
    return "\n".join(textwrap.wrap(text, 150))


def figure_for(counts: Counts, names: Mapping[str, str], title: str = "") -> Figure:
    """The chart that suits the table: UpSet for an overlap, bars for anything else."""
    if counts.dimensions == (DATASETS,):
        return overlap_figure(counts, names, title)
    return breakdown_figure(counts, names, title)


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (150 dpi); the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150)
    plt.close(figure)
    return buffer.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_chart(
    path: Path, counts: Counts, names: Mapping[str, str] | None = None, title: str = ""
) -> bytes:
    """Draw the table's chart into a PNG file; returns its bytes (for the HTML report)."""
    png = png_bytes(figure_for(counts, names or {}, title))
    write_atomically(path, png)
    return png


def html_report(
    tables: Sequence[tuple[str, Counts, bytes]], names: Mapping[str, str] | None = None
) -> str:
    """A self-contained HTML page: each table's chart (embedded) and its released cells."""
    names = names or {}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>hublink counts</title><style>body{font-family:sans-serif;max-width:60em;"
        "margin:2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:.3em .6em}td.n{text-align:right}caption{caption-side:bottom;text-align:left;"
        "font-size:.85em;color:#555}</style></head><body>",
    ]
    for title, counts, png in tables:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(
            f"<p>{html.escape(counts.query)} — project {html.escape(counts.project_id)}</p>"
        )
        encoded = base64.b64encode(png).decode()
        parts.append(
            f"<img alt='{html.escape(title)}' style='max-width:100%' "
            f"src='data:image/png;base64,{encoded}'>"
        )
        parts.append("<table><tr>")
        for dimension in counts.dimensions:
            parts.append(f"<th>{html.escape(_title_of(dimension))}</th>")
        parts.append("<th>Children</th></tr>")
        for cell in counts.cells:
            parts.append("<tr>")
            for dimension in counts.dimensions:
                value = cell.coordinate(dimension)
                text = "Total" if value is None else _label(dimension, value, names)
                parts.append(f"<td>{html.escape(text)}</td>")
            shown = SUPPRESSED if cell.value is None else f"{cell.value:,}"
            parts.append(f"<td class='n'>{shown}</td></tr>")
        parts.append(
            f"<caption>{SUPPRESSED} = withheld. {html.escape(counts.rule)}</caption></table>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
