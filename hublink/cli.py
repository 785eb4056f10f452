"""The ``hublink`` command: one entry point that dispatches to the node, coordinator and clients.

Every failure a user can cause (a bad config, a missing column, a refused
call) ends as one readable line on standard error and a non-zero exit, never
a traceback.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hublink import __version__
from hublink.backup import BackupError
from hublink.config import ClientConfig, ConfigError, CoordinatorConfig, NodeConfig, load
from hublink.identity import Identity, InvalidIdentity, Role
from hublink.spec import SpecError
from hublink.tls import TlsConfigError, TlsFiles, secure_channel

F = TypeVar("F", bound=Callable[..., Any])

#: Exceptions that are the user's to fix: shown as one line, exit status 1.
USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    SpecError,
    TlsConfigError,
    InvalidIdentity,
    FileExistsError,
    FileNotFoundError,
    BackupError,
)


def _user_errors() -> tuple[type[Exception], ...]:
    # Imported lazily so that `hublink --help` does not load clkhash and anonlink.
    from coordinator.core.migrations import MigrationError
    from coordinator.rpc.server import BindError
    from hublink.auditlog import AuditFileError
    from hublink.checkpoint import CheckpointError
    from hublink.clients import RequestRefused
    from hublink.demo import DemoError
    from node.errors import RunError as NodeError
    from node.policy_file import PolicyError
    from node.secret_exchange import ExchangeError
    from node.source import InputError
    from node.uploader import CoordinatorRefused

    return (
        *USER_ERRORS,
        InputError,
        PolicyError,
        NodeError,
        ExchangeError,
        CoordinatorRefused,
        RequestRefused,
        BindError,
        DemoError,
        CheckpointError,
        AuditFileError,
        MigrationError,
    )


def _config_option(help_text: str) -> Callable[[F], F]:
    """The --config option every command takes: one TOML file per party."""
    return click.option(
        "--config",
        "config_path",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help=help_text,
    )


_CONFIG_OPTION = _config_option("Node TOML file.")
_CLIENT_CONFIG_OPTION = _config_option("Client TOML file (an admin's, analyst's or auditor's).")


def friendly(command: F) -> F:
    """Turn the errors a user can cause into one line on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except _user_errors() as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hublink")
def main() -> None:
    """hublink links family-services records across organisations without pooling identifiers.

    Each organisation runs a node that hashes its records into keyed Bloom-filter
    encodings; a coordinator matches the encodings and returns only linkage keys
    and suppressed aggregate counts. Start with `hublink demo`.
    """


# ---------------------------------------------------------------------------- demo
@main.command()
@click.option(
    "--records",
    default=5000,
    show_default=True,
    type=click.IntRange(50, 2_000_000),
    help="Synthetic records per organisation.",
)
@click.option(
    "--out",
    "out_dir",
    default="hublink-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for every artefact (data, certificates, configs, databases, results).",
)
@click.option("--seed", default=2026, show_default=True, help="Seed for the synthetic data.")
@click.option("--quiet", is_flag=True, help="No progress display, only the results.")
@friendly
def demo(records: int, out_dir: Path, seed: int, quiet: bool) -> None:
    """Run the whole flow on synthetic data: three organisations, a coordinator, real mutual TLS.

    Generates early-years records with known truth, makes a throwaway certificate
    authority, starts a coordinator and three nodes on loopback, links, prints the
    overlap table and the linkage quality, and writes summary.json into --out.
    """
    from hublink.demo import run_demo

    run_demo(out_dir, records_per_org=records, seed=seed, show_progress=not quiet)


@main.command("config-reference")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the page to this file (e.g. docs/configuration.md) instead of printing it.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if --output differs from what would be written.",
)
@friendly
def config_reference(output: Path | None, check: bool) -> None:
    """Print the reference of every configuration setting, generated from the code.

    Lists every key of the coordinator, project, node and client files with its
    type, default and meaning, as docs/configuration.md holds it.
    """
    import os
    import tempfile

    from hublink.config_reference import render

    page = render()
    if output is None:
        click.echo(page, nl=False)
        return
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != page:
            raise click.ClickException(
                f"{output} is out of date; run `hublink config-reference --output {output}`"
            )
        return
    fd, temp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(page)
    os.replace(temp, output)
    click.echo(f"wrote {output}", err=True)


# --------------------------------------------------------------------- coordinator
@main.group()
def coordinator() -> None:
    """Run the coordinator, which matches encodings and releases keys and counts."""


@coordinator.command("serve")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Coordinator TOML file.",
)
@click.option("--verbose", is_flag=True, help="Debug logging.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text, or one JSON object a line (default: log_format in the config).",
)
@friendly
def coordinator_serve(config_path: Path, verbose: bool, log_format: str | None) -> None:
    """Serve gRPC with mutual TLS until interrupted (Ctrl-C or SIGTERM).

    Also serves /healthz, /readyz and /metrics over plain HTTP on ops_listen
    (default 127.0.0.1:9100) for probes and Prometheus. On SIGTERM it reports
    not ready, lets requests and matching runs finish for shutdown_grace_seconds,
    records any run still going as failed, and exits.
    """
    from coordinator.app import start
    from hublink import logformat

    config = load(config_path, CoordinatorConfig)
    if config.log_format not in logformat.FORMATS:
        raise ConfigError(f'{config_path}: log_format must be "text" or "json"')
    log_format = log_format or config.log_format
    logformat.configure(logging.DEBUG if verbose else logging.INFO, log_format)
    running = start(config)
    if log_format == "text":  # in JSON, every line of standard error is a log object
        click.echo(f"coordinator listening on port {running.port}", err=True)
        if running.ops_port is not None:
            click.echo(f"health and metrics on http port {running.ops_port}", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    running.stop(grace=config.shutdown_grace_seconds)


# ---------------------------------------------------------------------------- node
@main.group()
def node() -> None:
    """Run an organisation's node: encode and upload records, fetch linkage keys."""


@node.command("upload")
@_CONFIG_OPTION
@click.option(
    "--dry-run", is_flag=True, help="Do everything short of sending (same as `hublink node plan`)."
)
@friendly
def node_upload(config_path: Path, dry_run: bool) -> None:
    """Read the CSV, apply the consent policy, encode the identifiers, and upload the encodings.

    Unreadable rows go to the rejects file; the exclusion report and node.log
    in the state folder say what was left out and why.
    """
    from node.workflow import upload

    config = load(config_path, NodeConfig)
    if dry_run:
        _plan(config)
        return
    with _progress() as report:
        summary = upload(
            config, progress=report, warn=lambda line: click.echo(f"warning: {line}", err=True)
        )
    click.echo(
        f"{summary.organisation}: uploaded {summary.records} encoded records to "
        f"{summary.project_id} (upload {summary.upload_id}, digest "
        f"{summary.digest_sha256[:16]}…)"
    )
    click.echo(
        f"  {summary.excluded} records left out by consent, {summary.rejected} unreadable rows; "
        f"see {config.state_dir / 'exclusion-report.txt'}"
    )
    for note in summary.notes:  # an interrupted upload resumed or abandoned, and why
        click.echo(f"  {note}")


@node.command("plan")
@_CONFIG_OPTION
@friendly
def node_plan(config_path: Path) -> None:
    """Dry run: show what an upload would send, and why records are left out. Sends nothing.

    Reads the CSV and the consent policy exactly as an upload does and writes
    the same exclusion report and rejects file, but contacts no coordinator
    and hashes nothing.
    """
    _plan(load(config_path, NodeConfig))


def _plan(config: NodeConfig) -> None:
    from node.plan import plan, render

    click.echo(render(plan(config)))


@node.command("withdraw")
@_CONFIG_OPTION
@click.option(
    "--file",
    "id_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File of local record ids (one a line, or a CSV with a local id column).",
)
@click.argument("local_ids", nargs=-1)
@friendly
def node_withdraw(config_path: Path, id_file: Path | None, local_ids: tuple[str, ...]) -> None:
    """Withdraw records whose consent was withdrawn after upload (LOCAL_IDS or --file).

    The coordinator deletes their encodings; this node leaves them out of
    every later upload, and node.log records when the withdrawal was honoured.
    """
    from node.withdraw import read_id_file, withdraw

    config = load(config_path, NodeConfig)
    ids = list(local_ids)
    if id_file is not None:
        ids += read_id_file(id_file, config.input.id_column)
    if not ids:
        raise click.UsageError("give local record ids or --file")
    done = withdraw(config, ids)
    click.echo(
        f"{done.organisation}: {done.requested} records withdrawn from {done.project_id}; "
        f"coordinator deleted {done.withdrawn} ({done.not_found} not found); "
        f"{done.never_uploaded} were never uploaded and will not be"
    )


@node.group("secret")
def node_secret() -> None:
    """Agree the project's linkage secret through the coordinator, which cannot read it.

    Each node runs `keygen` (and confirms the printed fingerprint with the
    project's owner), then `publish`; one node runs `create`; every other node
    runs `fetch` (upload fetches it too when secret_exchange = true).
    """


@node_secret.command("keygen")
@_CONFIG_OPTION
@friendly
def node_secret_keygen(config_path: Path) -> None:
    """Create this node's X25519 key pair (kept if one exists) and print its fingerprint."""
    from node.secret_workflow import keygen

    info = keygen(load(config_path, NodeConfig))
    state = "created" if info.created else "kept existing"
    click.echo(f"{info.organisation}: {state} node key {info.path}")
    click.echo(f"fingerprint (confirm it for the project file's [node_keys]): {info.fingerprint}")


@node_secret.command("publish")
@_CONFIG_OPTION
@friendly
def node_secret_publish(config_path: Path) -> None:
    """Publish this node's public key to the project, signed with its certificate's key."""
    from node.secret_workflow import publish_key

    info = publish_key(load(config_path, NodeConfig))
    click.echo(f"{info.organisation}: published node key {info.fingerprint}")


@node_secret.command("create")
@_CONFIG_OPTION
@friendly
def node_secret_create(config_path: Path) -> None:
    """Start a new secret epoch: seal a fresh secret to every member's verified key."""
    from node.secret_workflow import create_secret

    info = create_secret(load(config_path, NodeConfig))
    click.echo(f"{info.project_id}: started secret epoch {info.epoch}; stored in {info.path}")


@node_secret.command("fetch")
@_CONFIG_OPTION
@click.option("--epoch", default=0, type=click.IntRange(0), help="Epoch (default: the latest).")
@friendly
def node_secret_fetch(config_path: Path, epoch: int) -> None:
    """Fetch, verify and open this node's sealed copy of the project's secret."""
    from node.secret_workflow import fetch_secret

    info = fetch_secret(load(config_path, NodeConfig), epoch)
    click.echo(f"{info.project_id}: holds the secret of epoch {info.epoch} in {info.path}")


@node.command("keys")
@_CONFIG_OPTION
@friendly
def node_keys(config_path: Path) -> None:
    """Fetch this organisation's linkage keys and write linked.csv (local id, key)."""
    from node.keys import fetch_keys

    summary = fetch_keys(load(config_path, NodeConfig))
    click.echo(f"{summary.organisation}: wrote {summary.keys} linkage keys to {summary.output}")


# --------------------------------------------------------------------------- admin
def _channel(config: ClientConfig) -> Any:
    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    return secure_channel(config.coordinator, tls, server_name=config.server_name or None)


@main.group()
def admin() -> None:
    """Project administration: start matching runs, see a project's state."""


@admin.command("run")
@_CLIENT_CONFIG_OPTION
@click.option("--project", required=True, help="Project id.")
@click.option(
    "--threshold",
    default=0.0,
    type=click.FloatRange(0.0, 1.0),
    help="Similarity threshold for this run (default: the project's).",
)
@click.option("--no-wait", is_flag=True, help="Start the run and return at once.")
@friendly
def admin_run(config_path: Path, project: str, threshold: float, no_wait: bool) -> None:
    """Start matching every committed upload of a project, and wait for it to finish."""
    from hublink.clients import AdminClient
    from hublink.report import StageProgress

    config = load(config_path, ClientConfig)
    client = AdminClient(_channel(config), timeout=config.timeout_seconds)
    report = client.start_run(project, threshold)
    if not no_wait:
        with StageProgress(enabled=sys.stderr.isatty()) as progress:
            report = client.wait(
                project,
                report.run_id,
                poll=1.0,
                on_progress=lambda r: progress(f"run {r.stage or r.state}", r.done, r.total),
            )
    click.echo(
        f"run {report.run_id}: {report.state}; {report.records} records, "
        f"{report.entities} entities ({report.linked_entities} linked across "
        f"organisations) at threshold {report.threshold:g} in {report.seconds:.1f} s"
        + (f"; {report.message}" if report.message else "")
    )
    if report.state not in ("completed", "running"):
        sys.exit(1)


@admin.command("cancel")
@_CLIENT_CONFIG_OPTION
@click.option("--project", required=True, help="Project id.")
@click.option("--run", "run_id", required=True, help="Run id (as `admin run` printed it).")
@friendly
def admin_cancel(config_path: Path, project: str, run_id: str) -> None:
    """Cancel a matching run in progress; the previous run's keys stay in force."""
    from hublink.clients import AdminClient

    config = load(config_path, ClientConfig)
    report = AdminClient(_channel(config), timeout=config.timeout_seconds).cancel_run(
        project, run_id
    )
    click.echo(f"run {report.run_id}: {report.state}")


@admin.command("status")
@_CLIENT_CONFIG_OPTION
@click.option("--project", required=True, help="Project id.")
@friendly
def admin_status(config_path: Path, project: str) -> None:
    """Show which organisations have uploaded and the latest run."""
    from hublink.clients import AdminClient

    config = load(config_path, ClientConfig)
    state = AdminClient(_channel(config), timeout=config.timeout_seconds).project_state(project)
    click.echo(
        f"project {state.project_id} ({state.state}); latest run: {state.latest_run_id or 'none'}"
    )
    for dataset in state.datasets:
        click.echo(
            f"  {dataset.organisation}: "
            + (
                f"{dataset.records} records (upload {dataset.upload_id})"
                if dataset.upload_id
                else "no upload yet"
            )
        )


@admin.command("close")
@_CLIENT_CONFIG_OPTION
@click.option("--project", required=True, help="Project id.")
@click.option("--reason", required=True, help="Why the project is closed (goes to the audit log).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly
def admin_close(config_path: Path, project: str, reason: str, yes: bool) -> None:
    """Close a project: the coordinator erases its encodings, entities and keys for good."""
    from hublink.clients import AdminClient

    if not yes:
        click.confirm(f"Erase everything the coordinator holds for {project}?", abort=True)
    config = load(config_path, ClientConfig)
    erased = AdminClient(_channel(config), timeout=config.timeout_seconds).close_project(
        project, reason
    )
    click.echo(f"project {project} closed; {erased} encoded records erased")


@admin.command("quality")
@_CLIENT_CONFIG_OPTION
@click.option("--project", required=True, help="Project id.")
@click.option("--run", "run_id", default="", help="Run id (default: the latest completed run).")
@click.option(
    "--out",
    "out_path",
    default=Path("quality.html"),
    type=click.Path(dir_okay=False, path_type=Path),
    show_default=True,
    help="HTML file to write.",
)
@friendly
def admin_quality(config_path: Path, project: str, run_id: str, out_path: Path) -> None:
    """Write a run's linkage-quality report (score distribution, estimated precision/recall,
    per-organisation link and duplicate rates) as one HTML page with charts."""
    from hublink.clients import AdminClient
    from hublink.quality_report import write

    config = load(config_path, ClientConfig)
    report = AdminClient(_channel(config), timeout=config.timeout_seconds).quality_report(
        project, run_id
    )
    write(out_path, report)
    q = report.quality
    click.echo(
        f"run {report.run_id}: threshold {report.threshold_used:.3f}; "
        + (
            f"estimated precision {q.precision:.3f} ± {q.precision_sd:.3f}, "
            f"recall {q.recall:.3f} ± {q.recall_sd:.3f}"
            if q.estimated
            else f"no estimate ({q.not_estimated_because})"
        )
        + (
            f"; estimated duplicate pairs {q.duplicates.estimated_duplicate_pairs:.1f} "
            f"({q.duplicates.linked} linked)"
            if q.HasField("duplicates")
            else ""
        )
        + f"; report written to {out_path}"
    )


# ------------------------------------------------------------------------- analyst
@main.group()
def analyst() -> None:
    """Aggregate counts over linked data, with small numbers suppressed."""


@analyst.command("overlap")
@_CLIENT_CONFIG_OPTION
@click.option("--project", required=True, help="Project id.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@friendly
def analyst_overlap(config_path: Path, project: str, fmt: str) -> None:
    """How many children appear in each combination of the project's datasets."""
    from hublink.clients import AnalystClient
    from hublink.report import overlap_json, print_overlap

    config = load(config_path, ClientConfig)
    overlap = AnalystClient(_channel(config), timeout=config.timeout_seconds).overlap(project)
    if fmt == "json":
        click.echo(json.dumps(overlap_json(overlap), indent=2))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["datasets", "count", "suppressed"])
        for cell in overlap.cells:
            writer.writerow(
                ["+".join(cell.datasets), "" if cell.value is None else cell.value, cell.suppressed]
            )
    else:
        print_overlap(overlap)


@analyst.command("counts")
@_CLIENT_CONFIG_OPTION
@click.option("--project", required=True, help="Project id.")
@click.option(
    "--by",
    "by",
    multiple=True,
    help="Break down by this dimension (repeatable, at most 3): 'datasets' for the "
    "combination of services, or a released attribute such as area or age_band. "
    "Default: datasets (an overlap table).",
)
@click.option(
    "--in", "datasets_in", multiple=True, help="Count only children known to this dataset."
)
@click.option("--not-in", "datasets_out", multiple=True, help="...and not known to this dataset.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the table as a PNG chart (UpSet for overlaps, bars for breakdowns).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write an HTML report with the chart and the table.",
)
@friendly
def analyst_counts(
    config_path: Path,
    project: str,
    by: tuple[str, ...],
    datasets_in: tuple[str, ...],
    datasets_out: tuple[str, ...],
    fmt: str,
    chart: Path | None,
    html_path: Path | None,
) -> None:
    """Protected counts: overlaps, 'in A but not in B', breakdowns by released attributes.

    Every cell passes the project's disclosure control at the coordinator
    (small counts withheld as *, others perturbed and rounded) and the query
    is audited.
    """
    from hublink.clients import AnalystClient
    from hublink.countview import counts_json, counts_rows, pivot_table

    config = load(config_path, ClientConfig)
    client = AnalystClient(_channel(config), timeout=config.timeout_seconds)
    dimensions = by if by or datasets_in or datasets_out else ("datasets",)
    if (chart or html_path) and not dimensions:
        raise click.UsageError("--chart and --html need at least one --by dimension")
    counts = client.counts(project, dimensions, datasets_in, datasets_out)
    if fmt == "json":
        click.echo(json.dumps(counts_json(counts), indent=2))
    elif fmt == "csv":
        csv.writer(sys.stdout).writerows(counts_rows(counts))
    else:
        from rich.console import Console

        Console().print(pivot_table(counts))
    if chart or html_path:
        from hublink.charts import figure_for, html_report, png_bytes, write_atomically, write_chart

        png = write_chart(chart, counts) if chart else png_bytes(figure_for(counts, {}))
        if html_path:
            page = html_report([(counts.query, counts, png)])
            write_atomically(html_path, page.encode())


# ----------------------------------------------------------------------------- pki
@main.group()
def pki() -> None:
    """A pilot certificate authority (production organisations use their own CAs)."""


@pki.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="hublink pilot CA", show_default=True, help="CA common name.")
@friendly
def pki_init(directory: Path, name: str) -> None:
    """Create a certificate authority in DIRECTORY (ca.pem, and ca.key readable by owner only)."""
    from hublink.pki import create_authority

    files = create_authority(directory, name=name)
    click.echo(f"created {files.cert} and {files.key}")


@pki.command("issue")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--organisation", required=True, help="Organisation slug, e.g. health-visiting.")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="What the holder may do.",
)
@click.option(
    "--dns",
    "dns_names",
    multiple=True,
    default=["localhost"],
    show_default=True,
    help="DNS name for the certificate (repeatable).",
)
@click.option(
    "--ip",
    "ip_addresses",
    multiple=True,
    default=["127.0.0.1"],
    show_default=True,
    help="IP address for the certificate (repeatable).",
)
@click.option(
    "--days", default=825, show_default=True, type=click.IntRange(1, 3650), help="Validity in days."
)
@friendly
def pki_issue(
    directory: Path,
    organisation: str,
    role: str,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
    days: int,
) -> None:
    """Issue a certificate naming ORGANISATION in ROLE, signed by the CA in DIRECTORY."""
    from hublink.pki import issue_certificate, load_authority

    authority = load_authority(directory)
    files = issue_certificate(
        authority,
        Identity(organisation, Role(role)),
        directory,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        days=days,
    )
    click.echo(f"issued {files.cert} (key {files.key})")


@pki.command("revoke")
@click.argument("certificate", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--list",
    "deny_list",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The coordinator's revocation list (its revocation_list setting).",
)
@click.option("--reason", default="", help="A note kept beside the entry.")
@friendly
def pki_revoke(certificate: Path, deny_list: Path, reason: str) -> None:
    """Add CERTIFICATE to a revocation list; a running coordinator refuses it at once."""
    from cryptography import x509

    from coordinator.rpc.access import fingerprint
    from hublink.identity import identity_from_certificate

    pem = certificate.read_bytes()
    try:
        parsed = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise click.ClickException(f"{certificate}: not a PEM certificate") from None
    who = identity_from_certificate(pem)
    note = f"  # {who}" + (f": {reason}" if reason else "")
    with deny_list.open("a", encoding="utf-8") as handle:
        handle.write(f"sha256:{fingerprint(parsed)}{note}\n")
    click.echo(f"revoked the certificate of {who} in {deny_list}")


# --------------------------------------------------------------------------- audit
def _add_audit_commands() -> None:
    from hublink.auditcli import audit

    main.add_command(audit)


_add_audit_commands()


def _add_backup_commands() -> None:
    from hublink import backupcli

    for group, command in (
        (coordinator, backupcli.coordinator_backup),
        (coordinator, backupcli.coordinator_restore),
        (node, backupcli.node_backup),
        (node, backupcli.node_restore),
    ):
        group.add_command(command)


_add_backup_commands()


def _progress() -> Any:
    from hublink.report import StageProgress

    return StageProgress(enabled=sys.stderr.isatty())
