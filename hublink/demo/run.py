"""``hublink demo``: the whole product on local defaults, end to end.

It plays every party on one machine, but each through the same interfaces a
real deployment uses: the coordinator is a real gRPC server with mutual TLS
on loopback, each node reads its own CSV with its own config and certificate,
the admin and analyst are clients with their own certificates. Everything is
left in one folder so it can be inspected afterwards.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.clients import AdminClient, AnalystClient, AuditClient, open_channel
from hublink.clients.analyst import Overlap, OverlapCell
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo.audit import export_and_verify, print_audit
from hublink.demo.counts import fetch as fetch_counts
from hublink.demo.counts import print_counts
from hublink.demo.counts import write as write_counts
from hublink.demo.deployment import (
    ADMIN,
    ANALYST,
    PROJECT_ID,
    exchange_secrets,
    free_port,
    write_deployment,
)
from hublink.demo.refreshes import play as play_refreshes
from hublink.demo.refreshes import print_months
from hublink.errors import HublinkError
from hublink.reports.overlap import overlap_json, overlap_table
from hublink.reports.progress import StageProgress
from hublink.reports.quality import estimate_line
from hublink.reports.quality import write as write_quality_report
from hublink.v1 import admin_pb2
from node.exclusions import read_counts as exclusion_counts
from node.keys import fetch_keys
from node.workflow import upload

MARKER = ".hublink-demo"

log = logging.getLogger("hublink.demo")


class DemoError(HublinkError, RuntimeError):
    """The demo cannot run (for example, --out holds files that are not a demo's)."""


@dataclass(frozen=True)
class DemoResult:
    out_dir: Path
    summary: Mapping[str, Any]


def run_demo(
    out_dir: Path,
    *,
    records_per_org: int = 5000,
    seed: int = 2026,
    show_progress: bool = True,
    console: Console | None = None,
    refreshes: int = 0,
) -> DemoResult:
    """Run the demo into ``out_dir`` and return its summary (also written as summary.json)."""
    console = console or Console()
    started = time.monotonic()
    _prepare_folder(out_dir)
    log_handler = _log_to(out_dir / "coordinator.log")
    try:
        with StageProgress(enabled=show_progress, console=console) as progress:
            result = _run(out_dir, records_per_org, seed, progress, started, refreshes)
    finally:
        logging.getLogger("hublink").removeHandler(log_handler)
        log_handler.close()
    _print_results(console, result)
    return result


def _run(
    out_dir: Path,
    records_per_org: int,
    seed: int,
    progress: StageProgress,
    started: float,
    refreshes: int = 0,
) -> DemoResult:
    progress("generate synthetic records", 0, 1)
    data = synthetic.generate(
        out_dir / "data",
        records_per_org,
        seed=seed,
        layouts=synthetic.with_areas(synthetic.DEFAULT_LAYOUTS),
    )
    progress("generate synthetic records", 1, 1)
    organisations = [layout.organisation for layout in data.layouts]
    port = free_port()
    configs = write_deployment(out_dir, data, port, secret_exchange=True)

    progress("start coordinator (mTLS)", 0, 1)
    coordinator = start_coordinator(load(configs["coordinator"], CoordinatorConfig))
    try:
        progress("start coordinator (mTLS)", 1, 1)
        progress("agree linkage secret (HPKE)", 0, 1)
        exchange_secrets(configs, organisations)
        progress("agree linkage secret (HPKE)", 1, 1)
        uploads = {}
        for organisation in organisations:
            node_config = load(configs[organisation], NodeConfig)

            def report(stage: str, done: int, total: int, org: str = organisation) -> None:
                progress(f"{stage} {org}", done, total)

            uploads[organisation] = upload(node_config, progress=report)

        admin_config = load(configs["admin"], ClientConfig)
        admin = AdminClient(open_channel(admin_config))
        run = admin.start_run(PROJECT_ID)

        run = admin.wait(PROJECT_ID, run.run_id)
        progress("match (anonlink)", 1, 1)
        if run.state != "completed":
            raise DemoError(f"matching run {run.run_id} ended {run.state}: {run.message}")
        quality_report = admin.quality_report(PROJECT_ID, run.run_id)

        linked: dict[str, Path] = {}
        for i, organisation in enumerate(organisations):
            linked[organisation] = fetch_keys(load(configs[organisation], NodeConfig)).output
            progress("fetch linkage keys", i + 1, len(organisations))

        analyst_config = load(configs["analyst"], ClientConfig)
        overlap = AnalystClient(open_channel(analyst_config)).overlap(PROJECT_ID)
        tables = fetch_counts(
            AnalystClient(open_channel(analyst_config)), PROJECT_ID, organisations
        )
        months: list[dict[str, Any]] = []
        if refreshes:
            # First month's figures are read now, before the months move the files on.
            first_predicted = _read_linked(linked)
            first_truth = {k: p for k, p in data.truth().items() if k in first_predicted}
            months = play_refreshes(
                refreshes,
                data,
                configs,
                organisations,
                admin,
                AnalystClient(open_channel(analyst_config)),
                seed=seed,
                progress=progress,
            )
        # The IG officer fetches a signed checkpoint over mTLS and keeps it.
        auditor_config = load(configs["auditor"], ClientConfig)
        kept = AuditClient(open_channel(auditor_config)).checkpoint()
    finally:
        coordinator.stop()
    audit = export_and_verify(
        out_dir,
        load(configs["coordinator"], CoordinatorConfig),
        kept.note,
        [load(configs[org], NodeConfig).state_dir for org in organisations],
        {
            ADMIN.organisation: "the linkage unit",
            ANALYST.organisation: "the Family Hubs analytics team",
            **{layout.organisation: layout.display_name for layout in data.layouts},
        },
    )

    if refreshes:
        predicted, truth = first_predicted, first_truth
    else:
        predicted = _read_linked(linked)
        # Records a consent rule excluded were never sent and have no key: the truth
        # is restricted to what was uploaded (every uploaded record has a key).
        truth = {k: person for k, person in data.truth().items() if k in predicted}
    quality = synthetic.pairwise_quality(predicted, truth)
    consent = {
        org: exclusion_counts(load(configs[org], NodeConfig).state_dir) for org in organisations
    }
    seconds = time.monotonic() - started
    counts = overlap_json(overlap)
    names = {layout.organisation: layout.display_name for layout in data.layouts}
    write_counts(out_dir, counts, tables, names)
    write_quality_report(out_dir / "quality.html", quality_report)
    summary: dict[str, Any] = {
        "project_id": PROJECT_ID,
        "records": sum(data.records.values()),
        "records_per_organisation": dict(data.records),
        "consent": consent,
        "precision": round(quality.cross.precision, 4),
        "recall": round(quality.cross.recall, 4),
        "f1": round(quality.cross.f1, 4),
        "cross_organisation": _quality_json(quality.cross),
        "within_organisation": _quality_json(quality.within),
        "threshold": run.threshold,
        "estimated_quality": _estimate_json(quality_report),
        "entities": run.entities,
        "linked_entities": run.linked_entities,
        "match_seconds": round(run.seconds, 3),
        "seconds": round(seconds, 2),
        "overlap": counts["cells"],
        "audit": audit,
        "display_names": {layout.organisation: layout.display_name for layout in data.layouts},
        "files": {
            "linked": {org: str(path.relative_to(out_dir)) for org, path in linked.items()},
            "coordinator_database": "coordinator/coordinator.db",
            "truth": str(data.truth_path.relative_to(out_dir)),
            "quality_report": "quality.html",
        },
    }
    if refreshes:
        summary["refreshes"] = months
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return DemoResult(out_dir, summary)


def _estimate_json(report: admin_pb2.QualityReport) -> dict[str, object]:
    """What the coordinator estimated without the truth, to set beside the measured figures."""
    q = report.quality
    return {
        "threshold_used": round(report.threshold_used, 4),
        "threshold_estimated": round(q.threshold_estimated, 4),
        "estimated": q.estimated,
        "precision": round(q.precision, 4),
        "precision_sd": round(q.precision_sd, 4),
        "recall": round(q.recall, 4),
        "recall_sd": round(q.recall_sd, 4),
        "precision_interval": [round(q.precision_low, 4), round(q.precision_high, 4)],
        "recall_interval": [round(q.recall_low, 4), round(q.recall_high, 4)],
        "caveats": [
            {"code": c.code, "message": c.message, "untrusted": c.untrusted} for c in q.caveats
        ],
        "line": estimate_line(q),
        "links_near_threshold": q.links_near_threshold,
        "records_with_several_candidates": q.records_with_several_candidates,
    }


def _quality_json(quality: synthetic.Quality) -> dict[str, float | int]:
    return {
        "precision": round(quality.precision, 4),
        "recall": round(quality.recall, 4),
        "f1": round(quality.f1, 4),
        "true_pairs": quality.true_pairs,
        "predicted_pairs": quality.predicted_pairs,
        "correct_pairs": quality.correct_pairs,
    }


def _prepare_folder(out_dir: Path) -> None:
    """Use an empty or earlier-demo folder; never delete files the demo did not write."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise DemoError(f"{out_dir} exists and is not a folder")
        if any(out_dir.iterdir()):
            if not (out_dir / MARKER).exists():
                raise DemoError(
                    f"{out_dir} is not empty and was not written by hublink demo; "
                    "choose another --out"
                )
            shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("written by hublink demo; safe to delete\n")


def _log_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("hublink")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def _read_linked(linked: Mapping[str, Path]) -> dict[tuple[str, str], str]:
    predicted: dict[tuple[str, str], str] = {}
    for organisation, path in linked.items():
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                predicted[(organisation, row["local_id"])] = row["linkage_key"]
    return predicted


def _print_results(console: Console, result: DemoResult) -> None:
    summary = result.summary
    overlap = Overlap(
        summary["project_id"],
        "",
        tuple(OverlapCell(tuple(c["datasets"]), c["value"]) for c in summary["overlap"]),
        json.loads((result.out_dir / "counts.json").read_text())["disclosure_rule"],
    )
    console.print(overlap_table(overlap, summary["display_names"]))
    quality = Table(title="Linkage quality against the synthetic truth (pairs of records)")
    for column in ("", "precision", "recall", "F1", "true pairs"):
        quality.add_column(column, justify="right" if column else "left")
    for label, key in (
        ("across organisations", "cross_organisation"),
        ("within an organisation", "within_organisation"),
    ):
        q = summary[key]
        quality.add_row(
            label,
            f"{q['precision']:.3f}",
            f"{q['recall']:.3f}",
            f"{q['f1']:.3f}",
            f"{q['true_pairs']:,}",
        )
    console.print(quality)
    estimate = summary["estimated_quality"]
    console.print(
        f"Estimated by the coordinator without the truth: threshold "
        f"{estimate['threshold_used']:.3f}, {estimate['line']} (per record; report: quality.html)"
    )
    decisions = Table(title="Consent decisions at each node (first rule that excluded a record)")
    for column in ("organisation", "decision", "records"):
        decisions.add_column(column, justify="right" if column == "records" else "left")
    for organisation, counts in summary.get("consent", {}).items():
        for rule, count in counts["decisions"].items():
            decisions.add_row(organisation, rule, f"{count:,}")
    console.print(decisions)
    print_audit(console, summary["audit"])
    console.print(
        f"{summary['records']:,} records linked in {summary['seconds']:.1f} s; "
        f"everything is in {result.out_dir}/ (summary.json, nodes/*/linked.csv, "
        "coordinator/coordinator.db, coordinator.log)"
    )
    print_counts(console, result.out_dir, summary["display_names"])
    if summary.get("refreshes"):
        print_months(console, summary["refreshes"])
