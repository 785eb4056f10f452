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
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from coordinator.app import start as start_coordinator
from hublink import demo_audit, demo_counts, sealing, synthetic
from hublink.auditclient import AuditClient
from hublink.clients import AdminClient, AnalystClient, Overlap, OverlapCell
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo_policy import write_policy
from hublink.identity import Identity, Role
from hublink.pki import create_authority, issue_certificate
from hublink.quality_report import write as write_quality_report
from hublink.report import StageProgress, overlap_json, overlap_table
from hublink.spec import LinkageSpec
from hublink.tls import TlsFiles, secure_channel
from hublink.v1 import admin_pb2
from node.exclusions import read_counts as exclusion_counts
from node.keys import fetch_keys
from node.secret_exchange import generate_node_key, load_node_key, raw_public
from node.secret_workflow import create_secret, fetch_secret, publish_key
from node.workflow import upload

PROJECT_ID = "early-years-demo"
MARKER = ".hublink-demo"
COORDINATOR = Identity("linkage-unit", Role.COORDINATOR)
ADMIN = Identity("linkage-unit", Role.ADMIN)
ANALYST = Identity("family-hubs-analytics", Role.ANALYST)
AUDITOR = Identity("information-governance", Role.AUDITOR)

log = logging.getLogger("hublink.demo")


class DemoError(RuntimeError):
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
) -> DemoResult:
    """Run the demo into ``out_dir`` and return its summary (also written as summary.json)."""
    console = console or Console()
    started = time.monotonic()
    _prepare_folder(out_dir)
    log_handler = _log_to(out_dir / "coordinator.log")
    try:
        with StageProgress(enabled=show_progress, console=console) as progress:
            result = _run(out_dir, records_per_org, seed, progress, started)
    finally:
        logging.getLogger("hublink").removeHandler(log_handler)
        log_handler.close()
    _print_results(console, result)
    return result


def _run(
    out_dir: Path, records_per_org: int, seed: int, progress: StageProgress, started: float
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
        admin = AdminClient(_channel(admin_config))
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
        overlap = AnalystClient(_channel(analyst_config)).overlap(PROJECT_ID)
        tables = demo_counts.fetch(
            AnalystClient(_channel(analyst_config)), PROJECT_ID, organisations
        )
        # The IG officer fetches a signed checkpoint over mTLS and keeps it.
        auditor_config = load(configs["auditor"], ClientConfig)
        kept = AuditClient(_channel(auditor_config)).checkpoint()
    finally:
        coordinator.stop()
    audit = demo_audit.export_and_verify(
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
    demo_counts.write(out_dir, counts, tables, names)
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


def free_port() -> int:
    """A loopback port nothing listens on now (the coordinator binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _channel(config: ClientConfig) -> Any:
    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    return secure_channel(config.coordinator, tls, server_name=config.server_name or None)


def _toml_str(value: str) -> str:
    return json.dumps(value)


def write_deployment(
    out_dir: Path,
    data: synthetic.GeneratedData,
    port: int,
    *,
    secret_exchange: bool = False,
    field_scoring: bool = True,
) -> dict[str, Path]:
    """Certificates, the project, and one config per party, as operators would write them.

    Returns the config file of each party: "coordinator", "admin", "analyst"
    and one per organisation of ``data``. The tests build their deployments
    with this too, so the demo and the tests exercise the same files.

    With ``secret_exchange`` the nodes agree their linkage secret through the
    coordinator (``exchange_secrets``): each node gets a key pair in its state
    folder, and the fingerprints, as each organisation would confirm them, go
    into the project file and every node's config. Without it the nodes share
    one secret file, the option for organisations that exchange it themselves.

    With ``field_scoring`` (the demo's choice) nodes also send per-field
    filters and the coordinator decides duplicate referrals field by field.
    """
    pki_dir = out_dir / "pki"
    spec = LinkageSpec.from_json(LinkageSpec.default().json_text, field_scoring=field_scoring)
    authority = create_authority(pki_dir, name="hublink demo CA")
    config_dir = out_dir / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    schema_path = config_dir / "early-years.json"
    schema_path.write_text(LinkageSpec.default().json_text + "\n", encoding="utf-8")

    def tls_block(identity: Identity) -> str:
        files = issue_certificate(authority, identity, pki_dir)
        return (
            f"[tls]\nca = {_toml_str(str(files.ca.resolve()))}\n"
            f"cert = {_toml_str(str(files.cert.resolve()))}\n"
            f"key = {_toml_str(str(files.key.resolve()))}\n"
        )

    organisations = [layout.organisation for layout in data.layouts]
    node_tls = {org: tls_block(Identity(org, Role.NODE)) for org in organisations}
    node_keys = ""
    if secret_exchange:
        node_keys = "\n[node_keys]\n" + "".join(
            f"{org} = {_toml_str(_node_key(out_dir / 'nodes' / org / 'state', pki_dir, org))}\n"
            for org in organisations
        )
    project = config_dir / "project.toml"
    project.write_text(
        f"id = {_toml_str(PROJECT_ID)}\n"
        'purpose = "Find children known to one early-years service but not the others, to '
        'plan Family Hub outreach"\n'
        f"organisations = {json.dumps(organisations)}\n"
        'schema = "early-years.json"\n'
        f"encoding_sha256 = {_toml_str(spec.sha256)}\n"
        f"field_scoring = {str(field_scoring).lower()}\n"
        "threshold = 0.83\n"
        "auto_threshold = true\n"
        "within_threshold = 0.9\n"
        'disclosure = "hospital-statistics"\n'
        'released_attributes = ["age_band", "area"]\n'
        f"analysts = {json.dumps([ANALYST.organisation])}\n"
        f"attribute_precedence = {json.dumps(organisations)}\n"
        f"reference_date = {_toml_str(synthetic.REFERENCE_DATE.isoformat())}\n" + node_keys
    )
    coordinator_dir = out_dir / "coordinator"
    coordinator_dir.mkdir(exist_ok=True)
    paths = {"coordinator": config_dir / "coordinator.toml"}
    paths["coordinator"].write_text(
        f'listen = "127.0.0.1:{port}"\n'
        'ops_listen = "127.0.0.1:0"\n'
        f"database = {_toml_str(str((coordinator_dir / 'coordinator.db').resolve()))}\n"
        f"projects = [{_toml_str(str(project.resolve()))}]\n\n" + tls_block(COORDINATOR)
    )
    secret = out_dir / "secrets" / "project-secret"
    if not secret_exchange:
        secret.parent.mkdir(mode=0o700, exist_ok=True)
        secret.write_text(secrets.token_urlsafe(32) + "\n")
        secret.chmod(0o600)
    for layout in data.layouts:
        org = layout.organisation
        columns = "\n".join(
            f"{field} = {_toml_str(column)}" for field, column in layout.columns.items()
        )
        node_dir = out_dir / "nodes" / org
        node_dir.mkdir(parents=True, exist_ok=True)
        policy = write_policy(node_dir, layout, data.csv_paths[org])
        paths[org] = node_dir / "node.toml"
        paths[org].write_text(
            f'coordinator = "localhost:{port}"\n'
            f"project = {_toml_str(PROJECT_ID)}\n"
            f"schema = {_toml_str(str(schema_path.resolve()))}\n"
            f"field_scoring = {str(field_scoring).lower()}\n"
            + (
                "secret_exchange = true\n"
                if secret_exchange
                else f"secret_file = {_toml_str(str(secret.resolve()))}\n"
            )
            + f"consent_policy = {_toml_str(str(policy.resolve()))}\n"
            'state_dir = "state"\n'
            'output = "linked.csv"\n\n'
            f"[input]\npath = {_toml_str(str(data.csv_paths[org].resolve()))}\n"
            f"id_column = {_toml_str(layout.id_column)}\n\n"
            f"[input.columns]\n{columns}\n\n"
            + _attributes_block(layout)
            + node_tls[org]
            + node_keys
        )
    for name, identity in (("admin", ADMIN), ("analyst", ANALYST), ("auditor", AUDITOR)):
        paths[name] = config_dir / f"{name}.toml"
        paths[name].write_text(f'coordinator = "localhost:{port}"\n\n' + tls_block(identity))
    return paths


def _node_key(state_dir: Path, pki_dir: Path, organisation: str) -> str:
    """Make a node's secret-exchange key pair; return the fingerprint its organisation confirms."""
    generate_node_key(state_dir)
    certificate = (pki_dir / f"{Role.NODE.value}-{organisation}.pem").read_text()
    return sealing.fingerprint(raw_public(load_node_key(state_dir)), certificate)


def exchange_secrets(
    configs: Mapping[str, Path],
    organisations: Sequence[str],
    *,
    channel_for: Callable[[str], grpc.Channel | None] = lambda org: None,
) -> int:
    """Agree the project's linkage secret across the nodes through the coordinator.

    Every node publishes its key; the first creates and seals the secret; the
    others fetch and open their copies. Returns the new epoch. ``channel_for``
    lets tests record what each node sends.
    """
    for org in organisations:
        publish_key(load(configs[org], NodeConfig), channel=channel_for(org))
    first, *others = organisations
    epoch = create_secret(load(configs[first], NodeConfig), channel=channel_for(first)).epoch
    for org in others:
        fetch_secret(load(configs[org], NodeConfig), epoch, channel=channel_for(org))
    return epoch


def _read_linked(linked: Mapping[str, Path]) -> dict[tuple[str, str], str]:
    predicted: dict[tuple[str, str], str] = {}
    for organisation, path in linked.items():
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                predicted[(organisation, row["local_id"])] = row["linkage_key"]
    return predicted


def _attributes_block(layout: synthetic.OrganisationLayout) -> str:
    """The node's released attributes: age band from its DOB column, area from its LA column."""
    block = (
        "[attributes.age_band]\n"
        f"column = {_toml_str(layout.columns['date_of_birth'])}\n"
        'derive = "age_band"\n\n'
    )
    if layout.area_column:
        block += f"[attributes.area]\ncolumn = {_toml_str(layout.area_column)}\n\n"
    return block


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
    if estimate["estimated"]:
        console.print(
            f"Estimated by the coordinator without the truth: threshold "
            f"{estimate['threshold_used']:.3f}, precision {estimate['precision']:.3f} "
            f"± {estimate['precision_sd']:.1g}, recall {estimate['recall']:.3f} "
            f"± {estimate['recall_sd']:.1g} (per record; report: quality.html)"
        )
    decisions = Table(title="Consent decisions at each node (first rule that excluded a record)")
    for column in ("organisation", "decision", "records"):
        decisions.add_column(column, justify="right" if column == "records" else "left")
    for organisation, counts in summary.get("consent", {}).items():
        for rule, count in counts["decisions"].items():
            decisions.add_row(organisation, rule, f"{count:,}")
    console.print(decisions)
    demo_audit.print_audit(console, summary["audit"])
    console.print(
        f"{summary['records']:,} records linked in {summary['seconds']:.1f} s; "
        f"everything is in {result.out_dir}/ (summary.json, nodes/*/linked.csv, "
        "coordinator/coordinator.db, coordinator.log)"
    )
    demo_counts.print_counts(console, result.out_dir, summary["display_names"])
