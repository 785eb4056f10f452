"""hublink.backup: consistent SQLite copies, a manifest that catches changes, no overwrites."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from hublink import backup


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    (folder / "receipts").mkdir(parents=True)
    with closing(sqlite3.connect(folder / "tokens.sqlite")) as db, db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (token TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [(f"token-{i}",) for i in range(50)])
    (folder / "receipts" / "r1.json").write_text("{}\n")
    return folder


def test_a_backup_restores_to_the_same_content(state: Path, tmp_path: Path) -> None:
    manifest = backup.create(tmp_path / "b", "node", {"state": state})
    assert set(manifest.files) == {"state/tokens.sqlite", "state/receipts/r1.json"}
    target = tmp_path / "restored"
    backup.restore(tmp_path / "b", "node", {"state": target})
    with closing(sqlite3.connect(target / "tokens.sqlite")) as db, db:
        assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (50,)
    assert (target / "receipts" / "r1.json").read_text() == "{}\n"


def test_a_changed_missing_or_extra_file_is_refused(state: Path, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    backup.create(folder, "node", {"state": state})
    (folder / "state" / "receipts" / "r1.json").write_text("{ }\n")
    with pytest.raises(backup.BackupError, match="changed since"):
        backup.verify(folder, "node")
    (folder / "state" / "receipts" / "r1.json").unlink()
    with pytest.raises(backup.BackupError, match="missing"):
        backup.verify(folder, "node")
    (folder / "state" / "receipts" / "r1.json").write_text("{}\n")
    (folder / "state" / "extra").write_text("x")
    with pytest.raises(backup.BackupError, match="not part of"):
        backup.verify(folder, "node")
    with pytest.raises(backup.BackupError, match="not of a 'coordinator'"):
        backup.verify(folder, "coordinator")


def test_nothing_is_overwritten(state: Path, tmp_path: Path) -> None:
    backup.create(tmp_path / "b", "node", {"state": state})
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.create(tmp_path / "b", "node", {"state": state})
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.restore(tmp_path / "b", "node", {"state": state})
    assert not list(tmp_path.glob(".*tmp"))
