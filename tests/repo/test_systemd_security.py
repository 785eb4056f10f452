"""The systemd units are sandboxed: `systemd-analyze security` scores each 3 or lower.

systemd 252 and later score a unit file without a running systemd
(``--offline=true``), so this runs wherever systemd-analyze is installed and
skips, saying so, where it is not.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
MOST_EXPOSED = 3.0
ANALYZE = shutil.which("systemd-analyze")


def offline_scoring() -> bool:
    """Whether this systemd-analyze can score a unit file offline (systemd 252 and later)."""
    if ANALYZE is None:
        return False
    version = subprocess.run([ANALYZE, "--version"], capture_output=True, text=True, check=False)
    found = re.match(r"systemd (\d+)", version.stdout)
    return found is not None and int(found.group(1)) >= 252


def exposure(unit: Path) -> float:
    """The overall exposure `systemd-analyze security` gives ``unit`` (0 safe, 10 exposed)."""
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found is not None, result.stdout[-500:] + result.stderr[-500:]
    return float(found.group(1))


@pytest.mark.skipif(
    not offline_scoring(), reason="no systemd-analyze of systemd 252 or later installed here"
)
@pytest.mark.parametrize("unit", sorted(SYSTEMD.glob("*.service")), ids=lambda p: p.name)
def test_each_unit_scores_3_or_lower(unit: Path) -> None:
    assert exposure(unit) <= MOST_EXPOSED
