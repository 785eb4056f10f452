"""The scale benchmark runs from a clean checkout with one command and writes sane figures.

``bench/scale.py --quick`` does every stage at 2,000 records a party: real
clkhash encodings of synthetic people, raw anonlink and hublink's matcher,
blocking with its pairs completeness, and an end-to-end run through a real
coordinator process with parties uploading over mutual TLS. This test runs it
as a user would (a subprocess) and checks the JSON it writes; it asserts no
speed, only that each figure is there and could be true.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = (
    "anonlink_comparisons_per_s",
    "hublink_comparisons_per_s",
    "pairs_completeness",
    "end_to_end_s",
    "coordinator_peak_rss_mb",
)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], str]:
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "scale.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            "--quick",
            "--json",
            str(out),
            "--cache",
            str(folder / "cache"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document: dict[str, object] = json.loads(out.read_text())
    return document, done.stdout


def _size(document: dict[str, object]) -> dict[str, object]:
    sizes = document["sizes"]
    assert isinstance(sizes, dict) and list(sizes) == ["2000"]
    entry = sizes["2000"]
    assert isinstance(entry, dict)
    return entry


def test_json_holds_the_five_required_figures(quick: tuple[dict[str, object], str]) -> None:
    entry = _size(quick[0])
    for key in REQUIRED:
        value = entry[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, key


def test_figures_are_plausible(quick: tuple[dict[str, object], str]) -> None:
    entry = _size(quick[0])
    records = entry["records"]
    assert isinstance(records, list) and len(records) == 2
    assert all(1900 <= r <= 2000 for r in records)  # the node rejects planted bad rows
    assert entry["encodings"] == "real" and entry["encoding_bits"] == 3072  # salted, balanced
    # Every uploaded record gets a key back, and about 60% of people are shared.
    assert entry["keys_returned"] == entry["run_records"] == sum(records)
    assert 0.3 * records[0] < entry["linked_entities"] < 0.9 * records[0]
    assert 0.95 <= entry["pairs_completeness"] <= 1.0  # type: ignore[operator]
    assert entry["blocked_pairs_found"] <= entry["allpairs_pairs"]  # type: ignore[operator]
    assert entry["allpairs_pairs"] > 100  # type: ignore[operator]
    assert entry["all_pairs"] == records[0] * records[1]
    # Memory is measured from /proc, in MB: a Python process with gRPC is tens of MB.
    assert 20 < entry["coordinator_peak_rss_mb"] < 4000  # type: ignore[operator]
    assert 20 < entry["node_upload_peak_rss_mb"] < 4000  # type: ignore[operator]
    assert entry["cpu_model"] and entry["cores"] >= 1  # type: ignore[operator]


def test_table_is_printed(quick: tuple[dict[str, object], str]) -> None:
    table = quick[1]
    assert "pairs completeness" in table and "end to end s" in table
    assert "2,000 + " in table


def test_issue_25_figures_are_reported(quick: tuple[dict[str, object], str]) -> None:
    """The speed figures issue 25 asks for: ratios, all-cores encoding and stage seconds."""
    entry = _size(quick[0])
    for key in (
        "kernel_vs_anonlink",
        "blocked_speedup",
        "node_encode_records_per_s",
        "node_encode_1worker_records_per_s",
    ):
        value = entry[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, key
    # the node's encoding on every core sent the same bytes as on one
    assert entry["node_encode_same_bytes"] is True
    assert entry["kernel"] in {"anonlink", "native-popcnt", "native-portable"}
    stages = entry["stage_s"]
    assert isinstance(stages, dict)
    assert {"blocked_plan", "blocked_compare", "blocked_merge", "e2e_run"} <= set(stages)
    assert stages["blocked_compare"] <= entry["blocked_s"]  # type: ignore[operator]
    assert "target >= 15" in quick[1] and "target >= 1.3" in quick[1]
