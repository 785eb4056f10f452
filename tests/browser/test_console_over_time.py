"""The analyst's "Over time" page in headless Chromium, against a real coordinator.

Its own demo plays two monthly refreshes (each an incremental and a full run), so the series
has five releases; a second project with no run yet shows the "no data yet" state. Each page
passes axe-core; the CSV holds what the coordinator released month by month (the demo wrote
down each month's latest release as it happened), and a withheld figure never shows a value.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tests.browser.conftest import Console_, act_as, axe_check, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ANALYST = "Analyst"
REFRESHES = 2
EMPTY_PROJECT = "early-years-next"


def _add_empty_project(out_dir: Path) -> None:
    """A second project like the demo's, with no upload or run: its series has no release."""
    config = out_dir / "config"
    project = (config / "project.toml").read_text(encoding="utf-8")
    (config / "next.toml").write_text(
        project.replace('id = "early-years-demo"', f'id = "{EMPTY_PROJECT}"'), encoding="utf-8"
    )
    coordinator = (config / "coordinator.toml").read_text(encoding="utf-8")
    listed = f'projects = ["{config / "project.toml"}"]'
    assert listed in coordinator
    (config / "coordinator.toml").write_text(
        coordinator.replace(
            listed, f'projects = ["{config / "project.toml"}", "{config / "next.toml"}"]'
        ),
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def months(executable: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console_]:
    """A demo with monthly refreshes, its coordinator running again, the console in front."""
    from coordinator.app import start as start_coordinator
    from hublink.config import CoordinatorConfig, load
    from hublink.console import ConsoleServer
    from hublink.demo import run_demo
    from hublink.demo.serve import console_settings

    out_dir = tmp_path_factory.mktemp("months") / "demo"
    run_demo(
        out_dir,
        records_per_org=50,
        refreshes=REFRESHES,
        show_progress=False,
        console=Console(file=io.StringIO()),
    )
    _add_empty_project(out_dir)
    coordinator = start_coordinator(
        load(out_dir / "config" / "coordinator.toml", CoordinatorConfig)
    )
    server = ConsoleServer(console_settings(out_dir))
    try:
        url = server.start()
        yield Console_(out_dir, url, server.base)
    finally:
        server.stop()
        coordinator.stop()


@pytest.fixture
def analyst(browser: Any, months: Console_) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1024, "height": 800})
    page = context.new_page()
    page.goto(months.url)
    act_as(page, months, ANALYST)
    try:
        yield page
    finally:
        context.close()


def _released(months: Console_) -> list[dict[str, Any]]:
    summary: dict[str, Any] = json.loads((months.out_dir / "summary.json").read_text())
    refreshes: list[dict[str, Any]] = summary["refreshes"]
    return refreshes


def test_over_time_shows_every_release_as_a_chart_and_a_table(
    analyst: Any, months: Console_, tmp_path: Path
) -> None:
    analyst.get_by_role("link", name="Over time").click()  # from the analyst's navigation
    assert analyst.url.endswith("/analyst/over-time")
    problems = axe_check(analyst)
    assert not problems, "over time: axe found\n" + "\n".join(problems)
    screenshot(analyst, "over-time", tmp_path)

    releases = 1 + 2 * REFRESHES  # the first run, then an incremental and a full run a month
    chart = analyst.locator("svg.chart")
    assert chart.get_attribute("role") == "img"
    assert f"at {releases} release(s)" in chart.locator("desc").text_content()
    headings = analyst.locator("#series-table thead th").all_inner_texts()
    assert len(headings) == 1 + releases and "UTC" in headings[1]
    rows = analyst.locator("#series-table tbody tr")
    assert rows.count() == 7 + 2  # every combination of three services, then new and left

    # A withheld figure shows the word only; every number shown is one the coordinator sent.
    sent = {
        f"{v:,}" for month in _released(months) for v in month["counts"].values() if v is not None
    }
    cells = [c.strip() for c in analyst.locator("#series-table td").all_inner_texts()]
    assert all(c == "withheld" or c.replace(",", "").isdigit() for c in cells)
    table = [cells[i : i + releases] for i in range(0, len(cells), releases)]
    per_release = list(zip(*table, strict=True))
    for month, number in zip(_released(months), (2, 4), strict=True):
        shown = per_release[number - 1]
        expected = ["withheld" if v is None else f"{v:,}" for v in month["counts"].values()]
        assert list(shown) == expected, month["month"]
    assert sent <= set(cells)
    if "withheld" in cells:
        assert "too few children to release safely" in analyst.locator("main").inner_text()


def test_the_csv_holds_what_each_month_released(analyst: Any, months: Console_) -> None:
    analyst.goto(months.base + "/analyst/over-time")
    with analyst.expect_download() as download:
        analyst.get_by_role("link", name="Download the series as CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    runs = list(dict.fromkeys(r["run_id"] for r in rows))
    assert len(runs) == 1 + 2 * REFRESHES
    for month, run in zip(_released(months), (runs[1], runs[3]), strict=True):
        released = {r["label"]: r for r in rows if r["run_id"] == run}
        assert list(released) == list(month["counts"]), month["month"]
        for label, value in month["counts"].items():
            if value is None:
                assert (released[label]["count"], released[label]["suppressed"]) == ("", "true")
            else:
                assert (released[label]["count"], released[label]["suppressed"]) == (
                    str(value),
                    "false",
                )


def test_a_project_with_no_run_yet_says_so(analyst: Any, months: Console_, tmp_path: Path) -> None:
    response = analyst.goto(f"{months.base}/analyst/over-time?project={EMPTY_PROJECT}")
    assert response.status == 200
    assert "No data yet" in analyst.locator("#no-data").inner_text()
    assert analyst.locator("svg").count() == 0 and analyst.locator("table").count() == 0
    problems = axe_check(analyst)
    assert not problems, "no data yet: axe found\n" + "\n".join(problems)
    screenshot(analyst, "over-time-no-data", tmp_path)
