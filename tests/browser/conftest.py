"""A finished demo, its coordinator running again, the console in front of it, and Chromium.

The browser is the system's Chromium (``apt-get install chromium``), driven by
Playwright for Python with ``executable_path``: Playwright's own browser
download is never used. Without Chromium these tests skip, saying why; with
``HUBLINK_REQUIRE_BROWSER=1`` (as .ci/run sets) they fail instead, so CI cannot
pass by skipping them. ``HUBLINK_SCREENSHOTS=docs/console`` keeps a screenshot
of each page there (default: the test's temporary folder).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERIOUS = ("serious", "critical")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def chromium_path() -> str:
    """The system Chromium, or skip (fail when HUBLINK_REQUIRE_BROWSER=1) saying why."""
    path = os.environ.get("HUBLINK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    problem = ""
    if not Path(path).exists():
        problem = f"no Chromium at {path} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright for Python is not installed (requirements-dev.lock)"
    if problem:
        if os.environ.get("HUBLINK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (HUBLINK_REQUIRE_BROWSER=1) but {problem}")
        pytest.skip(problem)
    return path


@dataclass
class Console_:
    out_dir: Path
    url: str
    base: str


@pytest.fixture(scope="session")
def executable() -> str:
    return chromium_path()


@pytest.fixture(scope="session")
def console(executable: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console_]:
    """The demo on a few synthetic records, then its coordinator and the console serving it."""
    from coordinator.app import start as start_coordinator
    from hublink.config import CoordinatorConfig, load
    from hublink.console import ConsoleServer
    from hublink.demo import run_demo
    from hublink.demo.serve import console_settings

    out_dir = tmp_path_factory.mktemp("console") / "demo"
    run_demo(out_dir, records_per_org=150, show_progress=False, console=Console(file=io.StringIO()))
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


@pytest.fixture(scope="session")
def browser(executable: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, console: Console_) -> Iterator[Any]:
    """A fresh browser context (no cookies) with one page, signed in with the printed URL."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1024, "height": 800})
    opened = context.new_page()
    opened.goto(console.url)
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def anonymous(browser: Any) -> Iterator[Any]:
    """A fresh browser context that has not opened the printed URL."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def act_as(page: Any, console: Console_, label: str) -> None:
    """Choose the identity whose label contains ``label`` on the first page."""
    page.goto(f"{console.base}/?choose=1")
    page.get_by_label(label, exact=False).check()
    page.get_by_role("button", name="Continue").click()


def axe_check(page: Any) -> list[str]:
    """Serious or critical WCAG 2.2 AA violations axe-core finds on the page, described."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(
        page,
        options={"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]},
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]


def screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HUBLINK_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("HUBLINK_SCREENSHOTS"):
        from PIL import Image  # kept in the repository: 64 colours are plenty for these pages

        with Image.open(path) as shot:
            # Octree keeps a chart's small accents (the sixth Okabe-Ito colour of a line)
            # that median cut merges into grey.
            small = shot.convert("RGB").quantize(colors=64, method=Image.Quantize.FASTOCTREE)
        small.save(path, optimize=True)
    return path
