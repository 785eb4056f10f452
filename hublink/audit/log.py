"""The audit log as every party sees it: entries, receipts, export files, verification.

Why it lives in the shared package: the coordinator writes the log, a node
checks the receipts it is given, and an IG officer verifies an exported copy
on their own machine. All three must hash an entry the same way and read the
same files, and the node never imports the coordinator.

An entry's leaf hash is SHA-256(0x00 || canonical JSON of its content), where
the content is its index, time, action, actor, project and details. The log
is an RFC 6962 Merkle tree of those leaves (``hublink.audit.merkle``); the
coordinator signs checkpoints of it (``hublink.audit.checkpoint``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hublink.audit import merkle
from hublink.audit.checkpoint import Checkpoint, CheckpointError, Verifier, parse_note
from hublink.errors import HublinkError
from hublink.spec import canonical_json

CSV_COLUMNS = (
    "index",
    "time",
    "actor_organisation",
    "actor_role",
    "action",
    "project_id",
    "details_json",
    "entry_hash",
)


class AuditFileError(HublinkError, ValueError):
    """An export, checkpoint or receipt file that cannot be read; names the file and line."""


def entry_content(
    index: int,
    time: str,
    action: str,
    actor_organisation: str,
    actor_role: str,
    project_id: str,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """The fields a leaf hash covers, as plain data."""
    return {
        "index": index,
        "time": time,
        "action": action,
        "actor_organisation": actor_organisation,
        "actor_role": actor_role,
        "project_id": project_id,
        "details": dict(details),
    }


def content_leaf(content: Mapping[str, Any]) -> bytes:
    """SHA-256(0x00 || canonical JSON of the content): the entry's leaf in the Merkle log."""
    return merkle.leaf_hash(canonical_json(dict(content)).encode("utf-8"))


@dataclass(frozen=True)
class LogEntry:
    """One entry of the log with the hash the log recorded for it (hex)."""

    index: int
    time: str
    action: str
    actor_organisation: str
    actor_role: str
    project_id: str
    details: Mapping[str, Any]
    entry_hash: str

    def content(self) -> dict[str, Any]:
        return entry_content(
            self.index,
            self.time,
            self.action,
            self.actor_organisation,
            self.actor_role,
            self.project_id,
            self.details,
        )

    def leaf(self) -> bytes:
        """The leaf hash recomputed from the content (not the recorded one)."""
        return content_leaf(self.content())

    def to_json(self) -> dict[str, Any]:
        return {**self.content(), "entry_hash": self.entry_hash}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogEntry:
        details = data["details"]
        if not isinstance(details, Mapping):
            raise ValueError("details must be an object")
        return cls(
            int(data["index"]),
            str(data["time"]),
            str(data["action"]),
            str(data["actor_organisation"]),
            str(data["actor_role"]),
            str(data["project_id"]),
            dict(details),
            str(data["entry_hash"]),
        )


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint note with when it was signed (the note itself carries no time)."""

    note: str
    time: str = ""


# -------------------------------------------------------------------------- receipts
class ReceiptError(ValueError):
    """A receipt whose signature, entry or proof does not hold."""


@dataclass(frozen=True)
class Receipt:
    """What a node keeps for a committed upload: the entry, its proof, the signed checkpoint."""

    upload_id: str
    project_id: str
    organisation: str
    record_count: int
    digest_sha256: str
    leaf_index: int
    entry: LogEntry
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "upload_id": self.upload_id,
            "project_id": self.project_id,
            "organisation": self.organisation,
            "record_count": self.record_count,
            "digest_sha256": self.digest_sha256,
            "leaf_index": self.leaf_index,
            "entry": self.entry.to_json(),
            "inclusion_proof": [p.hex() for p in self.inclusion_proof],
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Receipt:
        return cls(
            str(data["upload_id"]),
            str(data["project_id"]),
            str(data["organisation"]),
            int(data["record_count"]),
            str(data["digest_sha256"]),
            int(data["leaf_index"]),
            LogEntry.from_json(data["entry"]),
            tuple(bytes.fromhex(p) for p in data["inclusion_proof"]),
            str(data["checkpoint"]),
        )


def check_receipt(receipt: Receipt, verifier: Verifier) -> Checkpoint:
    """Check a receipt on its own: signature, that its entry records this upload, and the proof.

    Returns the checkpoint it carries. Raises ReceiptError saying what failed.
    """
    where = f"the receipt for upload {receipt.upload_id}"
    try:
        checkpoint = verifier.open_checkpoint(receipt.checkpoint)
    except CheckpointError as exc:
        raise ReceiptError(f"{where}: {exc}") from None
    entry = receipt.entry
    details = entry.details
    if (
        entry.index != receipt.leaf_index
        or entry.action != "upload.committed"
        or details.get("upload_id") != receipt.upload_id
        or details.get("digest_sha256") != receipt.digest_sha256
        or details.get("records") != receipt.record_count
        or entry.project_id != receipt.project_id
        or entry.actor_organisation != receipt.organisation
    ):
        raise ReceiptError(f"{where}: its log entry does not record this upload")
    leaf = entry.leaf()
    if leaf.hex() != entry.entry_hash:
        raise ReceiptError(f"{where}: its log entry does not match its hash")
    try:
        merkle.verify_inclusion(
            receipt.leaf_index, checkpoint.size, leaf, receipt.inclusion_proof, checkpoint.root
        )
    except merkle.ProofError as exc:
        raise ReceiptError(f"{where}: {exc}") from None
    return checkpoint


# ------------------------------------------------------------------- comparing notes
class ForkDetected(ValueError):
    """Two checkpoints signed by the same coordinator describe logs that cannot both be true."""


def compare_checkpoints(
    first: str, second: str, verifier: Verifier, proof: Sequence[bytes] | None = None
) -> str:
    """Check two signed checkpoints describe one growing log; return a sentence saying so.

    Same size: the roots must be equal. Different sizes: ``proof`` must be a
    consistency proof from the smaller to the larger. Raises ForkDetected if
    the coordinator signed two logs that cannot both be true, CheckpointError
    if a signature does not verify, ValueError if a needed proof is missing.
    """
    a = verifier.open_checkpoint(first)
    b = verifier.open_checkpoint(second)
    old, new = (a, b) if a.size <= b.size else (b, a)
    if old.size == new.size:
        if old.root != new.root:
            raise ForkDetected(
                f"the coordinator signed two different logs of {old.size} entries: it showed "
                "different logs to different parties"
            )
        return f"both checkpoints describe the same log of {old.size} entries"
    if proof is None:
        raise ValueError(
            f"checkpoints of {old.size} and {new.size} entries need a consistency proof"
        )
    try:
        merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
    except merkle.ProofError as exc:
        raise ForkDetected(
            f"the log of {new.size} entries does not extend the log of {old.size} entries the "
            f"coordinator signed earlier: it showed different logs ({exc})"
        ) from None
    return f"the log of {new.size} entries extends the log of {old.size} entries"


# ---------------------------------------------------------------------------- files
def export_jsonl(
    entries: Iterable[LogEntry], checkpoints: Iterable[StoredCheckpoint], path: Path
) -> int:
    """Write entries then checkpoints as JSON Lines (through a temporary file); returns lines."""
    lines = [json.dumps({"kind": "entry", **e.to_json()}, sort_keys=True) for e in entries]
    lines += [
        json.dumps({"kind": "checkpoint", "time": c.time, "note": c.note}, sort_keys=True)
        for c in checkpoints
    ]
    _write_atomically(path, "".join(line + "\n" for line in lines))
    return len(lines)


def export_csv(entries: Iterable[LogEntry], path: Path) -> int:
    """Write entries as CSV, details as canonical JSON (through a temporary file)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for e in entries:
        writer.writerow(
            [
                e.index,
                e.time,
                e.actor_organisation,
                e.actor_role,
                e.action,
                e.project_id,
                canonical_json(dict(e.details)),
                e.entry_hash,
            ]
        )
        count += 1
    _write_atomically(path, buffer.getvalue())
    return count


@dataclass(frozen=True)
class BadLine:
    """A line of an export that cannot be read: undecodable bytes, not JSON, a field missing.

    Verification counts it as a bad entry (or checkpoint) at its place rather
    than stopping; its raw bytes stand in for the entry's leaf so the entries
    after it keep their places.
    """

    line: int
    reason: str
    raw: bytes = field(default=b"", repr=False)

    def leaf(self) -> bytes:
        return merkle.leaf_hash(self.raw)


@dataclass
class ExportFile:
    """An export read line by line, with what could not be read kept in its place."""

    entries: list[LogEntry | BadLine] = field(default_factory=list)
    entry_lines: list[int] = field(default_factory=list)
    checkpoints: list[tuple[int, StoredCheckpoint | BadLine]] = field(default_factory=list)


def _parse_line(raw: bytes) -> LogEntry | StoredCheckpoint:
    """One export line; ValueError (or KeyError, TypeError …) saying what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"invalid UTF-8 at byte {exc.start + 1}") from None
    data = json.loads(text)
    kind = data.get("kind")
    if kind == "entry":
        return LogEntry.from_json(data)
    if kind == "checkpoint":
        return StoredCheckpoint(str(data["note"]), str(data["time"]))
    raise ValueError(f"unknown kind {kind!r}")


def read_export_file(path: Path) -> ExportFile:
    """Every line of an export, unreadable ones as BadLine; AuditFileError if no file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditFileError(f"{path}: cannot read: {exc.strerror}") from None
    export = ExportFile()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        item: LogEntry | StoredCheckpoint | BadLine
        try:
            item = _parse_line(raw)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            item = BadLine(number, reason, raw)
        if isinstance(item, StoredCheckpoint) or (
            isinstance(item, BadLine) and (export.checkpoints or b'"kind": "checkpoint"' in raw)
        ):
            export.checkpoints.append((number, item))
        else:
            export.entries.append(item)
            export.entry_lines.append(number)
    return export


def read_jsonl(path: Path) -> tuple[list[LogEntry], list[StoredCheckpoint]]:
    """Entries and checkpoints from an export; AuditFileError names the first bad line."""
    export = read_export_file(path)
    bad = [i for i in export.entries if isinstance(i, BadLine)]
    bad += [i for _, i in export.checkpoints if isinstance(i, BadLine)]
    if bad:
        first = min(bad, key=lambda b: b.line)
        raise AuditFileError(f"{path}, line {first.line}: not an audit log line ({first.reason})")
    return (
        [e for e in export.entries if isinstance(e, LogEntry)],
        [c for _, c in export.checkpoints if isinstance(c, StoredCheckpoint)],
    )


def read_note_file(path: Path) -> str:
    """A checkpoint note from a file (as ``GetCheckpoint`` or a node stored it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        parse_note(text)
    except CheckpointError as exc:
        raise AuditFileError(f"{path}: not a checkpoint: {exc}") from None
    return text


def read_receipt_file(path: Path) -> Receipt:
    """A node's receipt, as JSON (what ``hublink node receipts`` writes)."""
    try:
        return Receipt.from_json(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise AuditFileError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AuditFileError(f"{path}: not a receipt ({exc})") from None


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def select(
    entries: Iterable[LogEntry],
    *,
    project_id: str = "",
    organisation: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
) -> list[LogEntry]:
    """Entries matching every filter given (empty: any).

    ``action`` matches a prefix ("upload" matches upload.started and
    upload.committed). ``since`` and ``until`` are RFC 3339 times or their
    prefixes, inclusive: until "2026-06-01" keeps all of 1 June.
    """
    return [
        e
        for e in entries
        if (not project_id or e.project_id == project_id)
        and (not organisation or e.actor_organisation == organisation)
        and (not action or e.action == action or e.action.startswith(action.rstrip(".") + "."))
        and (not since or e.time >= since)
        and (not until or e.time[: len(until)] <= until)
    ]
