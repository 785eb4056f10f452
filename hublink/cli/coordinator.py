"""``hublink coordinator``: serve the coordinator; back up and restore its state."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path

import click

from hublink.cli.backup import coordinator_backup, coordinator_restore
from hublink.cli.errors import friendly
from hublink.config import ConfigError, CoordinatorConfig, load


@click.group("coordinator")
def group() -> None:
    """Run the coordinator, which matches encodings and releases keys and counts."""


@group.command("serve")
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


group.add_command(coordinator_backup)
group.add_command(coordinator_restore)
