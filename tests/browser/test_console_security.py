"""The console's locks, tried from a real browser: token, cookie, CSRF, CSP, Host, loopback."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.browser.conftest import Console_, act_as

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_without_the_printed_token_no_page_opens(anonymous: Any, console: Console_) -> None:
    for path in ("/", "/audit", "/audit/verify", "/analyst", "/admin", "/admin/quality"):
        response = anonymous.goto(console.base + path)
        assert response.status == 403, path
        assert "Open the console from the address it printed" in anonymous.content()
    response = anonymous.goto(console.base + "/?token=not-the-token")
    assert response.status == 403
    assert "not this console's" in anonymous.content()


def test_the_token_becomes_an_httponly_same_site_cookie_and_leaves_the_address(
    page: Any, console: Console_
) -> None:
    assert "token=" not in page.url  # redirected to a clean address
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert console.url.split("token=")[1] not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # script could not read it anyway


def test_a_form_without_its_csrf_token_is_refused(page: Any, console: Console_) -> None:
    request = page.context.request  # the browser's own cookies, no form token
    refused = request.post(console.base + "/identity", form={"profile": "1"})
    assert refused.status == 403
    assert "security token" in refused.text()
    forged = request.post(
        console.base + "/admin/run", form={"project": "early-years-demo", "csrf_token": "0" * 64}
    )
    assert forged.status == 403
    # The same form with the page's own token is accepted.
    page.goto(console.base + "/?choose=1")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    accepted = request.post(
        console.base + "/identity", form={"profile": "0", "csrf_token": token}, max_redirects=0
    )
    assert accepted.status == 303


def test_every_form_carries_a_csrf_token(page: Any, console: Console_) -> None:
    for label, paths in (
        ("Information governance", ["/?choose=1", "/audit/verify", "/audit/compare"]),
        ("Linkage unit", ["/admin"]),
    ):
        act_as(page, console, label)
        for path in paths:
            page.goto(console.base + path)
            for form in page.locator("form[method=post]").all():
                assert form.locator("input[name=csrf_token]").count() == 1, path


def test_strict_content_security_policy_blocks_inline_script(page: Any, console: Console_) -> None:
    response = page.goto(console.base + "/?choose=1")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    ran = page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__inline = 1'; document.body.appendChild(s);
                   return window.__inline === 1; }"""
    )
    assert ran is False
    assert page.locator("script").count() <= 1  # only the one the test tried to add


def test_another_host_name_is_refused(console: Console_) -> None:
    """DNS rebinding: a page at evil.example resolving to 127.0.0.1 sends its own Host."""
    port = console.base.rsplit(":", 1)[1]
    request = urllib.request.Request(console.url, headers={"Host": f"evil.example:{port}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    refused.value.close()
    assert refused.value.code == 421


def test_it_listens_on_loopback_only(console: Console_) -> None:
    assert console.base.startswith("http://127.0.0.1:")
