"""The time series across releases as SVG: a line per combination of services, new and left as bars.

Why a withheld count is a gap: it has no value, so a line is broken there
rather than drawn through a guessed value or down to zero, which would read
as "no children". Under the lines, each release that withheld a count says
how many; a withheld "new" or "left" is a dashed column the height of the
panel with the word written in it, so it cannot be mistaken for a small bar.
Nothing is told by colour alone: every line has its own marker shape (and
some a dash pattern) shown in the legend, and "left" bars are hatched.

The first release has no release before it, so every child in it is "new";
that bar is left out (and labelled), or it would flatten every month after.
The page's table gives every figure, including that one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from hublink.console.svg import (
    BLUE,
    GREEN,
    GRID,
    ORANGE,
    PURPLE,
    SKY,
    TEXT,
    VERMILLION,
    WITHHELD_STROKE,
    frame,
    solid_rect,
    text_at,
)

COLOURS = (BLUE, VERMILLION, GREEN, TEXT, PURPLE, ORANGE, SKY)
"""Okabe-Ito, darkest first, so the commonest case (up to four lines) keeps the most contrast."""
MARKERS = ("circle", "square", "triangle", "diamond", "triangle-down", "plus", "cross")
DASHES = ("", "", "", "", "7 4", "7 4", "2 3")
NEW_FILL, LEFT_FILL = GREEN, VERMILLION
SECONDARY = "#505a5f"

WIDTH, LEFT, RIGHT = 760, 64, 24
LINES_TOP, LINES_BOTTOM = 20, 270
BARS_TOP, BARS_BOTTOM = 345, 455
ROW = 22
MIN_LABELLED_SLOT = 56
"""Below this width (pixels per release) bars carry no value labels: the table has them."""


@dataclass(frozen=True)
class Line:
    """One combination of services: its label in words and a count per release (None: withheld)."""

    label: str
    values: tuple[int | None, ...]


@dataclass(frozen=True)
class Tick:
    """A release as the x axis names it: "Release 3", its date, and its time if dates repeat."""

    name: str
    date: str
    time: str = ""


def segments(values: Sequence[int | None]) -> list[list[tuple[int, int]]]:
    """Runs of consecutive released values as (release index, value): a withheld value ends one.

    >>> segments([5, 6, None, 7])
    [[(0, 5), (1, 6)], [(3, 7)]]
    """
    runs: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for index, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((index, value))
    if current:
        runs.append(current)
    return runs


def nice_top(largest: int) -> tuple[int, int]:
    """An axis top at or above ``largest`` and a step of 1, 2 or 5 times a power of ten."""
    largest = max(largest, 1)
    magnitude = 10 ** max(0, math.floor(math.log10(largest)) - 1)
    for multiple in (1, 2, 5, 10, 20, 50, 100):
        step = multiple * magnitude
        if math.ceil(largest / step) <= 5:
            return step * math.ceil(largest / step), step
    return largest, largest  # pragma: no cover - the loop always returns


def marker(shape: str, x: float, y: float, colour: str) -> str:
    """A line's marker; shapes differ so lines are told apart without colour."""
    r = 5.0
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}"/>'
    if shape == "square":
        return solid_rect(x - r, y - r, 2 * r, 2 * r, colour)
    if shape in ("plus", "cross"):
        a, b = ((r + 1, 0.0), (0.0, r + 1)) if shape == "plus" else ((r, r), (r, -r))
        return (
            f'<path d="M{x - a[0]:.1f},{y - a[1]:.1f}L{x + a[0]:.1f},{y + a[1]:.1f}'
            f'M{x - b[0]:.1f},{y - b[1]:.1f}L{x + b[0]:.1f},{y + b[1]:.1f}" '
            f'stroke="{colour}" stroke-width="3" fill="none"/>'
        )
    r += 1
    points = {
        "triangle": ((0, -r), (r, r * 0.8), (-r, r * 0.8)),
        "triangle-down": ((0, r), (r, -r * 0.8), (-r, -r * 0.8)),
        "diamond": ((0, -r), (r, 0), (0, r), (-r, 0)),
    }[shape]
    return (
        '<polygon points="'
        + " ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in points)
        + f'" fill="{colour}"/>'
    )


def _style(n: int) -> tuple[str, str, str]:
    return COLOURS[n % len(COLOURS)], MARKERS[n % len(MARKERS)], DASHES[n % len(DASHES)]


def _dash(pattern: str) -> str:
    return f' stroke-dasharray="{pattern}"' if pattern else ""


def _hatch(key: str) -> str:
    return (
        f'<defs><pattern id="{key}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/>'
        f'<rect width="3" height="6" fill="{LEFT_FILL}"/></pattern></defs>'
    )


def _y_axis(top: float, bottom: float, maximum: int, step: int, *, zero_only: bool) -> list[str]:
    """Gridlines with their values; only the zero line when nothing above zero was released."""
    body = []
    for value in range(0, 1 if zero_only else maximum + 1, step):
        y = bottom - (bottom - top) * value / maximum
        body.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="{GRID if value else TEXT}" stroke-width="1"/>'
        )
        body.append(text_at(LEFT - 8, y + 4, f"{value:,}", "end", 11))
    return body


def dodges(lines: Sequence[Line], spread: float) -> list[list[float]]:
    """Sideways offsets, per line and release, that set equal values' markers side by side.

    Lines that share a value at a release would hide each other's markers; moving
    them apart sideways (never up or down, which would change the value read)
    keeps every marker in sight.
    """
    releases = len(lines[0].values) if lines else 0
    offsets = [[0.0] * releases for _ in lines]
    for i in range(releases):
        sharing: dict[int, list[int]] = {}
        for n, line in enumerate(lines):
            value = line.values[i]
            if value is not None:
                sharing.setdefault(value, []).append(n)
        for members in sharing.values():
            for rank, n in enumerate(members):
                offsets[n][i] = (rank - (len(members) - 1) / 2) * spread
    return offsets


def _lines(lines: Sequence[Line], x_of: Sequence[float], slot: float) -> list[str]:
    largest = max((v for line in lines for v in line.values if v is not None), default=0)
    maximum, step = nice_top(largest)
    body = _y_axis(LINES_TOP, LINES_BOTTOM, maximum, step, zero_only=largest == 0)

    def y_of(value: int) -> float:
        return LINES_BOTTOM - (LINES_BOTTOM - LINES_TOP) * value / maximum

    offsets = dodges(lines, min(11.0, slot * 0.5 / max(1, len(lines))))
    for n, line in enumerate(lines):
        colour, shape, dash = _style(n)
        parts = [f'<g data-series="{escape(line.label)}">']
        for run in segments(line.values):
            xs = [x_of[i] + offsets[n][i] for i, _ in run]
            if len(run) > 1:
                path = " ".join(f"{x:.1f},{y_of(v):.1f}" for x, (_, v) in zip(xs, run, strict=True))
                parts.append(
                    f'<polyline points="{path}" fill="none" stroke="{colour}" '
                    f'stroke-width="2.5"{_dash(dash)}/>'
                )
            parts.extend(
                marker(shape, x, y_of(v), colour) for x, (_, v) in zip(xs, run, strict=True)
            )
        body.append("".join(parts) + "</g>")
    for i, x in enumerate(x_of):
        withheld = sum(1 for line in lines if line.values[i] is None)
        if withheld:
            words = f"{withheld} withheld" if slot >= MIN_LABELLED_SLOT else str(withheld)
            body.append(text_at(x, LINES_BOTTOM + 15, words, "middle", 11, fill=SECONDARY))
    return body


def _bars(
    new: Sequence[int | None],
    left: Sequence[int | None],
    x_of: Sequence[float],
    slot: float,
    key: str,
) -> list[str]:
    heading = text_at(
        LEFT, BARS_TOP - 22, "New and left since the previous release", size=13, weight="bold"
    )
    if len(x_of) < 2:
        words = "From the second release on: this one has no release before it to compare with."
        return [heading, text_at(LEFT, BARS_TOP + 20, words, size=12, fill=SECONDARY)]
    later = [v for v in (*new[1:], *left[1:]) if v is not None]
    maximum, step = nice_top(max(later, default=0))
    body = [
        heading,
        solid_rect(LEFT + 300, BARS_TOP - 33, 14, 14, NEW_FILL),
        text_at(LEFT + 320, BARS_TOP - 22, "new", size=12),
        f'<rect x="{LEFT + 360}" y="{BARS_TOP - 33}" width="14" height="14" '
        f'fill="url(#{key}-hatch)" stroke="{LEFT_FILL}"/>',
        text_at(LEFT + 380, BARS_TOP - 22, "left (hatched)", size=12),
        *_y_axis(BARS_TOP, BARS_BOTTOM, maximum, step, zero_only=max(later, default=0) == 0),
    ]
    width = min(30.0, slot * 0.32)
    labelled = slot >= MIN_LABELLED_SLOT
    for i, x in enumerate(x_of):
        if i == 0:
            if labelled:
                body.append(
                    text_at(x, BARS_BOTTOM - 8, "first release", "middle", 11, fill=SECONDARY)
                )
            continue
        for value, bar_x, kind in ((new[i], x - width - 1, "new"), (left[i], x + 1, "left")):
            fill, edge = (
                (NEW_FILL, NEW_FILL) if kind == "new" else (f"url(#{key}-hatch)", LEFT_FILL)
            )
            centre = bar_x + width / 2
            if value is None:
                body.append(
                    f'<rect x="{bar_x:.1f}" y="{BARS_TOP}" width="{width:.1f}" '
                    f'height="{BARS_BOTTOM - BARS_TOP}" fill="none" stroke="{WITHHELD_STROKE}" '
                    f'stroke-width="1.5" stroke-dasharray="4 3" data-withheld="{kind}"/>'
                )
                body.append(
                    f'<text x="{centre:.1f}" y="{BARS_BOTTOM - 6}" font-size="11" '
                    f'fill="{SECONDARY}" transform="rotate(-90 {centre:.1f} {BARS_BOTTOM - 6})" '
                    f'dominant-baseline="middle">withheld</text>'
                )
                continue
            height = (BARS_BOTTOM - BARS_TOP) * value / maximum
            drawn = max(height, 1.5)  # a zero is a hairline on the axis, still a released value
            body.append(
                f'<rect x="{bar_x:.1f}" y="{BARS_BOTTOM - drawn:.1f}" width="{width:.1f}" '
                f'height="{drawn:.1f}" fill="{fill}" stroke="{edge}" '
                f'data-{kind}="{value}"/>'
            )
            if labelled:
                body.append(text_at(centre, BARS_BOTTOM - height - 4, f"{value:,}", "middle", 11))
    return body


def _ticks(ticks: Sequence[Tick], x_of: Sequence[float], slot: float) -> list[str]:
    every = max(1, math.ceil(90 / slot))
    body = []
    for i, (tick, x) in enumerate(zip(ticks, x_of, strict=True)):
        if i % every and i != len(ticks) - 1:
            continue
        for row, words in enumerate((tick.name, tick.date, tick.time)):
            if words:
                body.append(text_at(x, BARS_BOTTOM + 18 + 15 * row, words, "middle", 11))
    return body


def _legend(lines: Sequence[Line], top: float) -> list[str]:
    body = [
        text_at(
            LEFT, top, "Lines: children known to exactly these services", size=13, weight="bold"
        )
    ]
    for n, line in enumerate(lines):
        colour, shape, dash = _style(n)
        y = top + ROW * (n + 1)
        if any(v is not None for v in line.values):
            body.append(
                f'<line x1="{LEFT}" y1="{y - 4}" x2="{LEFT + 36}" y2="{y - 4}" stroke="{colour}" '
                f'stroke-width="2.5"{_dash(dash)}/>'
            )
            body.append(marker(shape, LEFT + 18, y - 4, colour))
            words = line.label
        else:
            words = f"{line.label} (withheld at every release, so no line)"
        body.append(text_at(LEFT + 46, y, words, size=12))
    return body


def describe(
    ticks: Sequence[Tick],
    lines: Sequence[Line],
    new: Sequence[int | None],
    left: Sequence[int | None],
) -> str:
    """What the chart shows, in words, for a screen reader: each line's first and latest value."""

    def at(values: Sequence[int | None], i: int) -> str:
        return "withheld" if values[i] is None else f"{values[i]:,}"

    def gaps(values: Sequence[int | None]) -> str:
        missing = [ticks[i].name.lower() for i, v in enumerate(values) if v is None]
        return f" (withheld at {', '.join(missing)})" if missing else ""

    span = f"{ticks[0].date} to {ticks[-1].date}" if len(ticks) > 1 else ticks[0].date
    parts = [f"Children known to each combination of services at {len(ticks)} release(s), {span}."]
    for line in lines:
        parts.append(
            f"{line.label}: {at(line.values, 0)} at the first release, "
            f"{at(line.values, -1)} at the latest{gaps(line.values)}."
        )
    if len(ticks) > 1:
        parts.append(
            "New since the previous release: "
            + ", ".join(at(new, i) for i in range(1, len(ticks)))
            + "; left: "
            + ", ".join(at(left, i) for i in range(1, len(ticks)))
            + "."
        )
    parts.append("Withheld counts are gaps, never zero. The table below gives every figure.")
    return " ".join(parts)


def over_time(
    ticks: Sequence[Tick],
    lines: Sequence[Line],
    new: Sequence[int | None],
    left: Sequence[int | None],
    *,
    title: str = "Children known to each combination of services, release by release",
    key: str = "series",
) -> Markup:
    """The chart for ``len(ticks)`` releases (oldest first); every sequence has one entry each."""
    if not ticks:
        return Markup("")
    slot = (WIDTH - LEFT - RIGHT) / len(ticks)
    x_of = [LEFT + slot * (i + 0.5) for i in range(len(ticks))]
    legend_top = BARS_BOTTOM + 18 + 15 * 3 + 20
    body = [
        _hatch(key),
        *_lines(lines, x_of, slot),
        *_bars(new, left, x_of, slot, key),
        *_ticks(ticks, x_of, slot),
        *_legend(lines, legend_top),
    ]
    height = int(legend_top + ROW * len(lines) + 12)
    return frame(WIDTH, height, title, describe(ticks, lines, new, left), body, key)
