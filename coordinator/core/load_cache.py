"""The record CLKs a project's last run loaded, kept in memory and patched with the changes.

Reading every record CLK back from SQLite is a pass over the whole project
(about 0.4 s at 2 x 100,000), whatever a refresh changed. Between runs only
the records in ``pending_changes`` (added, changed or removed since the last
completed run) can differ from what the last run loaded, so a run starts
from the arrays the last one loaded (``Snapshot``), drops the pending
records, reads those still held again (a few thousand rows) and puts them in
place by record id, which is the order a full load reads them in.

When a snapshot may be used:

* it was taken while the project's latest completed run was the one it names
  (``basis``): a run's load refreshes the snapshot, and the run, once
  completed, ``confirm``\\s it as its own. A run that fails leaves the snapshot
  on the run before it, whose pending changes are all still pending;
* the project's committed uploads and encoding are those it was taken from;
* after patching, each dataset's record count and lowest and highest record id are
  what the store holds (read from an index with the uploads, no encodings): a change
  made some other way (an erasure, a re-upload) falls back to a full load.

The snapshot is a copy in this process's memory (the record CLK, about 256
bytes a record), never written anywhere: ``forget`` drops it when a project's
records are erased, so erased encodings do not outlive their rows.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from weakref import WeakKeyDictionary

import numpy as np

from coordinator.core.store import Store

#: Record ids per query when reading changed rows (below SQLite's variable limit).
_IDS_AT_ONCE = 900


@dataclass(frozen=True)
class Snapshot:
    """What one load read: each dataset's record ids (ascending) and record CLK rows."""

    basis: str
    """The project's latest completed run when the snapshot was taken ("" for none)."""
    encoding_sha256: str
    uploads: tuple[str, ...]
    """The committed upload of each dataset, in load order."""
    ids: tuple[np.ndarray, ...]
    rows: tuple[np.ndarray, ...]


_held: WeakKeyDictionary[Store, dict[str, Snapshot]] = WeakKeyDictionary()
_lock = threading.Lock()


def latest_run(store: Store, project_id: str) -> str:
    """The project's latest completed run id ("" for none)."""
    row = store.query_one(
        "SELECT id FROM runs WHERE project_id = ? AND state = 'completed' "
        "ORDER BY finished_at DESC, rowid DESC LIMIT 1",
        (project_id,),
    )
    return "" if row is None else str(row["id"])


def patched(
    store: Store,
    project_id: str,
    encoding_sha256: str,
    uploads: Sequence[tuple[str, int, int, int]],
    nbytes: int,
) -> Snapshot | None:
    """The project's held snapshot brought up to date with the pending changes, or None when
    there is none or it may not be used (module docstring). ``uploads``: each dataset's
    committed upload, its record count and its lowest and highest record id, as the store
    holds them now."""
    names = tuple(u[0] for u in uploads)
    with _lock:
        snapshot = _held.get(store, {}).get(project_id)
    if (
        snapshot is None
        or snapshot.basis != latest_run(store, project_id)
        or snapshot.encoding_sha256 != encoding_sha256
        or snapshot.uploads != names
        or any(r.shape[1] != nbytes for r in snapshot.rows)
    ):
        return None
    pending = np.array(
        [
            int(r[0])
            for r in store.query(
                "SELECT record_id FROM pending_changes WHERE project_id = ?", (project_id,)
            )
        ],
        dtype=np.int64,
    )
    ids: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    for upload, held_ids, held_rows in zip(names, snapshot.ids, snapshot.rows, strict=True):
        fresh_ids, fresh_rows = _read(store, upload, pending, nbytes)
        merged_ids, merged_rows = _patch(held_ids, held_rows, pending, fresh_ids, fresh_rows)
        ids.append(merged_ids)
        rows.append(merged_rows)
    # Changed some other way than through pending changes (an erasure, another process):
    # read everything again.
    for (_, count, low, high), now in zip(uploads, ids, strict=True):
        if len(now) != count or (count and (int(now[0]), int(now[-1])) != (low, high)):
            return None
    return Snapshot(snapshot.basis, encoding_sha256, names, tuple(ids), tuple(rows))


def take(store: Store, project_id: str, snapshot: Snapshot) -> None:
    """Hold ``snapshot`` (arrays the caller no longer changes) as the project's."""
    with _lock:
        _held.setdefault(store, {})[project_id] = snapshot


def confirm(store: Store, project_id: str, run_id: str, basis: str) -> None:
    """A run completed: the snapshot its load took (on ``basis``) is now on the run."""
    with _lock:
        held = _held.get(store, {})
        snapshot = held.get(project_id)
        if snapshot is not None and snapshot.basis == basis:
            held[project_id] = Snapshot(
                run_id, snapshot.encoding_sha256, snapshot.uploads, snapshot.ids, snapshot.rows
            )


def forget(store: Store, project_id: str | None = None) -> None:
    """Drop the project's snapshot (every project's with None): its records were erased."""
    with _lock:
        if project_id is None:
            _held.pop(store, None)
        else:
            _held.get(store, {}).pop(project_id, None)


def _patch(
    held_ids: np.ndarray,
    held_rows: np.ndarray,
    pending: np.ndarray,
    fresh_ids: np.ndarray,
    fresh_rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The held rows with the pending ones gone, and the ``fresh`` ones (pending records the
    upload holds now) in their place by id: changed rows in place, added ones inserted in
    id order, each row copied once or twice, never gathered in a new order."""
    at = np.searchsorted(held_ids, fresh_ids)
    inside = at < len(held_ids)
    changed = np.zeros(len(fresh_ids), dtype=bool)
    changed[inside] = held_ids[at[inside]] == fresh_ids[inside]
    keys = np.sort(pending)
    gone = np.zeros(len(held_ids), dtype=bool)
    if len(keys):
        gone = keys[np.minimum(np.searchsorted(keys, held_ids), len(keys) - 1)] == held_ids
    gone[at[changed]] = False
    if not len(fresh_ids) and not gone.any():
        return held_ids, held_rows  # untouched: shared, not copied (no one writes to them)
    kept = np.flatnonzero(~gone)
    ids = held_ids[kept]
    added = ~changed
    order = np.argsort(fresh_ids[added], kind="stable")
    new_ids, new_rows = fresh_ids[added][order], fresh_rows[added][order]
    place = np.searchsorted(ids, new_ids)
    # As ``np.insert`` places them: the k-th added row lands at place[k] + k, each kept row
    # after the added ones placed at or before it.
    rows = np.empty((len(kept) + len(new_ids), held_rows.shape[1]), dtype=held_rows.dtype)
    rows[place + np.arange(len(place))] = new_rows
    _copy_runs(
        held_rows,
        kept,
        rows,
        np.arange(len(kept)) + np.searchsorted(place, np.arange(len(kept)), "right"),
    )
    ids = np.insert(ids, place, new_ids)
    rows[np.searchsorted(ids, fresh_ids[changed])] = fresh_rows[changed]
    return ids, rows


def _copy_runs(source: np.ndarray, rows: np.ndarray, target: np.ndarray, at: np.ndarray) -> None:
    """``target[at] = source[rows]``, one slice per run of consecutive rows landing on
    consecutive places: a patch moves a few long runs, and numpy gathers a byte matrix's
    rows byte by byte (ten to thirty times slower than copying slices)."""
    if not len(rows):
        return
    breaks = np.flatnonzero((np.diff(rows) != 1) | (np.diff(at) != 1)) + 1
    starts = np.concatenate([[0], breaks]).tolist()
    ends = np.concatenate([breaks, [len(rows)]]).tolist()
    for start, end in zip(starts, ends, strict=True):
        first, to = int(rows[start]), int(at[start])
        target[to : to + end - start] = source[first : first + end - start]


def _read(
    store: Store, upload: str, pending: np.ndarray, nbytes: int
) -> tuple[np.ndarray, np.ndarray]:
    """The pending records this upload holds now: ids and record CLK rows."""
    ids: list[int] = []
    blobs: list[bytes] = []
    wanted = [int(i) for i in pending]
    for start in range(0, len(wanted), _IDS_AT_ONCE):
        part = wanted[start : start + _IDS_AT_ONCE]
        marks = ",".join("?" * len(part))
        for record_id, blob in store.query(
            f"SELECT id, substr(encodings, 1, ?) FROM records WHERE upload_id = ? "
            f"AND id IN ({marks})",
            (nbytes, upload, *part),
        ):
            ids.append(int(record_id))
            blobs.append(bytes(blob))
    packed = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), nbytes)
    return np.array(ids, dtype=np.int64), packed
