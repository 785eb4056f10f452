"""``hublink audit verify``, ``compare`` and ``checkpoint``: the checks an IG officer runs.

Each is a check with a yes-or-no answer, so each exits 0 when the answer is
yes, 1 when it is no (``failed``), and 2 when it could not run at all (a file
missing, the coordinator unreachable; ``friendly``). Verification trusts
nothing it reads: every hash is recomputed and every signature checked
against the public key given (``hublink.audit.verify``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hublink.audit import merkle
from hublink.audit.checkpoint import CheckpointError, Verifier, parse_note
from hublink.audit.log import (
    AuditFileError,
    ForkDetected,
    compare_checkpoints,
    read_export_file,
    read_note_file,
    read_receipt_file,
)
from hublink.audit.sources import LogSource, SourceError
from hublink.audit.verify import CheckpointItem, VerifyReport, verify_log
from hublink.audit.words import format_time
from hublink.cli.audit_source import load_source, source_options
from hublink.cli.errors import failed, friendly

KEY_HELP = "The coordinator's public key (coordinator.pub)."


def _verifier(key_file: Path | None, source: LogSource | None) -> Verifier:
    if key_file is not None:
        return Verifier.from_file(key_file)
    if source is not None and source.own_key is not None:
        click.echo(
            "note: checking against the key file beside the database; pass --key with a "
            "copy of coordinator.pub you keep yourself for an independent check",
            err=True,
        )
        return source.own_key
    raise SourceError("--key coordinator.pub is needed to check the signatures")


def check_source(
    log_file: Path | None,
    source: LogSource | None,
    verifier: Verifier,
    kept: list[tuple[str, CheckpointItem]],
    receipt_files: tuple[Path, ...] = (),
) -> VerifyReport:
    """Verify an export file line by line (bad lines are bad entries), or a loaded source."""
    receipts = [(str(path), read_receipt_file(path)) for path in receipt_files]
    if log_file is not None:
        export = read_export_file(log_file)
        own = [(f"{log_file}, line {line}", item) for line, item in export.checkpoints]
        return verify_log(
            export.entries,
            verifier,
            checkpoints=[*own, *kept],
            receipts=receipts,
            lines=export.entry_lines,
        )
    assert source is not None
    own_items: list[tuple[str, CheckpointItem]] = [
        (f"{source.label}: checkpoint {i + 1} of {len(source.checkpoints)}", c)
        for i, c in enumerate(source.checkpoints)
    ]
    return verify_log(source.entries, verifier, checkpoints=[*own_items, *kept], receipts=receipts)


def print_report(report: VerifyReport, label: str, key_name: str) -> None:
    """Say what passed, or fail (exit 1) naming the first bad entry and every problem."""
    for note in report.notes[:5]:
        click.echo(f"note: {note}", err=True)
    if not report.ok:
        first = report.first_bad
        lines = [f"audit verify FAILED for {label}:"]
        if first is not None:
            lines.append(f"  first bad entry: {first}")
        problems = report.ordered_problems()
        lines += [f"  {problem}" for problem in problems[:20]]
        if len(problems) > 20:
            lines.append(f"  … and {len(problems) - 20} more")
        failed(*lines)
    when = f", signed {format_time(report.signed_time)}" if report.signed_time else ""
    click.echo(
        f"audit verify passed: {_count(report.entries, 'entry', 'entries')}, "
        f"{_count(report.checkpoints, 'signed checkpoint')} and "
        f"{_count(report.receipts, 'receipt')} check out against key {key_name} "
        f"(root {report.root.hex()[:16]}…). The newest checkpoint covers all "
        f"{report.signed_size}{when}: a log cut short there looks the same, so compare it "
        "with a checkpoint you kept (--checkpoint)."
    )


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


@click.command("verify")
@source_options
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=KEY_HELP + " Required for a LOG file or --config.",
)
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A signed checkpoint kept earlier (a note file, a node's checkpoints.jsonl, or "
    "another export); repeatable.",
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

    Exit status 0: the log verifies. 1: it does not; the first bad entry is
    named (a changed, removed or reordered entry, a line that cannot be read,
    a log cut short of a checkpoint or receipt, entries no signed checkpoint
    covers, a checkpoint whose time was changed, a signature by another key).
    2: it could not be checked (a file missing, the coordinator unreachable).
    """
    if config_path is not None and log_file is None and database is None:
        _verify_remote(config_path, key_file)
        return
    source = None
    if log_file is None or database is not None or config_path is not None:
        source = load_source(log_file, database, config_path, None)
        log_file = None
    elif not log_file.exists():
        raise AuditFileError(f"{log_file}: no such file")
    verifier = _verifier(key_file, source)
    kept: list[tuple[str, CheckpointItem]] = []
    for path in checkpoint_files:
        kept += [(f"{path}{suffix}", note) for suffix, note in notes_in(path)]
    report = check_source(log_file, source, verifier, kept, receipt_files)
    print_report(report, str(log_file) if source is None else source.label, verifier.name)


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


def notes_in(path: Path) -> list[tuple[str, str]]:
    """(label suffix, note) for a note file, a node's checkpoints.jsonl, or an export."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditFileError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise AuditFileError(f"{path}: not a checkpoint file (not UTF-8 text)") from None
    if not text.lstrip().startswith("{"):
        return [("", read_note_file(path))]
    notes = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if data.get("kind") == "entry":
                continue
            notes.append((f", line {number}", str(data["note"])))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AuditFileError(f"{path}, line {number}: not a checkpoint ({exc})") from None
    if not notes:
        raise AuditFileError(f"{path}: holds no checkpoint")
    return notes


def latest_note(path: Path) -> str:
    """The checkpoint over the most entries in a note file, checkpoints.jsonl or export."""
    notes = [note for _, note in notes_in(path)]
    try:
        return max(notes, key=lambda note: parse_note(note).size)
    except CheckpointError as exc:
        raise AuditFileError(f"{path}: not a checkpoint: {exc}") from None


@click.command("compare")
@click.argument("first", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=KEY_HELP,
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

    FIRST and SECOND are note files, a node's state/checkpoints.jsonl or an
    export (the newest checkpoint in each is compared). Same size: the roots
    must agree. Different sizes: a consistency proof (from --log, --database
    or --config) must show the larger extends the smaller. Exit status 1 if
    the coordinator showed different logs or a signature fails, 2 if the
    check could not run.
    """
    verifier = Verifier.from_file(key_file)
    a, b = latest_note(first), latest_note(second)
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
    except (ForkDetected, CheckpointError) as exc:
        failed(f"audit compare FAILED: {exc}")


@click.command("checkpoint")
@source_options
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=KEY_HELP,
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The note file to write, e.g. checkpoint-2026-06-30.note (never overwritten).",
)
@friendly
def checkpoint(
    log_file: Path | None,
    database: Path | None,
    config_path: Path | None,
    key_file: Path,
    out: Path,
) -> None:
    """Keep the coordinator's latest signed checkpoint in a file, after checking it.

    With --config it is fetched from the coordinator and its signature
    checked; from an export (LOG) or --database the whole log is verified
    first and its newest checkpoint kept. Exit status 1 if it does not
    verify, 2 if it could not be fetched or the file already exists.
    """
    from hublink.clients import AuditClient, open_channel
    from hublink.config import ClientConfig, load

    verifier = Verifier.from_file(key_file)
    if out.exists():
        raise FileExistsError(f"{out} already exists; name a new file for each checkpoint kept")
    if config_path is not None and log_file is None and database is None:
        config = load(config_path, ClientConfig)
        note = AuditClient(open_channel(config), timeout=config.timeout_seconds).checkpoint().note
        try:
            signed = verifier.open_checkpoint(note)
        except CheckpointError as exc:
            failed(f"audit checkpoint FAILED: the coordinator's checkpoint does not verify: {exc}")
    else:
        source = None if log_file is not None else load_source(None, database, config_path)
        if log_file is not None and not log_file.exists():
            raise AuditFileError(f"{log_file}: no such file")
        report = check_source(log_file, source, verifier, [])
        if not report.ok:
            print_report(report, str(log_file or (source and source.label)), verifier.name)
        notes = (
            [note for _, note in notes_in(log_file)]
            if log_file is not None
            else [c.note for c in source.checkpoints]  # type: ignore[union-attr]
        )
        opened = [(verifier.open_checkpoint(n), n) for n in notes]
        signed, note = max(opened, key=lambda pair: pair[0].size)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("x", encoding="utf-8") as handle:
        handle.write(note)
    when = f", signed {format_time(signed.time)}" if signed.time else ""
    click.echo(f"kept the checkpoint of {signed.size} entries{when} in {out}")
