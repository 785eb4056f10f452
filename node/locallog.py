"""The node's own log: a plain text file in its state folder that never leaves the organisation.

An information-governance officer reads it to see what the node did and
when: each run's exclusion counts, each upload, each withdrawal and when the
coordinator honoured it. Lines hold counts, hashes, file names and upload ids
only — never an identifier, a local record id, a token or a linkage key —
because a log is copied and shared far more freely than data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hublink.private import append_private, private_dir

LOG_NAME = "node.log"


def log_path(state_dir: Path) -> Path:
    return state_dir / LOG_NAME


def append(state_dir: Path, event: str, **details: object) -> None:
    """Append one line: UTC time, event name, then key=value details in the order given."""
    private_dir(state_dir)
    when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    parts = [when, event, *(f"{key}={_value(value)}" for key, value in details.items())]
    with append_private(log_path(state_dir)) as handle:
        handle.write(" ".join(parts) + "\n")


def _value(value: object) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    text = str(value)
    return f'"{text}"' if " " in text else text
