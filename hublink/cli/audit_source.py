"""Where ``hublink audit`` commands read the log from, and the options that name it.

An exported JSON Lines file (offline, on the IG officer's own machine), the
coordinator's database (``--database``, on its host), or the coordinator over
gRPC as an auditor (``--config client.toml``). The first two are
``hublink.audit.sources``; the third needs a client, so it is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click
import grpc

from hublink.audit.checkpoint import parse_note
from hublink.audit.log import AuditFileError, StoredCheckpoint
from hublink.audit.sources import LogSource, SourceError, read_database, read_export
from hublink.audit.words import TIME_FORMAT_HELP, time_filter
from hublink.cli.errors import F

if TYPE_CHECKING:
    from hublink.clients import AuditClient


def _remote_checkpoints(client: AuditClient, size: int, filtered: bool) -> list[StoredCheckpoint]:
    """Every checkpoint up to ``size`` entries (the latest only, filtered or from an old one)."""
    from hublink.clients import RequestRefused

    if filtered:
        return [client.checkpoint()]
    if size == 0:
        return []
    try:
        return client.checkpoints(1, size)
    except RequestRefused as exc:
        if exc.code is not grpc.StatusCode.UNIMPLEMENTED:
            raise
        return [client.checkpoint()]  # a coordinator from before ListCheckpoints


def read_remote(config_path: Path, filters: Mapping[str, str]) -> LogSource:
    """The log over gRPC as an auditor: its entries and, unfiltered, every checkpoint of them.

    The checkpoints are asked for up to the number of entries received, so
    entries written meanwhile do not make the copy look truncated.
    """
    from hublink.clients import AuditClient, Filters, open_channel
    from hublink.config import ClientConfig, load

    config = load(config_path, ClientConfig)
    client = AuditClient(open_channel(config), timeout=config.timeout_seconds)
    entries = list(client.entries(Filters(**filters)))
    checkpoints = _remote_checkpoints(client, len(entries), any(filters.values()))
    source = LogSource(entries, checkpoints, config.coordinator)
    source.display_names = dict(config.display_names)

    def prove(old: int, new: int) -> list[bytes]:
        signed, _, proof = client.consistency_proof(old, new)
        if parse_note(signed.note).size != new:
            raise AuditFileError(f"the coordinator has signed no checkpoint of {new} entries")
        return proof

    source.consistency = prove
    return source


def load_source(
    log_file: Path | None,
    database: Path | None,
    config: Path | None,
    key_file: Path | None = None,
    filters: Mapping[str, str] | None = None,
) -> LogSource:
    """The log from the one place named: an exported file, a database or a client config."""
    given = [x for x in (log_file, database, config) if x is not None]
    if len(given) != 1:
        raise SourceError(
            "name exactly one log: an exported LOG file, --database (on the coordinator's "
            "host) or --config (an auditor's client config)"
        )
    if log_file is not None:
        return read_export(log_file)
    if database is not None:
        return read_database(database, key_file)
    assert config is not None
    return read_remote(config, filters or {})


def display_names(names_file: Path | None) -> dict[str, str]:
    """Organisations' display names from a client TOML's ``display_names`` table."""
    if names_file is None:
        return {}
    from hublink.config import ClientConfig, load

    return dict(load(names_file, ClientConfig).display_names)


def source_options(command: F) -> F:
    command = click.argument(
        "log_file",
        required=False,
        type=click.Path(dir_okay=False, path_type=Path),
    )(command)
    command = click.option(
        "--database",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The coordinator's database, read directly (read-only) on its host.",
    )(command)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="An auditor's client TOML: read the log over gRPC with mutual TLS.",
    )(command)


def _time_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return time_filter(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def filter_options(command: F) -> F:
    for name, text in (
        ("--until", "Last time to include, inclusive (2026-06-01 keeps all of that day)."),
        ("--since", "First time to include: 2026-06-01, 2026-06-01T09:30 or with a zone."),
    ):
        command = click.option(
            name, default="", callback=_time_option, help=f"{text} Format: {TIME_FORMAT_HELP}."
        )(command)
    for name, text in (
        ("--action", "Action or its prefix, e.g. upload or keys.released."),
        ("--organisation", "Organisation that acted."),
        ("--project", "Project id."),
    ):
        command = click.option(name, default="", help=text)(command)
    return command
