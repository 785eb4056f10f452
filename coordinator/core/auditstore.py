"""The Merkle log's tables: stored subtree hashes and signed checkpoints.

Why store interior hashes: with every complete subtree's hash kept
(``merkle_nodes``: level, position, hash), a root, an inclusion proof or a
consistency proof takes O(log n) indexed look-ups, so signing a checkpoint
after an upload costs the same at 100 entries as at 100,000. Appending a
leaf writes two rows on average. Everything here runs on the connection of
the transaction that appends the entry, so the entry, its tree nodes and
its checkpoint commit or roll back together.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from hublink.audit import merkle
from hublink.audit.checkpoint import Signer

SCHEMA = """
CREATE TABLE IF NOT EXISTS merkle_nodes (
    level INTEGER NOT NULL,
    position INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL
);
"""


class SqlSubtrees:
    """``merkle.Subtrees`` read from the ``merkle_nodes`` table."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def perfect(self, start: int, level: int) -> bytes:
        row = self._connection.execute(
            "SELECT hash FROM merkle_nodes WHERE level = ? AND position = ?",
            (level, start >> level),
        ).fetchone()
        if row is None:
            raise merkle.ProofError(f"the log has no subtree of level {level} at leaf {start}")
        return bytes(row[0])


def append_leaf(connection: sqlite3.Connection, index: int, leaf: bytes) -> None:
    """Store leaf ``index`` and every subtree it completes."""
    connection.execute("INSERT INTO merkle_nodes VALUES (0, ?, ?)", (index, leaf))
    level, position, current = 0, index, leaf
    while position % 2 == 1:
        left = connection.execute(
            "SELECT hash FROM merkle_nodes WHERE level = ? AND position = ?",
            (level, position - 1),
        ).fetchone()[0]
        current = merkle.node_hash(bytes(left), current)
        level, position = level + 1, position // 2
        connection.execute("INSERT INTO merkle_nodes VALUES (?, ?, ?)", (level, position, current))


def log_size(connection: sqlite3.Connection) -> int:
    row = connection.execute("SELECT MAX(position) FROM merkle_nodes WHERE level = 0").fetchone()
    return 0 if row[0] is None else int(row[0]) + 1


@dataclass(frozen=True)
class SignedCheckpoint:
    size: int
    time: str
    root: bytes
    note: str
    public_key: str = ""
    """The signer's verifier key line, filled in by the store when it hands a checkpoint out."""


def sign_checkpoint(
    connection: sqlite3.Connection, signer: Signer, size: int, time: str
) -> SignedCheckpoint:
    """Sign and store a checkpoint over the first ``size`` entries (once per size).

    ``time`` is signed inside the note (its ``time`` line), so the time the
    table and an export show for it can be checked against the signature.
    """
    existing = connection.execute(
        "SELECT size, time, root, note FROM checkpoints WHERE size = ?", (size,)
    ).fetchone()
    if existing is not None:
        return SignedCheckpoint(int(existing[0]), existing[1], bytes(existing[2]), existing[3])
    root = merkle.root(SqlSubtrees(connection), size)
    note = signer.sign_checkpoint(size, root, time)
    connection.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?)", (size, time, root, note))
    return SignedCheckpoint(size, time, root, note)


def latest_checkpoint(connection: sqlite3.Connection) -> SignedCheckpoint | None:
    row = connection.execute(
        "SELECT size, time, root, note FROM checkpoints ORDER BY size DESC LIMIT 1"
    ).fetchone()
    return None if row is None else SignedCheckpoint(int(row[0]), row[1], bytes(row[2]), row[3])


def all_checkpoints(connection: sqlite3.Connection) -> list[SignedCheckpoint]:
    return [
        SignedCheckpoint(int(r[0]), r[1], bytes(r[2]), r[3])
        for r in connection.execute("SELECT size, time, root, note FROM checkpoints ORDER BY size")
    ]
