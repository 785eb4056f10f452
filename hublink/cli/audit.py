"""``hublink audit``: show, export, verify, compare and keep the coordinator's audit log.

Each command reads the log from one of three places (``hublink.cli.audit_source``):
an exported JSON Lines file, the coordinator's database (``--database``), or
the coordinator over gRPC as an auditor (``--config client.toml``). The
checks (verify, compare, checkpoint) are ``hublink.cli.audit_checks``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hublink.audit.log import export_csv, export_jsonl, select
from hublink.cli.audit_checks import checkpoint, compare, verify
from hublink.cli.audit_source import display_names, filter_options, load_source, source_options
from hublink.cli.errors import friendly

__all__ = ["group", "load_source"]


@click.group("audit")
def group() -> None:
    """The coordinator's tamper-evident audit log: show, export, verify, compare, keep.

    Read it from an exported JSON Lines LOG file, from the coordinator's
    database (--database), or over gRPC as an auditor (--config client.toml).
    """


@group.command("show")
@source_options
@filter_options
@click.option("--plain", is_flag=True, help="One plain-English sentence per entry.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry, in full.")
@click.option(
    "--names",
    "names_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A client TOML whose [display_names] name the organisations (default: --config's).",
)
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), hidden=True)
@friendly
def show(
    log_file: Path | None,
    database: Path | None,
    config_path: Path | None,
    project: str,
    organisation: str,
    action: str,
    since: str,
    until: str,
    plain: bool,
    as_json: bool,
    names_file: Path | None,
    key_file: Path | None,
) -> None:
    """List audit entries, oldest first, as a table (or sentences, or JSON).

    Times are shown with their date in UTC; actions in plain English;
    organisations by their display names where a client config has them.
    """
    from hublink.audit.trail import table, trail

    if plain and as_json:
        raise click.UsageError("choose one of --plain and --json")
    filters = {
        "project_id": project,
        "organisation": organisation,
        "action": action,
        "since": since,
        "until": until,
    }
    source = load_source(log_file, database, config_path, key_file, filters)
    names = {**source.display_names, **display_names(names_file)}
    entries = select(source.entries, **filters)
    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry.to_json(), sort_keys=True))
    elif plain:
        for line in trail(entries, names):
            click.echo(line)
    elif entries:
        for line in table(entries, names):
            click.echo(line)
    else:
        click.echo("no entries match", err=True)


@group.command("export")
@source_options
@filter_options
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write; .csv writes CSV, anything else JSON Lines.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="Output format (default: from the --out suffix).",
)
@friendly
def export(
    log_file: Path | None,
    database: Path | None,
    config_path: Path | None,
    project: str,
    organisation: str,
    action: str,
    since: str,
    until: str,
    out: Path,
    fmt: str | None,
) -> None:
    """Write the log as JSON Lines (entries and signed checkpoints, verifiable offline) or CSV.

    Filters make a subset for reading; only an unfiltered JSON Lines export can
    be verified, because every entry is needed to rebuild the signed tree.
    """
    filters = {
        "project_id": project,
        "organisation": organisation,
        "action": action,
        "since": since,
        "until": until,
    }
    source = load_source(log_file, database, config_path, None, filters)
    entries = select(source.entries, **filters)
    fmt = fmt or ("csv" if out.suffix.lower() == ".csv" else "jsonl")
    if fmt == "csv":
        export_csv(entries, out)
    else:
        export_jsonl(entries, source.checkpoints, out)
    click.echo(f"wrote {len(entries)} entries to {out}")


@group.command("public-key")
@click.option(
    "--coordinator-config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The coordinator's TOML (its audit_key, or the key beside its database).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the key line to this file (coordinator.pub); default: print it.",
)
@friendly
def public_key(config_path: Path, out: Path | None) -> None:
    """Export the coordinator's audit public key, to pin in node configs and give auditors."""
    from hublink.audit.checkpoint import default_audit_key, load_or_create_key, write_public_key
    from hublink.config import CoordinatorConfig, load

    config = load(config_path, CoordinatorConfig)
    signer = load_or_create_key(config.audit_key or default_audit_key(config.database))
    if out is None:
        click.echo(signer.verifier.vkey())
    else:
        write_public_key(signer.verifier, out)
        click.echo(f"wrote {out}")


for _command in (verify, compare, checkpoint):
    group.add_command(_command)
