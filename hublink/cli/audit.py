"""``hublink audit``: show, export, verify and compare the coordinator's audit log.

Each command reads the log from one of three places: an exported JSON Lines
file (offline, on the IG officer's own machine), the coordinator's database
(``--database``, on its host), or the coordinator over gRPC as an auditor
(``--config client.toml``). Verification trusts nothing it reads: every hash
is recomputed and every signature checked against the public key given. The
first two places are ``hublink.audit.sources``; the third, which needs a
client, is here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hublink.audit import merkle
from hublink.audit.checkpoint import Verifier, parse_note
from hublink.audit.log import (
    AuditFileError,
    ForkDetected,
    compare_checkpoints,
    export_csv,
    export_jsonl,
    read_note_file,
    read_receipt_file,
    select,
    verify_log,
)
from hublink.audit.sources import LogSource, SourceError, read_database, read_export
from hublink.cli.errors import F, friendly


def _read_remote(config_path: Path, filters: dict[str, str]) -> LogSource:
    from hublink.clients import AuditClient, Filters, open_channel
    from hublink.config import ClientConfig, load

    config = load(config_path, ClientConfig)
    client = AuditClient(open_channel(config), timeout=config.timeout_seconds)
    entries = list(client.entries(Filters(**filters)))
    checkpoint = client.checkpoint()
    source = LogSource(entries, [checkpoint], config.coordinator)

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
    filters: dict[str, str] | None = None,
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
    return _read_remote(config, filters or {})


def _source_options(command: F) -> F:
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


def _filter_options(command: F) -> F:
    for name, text in (
        ("--until", "Last time to include, RFC 3339 or a prefix (2026-06-01 keeps all of it)."),
        ("--since", "First time to include, RFC 3339 or a prefix (e.g. 2026-06-01)."),
        ("--action", "Action or its prefix, e.g. upload or keys.released."),
        ("--organisation", "Organisation that acted."),
        ("--project", "Project id."),
    ):
        command = click.option(name, default="", help=text)(command)
    return command


@click.group("audit")
def group() -> None:
    """The coordinator's tamper-evident audit log: show, export, verify, compare.

    Read it from an exported JSON Lines LOG file, from the coordinator's
    database (--database), or over gRPC as an auditor (--config client.toml).
    """


@group.command("show")
@_source_options
@_filter_options
@click.option("--plain", is_flag=True, help="One plain-English sentence per entry.")
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
    key_file: Path | None,
) -> None:
    """List audit entries, oldest first, filtered by project, organisation, action or time."""
    from hublink.audit.trail import describe
    from hublink.spec import canonical_json

    filters = {
        "project_id": project,
        "organisation": organisation,
        "action": action,
        "since": since,
        "until": until,
    }
    source = load_source(log_file, database, config_path, key_file, filters)
    for entry in select(source.entries, **filters):
        if plain:
            click.echo(describe(entry))
        else:
            click.echo(
                f"{entry.index:>6} {entry.time} {entry.actor_organisation} "
                f"({entry.actor_role}) {entry.action} {entry.project_id or '-'} "
                f"{canonical_json(dict(entry.details))}"
            )


@group.command("export")
@_source_options
@_filter_options
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


@group.command("verify")
@_source_options
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The coordinator's public key (coordinator.pub). Required for a LOG file or --config.",
)
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A signed checkpoint kept earlier (a note file, or a node's checkpoints.jsonl); "
    "repeatable.",
)
@click.option(
    "--receipt",
    "receipt_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A node's upload receipt (state_dir/receipts/*.json); repeatable.",
)
@friendly
def verify(
    log_file: Path | None,
    database: Path | None,
    config_path: Path | None,
    key_file: Path | None,
    checkpoint_files: tuple[Path, ...],
    receipt_files: tuple[Path, ...],
) -> None:
    """Check every entry's hash, every signature, and every checkpoint or receipt given.

    Fails (exit status 1) naming the first entry that does not verify: a
    changed, removed or reordered entry, a log cut short of a checkpoint or
    receipt, or a signature by another key than the one given.
    """
    if config_path is not None and log_file is None and database is None:
        _verify_remote(config_path, key_file)
        return
    source = load_source(log_file, database, config_path, None)
    if key_file is not None:
        verifier = Verifier.from_file(key_file)
    elif source.own_key is not None:
        verifier = source.own_key
        click.echo(
            "note: checking against the key file beside the database; pass --key with a "
            "copy of coordinator.pub you keep yourself for an independent check",
            err=True,
        )
    else:
        raise SourceError("--key coordinator.pub is needed to check the signatures")
    checkpoints = [
        (f"{source.label}: checkpoint {i + 1} of {len(source.checkpoints)}", c.note)
        for i, c in enumerate(source.checkpoints)
    ]
    for path in checkpoint_files:
        checkpoints += [(f"{path}{suffix}", note) for suffix, note in _notes_in(path)]
    receipts = [(str(path), read_receipt_file(path)) for path in receipt_files]
    report = verify_log(source.entries, verifier, checkpoints=checkpoints, receipts=receipts)
    for note in report.notes[:5]:
        click.echo(f"note: {note}", err=True)
    if not report.ok:
        click.echo(f"audit verify FAILED for {source.label}:", err=True)
        for problem in report.problems[:20]:
            click.echo(f"  {problem}", err=True)
        if len(report.problems) > 20:
            click.echo(f"  … and {len(report.problems) - 20} more", err=True)
        sys.exit(1)
    click.echo(
        f"audit verify passed: {_count(report.entries, 'entry', 'entries')}, "
        f"{_count(report.checkpoints, 'signed checkpoint')} and "
        f"{_count(report.receipts, 'receipt')} check out against key {verifier.name} "
        f"(root {report.root.hex()[:16]}…)"
    )


def _verify_remote(config_path: Path, key_file: Path | None) -> None:
    """An auditor sees only its projects' entries: prove each into the signed checkpoint."""
    from hublink.clients import AuditClient, open_channel
    from hublink.clients.audit_scope import verify_visible
    from hublink.config import ClientConfig, load

    if key_file is None:
        raise SourceError("--key coordinator.pub is needed to check the signatures")
    config = load(config_path, ClientConfig)
    client = AuditClient(open_channel(config), timeout=config.timeout_seconds)
    verifier = Verifier.from_file(key_file)
    report = verify_visible(client, list(client.entries()), verifier)
    if not report.ok:
        click.echo(f"audit verify FAILED for {config.coordinator}:", err=True)
        for problem in report.problems[:20]:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    click.echo(
        f"audit verify passed: {_count(report.entries, 'entry', 'entries')} of your projects "
        f"proved into the signed checkpoint of {report.size} entries against key "
        f"{verifier.name} (root {report.root.hex()[:16]}…)"
    )


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _notes_in(path: Path) -> list[tuple[str, str]]:
    """(label suffix, note) for a note file or a node's checkpoints.jsonl."""
    import json

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditFileError(f"{path}: cannot read: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        notes = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    notes.append((f", line {number}", str(json.loads(line)["note"])))
                except (ValueError, KeyError, TypeError) as exc:
                    raise AuditFileError(
                        f"{path}, line {number}: not a checkpoint ({exc})"
                    ) from None
        return notes
    return [("", read_note_file(path))]


@group.command("compare")
@click.argument("first", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The coordinator's public key (coordinator.pub).",
)
@click.option(
    "--log",
    "log_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An exported log to prove consistency from, when the sizes differ.",
)
@click.option(
    "--database",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The coordinator's database, for the consistency proof.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An auditor's client TOML: ask the coordinator for the consistency proof.",
)
@friendly
def compare(
    first: Path,
    second: Path,
    key_file: Path,
    log_file: Path | None,
    database: Path | None,
    config_path: Path | None,
) -> None:
    """Check two signed checkpoints (e.g. two organisations' copies) describe one growing log.

    Same size: the roots must agree. Different sizes: a consistency proof
    (from --log, --database or --config) must show the larger extends the
    smaller. Exit status 1 if the coordinator showed different logs.
    """
    verifier = Verifier.from_file(key_file)
    a, b = read_note_file(first), read_note_file(second)
    sizes = sorted((parse_note(a).size, parse_note(b).size))
    proof = None
    if sizes[0] != sizes[1]:
        if not any((log_file, database, config_path)):
            raise SourceError(
                f"the checkpoints cover {sizes[0]} and {sizes[1]} entries; name a log "
                "(--log, --database or --config) to prove one extends the other"
            )
        source = load_source(log_file, database, config_path)
        assert source.consistency is not None
        try:
            proof = source.consistency(sizes[0], sizes[1])
        except merkle.ProofError as exc:
            raise AuditFileError(f"{source.label}: {exc}") from None
    try:
        click.echo(compare_checkpoints(a, b, verifier, proof))
    except ForkDetected as exc:
        click.echo(f"audit compare FAILED: {exc}", err=True)
        sys.exit(1)


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
