"""Tables a run keeps for the next one, stored as a base and the changes each run made.

Why: a monthly refresh touches about 1% of a project's records, but what a run
keeps for the next (its candidate pairs, its estimate sample, its entity map)
is tens of megabytes at 2 x 100,000 records. Rewritten whole at every run, those
writes cost more than comparing the changes did. So a run that builds on the
last one writes only a ``Change``: the positions it dropped from the table as it
read it, and the rows it added at the end. Reading replays the base and every
change in order, so it gives the same rows in the same order each time; a
change records how many rows it applies to, and a chain that does not add up
reads as nothing kept (the run is then a full one, as with no earlier run).

Once the changes hold more than a quarter of the base's rows, or there are
``MAX_CHANGES`` of them, the table is written whole again, so reading never
replays a long history.

The rows are arrays of record ids, similarities and internal entity ids:
no identifier, no encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

MAX_CHANGES = 12
"""Changes replayed on a base at most; the next run writes the table whole."""

SCHEMA = """
-- What a run keeps for the next (kind: 'pairs', 'sample', 'sample-ids', 'entities'):
-- seq 0 is the table whole, each later seq one run's change to it (kept_rows.py).
CREATE TABLE IF NOT EXISTS kept_rows (
    project_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (project_id, kind, seq)
);
"""

Columns = tuple[np.ndarray, ...]


class _Executes(Protocol):
    def execute(self, sql: str, parameters: tuple[Any, ...] = ...) -> Any: ...


Query = Callable[[str, tuple[Any, ...]], Sequence[Any]]
"""A read returning rows that index by position (``Store.query``)."""


@dataclass(frozen=True)
class Change:
    """One run's change to a kept table: rows dropped (positions in the table as read) and
    rows added after the rest."""

    dropped: np.ndarray
    added: Columns

    def applied(self, columns: Columns) -> Columns:
        """The table after this change (what ``read`` gives once it is stored)."""
        keep = np.ones(len(columns[0]), dtype=bool)
        keep[self.dropped] = False
        return tuple(np.concatenate([c[keep], a]) for c, a in zip(columns, self.added, strict=True))


@dataclass(frozen=True)
class Kept:
    """A kept table as read: its columns, the run whose rows they are, and how long its
    chain of changes is."""

    columns: Columns
    run_id: str
    changes: int
    changed_rows: int
    base_rows: int

    def room_for(self, change: Change) -> bool:
        """Whether ``change`` may be appended rather than the table written whole."""
        rows = self.changed_rows + len(change.dropped) + len(change.added[0])
        return self.changes < MAX_CHANGES and 4 * rows <= max(self.base_rows, 1)


def _pack(rows_before: int, dropped: np.ndarray, columns: Columns, dtypes: Sequence[str]) -> bytes:
    head = np.array([rows_before, len(dropped), len(columns[0])], dtype=np.int64)
    body = [head.tobytes(), np.ascontiguousarray(dropped, dtype=np.int64).tobytes()]
    body += [
        np.ascontiguousarray(c, dtype=t).tobytes() for c, t in zip(columns, dtypes, strict=True)
    ]
    return b"".join(body)


def _unpack(blob: bytes, dtypes: Sequence[str]) -> tuple[int, np.ndarray, Columns]:
    rows_before, n_dropped, n = (int(x) for x in np.frombuffer(blob, np.int64, 3))
    offset = 24
    dropped = np.frombuffer(blob, np.int64, n_dropped, offset=offset)
    offset += 8 * n_dropped
    columns = []
    for t in dtypes:
        dtype = np.dtype(t)
        columns.append(np.frombuffer(blob, dtype, n, offset=offset))
        offset += dtype.itemsize * n
    if offset != len(blob):
        raise ValueError("a kept table's row does not match its columns")
    return rows_before, dropped, tuple(columns)


def read(query: Query, project_id: str, kind: str, dtypes: Sequence[str]) -> Kept | None:
    """The table as the last run left it, or None if nothing is kept (or it does not add up).

    The changes are replayed on positions, not on the columns: each column is gathered
    once at the end, however many changes there are.
    """
    rows = query(
        "SELECT seq, run_id, body FROM kept_rows WHERE project_id = ? AND kind = ? ORDER BY seq",
        (project_id, kind),
    )
    if not rows or int(rows[0][0]) != 0:
        return None
    blocks: list[Columns] = []
    at = np.zeros(0, dtype=np.int64)
    offset = changed = 0
    for seq, (number, _, blob) in enumerate(rows):
        rows_before, dropped, added = _unpack(bytes(blob), dtypes)
        if int(number) != seq or rows_before != len(at):
            return None
        if len(dropped):
            keep = np.ones(len(at), dtype=bool)
            keep[dropped] = False
            at = at[keep]
        n = len(added[0])
        at = np.concatenate([at, np.arange(offset, offset + n, dtype=np.int64)])
        offset += n
        changed += len(dropped) + n if seq else 0
        blocks.append(added)
    if len(blocks) == 1:
        columns = blocks[0]
    else:
        columns = tuple(np.concatenate(c)[at] for c in zip(*blocks, strict=True))
    return Kept(columns, str(rows[-1][1]), len(rows) - 1, changed, len(blocks[0][0]))


def write(
    db: _Executes,
    project_id: str,
    kind: str,
    run_id: str,
    dtypes: Sequence[str],
    whole: Callable[[], Columns],
    *,
    on: Kept | None = None,
    change: Change | None = None,
) -> None:
    """Keep a table for the next run: as ``change`` to ``on`` (the table as this run read
    it) when there is room, else whole (``whole()``, asked for only then)."""
    if on is not None and change is not None and on.room_for(change):
        blob = _pack(len(on.columns[0]), change.dropped, change.added, dtypes)
        db.execute(
            "INSERT INTO kept_rows VALUES (?, ?, ?, ?, ?)",
            (project_id, kind, on.changes + 1, run_id, blob),
        )
        return
    db.execute("DELETE FROM kept_rows WHERE project_id = ? AND kind = ?", (project_id, kind))
    db.execute(
        "INSERT INTO kept_rows VALUES (?, ?, 0, ?, ?)",
        (project_id, kind, run_id, _pack(0, np.zeros(0, np.int64), whole(), dtypes)),
    )


def forget(db: _Executes, project_id: str) -> None:
    """Every table the project's runs kept (a closed project's, or after a full reset)."""
    db.execute("DELETE FROM kept_rows WHERE project_id = ?", (project_id,))
