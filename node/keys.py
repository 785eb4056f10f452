"""The last stage: fetch this node's linkage keys and write ``linked.csv`` and ``changes.csv``.

After the coordinator has matched, each record the node sent has a linkage
key. Only the node can turn the random tokens it sent back into its own
local record ids (``node.tokens``), so ``linked.csv`` holds local record id
and linkage key, and no identifiers. Records withdrawn since the upload are
left out, and the coordinator's audit log is checked to have only grown
since the node's receipt (``node.receipts``).

After the first fetch the node asks only for what changed since its last
one (``keys.seq`` in the state folder holds where that was): records new
since, records whose key changed because two entities merged or one split,
and records removed. It applies them to ``linked.csv`` and writes them to
``changes.csv`` (local_id, old_key, new_key, change), each file replaced
whole through a temporary file. If the result does not hold exactly the
records the coordinator holds, it fetches every key instead, and
``changes.csv`` is what differs from the last ``linked.csv``.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from hublink.config import NodeConfig
from node import credentials, locallog
from node.credentials import own_identity
from node.errors import RunError
from node.receipts import ReceiptRefused, check_log_grew
from node.tokens import TokenStore

CHANGES_NAME = "changes.csv"
SEQ_NAME = "keys.seq"
_EVERYTHING = 2**63 - 1


@dataclass(frozen=True)
class KeysSummary:
    organisation: str
    project_id: str
    keys: int
    output: Path
    changes: int = 0
    """Rows written to changes.csv."""
    incremental: bool = False
    """Whether only the changes since the last fetch were fetched."""


def fetch_keys(config: NodeConfig, *, channel: grpc.Channel | None = None) -> KeysSummary:
    """Fetch the keys (or what changed since the last fetch) and write both files."""
    identity = own_identity(config)
    client = credentials.client(config, channel)
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        if store.committed_upload(config.project) is None:
            raise RunError(f"this node has not uploaded to project {config.project!r} yet")
        local = store.held_tokens(config.project)
        every = store.every_token(config.project)
        withdrawn = store.withdrawn_tokens(config.project) & set(local)
    expected = {local_id for token, local_id in local.items() if token not in withdrawn}
    previous = _read_linked(config.output)
    seq_file = config.state_dir / SEQ_NAME
    since = _read_seq(seq_file)
    rows: dict[str, str] | None = None
    changes: list[tuple[str, str, str, str]] = []
    head = 0
    if since is not None and previous is not None:
        found, head = client.key_changes(config.project, since)
        rows = dict(previous)
        for token, old_key, new_key, change in found:
            local_id = every.get(token)
            if local_id is None:
                raise RunError("the coordinator returned a key for a token this node never sent")
            if new_key and token in local and token not in withdrawn:
                rows[local_id] = new_key
            else:
                rows.pop(local_id, None)
            changes.append((local_id, old_key, new_key, change))
        if set(rows) != expected:
            rows = None  # out of step (a fetch missed, files edited): fetch every key
    incremental = rows is not None
    if rows is None:
        _, head = client.key_changes(config.project, _EVERYTHING)
        rows = {}
        for token, key in client.linkage_keys(config.project):
            local_id = local.get(token)
            if local_id is None:
                raise RunError("the coordinator returned a key for a token this node never sent")
            if token in withdrawn:
                continue  # withdrawn after upload: never written, even before the next run
            rows[local_id] = key
        if len(rows) != len(expected):
            raise RunError(f"the coordinator returned {len(rows)} keys for {len(expected)} records")
        changes = _differences(previous or {}, rows)
    _write_atomically(config.output, ["local_id", "linkage_key"], sorted(rows.items()))
    _write_atomically(
        config.output.with_name(CHANGES_NAME),
        ["local_id", "old_key", "new_key", "change"],
        changes,
    )
    _write_text(seq_file, f"{head}\n")
    try:
        grew = check_log_grew(config.state_dir, config.coordinator_key, client.log_extension)
    except ReceiptRefused as exc:
        locallog.append(config.state_dir, "audit.inconsistent", project=config.project)
        raise RunError(str(exc)) from None
    if grew:
        locallog.append(config.state_dir, "audit.consistent", project=config.project)
    locallog.append(
        config.state_dir,
        "keys.fetched",
        project=config.project,
        keys=len(rows),
        changes=len(changes),
        incremental=incremental,
    )
    return KeysSummary(
        identity.organisation, config.project, len(rows), config.output, len(changes), incremental
    )


#: First characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` with a single quote in front if a spreadsheet would run it as a formula.

    linked.csv is opened in spreadsheets; a local id such as ``=HYPERLINK(…)``
    from the organisation's own extract must stay text. Strip one leading quote
    from a cell that starts with ``'`` followed by one of ``FORMULA_STARTS`` to
    get the id back (docs/operations.md).
    """
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _differences(before: dict[str, str], after: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """changes.csv rows for two whole sets of keys: added, removed, or key changed."""
    out = [(local, "", key, "added") for local, key in after.items() if local not in before]
    out += [(local, key, "", "removed") for local, key in before.items() if local not in after]
    out += [
        (local, before[local], key, "changed")
        for local, key in after.items()
        if local in before and before[local] != key
    ]
    return sorted(out)


def _read_linked(path: Path) -> dict[str, str] | None:
    if not path.exists():
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        return {
            as_written(row["local_id"]): as_written(row["linkage_key"])
            for row in csv.DictReader(handle)
        }


def _read_seq(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def as_written(cell: str) -> str:
    """The id or key ``spreadsheet_safe`` quoted, as it was before."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


def _write_atomically(path: Path, header: list[str], rows: Sequence[tuple[str, ...]]) -> None:
    """Write a CSV through a temporary file, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)  # mkstemp's mode already; said here because it matters
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(tuple(spreadsheet_safe(cell) for cell in row) for row in rows)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
