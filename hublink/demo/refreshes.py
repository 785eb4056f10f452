"""The demo's months: monthly refreshes after the first linkage, measured against the truth.

Each month the synthetic services move on (``hublink.synthetic.months``:
births, leavers, moves and name changes, duplicate referrals, a few
withdrawals); every node sends its new extract (a refresh: only the changes
travel), the admin runs (incremental), the nodes fetch their key changes
and the analyst the month's counts. A full re-link of the same data is then
timed for comparison. Each month gives one entry of ``summary.json``'s
``refreshes``.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from hublink import synthetic
from hublink.clients import AdminClient, AnalystClient
from hublink.config import NodeConfig, load
from hublink.demo.deployment import PROJECT_ID
from hublink.errors import HublinkError
from hublink.synthetic.months import next_month
from hublink.synthetic.population import REFERENCE_DATE
from node.keys import CHANGES_NAME, fetch_keys
from node.withdraw import withdraw
from node.workflow import upload

Progress = Callable[[str, int, int], None]


class RefreshFailed(HublinkError, RuntimeError):
    """A month's run did not complete."""


def play(
    months: int,
    data: synthetic.GeneratedData,
    configs: Mapping[str, Path],
    organisations: Sequence[str],
    admin: AdminClient,
    analyst: AnalystClient,
    *,
    seed: int,
    progress: Progress,
) -> list[dict[str, Any]]:
    """Play ``months`` refreshes; one summary entry a month."""
    nodes = {o: load(configs[o], NodeConfig) for o in organisations}
    last = _keys(nodes)
    out = []
    for number in range(1, months + 1):
        label = _month_label(number)
        progress(f"month {label}: next extracts", 0, 1)
        month = next_month(data, number, seed=seed)
        for organisation, local_ids in month.withdraw.items():
            if local_ids:
                withdraw(nodes[organisation], local_ids)
        sent = added = changed = removed = 0
        for i, organisation in enumerate(organisations):
            summary = upload(nodes[organisation])
            sent += summary.records
            if summary.refresh is not None:
                added += summary.refresh.added
                changed += summary.refresh.changed
                removed += summary.refresh.removed
            progress(f"month {label}: refresh uploads", i + 1, len(organisations))
        quick = _run(admin, full=False)
        reasons: Counter[str] = Counter()
        for organisation in organisations:
            fetch_keys(nodes[organisation])
            reasons.update(_changes(nodes[organisation]))
        now = _keys(nodes)
        truth = {k: p for k, p in data.truth().items() if k in now}
        quality = synthetic.pairwise_quality(now, truth)
        series = analyst.time_series(PROJECT_ID)
        full = _run(admin, full=True)
        progress(f"month {label}: incremental and full runs", 1, 1)
        out.append(
            {
                "month": label,
                "f1_across": round(quality.cross.f1, 4),
                "f1_within": round(quality.within.f1, 4),
                "incremental_run_s": round(quick.seconds, 3),
                "full_run_s": round(full.seconds, 3),
                "records_sent": sent,
                "records_added": added,
                "records_changed": changed,
                "records_removed": removed,
                "keys_kept": round(keys_kept(last, now, month.edited), 5),
                "keys_changed": dict(sorted(reasons.items())),
                "changes": month.counts,
                "counts": {c.label: c.value for c in series.releases[-1].cells},
            }
        )
        last = _keys(nodes)
    return out


def keys_kept(
    before: Mapping[tuple[str, str], str],
    after: Mapping[tuple[str, str], str],
    edited: set[tuple[str, str]],
) -> float:
    """Of the records present both months, unchanged and still linked the same way (grouped
    with the same unchanged records by key), the share whose key is unchanged."""
    stable = [r for r in before if r in after and r not in edited]
    groups_before: dict[str, set[tuple[str, str]]] = defaultdict(set)
    groups_after: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for record in stable:
        groups_before[before[record]].add(record)
        groups_after[after[record]].add(record)
    same_way = [r for r in stable if groups_before[before[r]] == groups_after[after[r]]]
    if not same_way:
        return 1.0
    return sum(before[r] == after[r] for r in same_way) / len(same_way)


def _run(admin: AdminClient, *, full: bool) -> Any:
    run = admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID, full=full).run_id)
    if run.state != "completed":
        raise RefreshFailed(f"matching run {run.run_id} ended {run.state}: {run.message}")
    return run


def _keys(nodes: Mapping[str, NodeConfig]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for organisation, config in nodes.items():
        with config.output.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                out[(organisation, row["local_id"])] = row["linkage_key"]
    return out


def _changes(config: NodeConfig) -> Counter[str]:
    with config.output.with_name(CHANGES_NAME).open(newline="", encoding="utf-8") as handle:
        return Counter(row["change"] for row in csv.DictReader(handle))


def _month_label(number: int) -> str:
    first = date(REFERENCE_DATE.year, REFERENCE_DATE.month, 1)
    month = first.month - 1 + number
    return f"{first.year + month // 12}-{month % 12 + 1:02d}"


def print_months(console: Any, months: Sequence[Mapping[str, Any]]) -> None:
    """The months as one table (quality, what travelled, run times, keys kept), then the
    reasons keys changed, a line a month."""
    from rich.table import Table

    table = Table(title="Monthly refreshes (only the changes travel; incremental runs)")
    for column in ("month", "F1 across", "F1 within", "sent", "+ / ~ / -", "incr s", "full s"):
        table.add_column(column, justify="left" if column == "month" else "right")
    table.add_column("keys kept", justify="right")
    for m in months:
        table.add_row(
            m["month"],
            f"{m['f1_across']:.4f}",
            f"{m['f1_within']:.4f}",
            f"{m['records_sent']:,}",
            f"{m['records_added']}/{m['records_changed']}/{m['records_removed']}",
            f"{m['incremental_run_s']:.1f}",
            f"{m['full_run_s']:.1f}",
            f"{m['keys_kept']:.4f}",
        )
    console.print(table)
    for m in months:
        reasons = ", ".join(f"{k} {v}" for k, v in m["keys_changed"].items()) or "none"
        console.print(f"{m['month']}: keys changed: {reasons}")
