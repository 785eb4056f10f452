"""Every page of the console, for each role, in headless Chromium: it loads, it says the right
thing, axe-core finds no serious or critical WCAG 2.2 AA problem, and a screenshot is kept.

The IG officer's path: the trail, one entry, verifying (a tampered export is caught and its
first bad entry named), keeping and comparing checkpoints, consent, refusals, a period
summary. The analyst's: the UpSet overlap and cross-tabs, where a withheld cell never shows
a value, and CSV and XLSX downloads that match the demo's counts.json. The admin's: status,
a run started and followed to the end, the quality report.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Console_, act_as, axe_check, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AUDITOR, ANALYST, ADMIN = "Information governance", "Analyst", "Linkage unit"


def visit(page: Any, console: Console_, path: str, name: str, tmp_path: Path) -> str:
    """Open a page, check it loaded and passes axe, keep a screenshot; return its text."""
    response = page.goto(console.base + path)
    assert response.status == 200, f"{path}: {response.status}"
    check(page, name, tmp_path)
    return str(page.locator("main").inner_text())


def check(page: Any, name: str, tmp_path: Path) -> None:
    problems = axe_check(page)
    assert not problems, f"{name}: axe found\n" + "\n".join(problems)
    screenshot(page, name, tmp_path)


# --- the first page ---------------------------------------------------------------------------


def test_first_page_offers_the_demo_s_three_identities(
    page: Any, console: Console_, tmp_path: Path
) -> None:
    text = visit(page, console, "/", "home", tmp_path)
    for label in (AUDITOR, ANALYST, ADMIN):
        assert label in text
    act_as(page, console, ANALYST)
    assert page.url.endswith("/analyst")


def test_a_page_of_another_role_is_refused(page: Any, console: Console_) -> None:
    act_as(page, console, ANALYST)
    response = page.goto(console.base + "/audit")
    assert response.status == 403
    assert "Not available to this identity" in page.content()


# --- the IG officer ---------------------------------------------------------------------------


def test_auditor_pages_load(page: Any, console: Console_, tmp_path: Path) -> None:
    act_as(page, console, AUDITOR)
    trail = visit(page, console, "/audit", "audit-trail", tmp_path)
    assert "Upload completed" in trail and "UTC" in trail
    assert "records.withdrawn" not in trail and "upload.committed" not in trail
    assert "Family Hubs analytics team" in trail  # display names, not slugs
    assert "family-hubs-analytics" not in trail
    page.get_by_role("link", name=re.compile(r"^1 ")).first.click()
    check(page, "audit-entry", tmp_path)
    assert "Entry hash" in page.locator("main").inner_text()

    visit(page, console, "/audit?action=counts.released", "audit-trail-filtered", tmp_path)
    filtered = page.locator("table").inner_text()
    assert "Count table released" in filtered and "Upload completed" not in filtered
    bad = page.goto(console.base + "/audit?since=last+tuesday")
    assert bad.status == 200
    assert "There is a problem" in page.locator(".error-summary").inner_text()

    consent = visit(page, console, "/audit/consent", "audit-consent", tmp_path)
    assert "Consent policy (SHA-256)" in consent and "Rule:" in consent
    refusals = visit(page, console, "/audit/refusals", "audit-refusals", tmp_path)
    assert "refusal(s)" in refusals
    summary = visit(page, console, "/audit/summary", "audit-summary", tmp_path)
    assert "Uploads completed" in summary and "Count tables released to analysts" in summary
    visit(page, console, "/audit/compare", "audit-compare", tmp_path)


def test_verify_passes_then_catches_a_tampered_export(
    page: Any, console: Console_, tmp_path: Path
) -> None:
    act_as(page, console, AUDITOR)
    page.goto(console.base + "/audit/verify")
    exported = console.out_dir / "audit.jsonl"
    kept = console.out_dir / "auditor-checkpoint.note"
    page.set_input_files("#checkpoint", str(kept))
    page.set_input_files("#export", str(exported))
    page.get_by_role("button", name="Verify").click()
    verdict = page.locator("#verdict").inner_text()
    assert "The audit trail checks out" in verdict, page.locator("main").inner_text()
    check(page, "audit-verify", tmp_path)

    lines = exported.read_text(encoding="utf-8").splitlines()
    number, changed = next(
        (i, json.loads(line)) for i, line in enumerate(lines) if '"upload.committed"' in line
    )
    changed["details"]["records"] += 1  # one more record than was really uploaded
    lines[number] = json.dumps(changed, sort_keys=True)
    tampered = tmp_path / "tampered-audit.jsonl"
    tampered.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.set_input_files("#export", str(tampered))
    page.get_by_role("button", name="Verify").click()
    main = page.locator("main").inner_text()
    assert "The audit trail does not check out" in page.locator("#verdict").inner_text()
    assert f"First bad entry: entry {changed['index']}" in main
    assert "changed" in main
    check(page, "audit-verify-tampered", tmp_path)


def test_keep_a_checkpoint_and_compare_it(page: Any, console: Console_, tmp_path: Path) -> None:
    act_as(page, console, ANALYST)
    page.goto(console.base + "/analyst")  # a count table released: the log grows by an entry
    act_as(page, console, AUDITOR)
    page.goto(console.base + "/audit/verify")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the current checkpoint").click()
    kept = tmp_path / download.value.suggested_filename
    download.value.save_as(kept)
    assert kept.name.startswith("checkpoint-") and kept.suffix == ".note"
    page.goto(console.base + "/audit/compare")
    page.set_input_files("#first", str(console.out_dir / "auditor-checkpoint.note"))
    page.set_input_files("#second", str(kept))
    page.get_by_role("button", name="Compare").click()
    result = page.locator("main").inner_text()
    assert "passed" in result and "extends the log of" in result  # a consistency proof
    check(page, "audit-compare-result", tmp_path)


# --- the analyst ------------------------------------------------------------------------------


def _released(console: Console_, table: str) -> dict[str, Any]:
    content: dict[str, Any] = json.loads((console.out_dir / "counts.json").read_text())
    return dict(content["tables"][table])


def test_overlap_upset_view_and_table(page: Any, console: Console_, tmp_path: Path) -> None:
    act_as(page, console, ANALYST)
    text = visit(page, console, "/analyst", "analyst-overlap", tmp_path)
    assert "Children known to each combination of services" in text
    chart = page.locator("svg.chart")
    assert chart.get_attribute("role") == "img"
    assert "combinations of services" in chart.locator("desc").text_content()
    overlap = _released(console, "overlap")
    shown = page.locator("#overlap-table tbody tr").count()
    assert shown == len(overlap["cells"])


def test_a_withheld_cell_never_shows_a_value(page: Any, console: Console_, tmp_path: Path) -> None:
    act_as(page, console, ANALYST)
    text = visit(page, console, "/analyst/counts?by=area&by=age_band", "analyst-crosstab", tmp_path)
    released = _released(console, "area_by_age_band")
    withheld = [c for c in released["cells"] if c["suppressed"]]
    assert withheld, "the demo's breakdown should withhold some cells"
    cells = page.locator("#counts-table td.numeric").all_inner_texts()
    marked = [c for c in cells if "withheld" in c]
    assert len(marked) == len(withheld)
    assert all(c.strip() == "withheld" for c in marked)  # the word only, no number beside it
    assert "too few children to release safely" in text
    # Every released number on the page is one the coordinator released.
    values = {f"{c['value']:,}" for c in released["cells"] if c["value"] is not None}
    assert {c.strip() for c in cells if c.strip() not in ("withheld", "—")} <= values
    visit(page, console, "/analyst/counts?by=age_band", "analyst-bars", tmp_path)
    visit(page, console, "/analyst/counts", "analyst-counts-form", tmp_path)


def _rows_of(table: dict[str, Any]) -> list[list[str]]:
    """counts.json cells as the CSV rows the downloads should hold."""
    rows = [[*table["dimensions"], "count", "suppressed"]]
    for cell in table["cells"]:
        coordinates = []
        for d in table["dimensions"]:
            if d in cell["totalled"]:
                coordinates.append("Total")
            elif d == "datasets":
                coordinates.append("+".join(cell["datasets"]))
            else:
                coordinates.append(cell["attributes"][d])
        value = "" if cell["value"] is None else str(cell["value"])
        rows.append([*coordinates, value, "true" if cell["suppressed"] else "false"])
    return rows


def test_downloads_match_counts_json(page: Any, console: Console_, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    act_as(page, console, ANALYST)
    for path, table in (
        ("/analyst", "overlap"),
        ("/analyst/counts?by=area&by=age_band", "area_by_age_band"),
    ):
        expected = _rows_of(_released(console, table))
        page.goto(console.base + path)
        with page.expect_download() as csv_download:
            page.get_by_role("link", name="Download this table as CSV").click()
        rows = list(csv.reader(io.StringIO(Path(csv_download.value.path()).read_text("utf-8"))))
        assert rows == expected, table
        with page.expect_download() as xlsx_download:
            page.get_by_role("link", name=re.compile("spreadsheet")).click()
        saved = tmp_path / f"{table}.xlsx"
        xlsx_download.value.save_as(saved)
        sheet = load_workbook(saved)["counts"]
        cells = [
            ["" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for v in row]
            for row in sheet.iter_rows(values_only=True)
        ]
        assert cells == expected, table


# --- the linkage unit -------------------------------------------------------------------------


def test_admin_status_run_and_quality(page: Any, console: Console_, tmp_path: Path) -> None:
    act_as(page, console, ADMIN)
    status = visit(page, console, "/admin", "admin-status", tmp_path)
    assert "3 of 3 organisations have uploaded" in status
    page.get_by_role("button", name="Start a run").click()
    assert "/admin/runs/" in page.url
    for _ in range(120):
        state = page.locator("#run-state").inner_text()
        if "completed" in state or "failed" in state:
            break
        page.wait_for_timeout(500)
        page.reload()
    assert "completed" in page.locator("#run-state").inner_text()
    check(page, "admin-run", tmp_path)
    quality = visit(page, console, "/admin/quality", "admin-quality", tmp_path)
    assert "How to read this" in quality and "Estimated precision" in quality
    curve = page.locator("svg.chart").last
    assert "solid line, circles" in curve.locator("desc").text_content()
    assert "dashed line, squares" in curve.locator("desc").text_content()
