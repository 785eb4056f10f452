"""The console's charts as SVG drawn on the server: no script, text alternatives, safe colours.

Why SVG by hand rather than matplotlib's PNGs: the page's text stays text
(zoomable, read by screen readers, searchable), each chart carries a title and
a description a screen reader announces, and there is no image to go stale.
Colours are from the Okabe-Ito palette, which people with the common colour
vision deficiencies tell apart; and nothing is told by colour alone: withheld
counts are dashed outlines labelled "withheld", precision and recall differ
in line style and marker and are labelled at their ends. No style attributes
(the Content-Security-Policy forbids inline style): presentation attributes only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#d55e00",
    "#cc79a7",
    "#56b4e9",
)
TEXT = "#0b0c0c"
GRID = "#b1b4b6"
WITHHELD_STROKE = "#505a5f"


@dataclass(frozen=True)
class Bar:
    label: str
    value: int | None  # None: withheld


def frame(
    width: int, height: int, title: str, description: str, body: Sequence[str], key: str
) -> Markup:
    """The ``<svg>`` element a screen reader announces by its title and description."""
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'class="chart" role="img" aria-labelledby="{key}-t {key}-d">'
        f'<title id="{key}-t">{escape(title)}</title>'
        f'<desc id="{key}-d">{escape(description)}</desc>' + "".join(body) + "</svg>"
    )


def text_at(
    x: float,
    y: float,
    text: str,
    anchor: str = "start",
    size: int = 14,
    weight: str = "normal",
    fill: str = TEXT,
) -> str:
    """Escaped text: presentation attributes only, as the Content-Security-Policy requires."""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'font-weight="{weight}" fill="{fill}">{escape(text)}</text>'
    )


def solid_rect(x: float, y: float, w: float, h: float, fill: str = BLUE) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}"/>'


def withheld_rect(x: float, y: float, w: float, h: float) -> str:
    """A withheld count: a dashed outline, never a filled bar that could be read as a value."""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="none" '
        f'stroke="{WITHHELD_STROKE}" stroke-width="2" stroke-dasharray="4 3"/>'
    )


def upset(
    combinations: Sequence[tuple[tuple[str, ...], int | None]],
    datasets: Sequence[str],
    names: Mapping[str, str],
    *,
    title: str = "Children known to exactly these services",
    key: str = "upset",
) -> Markup:
    """An UpSet chart: one bar per combination, and under it a matrix of which services it joins.

    Bars are sorted largest first, withheld combinations last (dashed, labelled).
    """
    ordered = sorted(combinations, key=lambda c: (c[1] is None, -(c[1] or 0), c[0]))
    label_width = max([len(names.get(d, d)) for d in datasets] + [10]) * 7.5 + 20
    column = 54
    bar_height, row = 200, 26
    width = int(label_width + column * max(1, len(ordered)) + 20)
    height = int(bar_height + 40 + row * len(datasets) + 10)
    top = max([v for _, v in ordered if v is not None] + [1])
    body: list[str] = []
    base = bar_height + 10
    body.append(
        f'<line x1="{label_width:.1f}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="{GRID}"/>'
    )
    for i, (combo, value) in enumerate(ordered):
        x = label_width + i * column + 8
        w = column - 16
        if value is None:
            body.append(withheld_rect(x, base - 24, w, 24))
            body.append(text_at(x + w / 2, base - 30, "withheld", "middle", 11))
        else:
            h = (bar_height - 20) * value / top
            body.append(solid_rect(x, base - h, w, h))
            body.append(text_at(x + w / 2, base - h - 6, f"{value:,}", "middle", 12))
        ys = [base + 30 + row * datasets.index(d) for d in combo if d in datasets]
        if len(ys) > 1:
            body.append(
                f'<line x1="{x + w / 2:.1f}" y1="{min(ys):.1f}" x2="{x + w / 2:.1f}" '
                f'y2="{max(ys):.1f}" stroke="{TEXT}" stroke-width="3"/>'
            )
        for j, _ in enumerate(datasets):
            member = datasets[j] in combo
            body.append(
                f'<circle cx="{x + w / 2:.1f}" cy="{base + 30 + row * j:.1f}" r="7" '
                f'fill="{TEXT if member else "#ffffff"}" stroke="{TEXT if member else GRID}" '
                'stroke-width="1.5"/>'
            )
    for j, dataset in enumerate(datasets):
        body.append(
            text_at(label_width - 12, base + 35 + row * j, names.get(dataset, dataset), "end", 13)
        )
    released = [c for c in ordered if c[1] is not None]
    description = (
        f"{len(ordered)} combinations of services; "
        + "; ".join(
            f"{' and '.join(names.get(d, d) for d in combo)}: "
            + ("withheld" if value is None else f"{value:,}")
            for combo, value in ordered
        )
        + f". {len(ordered) - len(released)} withheld. The table below gives the same figures."
    )
    return frame(width, height, title, description, body, key)


def bars(items: Sequence[Bar], *, title: str, key: str, unit: str = "children") -> Markup:
    """Horizontal bars with their values written beside them; withheld ones dashed and labelled."""
    label_width = max([len(b.label) for b in items] + [8]) * 7.5 + 20
    row, width = 28, 720
    height = row * len(items) + 20
    top = max([b.value for b in items if b.value is not None] + [1])
    span = width - label_width - 90
    body = []
    for i, item in enumerate(items):
        y = 10 + i * row
        body.append(text_at(label_width - 10, y + 18, item.label, "end", 13))
        if item.value is None:
            body.append(withheld_rect(label_width, y + 4, 40, row - 10))
            body.append(text_at(label_width + 48, y + 18, "withheld", size=12))
        else:
            w = span * item.value / top
            body.append(solid_rect(label_width, y + 4, w, row - 10))
            body.append(text_at(label_width + w + 6, y + 18, f"{item.value:,}", size=12))
    description = "; ".join(
        f"{b.label}: {'withheld' if b.value is None else f'{b.value:,} {unit}'}" for b in items
    )
    return frame(width, height, title, description, body, key)


def histogram(
    bins: Sequence[tuple[float, int | None]],
    bin_width: float,
    used: float,
    estimated: float | None,
    *,
    key: str = "scores",
) -> Markup:
    """Counts of best scores per bin, withheld bins dashed, the thresholds as labelled lines."""
    width, height, left, bottom = 720, 300, 60, 250
    if not bins:
        return Markup("")
    lo = min(b for b, _ in bins)
    hi = max(b for b, _ in bins) + bin_width
    span = max(hi - lo, bin_width)
    top = max([c for _, c in bins if c is not None] + [1])

    def x_of(value: float) -> float:
        return left + (width - left - 20) * (value - lo) / span

    body = [
        f'<line x1="{left}" y1="{bottom}" x2="{width - 20}" y2="{bottom}" stroke="{TEXT}"/>',
        f'<line x1="{left}" y1="20" x2="{left}" y2="{bottom}" stroke="{TEXT}"/>',
        text_at(left - 6, 28, f"{top:,}", "end", 11),
        text_at(left - 6, bottom, "0", "end", 11),
        text_at(x_of(lo), bottom + 18, f"{lo:.2f}", "middle", 11),
        text_at(x_of(hi), bottom + 18, f"{hi:.2f}", "middle", 11),
        text_at((left + width) / 2, bottom + 40, "Best similarity score of a record", "middle", 12),
    ]
    bar_w = max(1.0, x_of(lo + bin_width) - x_of(lo) - 1)
    for lower, count in bins:
        x = x_of(lower)
        if count is None:
            body.append(withheld_rect(x, bottom - 8, bar_w, 8))
        else:
            h = (bottom - 30) * count / top
            body.append(solid_rect(x, bottom - h, bar_w, h))
    for value, label, dash, colour, y in (
        (used, f"threshold used {used:.3f}", "", VERMILLION, 16),
        (estimated, f"estimated {estimated or 0:.3f}", ' stroke-dasharray="6 4"', ORANGE, 32),
    ):
        if value is None or not lo <= value <= hi:
            continue
        body.append(
            f'<line x1="{x_of(value):.1f}" y1="20" x2="{x_of(value):.1f}" y2="{bottom}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
        )
        body.append(text_at(x_of(value) + 4, y + 8, label, size=11))
    withheld = sum(1 for _, c in bins if c is None)
    description = (
        f"{len(bins)} bins of width {bin_width:g} from {lo:.2f} to {hi:.2f}, the largest holding "
        f"{top:,} records; {withheld} bins withheld as too small; threshold used {used:.3f}."
    )
    return frame(
        width, height + 20, "Distribution of best similarity scores", description, body, key
    )


def curves(
    points: Sequence[tuple[float, float, float]], used: float, *, key: str = "curve"
) -> Markup:
    """Estimated precision (solid, circles) and recall (dashed, squares) against threshold."""
    if not points:
        return Markup("")
    width, height, left, bottom, right = 720, 300, 60, 250, 120
    xs = [p[0] for p in points]
    lo, hi = min(xs), max(xs)
    span = (hi - lo) or 1.0

    def at(x: float, y: float) -> tuple[float, float]:
        return left + (width - left - right) * (x - lo) / span, bottom - (bottom - 20) * y

    body = [
        f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" stroke="{TEXT}"/>',
        f'<line x1="{left}" y1="20" x2="{left}" y2="{bottom}" stroke="{TEXT}"/>',
        text_at(left - 6, 24, "1.0", "end", 11),
        text_at(left - 6, bottom, "0", "end", 11),
        text_at(left, bottom + 18, f"{lo:.2f}", "middle", 11),
        text_at(width - right, bottom + 18, f"{hi:.2f}", "middle", 11),
        text_at((left + width - right) / 2, bottom + 40, "Threshold", "middle", 12),
    ]
    step = max(1, len(points) // 12)
    for index, label, colour, dash, marker in (
        (1, "precision", BLUE, "", "circle"),
        (2, "recall", VERMILLION, ' stroke-dasharray="8 5"', "square"),
    ):
        coords = [at(p[0], p[index]) for p in points]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>'
        )
        for x, y in coords[::step]:
            if marker == "circle":
                body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
            else:
                body.append(
                    f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>'
                )
        end_x, end_y = coords[-1]
        body.append(
            text_at(
                end_x + 10, end_y + 4 + (12 if index == 2 else 0), label, size=13, weight="bold"
            )
        )
    ux, _ = at(used, 0)
    body.append(
        f'<line x1="{ux:.1f}" y1="20" x2="{ux:.1f}" y2="{bottom}" stroke="{TEXT}" '
        'stroke-width="1.5" stroke-dasharray="2 3"/>'
    )
    body.append(text_at(ux + 4, 34, f"used {used:.3f}", size=11))
    nearest = min(points, key=lambda p: abs(p[0] - used))
    description = (
        f"Estimated precision (solid line, circles) and recall (dashed line, squares) for "
        f"thresholds {lo:.2f} to {hi:.2f}. At the threshold used ({used:.3f}) precision is "
        f"about {nearest[1]:.3f} and recall about {nearest[2]:.3f}."
    )
    return frame(
        width,
        height + 20,
        "Estimated precision and recall against threshold",
        description,
        body,
        key,
    )
