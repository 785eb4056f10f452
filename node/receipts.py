"""The node's evidence of what it handed over: signed receipts and every checkpoint it saw.

Why keep them: a receipt is the coordinator's signature over a log that
holds this organisation's upload (its digest and record count). Kept here,
outside the coordinator's reach, it lets the organisation prove what it sent
and catch a coordinator that later drops or rewrites the entry
(``hublink audit verify --receipt``). Every checkpoint the node receives is
appended to ``checkpoints.jsonl``, so checkpoints from different parties can
be compared (``hublink audit compare``).

The coordinator's public key is pinned in the node's config
(``coordinator_key``); without one, the key of the first receipt is trusted
and written to ``state_dir/coordinator.pub``, and any other key is refused
from then on.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hublink.audit import merkle
from hublink.audit.checkpoint import CheckpointError, Verifier, write_public_key
from hublink.audit.log import Receipt, ReceiptError, check_receipt
from hublink.private import append_private, private_dir
from node.errors import NodeError

RECEIPTS_DIR = "receipts"
CHECKPOINTS_FILE = "checkpoints.jsonl"
TRUSTED_KEY_FILE = "coordinator.pub"


class ReceiptRefused(NodeError, RuntimeError):
    """The coordinator's receipt does not verify; the upload happened but is not proven."""


@dataclass(frozen=True)
class KeptReceipt:
    path: Path
    trusted_on_first_use: bool


def coordinator_verifier(state_dir: Path, pinned: Path | None) -> Verifier | None:
    """The pinned key, else the key trusted on first use, else None."""
    try:
        if pinned is not None:
            return Verifier.from_file(pinned)
        trusted = state_dir / TRUSTED_KEY_FILE
        return Verifier.from_file(trusted) if trusted.exists() else None
    except CheckpointError as exc:
        raise ReceiptRefused(str(exc)) from None


def keep_receipt(
    state_dir: Path, pinned: Path | None, receipt: Receipt, offered_key: str
) -> KeptReceipt:
    """Verify a receipt against the coordinator's key and keep it and its checkpoint.

    The receipt is written even when it does not verify (it is evidence
    either way); ReceiptRefused is raised afterwards.
    """
    path = _write_json(state_dir / RECEIPTS_DIR / f"{receipt.upload_id}.json", receipt.to_json())
    record_checkpoint(state_dir, receipt.checkpoint, f"receipt for upload {receipt.upload_id}")
    verifier = coordinator_verifier(state_dir, pinned)
    first_use = verifier is None
    if verifier is None:
        try:
            verifier = Verifier.from_vkey(offered_key)
        except CheckpointError as exc:
            raise ReceiptRefused(
                f"the coordinator offered no usable public key with its receipt ({exc}); "
                "pin its coordinator.pub as coordinator_key in the node config"
            ) from None
    try:
        check_receipt(receipt, verifier)
    except ReceiptError as exc:
        raise ReceiptRefused(
            f"{exc}; the upload was committed but this receipt proves nothing (kept in {path})"
        ) from None
    if first_use:
        write_public_key(verifier, state_dir / TRUSTED_KEY_FILE)
    return KeptReceipt(path, first_use)


def check_log_grew(
    state_dir: Path, pinned: Path | None, fetch: Callable[[int], tuple[str, list[bytes]]]
) -> str | None:
    """Check the coordinator's latest log extends the largest checkpoint this node kept.

    ``fetch(old_size)`` returns the latest signed checkpoint note and a
    consistency proof from ``old_size``. A coordinator that dropped or
    rewrote anything this node was shown cannot produce one; ReceiptRefused
    says so. The new checkpoint is kept. Returns a sentence, or None when
    there is nothing to check against yet.
    """
    verifier = coordinator_verifier(state_dir, pinned)
    notes = checkpoints(state_dir)
    if verifier is None or not notes:
        return None
    try:
        kept = max((verifier.open_checkpoint(n) for n in notes), key=lambda c: c.size)
        latest_note, proof = fetch(kept.size)
        latest = verifier.open_checkpoint(latest_note)
    except CheckpointError as exc:
        raise ReceiptRefused(f"the coordinator's checkpoint does not verify: {exc}") from None
    record_checkpoint(state_dir, latest_note, "consistency check")
    try:
        merkle.verify_consistency(kept.size, latest.size, kept.root, latest.root, proof)
    except merkle.ProofError as exc:
        raise ReceiptRefused(
            f"the coordinator's audit log of {latest.size} entries does not extend the log of "
            f"{kept.size} entries it signed for this node earlier ({exc}); keep "
            f"{state_dir / CHECKPOINTS_FILE} and tell your information-governance officer"
        ) from None
    return f"the coordinator's log of {latest.size} entries extends the {kept.size} this node saw"


def record_checkpoint(state_dir: Path, note: str, source: str) -> None:
    """Append a checkpoint note the node received, with when and from what."""
    private_dir(state_dir)
    when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    line = json.dumps({"received_at": when, "source": source, "note": note}, sort_keys=True)
    with append_private(state_dir / CHECKPOINTS_FILE) as handle:
        handle.write(line + "\n")


def checkpoints(state_dir: Path) -> list[str]:
    """Every checkpoint note the node kept, oldest first."""
    path = state_dir / CHECKPOINTS_FILE
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [str(json.loads(line)["note"]) for line in lines if line.strip()]


def receipts(state_dir: Path) -> list[Path]:
    """The receipt files the node kept."""
    return sorted((state_dir / RECEIPTS_DIR).glob("*.json"))


def _write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path
