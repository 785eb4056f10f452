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
)


def _user_errors() -> tuple[type[Exception], ...]:
    # Imported lazily so that `hublink --help` does not load clkhash and anonlink.
    from coordinator.rpc.server import BindError
    from hublink.clients import RequestRefused
    from hublink.demo import DemoError
    from node.source import InputError
    from node.uploader import CoordinatorRefused
    from node.workflow import NodeError

    return (
        *USER_ERRORS,
        InputError,
        NodeError,
        CoordinatorRefused,
        RequestRefused,
        BindError,
        DemoError,
    )


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
@friendly
def coordinator_serve(config_path: Path, verbose: bool) -> None:
    """Serve gRPC with mutual TLS until interrupted (Ctrl-C or SIGTERM)."""
    from coordinator.app import start

    _configure_logging(verbose)
    running = start(load(config_path, CoordinatorConfig))
    click.echo(f"coordinator listening on port {running.port}", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    running.stop(grace=10.0)


# ---------------------------------------------------------------------------- node
@main.group()
def node() -> None:
    """Run an organisation's node: encode and upload records, fetch linkage keys."""


@node.command("upload")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Node TOML file.",
)
@friendly
def node_upload(config_path: Path) -> None:
    """Read the CSV, normalise and encode its identifiers, and upload the encodings."""
    from node.workflow import upload

    config = load(config_path, NodeConfig)
    with _progress() as report:
        summary = upload(config, progress=report)
    click.echo(
        f"{summary.organisation}: uploaded {summary.records} encoded records to "
        f"{summary.project_id} (upload {summary.upload_id}, digest "
        f"{summary.digest_sha256[:16]}…)"
    )


@node.command("keys")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Node TOML file.",
)
@friendly
def node_keys(config_path: Path) -> None:
    """Fetch this organisation's linkage keys and write linked.csv (local id, key)."""
    from node.workflow import fetch_keys

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
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Client TOML file.",
)
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

    config = load(config_path, ClientConfig)
    client = AdminClient(_channel(config), timeout=config.timeout_seconds)
    report = client.start_run(project, threshold)
    if not no_wait:
        report = client.wait(project, report.run_id)
    click.echo(
        f"run {report.run_id}: {report.state}; {report.records} records, "
        f"{report.entities} entities ({report.linked_entities} linked across "
        f"organisations) at threshold {report.threshold:g} in {report.seconds:.1f} s"
        + (f"; {report.message}" if report.message else "")
    )
    if report.state not in ("completed", "running"):
        sys.exit(1)


@admin.command("status")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Client TOML file.",
)
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


# ------------------------------------------------------------------------- analyst
@main.group()
def analyst() -> None:
    """Aggregate counts over linked data, with small numbers suppressed."""


@analyst.command("overlap")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Client TOML file.",
)
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


def _progress() -> Any:
    from hublink.report import StageProgress

    return StageProgress(enabled=sys.stderr.isatty())
