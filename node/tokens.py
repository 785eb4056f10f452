"""The node's own store: which random token stands for which local record.

Tokens are the only handle the coordinator has on a record; this SQLite file
is the only place that maps them back to local record ids, and it never
leaves the organisation. Without it, the linkage keys the coordinator returns
mean nothing, so it is written (in one transaction) before any record is sent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hublink.private import private_dir, private_sqlite, tighten_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    state TEXT NOT NULL,
    records INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    committed_at TEXT,
    receipt_json TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    upload_id TEXT NOT NULL REFERENCES uploads(upload_id),
    local_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_upload ON tokens(upload_id);
-- A resumed upload looks its records' tokens up by local id, a batch at a time.
CREATE INDEX IF NOT EXISTS tokens_by_local_id ON tokens(upload_id, local_id);
-- The linkage-secret epoch an upload's records were encoded under (a table of its own so
-- token stores written before it need no migration; no row: epoch unknown).
CREATE TABLE IF NOT EXISTS upload_epochs (
    upload_id TEXT PRIMARY KEY REFERENCES uploads(upload_id),
    secret_epoch INTEGER NOT NULL
);
-- What an upload sends: a fingerprint of its included records' local ids in order, so an
-- interrupted upload is resumed only over the same input (no row: recorded before it was).
CREATE TABLE IF NOT EXISTS upload_inputs (
    upload_id TEXT PRIMARY KEY REFERENCES uploads(upload_id),
    included_sha256 TEXT NOT NULL
);
-- Refreshes (node.refresh): a keyed fingerprint (HMAC) of each sent record's normalised
-- values, never the values, so the next extract's changed records can be found.
CREATE TABLE IF NOT EXISTS token_fingerprints (
    token TEXT PRIMARY KEY,
    upload_id TEXT NOT NULL REFERENCES uploads(upload_id),
    local_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS token_fingerprints_by_upload ON token_fingerprints(upload_id);
-- The records the coordinator holds for each project now: local id, its token and the
-- fingerprint of what was last sent under it (set when an upload or refresh commits).
CREATE TABLE IF NOT EXISTS record_state (
    project_id TEXT NOT NULL,
    local_id TEXT NOT NULL,
    token TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (project_id, local_id)
);
CREATE TABLE IF NOT EXISTS withdrawals (
    project_id TEXT NOT NULL,
    local_id TEXT NOT NULL,
    token TEXT,
    requested_at TEXT NOT NULL,
    honoured_at TEXT,
    PRIMARY KEY (project_id, local_id)
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class TokenStore:
    """Token ↔ local id, and the node's uploads with their receipts."""

    def __init__(self, path: Path) -> None:
        private_dir(path.parent)
        self.path = private_sqlite(path)  # -wal and -shm take the file's 0600
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        tighten_sqlite(path)
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TokenStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record_upload(
        self,
        upload_id: str,
        project_id: str,
        tokens: Sequence[tuple[str, str]] = (),
        *,
        secret_epoch: int = 0,
        records: int | None = None,
        included_sha256: str = "",
    ) -> None:
        """Remember an upload before sending: its secret epoch, how many records it sends
        (``records``, else as many as ``tokens``), the fingerprint of its input, and any
        (token, local id) pairs known now; a streaming upload adds the rest with
        ``add_tokens`` a batch at a time, each batch before it is sent."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO uploads VALUES (?, ?, 'sending', ?, ?, NULL, NULL)",
                (upload_id, project_id, len(tokens) if records is None else records, _now()),
            )
            self._db.execute("INSERT INTO upload_epochs VALUES (?, ?)", (upload_id, secret_epoch))
            if included_sha256:
                self._db.execute(
                    "INSERT INTO upload_inputs VALUES (?, ?)", (upload_id, included_sha256)
                )
            self._insert_tokens(upload_id, tokens)

    def add_tokens(self, upload_id: str, tokens: Sequence[tuple[str, str]]) -> None:
        """Remember more (token, local id) pairs of an upload, in one transaction."""
        with self._transaction():
            self._insert_tokens(upload_id, tokens)

    def _insert_tokens(self, upload_id: str, tokens: Sequence[tuple[str, str]]) -> None:
        self._db.executemany(
            "INSERT INTO tokens VALUES (?, ?, ?)",
            ((token, upload_id, local_id) for token, local_id in tokens),
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction, taken at once: all of it lands, or none."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def upload_input(self, upload_id: str) -> tuple[int, str]:
        """How many records the upload sends and its input's fingerprint ("" if not recorded)."""
        row = self._db.execute(
            "SELECT u.records, i.included_sha256 FROM uploads u "
            "LEFT JOIN upload_inputs i ON i.upload_id = u.upload_id WHERE u.upload_id = ?",
            (upload_id,),
        ).fetchone()
        if row is None:
            raise KeyError(upload_id)
        return int(row[0]), str(row[1] or "")

    def mark_committed(self, upload_id: str, receipt: Mapping[str, Any]) -> None:
        self._db.execute(
            "UPDATE uploads SET state = 'committed', committed_at = ?, receipt_json = ? "
            "WHERE upload_id = ?",
            (_now(), json.dumps(dict(receipt), sort_keys=True), upload_id),
        )

    def mark_failed(self, upload_id: str) -> None:
        self._db.execute("UPDATE uploads SET state = 'failed' WHERE upload_id = ?", (upload_id,))

    def interrupted_upload(self, project_id: str) -> tuple[str, dict[str, str]] | None:
        """The upload still 'sending' for the project (a run that stopped half-way), if any,
        with local id -> token for the records it recorded before it stopped."""
        upload_id = self.interrupted_upload_id(project_id)
        if upload_id is None:
            return None
        return upload_id, {local: token for token, local in self.local_ids(upload_id).items()}

    def interrupted_upload_id(self, project_id: str) -> str | None:
        """The id of the project's upload still 'sending', if any (its tokens left unread)."""
        row = self._db.execute(
            "SELECT upload_id FROM uploads WHERE project_id = ? AND state = 'sending' "
            "ORDER BY created_at DESC LIMIT 1",
            (project_id,),
        ).fetchone()
        return None if row is None else str(row[0])

    def upload_epoch(self, upload_id: str) -> int | None:
        """The secret epoch the upload was encoded under (None: recorded before epochs were)."""
        row = self._db.execute(
            "SELECT secret_epoch FROM upload_epochs WHERE upload_id = ?", (upload_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def committed_upload(self, project_id: str) -> str | None:
        row = self._db.execute(
            "SELECT upload_id FROM uploads WHERE project_id = ? AND state = 'committed' "
            "ORDER BY committed_at DESC LIMIT 1",
            (project_id,),
        ).fetchone()
        return None if row is None else str(row[0])

    def local_ids(self, upload_id: str) -> dict[str, str]:
        """token → local id for one upload."""
        return dict(
            self._db.execute(
                "SELECT token, local_id FROM tokens WHERE upload_id = ?", (upload_id,)
            ).fetchall()
        )

    # --------------------------------------------------------------- refreshes
    def add_fingerprints(self, upload_id: str, rows: Sequence[tuple[str, str, str]]) -> None:
        """Remember (token, local id, fingerprint) of records an upload sends."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO token_fingerprints VALUES (?, ?, ?, ?)",
                ((token, upload_id, local_id, fp) for token, local_id, fp in rows),
            )

    def held_records(self, project_id: str) -> dict[str, tuple[str, str]]:
        """local id -> (token, fingerprint) of every record the coordinator holds.

        A project first uploaded before fingerprints were kept has none: its
        committed upload's tokens come back with an empty fingerprint, so a
        refresh sends each of them again once, under the same token.
        """
        held = {
            str(local): (str(token), str(fp))
            for local, token, fp in self._db.execute(
                "SELECT local_id, token, fingerprint FROM record_state WHERE project_id = ?",
                (project_id,),
            )
        }
        if held:
            return held
        upload_id = self.committed_upload(project_id)
        if upload_id is None:
            return {}
        return {local: (token, "") for token, local in self.local_ids(upload_id).items()}

    def settle(self, project_id: str, upload_id: str, removed: Iterable[str] = ()) -> None:
        """After a commit: the upload's records are held as sent, ``removed`` ones no more."""
        with self._transaction():
            if not self._db.execute(
                "SELECT 1 FROM record_state WHERE project_id = ? LIMIT 1", (project_id,)
            ).fetchone():
                # The first settle of a project sent before fingerprints: take its tokens.
                self._db.execute(
                    "INSERT OR IGNORE INTO record_state SELECT u.project_id, t.local_id, "
                    "t.token, '' FROM tokens t JOIN uploads u ON u.upload_id = t.upload_id "
                    "WHERE u.project_id = ? AND u.state = 'committed'",
                    (project_id,),
                )
            self._db.execute(
                "INSERT OR REPLACE INTO record_state SELECT ?, local_id, token, fingerprint "
                "FROM token_fingerprints WHERE upload_id = ?",
                (project_id, upload_id),
            )
            self._db.executemany(
                "DELETE FROM record_state WHERE project_id = ? AND local_id = ?",
                ((project_id, local_id) for local_id in removed),
            )

    def ever_sent(self, project_id: str) -> frozenset[str]:
        """Local ids sent to the project in any committed upload or refresh."""
        return frozenset(
            str(row[0])
            for row in self._db.execute(
                "SELECT DISTINCT t.local_id FROM tokens t JOIN uploads u "
                "ON u.upload_id = t.upload_id WHERE u.project_id = ? AND u.state = 'committed'",
                (project_id,),
            )
        )

    def every_token(self, project_id: str) -> dict[str, str]:
        """token -> local id of every record ever sent to the project (removed ones too)."""
        return {
            str(token): str(local)
            for token, local in self._db.execute(
                "SELECT t.token, t.local_id FROM tokens t JOIN uploads u "
                "ON u.upload_id = t.upload_id WHERE u.project_id = ?",
                (project_id,),
            )
        }

    def held_tokens(self, project_id: str) -> dict[str, str]:
        """token -> local id of every record held for the project (for its keys)."""
        return {token: local for local, (token, _) in self.held_records(project_id).items()}

    # ------------------------------------------------------------- withdrawals
    def tokens_for(self, upload_id: str, local_ids: Iterable[str]) -> dict[str, str]:
        """local id -> token, for those of ``local_ids`` sent in the upload."""
        wanted = list(dict.fromkeys(local_ids))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(
                (str(local_id), str(token))
                for token, local_id in self._db.execute(
                    f"SELECT token, local_id FROM tokens WHERE upload_id = ? "
                    f"AND local_id IN ({marks})",
                    (upload_id, *part),
                )
            )
        return found

    def record_withdrawals(
        self, project_id: str, entries: Sequence[tuple[str, str | None]]
    ) -> None:
        """Remember withdrawn local ids (with the token they were sent under, if any).

        A local id never sent has nothing to tell the coordinator: it is
        honoured at once, by being left out of every later upload.
        """
        now = _now()
        with self._transaction():
            self._db.executemany(
                "INSERT INTO withdrawals VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (project_id, local_id) DO UPDATE SET "
                "token = COALESCE(withdrawals.token, excluded.token)",
                (
                    (project_id, local_id, token, now, None if token else now)
                    for local_id, token in entries
                ),
            )

    def pending_withdrawals(self, project_id: str) -> list[str]:
        """Tokens withdrawn here that the coordinator has not yet confirmed."""
        return [
            str(row[0])
            for row in self._db.execute(
                "SELECT token FROM withdrawals WHERE project_id = ? AND token IS NOT NULL "
                "AND honoured_at IS NULL ORDER BY token",
                (project_id,),
            )
        ]

    def mark_honoured(self, project_id: str, tokens: Iterable[str]) -> None:
        now = _now()
        self._db.executemany(
            "UPDATE withdrawals SET honoured_at = ? WHERE project_id = ? AND token = ?",
            ((now, project_id, token) for token in tokens),
        )

    def withdrawn_local_ids(self) -> frozenset[str]:
        """Every local id whose consent was withdrawn, whatever the project: never sent again."""
        return frozenset(
            str(row[0]) for row in self._db.execute("SELECT local_id FROM withdrawals")
        )

    def withdrawn_tokens(self, project_id: str) -> frozenset[str]:
        return frozenset(
            str(row[0])
            for row in self._db.execute(
                "SELECT token FROM withdrawals WHERE project_id = ? AND token IS NOT NULL",
                (project_id,),
            )
        )
