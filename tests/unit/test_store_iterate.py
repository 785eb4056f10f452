"""Store.iterate: a long read streams in batches from one snapshot while writes go on."""

from __future__ import annotations

from pathlib import Path

from coordinator.core.store import Store


def _fill(store: Store, names: range) -> None:
    with store.transaction() as tx:
        tx.executemany("INSERT INTO meta VALUES (?, ?)", ((f"row-{n:06d}", str(n)) for n in names))


def test_iterate_visits_every_row_once_in_order_across_batches(tmp_path: Path) -> None:
    store = Store(tmp_path / "coordinator.db")
    _fill(store, range(2500))
    seen = [
        key
        for key, _ in store.iterate(
            "SELECT key, value FROM meta WHERE key LIKE 'row-%' ORDER BY key", batch=100
        )
    ]
    assert seen == [f"row-{n:06d}" for n in range(2500)]
    store.close()


def test_a_write_during_a_read_does_not_shift_or_repeat_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "coordinator.db")
    _fill(store, range(0, 2000, 2))
    rows = store.iterate("SELECT key FROM meta WHERE key LIKE 'row-%' ORDER BY key", batch=50)
    first = [next(rows)[0] for _ in range(120)]
    # Rows inserted before the read's position would have shifted an OFFSET-based read.
    _fill(store, range(1, 200, 2))
    rest = [key for (key,) in rows]
    seen = first + rest
    assert len(seen) == len(set(seen)) == 1000
    assert seen == sorted(seen)
    store.close()


def test_in_memory_store_still_iterates(tmp_path: Path) -> None:
    store = Store(":memory:")
    _fill(store, range(30))
    assert len(list(store.iterate("SELECT key FROM meta WHERE key LIKE 'row-%'", batch=7))) == 30
    store.close()


def test_read_one_does_not_wait_for_a_write_in_progress(tmp_path: Path) -> None:
    """Run status is polled while a run's final write holds the lock for a long time."""
    import threading

    store = Store(tmp_path / "coordinator.db")
    _fill(store, range(3))
    writing, release = threading.Event(), threading.Event()

    def long_write() -> None:
        with store.transaction() as tx:
            tx.execute("INSERT INTO meta VALUES ('row-999999', 'pending')")
            writing.set()
            release.wait(30)

    writer = threading.Thread(target=long_write)
    writer.start()
    assert writing.wait(30)
    answers: list[object] = []
    reader = threading.Thread(
        target=lambda: answers.append(
            store.read_one("SELECT COUNT(*) AS n FROM meta WHERE key LIKE 'row-%'")
        )
    )
    reader.start()
    reader.join(20)
    finished_while_writing = not reader.is_alive()
    release.set()
    writer.join()
    reader.join()
    assert finished_while_writing
    # It saw the committed rows only, not the write still in progress.
    assert answers[0]["n"] == 3  # type: ignore[index]
    store.close()
