"""A run after a refresh loads the last run's record CLKs patched with the changes, and gets
exactly what reading every record again gives; anything changed behind the pending changes'
back falls back to reading everything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coordinator import parallel
from coordinator.core import load_cache
from coordinator.core.candidates import InlineEngine
from coordinator.core.loading import Datasets, load_datasets
from coordinator.core.store import Store
from coordinator.parallel import ProcessEngine
from tests.unit.test_incremental_runs import PARTIES, PROJECT, Living


def load(living: Living, store: Store | None = None) -> Datasets:
    project = living.core._projects[PROJECT]
    with InlineEngine().session() as session:
        loaded = load_datasets(store or living.core.store, project, session)
        # Copies: the session's arrays go with it.
        return Datasets(
            [np.array(e) for e in loaded.encodings],
            loaded.record_ids,
            loaded.names,
            loaded.basis,
            loaded.patched,
        )


def same(one: Datasets, other: Datasets) -> bool:
    return (
        one.names == other.names
        and [list(i) for i in one.record_ids] == [list(i) for i in other.record_ids]
        and all(np.array_equal(a, b) for a, b in zip(one.encodings, other.encodings, strict=True))
    )


def from_scratch(living: Living) -> Datasets:
    """Every record read again: a second store on the same file holds no snapshot."""
    other = Store(living.folder / "c.db")
    try:
        return load(living, other)
    finally:
        other.close()


def test_a_run_after_a_refresh_reads_only_the_changes(tmp_path: Path) -> None:
    living = Living(tmp_path, InlineEngine(), size=60)
    living.run(full=True)
    for month, party in enumerate((PARTIES[0], PARTIES[1], PARTIES[0]), start=1):
        living.refresh(party, month, changes=4)
        loaded = load(living)
        assert loaded.patched, f"month {month}"
        assert same(loaded, from_scratch(living)), f"month {month}"
        living.run(full=False)
    living.core.store.close()


def test_a_failed_run_leaves_the_snapshot_usable(tmp_path: Path) -> None:
    # The load after a refresh took a snapshot; no run completed on it, so the refresh's
    # changes are still pending and the next load patches them in again.
    living = Living(tmp_path, InlineEngine(), size=60)
    living.run(full=True)
    living.refresh(PARTIES[0], 1, changes=4)
    load(living)
    living.refresh(PARTIES[1], 2, changes=4)
    loaded = load(living)
    assert loaded.patched and same(loaded, from_scratch(living))
    living.core.store.close()


def test_records_changed_without_a_pending_change_are_read_again(tmp_path: Path) -> None:
    living = Living(tmp_path, InlineEngine(), size=60)
    living.run(full=True)
    store = living.core.store
    with store.transaction() as tx:  # as an erasure would, with no pending change noted
        tx.execute("DELETE FROM entities WHERE record_id = (SELECT MAX(id) FROM records)")
        tx.execute("DELETE FROM records WHERE id = (SELECT MAX(id) FROM records)")
    loaded = load(living)
    assert not loaded.patched
    assert same(loaded, from_scratch(living))
    living.core.store.close()


def test_a_run_completed_elsewhere_or_an_erasure_drops_the_snapshot(tmp_path: Path) -> None:
    living = Living(tmp_path, InlineEngine(), size=60)
    living.run(full=True)
    # Another run completes on the project (here: marked so on the store directly).
    with living.core.store.transaction() as tx:
        tx.execute("UPDATE runs SET finished_at = '9999-12-31T00:00:00.000Z'")
        tx.execute(
            "INSERT INTO runs (id, project_id, state, threshold, started_at, finished_at) "
            "VALUES ('elsewhere', ?, 'completed', 0.9, '9999', '9999-12-31T00:00:01.000Z')",
            (PROJECT,),
        )
    assert not load(living).patched
    load_cache.forget(living.core.store, PROJECT)
    assert not load(living).patched  # nothing held after the forget but what this load took
    living.core.store.close()


def test_worker_processes_compare_a_patched_load_as_one_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A patched load hands the run plain arrays: the workers get them copied into shared
    # memory when a task needs them (once each), and find exactly what one process finds.
    living = Living(tmp_path, InlineEngine(), size=60)
    living.run(full=True)
    living.refresh(PARTIES[0], 1, changes=4)
    assert living.run(full=False)["incremental"] is True
    quick = living.entities()
    shared: list[int] = []
    share = parallel._ProcessSession._shared

    def counted(session: parallel._ProcessSession, array: np.ndarray) -> parallel.SharedArray:
        shared.append(id(array))
        return share(session, array)

    monkeypatch.setattr(parallel._ProcessSession, "_shared", counted)
    monkeypatch.setattr(parallel, "MIN_TASKS_FOR_WORKERS", 1)  # a small project's few tasks
    living.core.engine = ProcessEngine(workers=2, min_comparisons=0)
    assert load(living).patched
    assert living.run(full=True)["incremental"] is False
    assert shared, "the re-link's tasks ran in the worker processes"
    assert living.entities() == quick
    living.core.store.close()


@pytest.mark.parametrize("seed", range(6))
def test_a_patch_keeps_held_rows_replaces_changed_ones_and_inserts_added_ones_by_id(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    held_ids = np.sort(rng.choice(np.arange(1, 400), size=int(rng.integers(0, 120)), replace=False))
    held_rows = rng.integers(0, 256, (len(held_ids), 16), dtype=np.uint8)
    # Pending: some held records (changed or removed) and new ones, at both ends too.
    touched = rng.choice(held_ids, size=min(len(held_ids), 15), replace=False)
    new = np.setdiff1d(np.array([0, 400, 401, *rng.integers(1, 400, 20)]), held_ids)
    pending = np.concatenate([touched, new]).astype(np.int64)
    still = rng.random(len(pending)) < 0.6  # the rest were removed
    fresh_ids = pending[still]
    fresh_rows = rng.integers(0, 256, (len(fresh_ids), 16), dtype=np.uint8)

    ids, rows = load_cache._patch(held_ids, held_rows, pending, fresh_ids, fresh_rows)

    expected = {int(i): r for i, r in zip(held_ids, held_rows, strict=True) if i not in pending}
    expected |= {int(i): r for i, r in zip(fresh_ids, fresh_rows, strict=True)}
    assert ids.tolist() == sorted(expected)
    assert np.array_equal(rows, np.array([expected[i] for i in sorted(expected)]).reshape(-1, 16))
