"""The last stage: fetch this node's linkage keys and write ``linked.csv``.

After the coordinator has matched, each record the node sent has a linkage
key. Only the node can turn the random tokens it sent back into its own
local record ids (``node.tokens``), so ``linked.csv`` holds local record id
and linkage key, and no identifiers. Records withdrawn since the upload are
left out, and the coordinator's audit log is checked to have only grown
since the node's receipt (``node.receipts``).
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc

from hublink.config import NodeConfig
from node import credentials, locallog
from node.credentials import own_identity
from node.errors import RunError
from node.receipts import ReceiptRefused, check_log_grew
from node.tokens import TokenStore


@dataclass(frozen=True)
class KeysSummary:
    organisation: str
    project_id: str
    keys: int
    output: Path


def fetch_keys(config: NodeConfig, *, channel: grpc.Channel | None = None) -> KeysSummary:
    """Fetch the linkage key of every uploaded record and write ``linked.csv``."""
    identity = own_identity(config)
    client = credentials.client(config, channel)
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        upload_id = store.committed_upload(config.project)
        if upload_id is None:
            raise RunError(f"this node has not uploaded to project {config.project!r} yet")
        local = store.held_tokens(config.project)
        withdrawn = store.withdrawn_tokens(config.project) & set(local)
    rows: list[tuple[str, str]] = []
    for token, key in client.linkage_keys(config.project):
        local_id = local.get(token)
        if local_id is None:
            raise RunError("the coordinator returned a key for a token this node never sent")
        if token in withdrawn:
            continue  # withdrawn after upload: never written, even before the next run
        rows.append((local_id, key))
    expected = len(local) - len(withdrawn)
    if len(rows) != expected:
        raise RunError(f"the coordinator returned {len(rows)} keys for {expected} records")
    _write_atomically(config.output, rows)
    try:
        grew = check_log_grew(config.state_dir, config.coordinator_key, client.log_extension)
    except ReceiptRefused as exc:
        locallog.append(config.state_dir, "audit.inconsistent", project=config.project)
        raise RunError(str(exc)) from None
    if grew:
        locallog.append(config.state_dir, "audit.consistent", project=config.project)
    return KeysSummary(identity.organisation, config.project, len(rows), config.output)


def _write_atomically(path: Path, rows: list[tuple[str, str]]) -> None:
    """Write linked.csv through a temporary file, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["local_id", "linkage_key"])
            writer.writerows(rows)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
