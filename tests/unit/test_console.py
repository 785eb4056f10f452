"""The console without a browser: its locks over real HTTP, its charts, tables and audit digests.

The HTTP tests serve a console whose identities point at no coordinator: the
first page, the token exchange and the identity form never call one, so the
locks can be tried on any machine (the browser tests try them again in
Chromium, against a real coordinator).
"""

from __future__ import annotations

import csv
import io
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from hublink.audit.log import LogEntry
from hublink.clients import CountCell, Counts
from hublink.config import ClientConfig, TlsSection
from hublink.console import ConsoleServer, Profile, Settings, svg
from hublink.console.analyst_views import title, withheld_sentence
from hublink.console.audit_digest import consent_summaries, outcome, period_summary
from hublink.console.security import Sessions
from hublink.console.tables import csv_bytes, grid, xlsx_bytes
from hublink.identity import Identity, Role

# --- the locks, over HTTP ---------------------------------------------------------------------


def _profile(organisation: str, role: Role) -> Profile:
    nowhere = TlsSection(Path("ca.pem"), Path("cert.pem"), Path("key.pem"))
    config = ClientConfig("127.0.0.1:9", nowhere, display_names={"ig": "IG team"})
    return Profile(Path(f"{organisation}.toml"), config, Identity(organisation, role))


@pytest.fixture(scope="module")
def served() -> Iterator[ConsoleServer]:
    settings = Settings([_profile("ig", Role.AUDITOR), _profile("unit", Role.ADMIN)])
    server = ConsoleServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch(
    url: str, *, cookie: str = "", data: dict[str, str] | None = None, host: str = ""
) -> tuple[int, dict[str, str], str]:
    headers = {"Cookie": cookie} if cookie else {}
    if host:
        headers["Host"] = host
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        try:
            return error.code, dict(error.headers), error.read().decode()
        finally:
            error.close()


def signed_in(server: ConsoleServer) -> str:
    status, headers, _ = fetch(server.url)
    assert status == 303 and headers["location"] == "/"
    return headers["set-cookie"].split(";")[0]


def test_it_binds_loopback_and_prints_a_url_with_a_long_token(served: ConsoleServer) -> None:
    assert served.url.startswith("http://127.0.0.1:")
    token = served.url.split("?token=")[1]
    assert len(token) >= 40


def test_nothing_opens_without_the_token(served: ConsoleServer) -> None:
    for path in ("/", "/audit", "/admin", "/analyst/download.csv"):
        status, _, body = fetch(served.base + path)
        assert status == 403, path
        assert "the address it printed" in body
    status, headers, _ = fetch(served.base + "/?token=guessed")
    assert status == 403 and "set-cookie" not in {k.lower() for k in headers}


def test_the_token_is_exchanged_for_a_strict_httponly_cookie(served: ConsoleServer) -> None:
    _, headers, _ = fetch(served.url)
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert served.sessions.access_token not in cookie
    status, _, body = fetch(served.base + "/", cookie=cookie.split(";")[0])
    assert status == 200 and "Who are you acting as?" in body


def test_forms_need_the_session_s_csrf_token(served: ConsoleServer) -> None:
    cookie = signed_in(served)
    _, _, page = fetch(served.base + "/", cookie=cookie)
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert match is not None
    for data in ({"profile": "1"}, {"profile": "1", "csrf_token": "0" * 64}):
        status, _, body = fetch(served.base + "/identity", cookie=cookie, data=data)
        assert status == 403 and "security token" in body
    # Another session's token is no good either.
    _, _, other = fetch(served.base + "/", cookie=signed_in(served))
    other_token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', other)
    assert other_token is not None and other_token.group(1) != match.group(1)
    status, _, _ = fetch(
        served.base + "/identity",
        cookie=cookie,
        data={"profile": "1", "csrf_token": other_token.group(1)},
    )
    assert status == 403
    status, headers, _ = fetch(
        served.base + "/identity",
        cookie=cookie,
        data={"profile": "1", "csrf_token": match.group(1)},
    )
    assert status == 303 and headers["location"] == "/admin"


def test_every_answer_carries_a_strict_content_security_policy(served: ConsoleServer) -> None:
    for path in ("/", "/static/console.css", "/nowhere"):
        _, headers, _ = fetch(served.base + path)
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
    _, _, page = fetch(served.base + "/", cookie=signed_in(served))
    assert "<script" not in page and "style=" not in page


def test_a_foreign_host_header_is_refused(served: ConsoleServer) -> None:
    status, _, _ = fetch(served.url, host=f"attacker.example:{served.port}")
    assert status == 421


def test_a_role_s_pages_are_closed_to_the_others(served: ConsoleServer) -> None:
    cookie = signed_in(served)  # acting as the auditor, the first identity
    status, _, body = fetch(served.base + "/admin", cookie=cookie)
    assert status == 403 and "Not available to this identity" in body


def test_csrf_tokens_are_bound_to_their_session() -> None:
    sessions = Sessions("launch")
    first, second = sessions.start(), sessions.start()
    assert sessions.csrf_ok(first, sessions.csrf_token(first))
    assert not sessions.csrf_ok(second, sessions.csrf_token(first))
    assert sessions.token_matches("launch") and not sessions.token_matches("launch!")


# --- charts -----------------------------------------------------------------------------------


def test_upset_chart_names_every_combination_and_marks_withheld_ones() -> None:
    chart = svg.upset(
        [(("a",), 40), (("a", "b"), None), (("b",), 15)], ["a", "b"], {"a": "Health <visiting>"}
    )
    assert 'role="img"' in chart and "<title" in chart and "<desc" in chart
    assert "Health &lt;visiting&gt;" in chart  # labels escaped
    assert "withheld" in chart and 'stroke-dasharray="4 3"' in chart
    assert "style=" not in chart  # the CSP forbids inline style
    description = re.search(r"<desc[^>]*>(.*)</desc>", str(chart))
    assert (
        description is not None
        and "Health &lt;visiting&gt; and b: withheld" in description.group(1)
    )


def test_precision_and_recall_differ_by_more_than_colour() -> None:
    chart = str(svg.curves([(0.7, 0.8, 1.0), (0.8, 0.95, 0.97), (0.9, 1.0, 0.8)], 0.8))
    assert chart.count("<polyline") == 2
    assert 'stroke-dasharray="8 5"' in chart  # recall dashed, precision solid
    assert "<circle" in chart and "<rect" in chart  # markers differ
    assert ">precision</text>" in chart and ">recall</text>" in chart
    assert "solid line, circles" in chart and "dashed line, squares" in chart


# --- released tables --------------------------------------------------------------------------


def _counts() -> Counts:
    cells = (
        CountCell((), {"area": "=cmd|' /C calc'!A0", "age_band": "0-1"}, (), 10),
        CountCell((), {"area": "=cmd|' /C calc'!A0", "age_band": "1-2"}, (), None, "primary"),
        CountCell((), {"area": "E1", "age_band": "0-1"}, (), 5),
        CountCell((), {"area": "E1", "age_band": "1-2"}, (), 15),
        CountCell((), {"area": "", "age_band": ""}, ("area", "age_band"), 30),
    )
    return Counts(
        "p", "run-1", ("area", "age_band"), cells, "rule", "entities by area and age_band"
    )


def test_downloads_hold_every_released_cell_and_run_no_formula() -> None:
    rows = list(csv.reader(io.StringIO(csv_bytes(_counts()).decode())))
    assert rows[0] == ["area", "age_band", "count", "suppressed"]
    assert rows[1] == ["'=cmd|' /C calc'!A0", "0-1", "10", "false"]
    assert rows[2][2:] == ["", "true"]  # withheld: no value
    assert rows[-1] == ["Total", "Total", "30", "false"]
    sheet = load_workbook(io.BytesIO(xlsx_bytes(_counts())))["counts"]
    values = list(sheet.iter_rows(values_only=True))
    assert values[1] == ("=cmd|' /C calc'!A0", "0-1", 10, "false")
    assert sheet.cell(row=2, column=1).data_type == "s"  # text, never a formula
    assert values[2][2] is None


def test_grid_puts_totals_last_and_keeps_withheld_cells_empty() -> None:
    table = grid(_counts())
    assert table is not None
    assert table.rows == ["=cmd|' /C calc'!A0", "E1", None]
    assert table.value("=cmd|' /C calc'!A0", "1-2") == (True, None)
    assert table.value("E1", None) == (False, None)


def test_withheld_cells_are_explained_in_one_sentence() -> None:
    sentence = withheld_sentence(_counts())
    assert sentence.count(".") == 1 and "1 cell(s) marked withheld" in sentence
    assert title(_counts(), {}) == "Children by area and age band"


# --- audit digests ----------------------------------------------------------------------------


def _entry(index: int, action: str, details: dict[str, object], org: str = "hv") -> LogEntry:
    return LogEntry(index, f"2026-06-0{index + 1}T09:00:00Z", action, org, "node", "p", details, "")


def test_consent_summaries_join_each_upload_s_start_and_end() -> None:
    consent = {"policy_sha256": "ab" * 32, "counts": {"included": 90, "opted-out": 10}}
    entries = [
        _entry(
            0, "upload.started", {"upload_id": "u1", "expected_records": 90, "consent": consent}
        ),
        _entry(1, "upload.committed", {"upload_id": "u1", "records": 90}),
        _entry(2, "upload.started", {"upload_id": "u2", "expected_records": 5}),
        _entry(3, "upload.rejected", {"upload_id": "u2", "reason": "digest differs"}),
    ]
    first, second = consent_summaries(entries)
    assert (first.state, first.records, first.rule_counts["opted-out"]) == ("completed", 90, 10)
    assert first.policy_sha256 == "ab" * 32
    assert second.state == "refused" and second.policy_sha256 == ""


def test_period_summary_counts_refusals_and_revocations() -> None:
    entries = [
        _entry(0, "upload.committed", {"upload_id": "u1", "records": 90}),
        _entry(1, "access.refused", {"reason": "the certificate of node x has been revoked"}),
        _entry(2, "access.refused", {"reason": "not a member"}, org="stranger"),
        _entry(3, "counts.released", {"suppressed": 4}, org="analysts"),
    ]
    summary = period_summary(entries, "2026-06", "")
    assert (summary.uploads, summary.records_uploaded) == (1, 90)
    assert (summary.refused, summary.revoked, summary.cells_withheld) == (2, 1, 4)
    assert ("Request refused", 2) in summary.by_action
    assert outcome(entries[1]) == ("Refused", "red")
    assert outcome(entries[0]) == ("Done", "green")
