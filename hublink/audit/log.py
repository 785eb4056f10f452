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


# -------------------------------------------------------------------------- verifying
@dataclass(frozen=True)
class Problem:
    """One thing that does not verify, at an entry where that can be named."""

    message: str
    index: int | None = None

    def __str__(self) -> str:
        return self.message if self.index is None else f"entry {self.index}: {self.message}"


@dataclass
class VerifyReport:
    """What ``verify_log`` checked and what failed, first failure first."""

    entries: int = 0
    checkpoints: int = 0
    receipts: int = 0
    root: bytes = merkle.EMPTY_ROOT
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    """Oddities that do not fail verification (an entry dated before the one ahead of it:
    reordering shows in the hashes; a clock stepping back must not fail a log forever)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_log(
    entries: Sequence[LogEntry],
    verifier: Verifier,
    *,
    checkpoints: Iterable[tuple[str, str]] = (),
    receipts: Iterable[tuple[str, Receipt]] = (),
) -> VerifyReport:
    """Check every entry's hash and place, every checkpoint's signature and root, every receipt.

    ``checkpoints`` and ``receipts`` are (label, item) pairs; the label (a file
    name, "the log's checkpoint 3") says where a failure came from. The tree
    is rebuilt from the entries' content, never from recorded hashes.
    """
    report = VerifyReport(entries=len(entries))
    tree = merkle.MemoryTree()
    previous_time = ""
    for position, entry in enumerate(entries):
        if entry.index != position:
            report.problems.append(
                Problem(
                    f"entry {position} is missing or out of place "
                    f"(entry {entry.index} stands in its place)",
                    position,
                )
            )
        leaf = entry.leaf()
        if leaf.hex() != entry.entry_hash:
            report.problems.append(
                Problem("its content does not match its recorded hash (it was changed)", position)
            )
        if entry.time < previous_time:
            report.notes.append(
                Problem(
                    f"it is dated {entry.time}, before the entry ahead of it "
                    f"({previous_time}): reordered entries, or the coordinator's clock stepped "
                    "back",
                    position,
                )
            )
        previous_time = max(previous_time, entry.time)
        tree.append(leaf)
    report.root = tree.root()
    signed: list[tuple[str, Checkpoint]] = []
    for label, note in checkpoints:
        report.checkpoints += 1
        try:
            signed.append((label, verifier.open_checkpoint(note)))
        except CheckpointError as exc:
            report.problems.append(Problem(f"{label}: {exc}"))
    for label, receipt in receipts:
        report.receipts += 1
        try:
            checkpoint = check_receipt(receipt, verifier)
        except ReceiptError as exc:
            report.problems.append(Problem(f"{label}: {exc}"))
            continue
        signed.append((label, checkpoint))
        if receipt.leaf_index >= len(entries):
            report.problems.append(
                Problem(
                    f"{label}: upload {receipt.upload_id} was recorded as entry "
                    f"{receipt.leaf_index}, which the log no longer contains",
                    receipt.leaf_index,
                )
            )
        elif tree.levels[0][receipt.leaf_index] != receipt.entry.leaf():
            report.problems.append(
                Problem(
                    f"{label}: the log no longer holds the entry that recorded upload "
                    f"{receipt.upload_id} as the receipt has it",
                    receipt.leaf_index,
                )
            )
    report.problems.extend(_check_roots(tree, signed))
    return report


def _check_roots(
    tree: merkle.MemoryTree, signed: Sequence[tuple[str, Checkpoint]]
) -> list[Problem]:
    """Compare each signed checkpoint with the rebuilt tree; localise a mismatch between two."""
    problems: list[Problem] = []
    size = len(tree)
    good = 0
    for label, checkpoint in sorted(signed, key=lambda item: item[1].size):
        if checkpoint.size > size:
            problems.append(
                Problem(
                    f"{label} was signed over {checkpoint.size} entries but the log has "
                    f"only {size}: entries {size} to {checkpoint.size - 1} were removed "
                    "(the log was truncated)",
                    size,
                )
            )
        elif tree.root(checkpoint.size) != checkpoint.root:
            problems.append(
                Problem(
                    f"{label} (signed over {checkpoint.size} entries) does not match the log: "
                    f"an entry from {good} to {checkpoint.size - 1} was changed, removed or "
                    "reordered after it was signed",
                    good,
                )
            )
        else:
            good = max(good, checkpoint.size)
    return problems


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


def read_jsonl(path: Path) -> tuple[list[LogEntry], list[StoredCheckpoint]]:
    """Entries and checkpoints from an export; AuditFileError names the line that is wrong."""
    entries: list[LogEntry] = []
    checkpoints: list[StoredCheckpoint] = []
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise AuditFileError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                kind = data.get("kind")
                if kind == "entry":
                    entries.append(LogEntry.from_json(data))
                elif kind == "checkpoint":
                    checkpoints.append(StoredCheckpoint(str(data["note"]), str(data["time"])))
                else:
                    raise ValueError(f"unknown kind {kind!r}")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise AuditFileError(
                    f"{path}, line {number}: not an audit log line ({exc})"
                ) from None
    return entries, checkpoints


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
