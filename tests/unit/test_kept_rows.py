"""What a run keeps for the next is written as changes and read back exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from coordinator.core import entities, kept_rows
from coordinator.core.store import Store

PAIRS = ("<i8", "<i8", "<f8")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "coordinator.db")
    yield opened
    opened.close()


def _table(rng: np.random.Generator, n: int) -> kept_rows.Columns:
    return (
        rng.integers(0, 10_000, n).astype(np.int64),
        rng.integers(0, 10_000, n).astype(np.int64),
        rng.random(n),
    )


def _change(rng: np.random.Generator, rows: int, dropped: int, added: int) -> kept_rows.Change:
    gone = np.sort(rng.choice(rows, size=dropped, replace=False)).astype(np.int64)
    return kept_rows.Change(gone, _table(rng, added))


def _same(left: kept_rows.Columns, right: kept_rows.Columns) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(left, right, strict=True))


def _seqs(store: Store, kind: str = "pairs") -> list[int]:
    rows = store.query("SELECT seq FROM kept_rows WHERE kind = ? ORDER BY seq", (kind,))
    return [int(r["seq"]) for r in rows]


def test_nothing_kept_reads_as_none(store: Store) -> None:
    assert kept_rows.read(store.query, "p", "pairs", PAIRS) is None


def test_a_chain_of_changes_reads_back_as_each_run_left_it(store: Store) -> None:
    rng = np.random.default_rng(7)
    table = _table(rng, 4000)
    with store.transaction() as tx:
        kept_rows.write(tx, "p", "pairs", "run-0", PAIRS, lambda: table)
    for run in range(1, 6):
        on = kept_rows.read(store.query, "p", "pairs", PAIRS)
        assert on is not None and _same(on.columns, table)
        change = _change(rng, len(table[0]), dropped=40, added=55)
        table = change.applied(table)
        with store.transaction() as tx:
            # whole() is not asked for when the change is written
            kept_rows.write(
                tx, "p", "pairs", f"run-{run}", PAIRS, lambda: pytest.fail(), on=on, change=change
            )
    kept = kept_rows.read(store.query, "p", "pairs", PAIRS)
    assert kept is not None and _same(kept.columns, table)
    assert (kept.run_id, kept.changes) == ("run-5", 5)
    assert _seqs(store) == [0, 1, 2, 3, 4, 5]


def test_the_table_is_written_whole_once_changes_outweigh_a_quarter_of_it(store: Store) -> None:
    rng = np.random.default_rng(8)
    table = _table(rng, 1000)
    with store.transaction() as tx:
        kept_rows.write(tx, "p", "pairs", "run-0", PAIRS, lambda: table)
    written_whole = 0
    for run in range(1, 8):
        on = kept_rows.read(store.query, "p", "pairs", PAIRS)
        assert on is not None
        change = _change(rng, len(table[0]), dropped=60, added=60)
        table = change.applied(table)
        with store.transaction() as tx:
            if not on.room_for(change):
                written_whole += 1
            kept_rows.write(
                tx, "p", "pairs", f"run-{run}", PAIRS, lambda t=table: t, on=on, change=change
            )
        kept = kept_rows.read(store.query, "p", "pairs", PAIRS)
        assert kept is not None and _same(kept.columns, table)
    # 120 changed rows a run against a base of about 1,000: whole again every third run.
    assert written_whole == 2
    assert max(_seqs(store)) <= 2


def test_a_chain_that_does_not_add_up_reads_as_nothing_kept(store: Store) -> None:
    rng = np.random.default_rng(9)
    table = _table(rng, 100)
    with store.transaction() as tx:
        kept_rows.write(tx, "p", "pairs", "run-0", PAIRS, lambda: table)
    on = kept_rows.read(store.query, "p", "pairs", PAIRS)
    assert on is not None
    shorter = kept_rows.Kept(tuple(c[:90] for c in on.columns), "run-0", 0, 0, 90)
    with store.transaction() as tx:
        kept_rows.write(
            tx,
            "p",
            "pairs",
            "run-1",
            PAIRS,
            lambda: table,
            on=shorter,
            change=_change(rng, 90, 1, 1),
        )
    assert kept_rows.read(store.query, "p", "pairs", PAIRS) is None


def test_projects_and_kinds_are_kept_apart_and_forgotten_together(store: Store) -> None:
    rng = np.random.default_rng(10)
    first, second = _table(rng, 10), _table(rng, 20)
    with store.transaction() as tx:
        kept_rows.write(tx, "p", "pairs", "r", PAIRS, lambda: first)
        kept_rows.write(tx, "p", "sample", "r", PAIRS, lambda: second)
        kept_rows.write(tx, "q", "pairs", "s", PAIRS, lambda: second)
        kept_rows.forget(tx, "p")
    assert kept_rows.read(store.query, "p", "pairs", PAIRS) is None
    assert kept_rows.read(store.query, "p", "sample", PAIRS) is None
    kept = kept_rows.read(store.query, "q", "pairs", PAIRS)
    assert kept is not None and _same(kept.columns, second)


def test_an_entity_map_change_gives_this_runs_map() -> None:
    ids = entities.random_ids(6)
    before = entities.Previous(np.array([1, 2, 3, 4, 5], np.int64), ids[[0, 0, 1, 2, 3]])
    # 2 moves to 3's entity, 5 has left, 6 and 7 are new; 1, 3 and 4 keep theirs.
    now_records = np.array([4, 3, 2, 1, 6, 7], np.int64)
    now_entities = ids[[2, 1, 1, 0, 4, 4]]
    change = before.change_to(now_records, now_entities)
    assert change.dropped.tolist() == [1, 4]
    assert sorted(change.added[0].tolist()) == [2, 6, 7]
    records, entity_ids = change.applied((before.record_ids, before.entity_ids))
    got = dict(zip(records.tolist(), entity_ids.tolist(), strict=True))
    assert got == dict(zip(now_records.tolist(), now_entities.tolist(), strict=True))
