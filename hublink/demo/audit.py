"""The demo's last act: export the audit log, verify it offline, and tell the story in words.

Why in the demo: it shows an IG officer the two things they need — that the
log checks out with nothing but the coordinator's public key (the files it
leaves are exactly what ``hublink audit verify audit.jsonl --key
coordinator.pub`` reads), and what the log says, in sentences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from hublink.audit.checkpoint import (
    Verifier,
    default_audit_key,
    load_or_create_key,
    write_public_key,
)
from hublink.audit.log import export_jsonl, read_jsonl, read_receipt_file
from hublink.audit.sources import read_database
from hublink.audit.trail import trail
from hublink.audit.verify import verify_log
from hublink.config import CoordinatorConfig

TRAIL_ACTIONS = frozenset(
    {
        "project.created",
        "upload.committed",
        "run.started",
        "run.completed",
        "keys.released",
        "counts.released",
        "access.refused",
    }
)


class AuditCheckFailed(RuntimeError):
    """The demo's own log did not verify (a bug, never expected)."""


def export_and_verify(
    out_dir: Path,
    config: CoordinatorConfig,
    auditor_note: str,
    node_state_dirs: Sequence[Path],
    names: Mapping[str, str],
) -> dict[str, Any]:
    """Write audit.jsonl, coordinator.pub and auditor-checkpoint.note; verify them offline."""
    source = read_database(config.database, None)
    log_path = out_dir / "audit.jsonl"
    key_path = out_dir / "coordinator.pub"
    note_path = out_dir / "auditor-checkpoint.note"
    export_jsonl(source.entries, source.checkpoints, log_path)
    write_public_key(
        load_or_create_key(config.audit_key or default_audit_key(config.database)).verifier,
        key_path,
    )
    note_path.write_text(auditor_note, encoding="utf-8")

    # From here on, only the files: what an IG officer would have on their own machine.
    entries, checkpoints = read_jsonl(log_path)
    verifier = Verifier.from_file(key_path)
    receipt_paths = sorted(p for d in node_state_dirs for p in (d / "receipts").glob("*.json"))
    report = verify_log(
        entries,
        verifier,
        checkpoints=[("audit.jsonl", c) for c in checkpoints] + [(note_path.name, auditor_note)],
        receipts=[(str(p.relative_to(out_dir)), read_receipt_file(p)) for p in receipt_paths],
    )
    if not report.ok:
        raise AuditCheckFailed(f"the demo's audit log did not verify: {report.problems[0]}")
    return {
        "verified": True,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "receipts": report.receipts,
        "root": report.root.hex(),
        "files": {"log": log_path.name, "public_key": key_path.name, "checkpoint": note_path.name},
        "trail": trail(entries, names, TRAIL_ACTIONS, with_project=False),
    }


def print_audit(console: Console, audit: Mapping[str, Any]) -> None:
    console.print(
        f"[bold]audit verify passed[/bold]: {audit['entries']} entries, "
        f"{audit['checkpoints']} signed checkpoints and {audit['receipts']} node receipts "
        f"check out against coordinator.pub "
        f"(hublink audit verify audit.jsonl --key coordinator.pub)",
        soft_wrap=True,
    )
    console.print("[bold]Audit trail[/bold]:")
    for line in audit["trail"]:
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
