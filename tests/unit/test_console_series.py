"""The console's "Over time" page without a browser: the SVG builder, the table, the CSV, and
the page over real HTTP in front of a coordinator stand-in (the browser tests try it again in
Chromium against a real coordinator).
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hublink.clients import RequestRefused
from hublink.clients.analyst import ReleaseCounts, SeriesCell, TimeSeries
from hublink.config import ClientConfig, TlsSection
from hublink.console import ConsoleServer, Profile, Settings
from hublink.console.series_svg import (
    BARS_BOTTOM,
    BARS_TOP,
    LINES_BOTTOM,
    LINES_TOP,
    Line,
    Tick,
    over_time,
    segments,
)
from hublink.console.series_views import view, withheld_sentence
from hublink.console.tables import series_csv_bytes
from hublink.identity import Identity, Role
from tests.conftest import InjectedRpcError
from tests.unit.test_console import fetch, signed_in

SVG = "{http://www.w3.org/2000/svg}"
TICKS = [Tick(f"Release {n}", f"2026-0{n}-01") for n in range(1, 5)]


def parsed(chart: object) -> ElementTree.Element:
    return ElementTree.fromstring(str(chart))


def series_group(root: ElementTree.Element, label: str) -> ElementTree.Element:
    group = root.find(f".//{SVG}g[@data-series='{label}']")
    assert group is not None, label
    return group


def marker_points(group: ElementTree.Element) -> list[tuple[float, float]]:
    """Centres of a line's markers (its circles: the first line's marker is a circle)."""
    return [(float(c.get("cx", "")), float(c.get("cy", ""))) for c in group.iter(f"{SVG}circle")]


# --- the SVG builder --------------------------------------------------------------------------


def test_a_withheld_value_ends_a_segment() -> None:
    assert segments([5, 6, None, 7]) == [[(0, 5), (1, 6)], [(3, 7)]]
    assert segments([None, None]) == []
    assert segments([0, None, 0]) == [[(0, 0)], [(2, 0)]]


def test_values_become_points_at_their_height_and_withheld_ones_are_gaps_not_zero() -> None:
    root = parsed(
        over_time(TICKS, [Line("Health visiting", (10, None, 30, 40))], (50, 5, 5, 5), (0,) * 4)
    )
    group = series_group(root, "Health visiting")
    points = marker_points(group)
    assert len(points) == 3  # one marker per released value, none for the withheld one
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and len(set(xs)) == 3
    # Heights are proportional to the values on an axis from 0 (at the bottom) upwards.
    (_, y10), (_, y30), (_, y40) = points
    height = LINES_BOTTOM - LINES_TOP
    assert LINES_BOTTOM - y30 == pytest.approx(3 * (LINES_BOTTOM - y10), abs=0.2)
    assert LINES_TOP <= y40 < y30 < y10 < LINES_BOTTOM and LINES_BOTTOM - y40 <= height
    # One polyline joins releases 3 and 4; nothing passes through release 2, nor down to zero.
    polylines = list(group.iter(f"{SVG}polyline"))
    assert len(polylines) == 1
    drawn = [tuple(map(float, p.split(","))) for p in polylines[0].get("points", "").split()]
    assert drawn == [points[1], points[2]]
    assert all(y != LINES_BOTTOM for _, y in points + drawn)
    second_release_x = (xs[0] + xs[1]) / 2  # evenly spaced releases
    assert all(abs(x - second_release_x) > 1 for x, _ in drawn)


def test_each_line_has_its_own_marker_shape_and_a_legend_entry() -> None:
    lines = [Line(f"combination {n}", (n + 1, n + 2, n + 3, n + 4)) for n in range(4)]
    chart = str(over_time(TICKS, lines, (9,) * 4, (1,) * 4))
    root = parsed(chart)
    for line in lines:
        group = series_group(root, line.label)
        assert line.label in chart  # named in the legend
        markers = [e for e in group if e.tag != f"{SVG}polyline"]
        assert len({(m.tag, m.get("d", "")[:1]) for m in markers}) == 1
    marker_kinds = {
        next(e for e in series_group(root, line.label) if e.tag != f"{SVG}polyline").tag
        for line in lines
    }
    assert marker_kinds == {f"{SVG}circle", f"{SVG}rect", f"{SVG}polygon"}  # 4 shapes, 3 tags
    assert "style=" not in chart  # the CSP forbids inline style


def test_lines_that_share_a_value_keep_their_markers_in_sight() -> None:
    lines = [Line("first", (20, 20, 30, 30)), Line("second", (20, 25, 30, 30))]
    root = parsed(over_time(TICKS, lines, (1,) * 4, (1,) * 4))
    circles = marker_points(series_group(root, "first"))
    squares = [
        (float(r.get("x", "")) + 5, float(r.get("y", "")) + 5)
        for r in series_group(root, "second").iter(f"{SVG}rect")
    ]
    for release in (0, 2, 3):  # equal values: side by side at the same height
        assert circles[release][1] == pytest.approx(squares[release][1])
        assert abs(circles[release][0] - squares[release][0]) >= 8
    assert circles[1][0] == pytest.approx(squares[1][0])  # different values: not moved
    assert squares[1][1] < circles[1][1]  # 25 above 20


def test_new_and_left_bars_leave_out_the_first_release_and_mark_withheld_ones() -> None:
    chart = str(over_time(TICKS, [Line("a", (9, 9, 9, 9))], (400, 20, None, 10), (0, 10, 0, None)))
    root = parsed(chart)
    bars = {
        (kind, int(rect.get(f"data-{kind}", ""))): rect
        for kind in ("new", "left")
        for rect in root.iter(f"{SVG}rect")
        if rect.get(f"data-{kind}") is not None
    }
    # The first release's 400 (everyone is new then) is not drawn; later ones are, to scale.
    assert ("new", 400) not in bars and "first release" in chart
    assert set(bars) == {("new", 20), ("new", 10), ("left", 10), ("left", 0)}
    assert float(bars["new", 20].get("height", "")) == pytest.approx(
        2 * float(bars["new", 10].get("height", "")), abs=0.2
    )
    assert float(bars["left", 0].get("height", "")) < 2  # a zero is a hairline on the axis
    # Withheld ones are dashed columns the panel's full height, with the word, not a zero bar.
    withheld = [r for r in root.iter(f"{SVG}rect") if r.get("data-withheld")]
    assert sorted(r.get("data-withheld", "") for r in withheld) == ["left", "new"]
    for rect in withheld:
        assert rect.get("fill") == "none" and rect.get("stroke-dasharray")
        assert float(rect.get("height", "")) == BARS_BOTTOM - BARS_TOP
    assert chart.count(">withheld</text>") == 2


def test_the_chart_has_a_title_and_a_description_naming_withheld_releases() -> None:
    chart = over_time(TICKS, [Line("Health <visiting>", (10, None, 30, 40))], (5,) * 4, (5,) * 4)
    root = parsed(chart)
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text and "release by release" in title.text
    assert desc is not None and desc.text is not None
    assert "Health <visiting>: 10 at the first release, 40 at the latest" in desc.text
    assert "(withheld at release 2)" in desc.text and "never zero" in desc.text
    assert "Health &lt;visiting&gt;" in str(chart)  # escaped in the markup


def test_a_line_withheld_at_every_release_is_named_but_not_drawn() -> None:
    chart = str(over_time(TICKS, [Line("rare", (None,) * 4)], (5,) * 4, (5,) * 4))
    assert "rare (withheld at every release, so no line)" in chart
    group = series_group(parsed(chart), "rare")
    assert len(list(group)) == 0


def test_one_release_draws_points_and_no_release_draws_nothing() -> None:
    chart = str(over_time(TICKS[:1], [Line("a", (12,))], (12,), (0,)))
    group = series_group(parsed(chart), "a")
    assert len(marker_points(group)) == 1 and not list(group.iter(f"{SVG}polyline"))
    assert "From the second release on" in chart
    assert str(over_time([], [], [], [])) == ""


# --- the table and the download ---------------------------------------------------------------


def _series() -> TimeSeries:
    def release(n: int, values: dict[str, int | None]) -> ReleaseCounts:
        cells = tuple(
            SeriesCell(label, () if label in ("new", "left") else tuple(label.split("+")), v)
            for label, v in values.items()
        )
        return ReleaseCounts(f"run-{n}", f"2026-0{n}-01T09:00:00Z", cells)

    return TimeSeries(
        "p",
        (
            release(1, {"a": 40, "b": 15, "a+b": 10, "new": 65, "left": 0}),
            release(2, {"a": 45, "b": None, "a+b": 10, "new": 10, "left": None}),
        ),
        "counts from 1 to 7 are suppressed",
    )


def test_the_view_names_rows_by_display_name_in_the_coordinator_s_order() -> None:
    shown = view(_series(), {"a": "Health visiting", "b": "Childcare"})
    assert [r.label for r in shown.combinations] == [
        "Health visiting",
        "Childcare",
        "Health visiting and Childcare",
    ]
    assert [(r.key, r.values) for r in shown.changes] == [("new", (65, 10)), ("left", (0, None))]
    assert [t.name for t in shown.ticks] == ["Release 1", "Release 2"]
    assert [t.date for t in shown.ticks] == ["2026-01-01", "2026-02-01"]
    assert shown.times[0] == "2026-01-01 09:00:00 UTC"
    assert shown.withheld == 2
    assert withheld_sentence(2).count(".") == 1 and withheld_sentence(0) == ""


def test_the_csv_holds_every_released_figure_withheld_ones_empty() -> None:
    rows = list(csv.reader(io.StringIO(series_csv_bytes(_series()).decode())))
    assert rows[0] == ["date", "run_id", "label", "count", "suppressed"]
    assert rows[1] == ["2026-01-01T09:00:00Z", "run-1", "a", "40", "false"]
    assert len(rows) == 1 + 5 + 5
    assert ["2026-02-01T09:00:00Z", "run-2", "b", "", "true"] in rows
    assert ["2026-02-01T09:00:00Z", "run-2", "left", "", "true"] in rows


# --- the page over HTTP -----------------------------------------------------------------------


class StandIn:
    """The analyst client's one call the page makes: a series, or the coordinator's refusal."""

    def __init__(self) -> None:
        self.answer: TimeSeries | RequestRefused = _series()

    def time_series(self, project_id: str) -> TimeSeries:
        if isinstance(self.answer, RequestRefused):
            raise self.answer
        return self.answer


class StandInProfile(Profile):
    stand_in = StandIn()

    def analyst(self) -> StandIn:  # type: ignore[override]
        return self.stand_in


@pytest.fixture(scope="module")
def served() -> Iterator[ConsoleServer]:
    nowhere = TlsSection(Path("ca.pem"), Path("cert.pem"), Path("key.pem"))
    config = ClientConfig("127.0.0.1:9", nowhere, display_names={"a": "Health visiting"})
    analyst = StandInProfile(Path("analyst.toml"), config, Identity("hubs", Role.ANALYST))
    server = ConsoleServer(Settings([analyst], projects=("p",)))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def refusal(code: grpc.StatusCode, details: str) -> RequestRefused:
    return RequestRefused("asking for the time series of 'p'", InjectedRpcError(code, details))


def test_the_page_shows_the_chart_the_table_and_withheld_figures_as_words(
    served: ConsoleServer,
) -> None:
    StandInProfile.stand_in.answer = _series()
    cookie = signed_in(served)
    status, _, page = fetch(served.base + "/analyst/over-time", cookie=cookie)
    assert status == 200
    assert '<a href="/analyst/over-time" aria-current="page">Over time</a>' in page
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and "<script" not in page
    table = page[page.index('<table class="table" id="series-table"') :]
    table = table[: table.index("</table>")]
    cells = re.findall(r'<td class="numeric">(.*?)</td>', table)
    assert len(cells) == 5 * 2
    withheld = [c for c in cells if "withheld" in c]
    assert len(withheld) == 2 and all(re.search(r"\d", c) is None for c in withheld)
    assert "Health visiting and b" in table
    assert "2 figure(s) marked withheld" in page


def test_the_download_is_what_was_released(served: ConsoleServer) -> None:
    StandInProfile.stand_in.answer = _series()
    status, headers, body = fetch(served.base + "/analyst/over-time.csv", cookie=signed_in(served))
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert 'filename="series-p.csv"' in headers["content-disposition"]
    assert body.encode() == series_csv_bytes(_series())


def test_before_the_first_run_the_page_says_no_data_yet(served: ConsoleServer) -> None:
    StandInProfile.stand_in.answer = refusal(
        grpc.StatusCode.FAILED_PRECONDITION, "project 'p' has no completed matching run yet"
    )
    status, _, page = fetch(served.base + "/analyst/over-time", cookie=signed_in(served))
    assert status == 200 and "No data yet" in page and "<svg" not in page
    assert "FAILED_PRECONDITION" not in page


def test_a_refused_series_is_explained(served: ConsoleServer) -> None:
    StandInProfile.stand_in.answer = refusal(
        grpc.StatusCode.INVALID_ARGUMENT, "the project's disclosure rule publishes exact counts"
    )
    status, _, page = fetch(served.base + "/analyst/over-time", cookie=signed_in(served))
    assert status == 200 and "No series for this project" in page
    assert "publishes exact counts" in page
    StandInProfile.stand_in.answer = refusal(grpc.StatusCode.PERMISSION_DENIED, "not an analyst")
    status, _, page = fetch(served.base + "/analyst/over-time", cookie=signed_in(served))
    assert status == 400 and "did not answer as asked" in page
