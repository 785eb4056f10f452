"""Print what upgrading a coordinator database in place costs (coordinator.core.migrations).

Usage: python bench/migration.py [RECORDS]   (default 200000)

Builds a database holding RECORDS stored records (random 256-byte encodings,
as a balanced 2048-bit encoding is), puts it back to schema version 1, then
times opening it with the current code: the pre-upgrade copy (SQLite online
backup) and the migration transaction. Opening an up-to-date database is
timed for comparison. The copy dominates and grows with the file, so an
operator should expect about the file's size again in free disk space.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from coordinator.core.store import Store, utc_now


def build(database: Path, records: int) -> None:
    store = Store(database)
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO projects VALUES ('bench', 'x', 'x', ?, 'open', ?)",
            (secrets.token_bytes(32), utc_now()),
        )
        tx.execute(
            "INSERT INTO uploads (id, project_id, organisation, state, encoding_sha256, "
            "expected_records, records_received, consent_json, created_at) "
            "VALUES ('bench-upload', 'bench', 'org', 'committed', 'x', ?, ?, '{}', ?)",
            (records, records, utc_now()),
        )
        tx.executemany(
            "INSERT INTO records (upload_id, chunk_index, token, encodings) VALUES (?, ?, ?, ?)",
            (
                ("bench-upload", i // 1000, secrets.token_urlsafe(16), secrets.token_bytes(256))
                for i in range(records)
            ),
        )
    store.close()
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("DROP TABLE run_quality")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    sqlite3.connect(database).close()


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "coordinator.db"
        build(database, records)
        size = os.path.getsize(database)
        started = time.perf_counter()
        Store(database).close()
        upgrade = time.perf_counter() - started
        started = time.perf_counter()
        Store(database).close()
        plain = time.perf_counter() - started
        backup = database.with_name("coordinator.db.v1-backup")
        print(f"database: {records} records, {size / 1e6:.1f} MB")
        print(f"open + back up + migrate 1 -> 2: {upgrade:.2f} s")
        print(f"  backup written: {os.path.getsize(backup) / 1e6:.1f} MB")
        print(f"open when up to date: {plain:.3f} s")


if __name__ == "__main__":
    main()
