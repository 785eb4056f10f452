"""Keys, secrets and extracts stay out of git, even from a walk-through run in the checkout.

The walk-throughs (docs/deployment.md, deploy/README.md) work in a folder
outside the checkout. As a backstop, `.gitignore` covers every file their
steps make: this runs the walk-through's file-making shell steps for real in a
scratch folder, adds the files the services write once running, and asks
`git check-ignore` about each path as if the folder were the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = REPO / "docs" / "deployment.md"
#: Shell steps that only make files: run these; anything else (serve, upload) is not run.
FILE_MAKING = (
    "hublink pki ",
    "hublink schema export ",
    "mkdir ",
    "cp ",
    "python -c ",
    "(umask 077;",
)
#: What the walk-through's configs and running services write, relative to its folder.
WRITTEN_LATER = [
    "coordinator/coordinator.toml",
    "coordinator/project.toml",
    "coordinator/coordinator.db",
    "coordinator/coordinator.db-wal",
    "coordinator/coordinator.db-shm",
    "coordinator/coordinator.audit-key.pem",
    "health-visiting/node.toml",
    "health-visiting/consent.toml",
    "health-visiting/state/tokens.sqlite",
    "health-visiting/state/node.log",
    "health-visiting/state/rejects.csv",
    "health-visiting/state/secret-exchange/node-key.pem",
    "health-visiting/linked.csv",
    "flying-start/linked.csv",
    "admin/admin.toml",
    "quality.html",
    "withdrawn.csv",
    # compose's defaults beside deploy/compose.yaml (deploy/README.md)
    "deploy/tls/coordinator/key.pem",
    "deploy/tls/coordinator/cert.pem",
    "deploy/secrets/project-secret",
    "deploy/data/health-visiting.csv",
]


def ignored(paths: list[str]) -> set[str]:
    """The paths `.gitignore` ignores, as if each were in the checkout."""
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=REPO,
        input="\n".join(paths) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return set(result.stdout.splitlines())


def walkthrough_steps() -> list[str]:
    """The file-making lines of the walk-through's sh blocks, in order."""
    text = DEPLOYMENT.read_text()
    section = text[text.index("## A real deployment") : text.index("## Running it as a service")]
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        lines += [
            line
            for line in block.splitlines()
            if line.startswith(FILE_MAKING) and " cd " not in line  # not the folder it makes
        ]
    return lines


def test_no_tracked_file_is_ignored() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert tracked and ignored(tracked) == set()


def test_the_walkthrough_works_outside_the_checkout() -> None:
    text = DEPLOYMENT.read_text()
    section = text[text.index("## A real deployment") :]
    assert "mkdir -p ~/hublink-pilot && cd ~/hublink-pilot" in section.split("### 1.")[0]


@pytest.mark.slow
def test_every_file_the_walkthrough_makes_is_ignored(tmp_path: Path) -> None:
    steps = walkthrough_steps()
    assert any(s.startswith("hublink pki init") for s in steps)  # the CA key is made
    assert any("project-secret" in s for s in steps)  # and the secret
    bin_dir = str(Path(sys.executable).parent)  # this environment's hublink and python
    path = bin_dir + os.pathsep + os.environ.get("PATH", "")
    env = {**os.environ, "PATH": path, "HOME": str(tmp_path)}
    script = "set -euo pipefail\n" + "\n".join(steps) + "\n"
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert "pki/ca.key" in made and "health-visiting/project-secret" in made
    assert any(p.startswith("data/") and p.endswith(".csv") for p in made)  # the extracts
    paths = made + WRITTEN_LATER
    assert sorted(set(paths) - ignored(paths)) == []
