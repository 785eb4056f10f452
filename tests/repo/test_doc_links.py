"""Every relative link in the README and docs/ leads somewhere: the file exists, the anchor too.

Pages move (the README was split into docs/ once already), headings get reworded, and a
link that quietly stops working is how a reader loses the thread. Anchors are matched the
way GitHub makes them from headings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "deploy" / "README.md", *ROOT.glob("docs/*.md")])

_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(?P<text>.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without fenced code blocks (a ``# comment`` there is no heading)."""
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for match in _HEADING.finditer(prose(page.read_text(encoding="utf-8"))):
        base = slug(match.group("text"))
        name, n = base, 0
        while name in found:  # GitHub numbers repeated headings: x, x-1, x-2
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def links(page: Path) -> list[str]:
    text = _CODE.sub("", prose(page.read_text(encoding="utf-8")))
    return [m.group("target") for m in _LINK.finditer(text)]


def broken(page: Path) -> list[str]:
    """Each relative link of the page that leads nowhere, with why."""
    problems = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, file:
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            problems.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{target}: no heading makes the anchor #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken(page) == [], f"{page.relative_to(ROOT)}: broken links"


def test_the_readme_links_every_page_in_docs() -> None:
    targets = {t.partition("#")[0] for t in links(ROOT / "README.md")}
    pages = {f"docs/{p.name}" for p in ROOT.glob("docs/*.md")}
    assert sorted(pages - targets) == []


def test_the_readme_stays_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail into docs/"


def test_slugs_follow_github() -> None:
    assert slug("5. Matching") == "5-matching"
    assert slug("Duplicate referrals, field by field (`field_scoring`)") == (
        "duplicate-referrals-field-by-field-field_scoring"
    )
    assert slug("Large projects: workers, blocking and Dask") == (
        "large-projects-workers-blocking-and-dask"
    )


def test_a_broken_link_and_a_missing_anchor_are_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Some part\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\nSee [it](other.md#some-part), [here](#page), [web](https://example.org),\n"
        "[gone](missing.md), [no anchor](other.md#nothing) and [self](#nowhere).\n\n"
        "```sh\n# not a heading\n[not a link](absent.md)\n```\n",
        encoding="utf-8",
    )
    assert broken(page) == [
        "missing.md: no such file",
        "other.md#nothing: no heading makes the anchor #nothing",
        "#nowhere: no heading makes the anchor #nowhere",
    ]
