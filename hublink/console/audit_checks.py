"""The verify and compare pages' checks, each ending in a result a person can read.

Three checks, the same ones ``hublink audit verify`` and ``compare`` run:
every entry the officer may see is proved into the coordinator's latest signed
checkpoint (``verify_visible``); a checkpoint the officer kept earlier must be
signed by the coordinator and extended by today's log (a consistency proof
from the coordinator); an exported log is rebuilt entry by entry and checked
against its own checkpoints and the kept one (``verify_export``). Nothing is
trusted because it came over an authenticated channel: every signature is
checked against the public key the officer holds.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hublink.audit.checkpoint import CheckpointError, Verifier, parse_note
from hublink.audit.log import AuditFileError, ForkDetected, LogEntry, compare_checkpoints
from hublink.audit.verify import CheckpointItem, verify_export
from hublink.clients import AuditClient, RequestRefused
from hublink.clients.audit_scope import verify_visible


@dataclass
class Result:
    """One check's answer: a heading, whether it passed, the first bad entry, and the rest."""

    title: str
    ok: bool
    summary: str
    first_bad: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_key(data: bytes) -> Verifier:
    """The coordinator's public key from an uploaded coordinator.pub."""
    try:
        return Verifier.from_vkey(data.decode("utf-8").strip())
    except (UnicodeDecodeError, CheckpointError, ValueError) as exc:
        raise AuditFileError(f"the key file is not a coordinator public key ({exc})") from None


def newest_note(data: bytes, label: str) -> str:
    """The checkpoint over the most entries in a note file, a checkpoints.jsonl or an export."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AuditFileError(f"{label} is not a checkpoint file (not text)") from None
    notes = [text] if not text.lstrip().startswith("{") else []
    for number, line in enumerate(text.splitlines() if not notes else [], start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if item.get("kind") != "entry":
                notes.append(str(item["note"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AuditFileError(f"{label}, line {number}: not a checkpoint") from None
    try:
        return max(notes, key=lambda note: parse_note(note).size)
    except (CheckpointError, ValueError):
        raise AuditFileError(f"{label} holds no signed checkpoint") from None


def against_coordinator(
    client: AuditClient, entries: Sequence[LogEntry], verifier: Verifier
) -> Result:
    """Prove every visible entry into the coordinator's latest signed checkpoint."""
    report = verify_visible(client, entries, verifier)
    if report.ok:
        return Result(
            "Checked against the coordinator's signed checkpoint",
            True,
            f"All {report.entries:,} entries you can see were proved to be in the log of "
            f"{report.size:,} entries the coordinator signed, under key {verifier.name}. "
            "None was changed, removed or reordered.",
        )
    return Result(
        "Checked against the coordinator's signed checkpoint",
        False,
        f"{len(report.problems)} problem(s) found among {report.entries:,} entries.",
        first_bad=report.problems[0],
        problems=report.problems[1:20],
    )


def kept_checkpoint(client: AuditClient, kept: str, label: str, verifier: Verifier) -> Result:
    """A checkpoint kept earlier must be signed by the coordinator and extended by today's log."""
    title = f"Checked against your kept checkpoint ({label})"
    try:
        old = verifier.open_checkpoint(kept)
        latest = client.checkpoint().note
        new = verifier.open_checkpoint(latest)
        proof = None
        if new.size != old.size:
            _, _, proof = client.consistency_proof(old.size, new.size)
        sentence = compare_checkpoints(kept, latest, verifier, proof)
    except (CheckpointError, ForkDetected, ValueError) as exc:
        return Result(title, False, "Your kept checkpoint does not agree with the log.", str(exc))
    return Result(
        title, True, sentence[:1].upper() + sentence[1:] + ": nothing you kept was rewritten."
    )


def exported_log(
    data: bytes, label: str, verifier: Verifier, kept: Sequence[tuple[str, CheckpointItem]]
) -> Result:
    """Rebuild an uploaded export entry by entry; check its checkpoints and the kept ones."""
    with tempfile.TemporaryDirectory(prefix="hublink-console-") as folder:
        path = Path(folder) / "audit.jsonl"
        path.write_bytes(data)
        report = verify_export(path, verifier, checkpoints=kept)
    title = f"Checked the exported log ({label})"
    notes = [str(n).replace(str(path), label) for n in report.notes[:5]]
    if report.ok:
        return Result(
            title,
            True,
            f"All {report.entries:,} entries and {report.checkpoints:,} signed checkpoints check "
            f"out against key {verifier.name}; the newest signature covers all "
            f"{report.signed_size:,} entries.",
            notes=notes,
        )
    problems = [str(p).replace(str(path), label) for p in report.ordered_problems()]
    first = report.first_bad
    return Result(
        title,
        False,
        f"The exported log does not verify: {len(problems)} problem(s).",
        first_bad=str(first).replace(str(path), label) if first else problems[0],
        problems=problems[:20],
        notes=notes,
    )


def compare_two(client: AuditClient | None, first: str, second: str, verifier: Verifier) -> Result:
    """Two checkpoints describe one growing log (a consistency proof from the coordinator)."""
    title = "Comparison of two checkpoints"
    try:
        a, b = verifier.open_checkpoint(first), verifier.open_checkpoint(second)
        proof = None
        if a.size != b.size and client is not None:
            _, _, proof = client.consistency_proof(min(a.size, b.size), max(a.size, b.size))
        sentence = compare_checkpoints(first, second, verifier, proof)
    except (CheckpointError, ForkDetected, ValueError, RequestRefused) as exc:
        return Result(title, False, "The two checkpoints do not describe one log.", str(exc))
    return Result(title, True, sentence[:1].upper() + sentence[1:] + ".")
