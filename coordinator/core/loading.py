"""The load stage of a run: each committed upload's record CLKs as one packed array.

A dataset is read in batches straight into one packed array (``session.array``,
which the engine's workers can share), never as a Python list of per-record
objects. After a refresh, the arrays the last run loaded are patched with the
pending changes instead (``load_cache``): only the changed rows are read, and
the arrays are shared with the workers only when a task needs them.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from coordinator.core import candidates, load_cache
from coordinator.core.model import Project
from coordinator.core.store import Store

_LOAD_BATCH = 10_000


def _never() -> None:
    """No cancellation check."""


@dataclass(frozen=True)
class Datasets:
    """Each committed upload of a project as one dataset, in the project's organisation order."""

    encodings: list[np.ndarray]
    """Record CLKs, one packed array a dataset (the engine session's memory)."""
    record_ids: list[array[int]]
    """Each dataset's record ids, in the order of its rows."""
    names: list[str]
    """The organisation each dataset came from."""
    basis: str = ""
    """The project's latest completed run when these were loaded: the run confirms its
    load as the next one's starting point (``load_cache.confirm``) once it completes."""
    patched: bool = False
    """Whether the last run's arrays were patched rather than everything read."""


def load_datasets(
    store: Store,
    project: Project,
    session: candidates.Session,
    check: Callable[[], None] = _never,
) -> Datasets:
    """Each committed upload as one dataset, in the project's organisation order.

    Encodings are read in batches straight into one packed array per
    dataset (``session.array``, which the engine's workers can share), so
    a dataset is never a Python list of per-record objects.
    """
    clk = project.encodings[0]
    rows = store.query(
        "SELECT u.id, u.organisation, "
        "(SELECT COUNT(*) FROM records r WHERE r.upload_id = u.id) AS n, "
        "(SELECT COALESCE(MIN(r.id), 0) FROM records r WHERE r.upload_id = u.id) AS low, "
        "(SELECT COALESCE(MAX(r.id), 0) FROM records r WHERE r.upload_id = u.id) AS high "
        "FROM uploads u WHERE u.project_id = ? AND u.state = 'committed'",
        (project.id,),
    )
    order = {org: i for i, org in enumerate(project.organisations)}
    uploads = sorted(rows, key=lambda r: order.get(r["organisation"], len(order)))
    names = [str(u["organisation"]) for u in uploads]
    basis = load_cache.latest_run(store, project.id)
    held = [(str(u["id"]), int(u["n"]), int(u["low"]), int(u["high"])) for u in uploads]
    snapshot = load_cache.patched(store, project.id, project.encoding_sha256, held, clk.nbytes)
    datasets: list[np.ndarray] = []
    record_ids: list[array[int]] = []
    if snapshot is not None:
        # The patched arrays as they are: a session copies an array into memory its
        # workers share only if a task needs them there (a blocked incremental run
        # compares in this process), so this load touches only the changed rows.
        datasets = list(snapshot.rows)
        record_ids = [array("q", ids.tobytes()) for ids in snapshot.ids]
        load_cache.take(store, project.id, snapshot)
        return Datasets(datasets, record_ids, names, basis, patched=True)
    for upload in uploads:
        packed = session.array((int(upload["n"]), clk.nbytes))
        ids = array("q")
        filled = 0
        # A batch's ids and blobs are taken column by column, not row by row in Python.
        for part in store.batches(
            "SELECT id, substr(encodings, 1, ?) FROM records WHERE upload_id = ? ORDER BY id",
            (clk.nbytes, upload["id"]),
            batch=_LOAD_BATCH,
        ):
            record_col, blob_col = zip(*part, strict=True)
            ids.extend(record_col)
            filled = _fill(packed, filled, list(blob_col), clk.nbytes)
            check()
        datasets.append(packed)
        record_ids.append(ids)  # machine integers, not a list of Python ints
    load_cache.take(
        store,
        project.id,
        load_cache.Snapshot(
            basis,
            project.encoding_sha256,
            tuple(u[0] for u in held),
            tuple(np.frombuffer(ids, dtype=np.int64).copy() for ids in record_ids),
            tuple(np.array(packed) for packed in datasets),
        ),
    )
    return Datasets(datasets, record_ids, names, basis)


def _fill(packed: np.ndarray, start: int, batch: list[bytes], nbytes: int) -> int:
    """Copy a batch of stored encodings into rows ``start``… of ``packed``; empties the batch."""
    if batch:
        block = np.frombuffer(b"".join(batch), dtype=np.uint8).reshape(len(batch), nbytes)
        packed[start : start + len(batch)] = block
        start += len(batch)
        batch.clear()
    return start
