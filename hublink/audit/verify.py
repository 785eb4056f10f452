"""Verifying an audit log: what it proves, what it does not, and the first entry that fails.

Why a module of its own, returning a structured report rather than printing:
``hublink audit verify``, the demo and the web console all ask the same
question and show the answer differently. ``verify_log`` trusts nothing it is
given. It rebuilds the Merkle tree from the entries' content (never from the
hashes they record), opens every checkpoint with the public key given, and
then asks three things:

- does every entry match its recorded hash and stand at its index;
- does every signed checkpoint (the log's own, ones kept by the auditor or a
  node, the ones inside receipts) match the tree at its size, and does the
  time beside it match the time signed inside it;
- is every entry covered by a signed checkpoint? The coordinator signs one
  after every entry in the transaction that writes it, so entries after the
  last signed checkpoint (an *unsigned tail*) were added by someone else, and
  a log with no signed checkpoint at all proves nothing.

A line of an export that cannot be read (invalid UTF-8, not JSON, a field
missing) is a bad entry at its place, named with its line number, not an
error that stops the check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hublink.audit import merkle
from hublink.audit.checkpoint import Checkpoint, CheckpointError, Verifier
from hublink.audit.log import (
    BadLine,
    LogEntry,
    Receipt,
    ReceiptError,
    StoredCheckpoint,
    check_receipt,
    read_export_file,
    read_receipt_file,
)

CheckpointItem = str | StoredCheckpoint | BadLine
"""A checkpoint to check: a bare note (kept by a party), one with the time an export
gives for it, or an export line that could not be read."""


@dataclass(frozen=True)
class Problem:
    """One thing that does not verify: at an entry (or a range of entries) and a file line."""

    message: str
    index: int | None = None
    line: int | None = None
    last: int | None = None
    """When only a range can be named: the last entry that may be the bad one."""

    def __str__(self) -> str:
        where = ""
        if self.index is not None:
            where = f"entry {self.index}"
            if self.last is not None and self.last != self.index:
                where = f"entries {self.index} to {self.last}"
        if self.line is not None:
            where = f"{where} (line {self.line})" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message


@dataclass
class VerifyReport:
    """What ``verify_log`` checked, what it proves, and what failed."""

    entries: int = 0
    checkpoints: int = 0
    receipts: int = 0
    root: bytes = merkle.EMPTY_ROOT
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    """Oddities that do not fail verification (an entry dated before the one ahead of it:
    reordering shows in the hashes; a clock stepping back must not fail a log forever)."""
    signed_size: int = 0
    """How many entries, from the first, a signed checkpoint that matches the log covers."""
    signed_time: str = ""
    """When the largest matching checkpoint was signed ("" if its time was not signed)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unsigned_tail(self) -> int:
        """Entries after the last one a matching signed checkpoint covers."""
        return max(0, self.entries - self.signed_size)

    @property
    def first_bad(self) -> Problem | None:
        """The problem at the earliest entry (None if no problem names an entry)."""
        located = [p for p in self.problems if p.index is not None]
        return min(located, key=lambda p: (p.index, p.last or p.index), default=None)

    @property
    def first_bad_entry(self) -> int | None:
        first = self.first_bad
        return None if first is None else first.index

    def ordered_problems(self) -> list[Problem]:
        """Problems with no entry (bad checkpoints) first, then by entry."""
        return sorted(
            self.problems,
            key=lambda p: (p.index is not None, p.index or 0, p.line or 0),
        )


def verify_log(
    entries: Sequence[LogEntry | BadLine],
    verifier: Verifier,
    *,
    checkpoints: Iterable[tuple[str, CheckpointItem]] = (),
    receipts: Iterable[tuple[str, Receipt]] = (),
    lines: Sequence[int] | None = None,
) -> VerifyReport:
    """Check every entry, every checkpoint and receipt, and that a signature covers every entry.

    ``checkpoints`` and ``receipts`` are (label, item) pairs; the label (a
    file name, "audit.jsonl, line 30") says where a failure came from.
    ``lines`` gives each entry's line in its file, to name it.
    """
    report = VerifyReport(entries=len(entries))
    tree = _check_entries(entries, lines, report)
    report.root = tree.root()
    signed = _open_checkpoints(checkpoints, verifier, report)
    signed += _check_receipts(receipts, verifier, tree, report)
    mismatched = _check_roots(tree, signed, report)
    if not mismatched:
        _check_coverage(report)
    return report


def _check_entries(
    entries: Sequence[LogEntry | BadLine], lines: Sequence[int] | None, report: VerifyReport
) -> merkle.MemoryTree:
    tree = merkle.MemoryTree()
    previous_time = ""
    misplaced: list[int] = []
    for position, entry in enumerate(entries):
        line = lines[position] if lines is not None and position < len(lines) else None
        if isinstance(entry, BadLine):
            report.problems.append(
                Problem(f"cannot be read as an entry: {entry.reason}", position, entry.line)
            )
            tree.append(entry.leaf())
            continue
        if entry.index != position:
            if not misplaced:
                report.problems.append(
                    Problem(
                        f"entry {position} is missing or out of place "
                        f"(entry {entry.index} stands in its place)",
                        position,
                        line,
                    )
                )
            misplaced.append(position)
        leaf = entry.leaf()
        if leaf.hex() != entry.entry_hash:
            report.problems.append(
                Problem(
                    "its content does not match its recorded hash (it was changed)", position, line
                )
            )
        if entry.time < previous_time:
            report.notes.append(
                Problem(
                    f"it is dated {entry.time}, before the entry ahead of it "
                    f"({previous_time}): reordered entries, or the coordinator's clock stepped "
                    "back",
                    position,
                    line,
                )
            )
        previous_time = max(previous_time, entry.time)
        tree.append(leaf)
    if len(misplaced) > 1:
        report.notes.append(
            Problem(f"{len(misplaced) - 1} later entries are out of place too", misplaced[1])
        )
    return tree


def _open_checkpoints(
    checkpoints: Iterable[tuple[str, CheckpointItem]], verifier: Verifier, report: VerifyReport
) -> list[tuple[str, Checkpoint]]:
    signed: list[tuple[str, Checkpoint]] = []
    undated = 0
    for label, item in checkpoints:
        report.checkpoints += 1
        if isinstance(item, BadLine):
            report.problems.append(
                Problem(f"{label}: cannot be read as a checkpoint: {item.reason}")
            )
            continue
        note, claimed = (item.note, item.time) if isinstance(item, StoredCheckpoint) else (item, "")
        try:
            checkpoint = verifier.open_checkpoint(note)
        except CheckpointError as exc:
            report.problems.append(Problem(f"{label}: {exc}"))
            continue
        if not checkpoint.time:
            undated += 1
        elif claimed and claimed != checkpoint.time:
            report.problems.append(
                Problem(
                    f"{label} is given the time {claimed}, but the time signed in it is "
                    f"{checkpoint.time} (its time was changed)"
                )
            )
        signed.append((label, checkpoint))
    if undated:
        report.notes.append(
            Problem(
                f"{undated} checkpoint(s) were signed by an earlier hublink without their time; "
                "the times shown for them are the coordinator database's word only"
            )
        )
    return signed


def _check_receipts(
    receipts: Iterable[tuple[str, Receipt]],
    verifier: Verifier,
    tree: merkle.MemoryTree,
    report: VerifyReport,
) -> list[tuple[str, Checkpoint]]:
    signed: list[tuple[str, Checkpoint]] = []
    for label, receipt in receipts:
        report.receipts += 1
        try:
            checkpoint = check_receipt(receipt, verifier)
        except ReceiptError as exc:
            report.problems.append(Problem(f"{label}: {exc}"))
            continue
        signed.append((label, checkpoint))
        if receipt.leaf_index >= len(tree):
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
    return signed


def _check_roots(
    tree: merkle.MemoryTree, signed: Sequence[tuple[str, Checkpoint]], report: VerifyReport
) -> bool:
    """Compare each signed checkpoint with the rebuilt tree; True if any disagrees.

    A mismatch is localised between the largest smaller checkpoint that
    matches and its own size. The coordinator signs after every entry, so
    with its checkpoints at hand that is exactly one entry: the first that
    was changed, removed or reordered.
    """
    size = len(tree)
    good, good_time = 0, ""
    first: Problem | None = None
    later = 0
    for label, checkpoint in sorted(signed, key=lambda item: item[1].size):
        if checkpoint.size > size:
            report.problems.append(
                Problem(
                    f"{label} was signed over {checkpoint.size} entries but the log has "
                    f"only {size}: entries {size} to {checkpoint.size - 1} were removed "
                    "(the log was truncated)",
                    size,
                )
            )
        elif tree.root(checkpoint.size) != checkpoint.root:
            if first is None:
                what = (
                    f"entry {good} was"
                    if checkpoint.size - 1 == good
                    else f"an entry from {good} to {checkpoint.size - 1} was"
                )
                first = Problem(
                    f"{label} (signed over {checkpoint.size} entries) does not match the log: "
                    f"{what} changed, removed or reordered after it was signed",
                    good,
                    last=checkpoint.size - 1,
                )
            else:
                later += 1
        elif first is None and checkpoint.size >= good:
            good, good_time = checkpoint.size, checkpoint.time or good_time
    if first is not None:
        report.problems.append(first)
        if later:
            report.notes.append(
                Problem(f"{later} later checkpoint(s) disagree with the log too", first.index)
            )
    report.signed_size, report.signed_time = min(good, size), good_time
    return first is not None


def _check_coverage(report: VerifyReport) -> None:
    """Fail a log that no signature covers, in whole or at its end."""
    if report.signed_size == 0 and report.entries == 0 and report.checkpoints == 0:
        report.problems.append(
            Problem("the log holds no entries and no signed checkpoint: nothing to verify")
        )
    elif report.signed_size == 0 and report.entries:
        report.problems.append(
            Problem(
                f"no signed checkpoint covers any of the {report.entries} entries: nothing "
                "shows the coordinator wrote them (checkpoints removed, or a fabricated log)",
                0,
                last=report.entries - 1,
            )
        )
    elif report.unsigned_tail:
        report.problems.append(
            Problem(
                f"the last {report.unsigned_tail} entries are covered by no signed checkpoint "
                "(an unsigned tail): the coordinator signs after every entry, so they were "
                "added after it signed, or their checkpoints were removed",
                report.signed_size,
                last=report.entries - 1,
            )
        )


# ------------------------------------------------------------------------ entry points
def verify_export(
    path: Path,
    verifier: Verifier,
    *,
    checkpoints: Iterable[tuple[str, CheckpointItem]] = (),
    receipts: Iterable[Path] = (),
) -> VerifyReport:
    """Verify an exported JSON Lines file, with checkpoints and receipt files kept elsewhere.

    Raises AuditFileError only if a file cannot be read at all; a line that
    cannot be read is reported as a bad entry.
    """
    export = read_export_file(path)
    own = [(f"{path}, line {line}", item) for line, item in export.checkpoints]
    return verify_log(
        export.entries,
        verifier,
        checkpoints=[*own, *checkpoints],
        receipts=[(str(p), read_receipt_file(p)) for p in receipts],
        lines=export.entry_lines,
    )


def summary(report: VerifyReport, label: str, key_name: str) -> str:
    """One sentence saying what passed and what it covers (for a report that is ok)."""
    when = f", signed {report.signed_time}" if report.signed_time else ""
    return (
        f"audit verify passed: {_count(report.entries, 'entry', 'entries')}, "
        f"{_count(report.checkpoints, 'signed checkpoint')} and "
        f"{_count(report.receipts, 'receipt')} check out against key {key_name} "
        f"(root {report.root.hex()[:16]}…); the newest checkpoint covers all "
        f"{report.signed_size}{when}"
    )


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
