"""``hublink node withdraw``: consent withdrawn after upload.

The node looks up the tokens it sent for the given local record ids (only it
can: the token store never leaves the organisation), remembers the
withdrawal, and tells the coordinator, which deletes those encodings and
their entity assignments. A withdrawal is remembered before the coordinator
is called, so the records are left out of every later upload even if the
call fails; the next ``withdraw`` resends any the coordinator has not
confirmed. ``node.log`` records when each withdrawal was honoured, with
counts only.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from hublink.clients import RequestRefused
from hublink.config import NodeConfig
from node import credentials, locallog
from node.credentials import own_identity
from node.errors import RunError
from node.tokens import TokenStore


@dataclass(frozen=True)
class WithdrawSummary:
    organisation: str
    project_id: str
    requested: int
    sent: int
    withdrawn: int
    not_found: int
    never_uploaded: int


def read_id_file(path: Path, id_column: str) -> list[str]:
    """Local ids from a file: one a line, or a CSV with them in ``id_column`` (or its first)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RunError(f"{path}: cannot read the list of local ids: {exc.strerror}") from None
    rows = [row for row in csv.reader(text.splitlines()) if row and any(c.strip() for c in row)]
    if not rows:
        raise RunError(f"{path}: the list of local ids is empty")
    at = 0
    header = [c.strip() for c in rows[0]]
    if id_column in header or "local_id" in header:
        at = header.index(id_column) if id_column in header else header.index("local_id")
        rows = rows[1:]
    return [row[at].strip() for row in rows if len(row) > at and row[at].strip()]


def withdraw(
    config: NodeConfig, local_ids: Iterable[str], *, channel: grpc.Channel | None = None
) -> WithdrawSummary:
    """Withdraw ``local_ids`` from the project; returns counts for the operator."""
    identity = own_identity(config)
    wanted = sorted({i.strip() for i in local_ids if i.strip()})
    if not wanted:
        raise RunError("no local record ids to withdraw")
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        # The records held now, whichever upload or refresh sent them (node.refresh).
        held = store.held_records(config.project)
        sent_as = {local: held[local][0] for local in wanted if local in held}
        store.record_withdrawals(config.project, [(i, sent_as.get(i)) for i in wanted])
        never = len(wanted) - len(sent_as)
        locallog.append(
            config.state_dir,
            "withdrawal.recorded",
            project=config.project,
            records=len(wanted),
            uploaded=len(sent_as),
            never_uploaded=never,
        )
        pending: Sequence[str] = store.pending_withdrawals(config.project)
        withdrawn = not_found = 0
        if pending:
            try:
                withdrawn, not_found = credentials.client(config, channel).withdraw(
                    config.project, pending
                )
            except RequestRefused as exc:
                raise RunError(
                    f"{exc}; the withdrawal is recorded here and these records will not be "
                    "uploaded again; run the same withdraw again to tell the coordinator"
                ) from None
            store.mark_honoured(config.project, pending)
            locallog.append(
                config.state_dir,
                "withdrawal.honoured",
                project=config.project,
                sent=len(pending),
                withdrawn=withdrawn,
                not_found=not_found,
            )
    return WithdrawSummary(
        identity.organisation,
        config.project,
        len(wanted),
        len(pending),
        withdrawn,
        not_found,
        never,
    )
