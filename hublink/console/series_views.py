"""The analyst's "Over time" page: children per combination of services, release by release.

Every completed matching run is a release. The page asks the coordinator for
the protected series as the analyst (``AnalystClient.time_series``, audited
there), draws it (``series_svg``), lays the same figures out as a table, and
offers them as CSV exactly as released. Withheld counts stay withheld
everywhere: a gap in a line, a dashed column among the bars, the word in the
table, an empty flagged count in the CSV. Before the first run completes the
coordinator has no series to give, and the page says so instead of drawing
empty axes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hublink.audit.words import format_time
from hublink.clients import RequestRefused
from hublink.clients.analyst import TimeSeries
from hublink.console import series_svg, tables
from hublink.console.pages import Context, need
from hublink.identity import Role

NEW, LEFT = "new", "left"
ROW_WORDS = {NEW: "New since the previous release", LEFT: "Left since the previous release"}
NOT_YET = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND)
"""What the coordinator answers before a project's first completed run: "no data yet"."""


@dataclass(frozen=True)
class Row:
    """One row of the table: a combination of services (or new / left) across the releases."""

    label: str
    key: str
    values: tuple[int | None, ...]


@dataclass(frozen=True)
class View:
    """The series as the page shows it: the release headings and one row per figure."""

    ticks: list[series_svg.Tick]
    times: list[str]
    combinations: list[Row]
    changes: list[Row]

    @property
    def withheld(self) -> int:
        return sum(v is None for row in (*self.combinations, *self.changes) for v in row.values)


def view(series: TimeSeries, names: Mapping[str, str]) -> View:
    """Rows in the coordinator's order (singles, then pairs, ...), labelled with display names."""
    releases = series.releases
    dates = [r.date[:10] for r in releases]
    repeated = len(set(dates)) < len(dates)
    ticks = [
        series_svg.Tick(
            f"Release {n}", r.date[:10] or r.run_id[:12], r.date[11:16] + " UTC" if repeated else ""
        )
        for n, r in enumerate(releases, start=1)
    ]
    labels = [c.label for c in releases[0].cells] if releases else []

    def row(key: str, words: str) -> Row:
        return Row(words, key, tuple(r.value(key) for r in releases))

    return View(
        ticks,
        [format_time(r.date) for r in releases],
        [
            row(key, tables.label("datasets", key, names))
            for key in labels
            if key not in (NEW, LEFT)
        ],
        [row(key, ROW_WORDS[key]) for key in (NEW, LEFT) if key in labels],
    )


def withheld_sentence(count: int) -> str:
    """Why some figures show no value, in one sentence (empty if none was withheld)."""
    if not count:
        return ""
    return (
        f"{count} figure(s) marked withheld count too few children to release safely, so the "
        "coordinator did not release them; in the chart they are gaps in a line or dashed "
        "columns among the bars, never zero."
    )


def _not_yet(context: Context, project: str, exc: RequestRefused) -> Response:
    if exc.code in NOT_YET:
        return context.render("analyst_series.html", project=project, series=None)
    if exc.code is grpc.StatusCode.INVALID_ARGUMENT:
        said = str(exc).split(f"{exc.code.name}: ", 1)[-1]
        return context.render("analyst_series.html", project=project, series=None, refused=said)
    raise exc


def over_time(request: Request) -> Response:
    context = need(request, Role.ANALYST)
    project = context.project()
    if not project:
        return context.render("choose_project.html")
    try:
        series = context.profile.analyst().time_series(project)
    except RequestRefused as exc:
        return _not_yet(context, project, exc)
    shown = view(series, context.profile.names)
    changes = {r.key: r.values for r in shown.changes}
    unsent = (None,) * len(shown.ticks)  # the coordinator always sends both; never drawn as 0
    chart = series_svg.over_time(
        shown.ticks,
        [series_svg.Line(r.label, r.values) for r in shown.combinations],
        changes.get(NEW, unsent),
        changes.get(LEFT, unsent),
    )
    return context.render(
        "analyst_series.html",
        project=project,
        series=series,
        view=shown,
        chart=chart,
        withheld=withheld_sentence(shown.withheld),
    )


def _safe(name: str) -> str:
    """A project id fit for a file name in a header (ids come from the address bar)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:63]


def download_csv(request: Request) -> Response:
    context = need(request, Role.ANALYST)
    project = context.project()
    series = context.profile.analyst().time_series(project)
    return Response(
        tables.series_csv_bytes(series),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="series-{_safe(project)}.csv"'},
    )


ROUTES = [
    Route("/analyst/over-time", over_time),
    Route("/analyst/over-time.csv", download_csv),
]
