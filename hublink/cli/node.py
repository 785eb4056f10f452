"""``hublink node``: an organisation's node: plan, upload, withdraw, fetch keys, back up.

The secret exchange has its own group (``hublink node secret``,
``hublink.cli.secret``).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from hublink.cli.backup import node_backup, node_restore
from hublink.cli.errors import friendly
from hublink.cli.options import NODE_CONFIG
from hublink.cli.secret import group as secret_group
from hublink.config import NodeConfig, load


@click.group("node")
def group() -> None:
    """Run an organisation's node: encode and upload records, fetch linkage keys."""


SECRET_FILE = click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Read the linkage secret from this file instead of the config's secret_file or "
    "secret_env (systemd: --secret-file %d/project-secret with LoadCredential=).",
)


def _with_secret_file(config: NodeConfig, secret_file: Path | None) -> NodeConfig:
    """The config with ``--secret-file`` in force, if given.

    systemd hands a unit its credentials in a directory known only when the
    unit starts ($CREDENTIALS_DIRECTORY, ``%d`` in the unit), which a TOML
    file cannot name; the command line can.
    """
    if secret_file is None:
        return config
    return dataclasses.replace(config, secret_file=secret_file.absolute(), secret_env="")


@group.command("upload")
@NODE_CONFIG
@SECRET_FILE
@click.option(
    "--dry-run", is_flag=True, help="Do everything short of sending (same as `hublink node plan`)."
)
@friendly
def node_upload(config_path: Path, secret_file: Path | None, dry_run: bool) -> None:
    """Read the CSV, apply the consent policy, encode the identifiers, and upload the encodings.

    Unreadable rows go to the rejects file; the exclusion report and node.log
    in the state folder say what was left out and why.
    """
    from node.workflow import upload

    config = _with_secret_file(load(config_path, NodeConfig), secret_file)
    if dry_run:
        _plan(config)
        return
    with _progress() as report:
        summary = upload(
            config, progress=report, warn=lambda line: click.echo(f"warning: {line}", err=True)
        )
    if summary.refresh is not None:
        r = summary.refresh
        click.echo(
            f"{summary.organisation}: refreshed {summary.project_id}: {r.added} added, "
            f"{r.changed} changed, {r.removed} removed, {r.unchanged} unchanged; "
            f"{summary.records} encoded records sent (upload {summary.upload_id})"
        )
    else:
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


@group.command("plan")
@NODE_CONFIG
@SECRET_FILE
@friendly
def node_plan(config_path: Path, secret_file: Path | None) -> None:
    """Dry run: show what an upload would send, and why records are left out. Sends nothing.

    Reads the CSV and the consent policy exactly as an upload does and writes
    the same exclusion report and rejects file, but contacts no coordinator
    and hashes nothing.
    """
    _plan(_with_secret_file(load(config_path, NodeConfig), secret_file))


def _plan(config: NodeConfig) -> None:
    from node.plan import plan, render

    click.echo(render(plan(config)))


@group.command("withdraw")
@NODE_CONFIG
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


@group.command("keys")
@NODE_CONFIG
@friendly
def node_keys(config_path: Path) -> None:
    """Fetch this organisation's linkage keys and write linked.csv (local id, key)."""
    from node.keys import fetch_keys

    summary = fetch_keys(load(config_path, NodeConfig))
    click.echo(f"{summary.organisation}: wrote {summary.keys} linkage keys to {summary.output}")


def _progress() -> Any:
    from hublink.reports.progress import StageProgress

    return StageProgress(enabled=sys.stderr.isatty())


group.add_command(secret_group)
group.add_command(node_backup)
group.add_command(node_restore)
