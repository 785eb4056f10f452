"""What hublink writes to disk is its owner's alone, and linked.csv is safe in a spreadsheet.

Issue 21 found coordinator.db, its WAL and SHM and the node's tokens.sqlite
created 0644, ``linked.csv`` writing a local id ``=1+1…`` as a formula, and
given names in non-Latin scripts sent blank without a word. Every test runs
under the permissive umask 022 that found them.
"""

from __future__ import annotations

import csv
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.core.store import Store
from hublink.audit.checkpoint import Signer
from node import exclusions, locallog
from node.keys import _write_atomically, as_written, spreadsheet_safe
from node.tokens import TokenStore
from tests.unit.test_node_intake import config, good_row, run, write_csv


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_coordinator_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "coordinator.db"
    store = Store(database, signer=Signer.generate())
    with store.transaction() as tx:
        tx.execute("SELECT 1")
    companions = [database.with_name(database.name + s) for s in ("-wal", "-shm")]
    assert all(p.exists() for p in companions)
    assert {p.name: mode(p) for p in [database, *companions]} == {
        "coordinator.db": 0o600,
        "coordinator.db-wal": 0o600,
        "coordinator.db-shm": 0o600,
    }
    store.close()


def test_an_existing_database_made_0644_is_tightened_on_open(tmp_path: Path) -> None:
    database = tmp_path / "coordinator.db"
    Store(database, signer=Signer.generate()).close()
    database.chmod(0o644)
    store = Store(database, signer=Signer.generate())
    assert mode(database) == 0o600
    store.close()


def test_the_node_token_store_and_state_folder_are_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    tokens = TokenStore(state / "tokens.sqlite")
    tokens._db.execute("CREATE TABLE IF NOT EXISTS probe (x)")
    found = {p.name: mode(p) for p in state.iterdir()}
    assert found == {
        "tokens.sqlite": 0o600,
        "tokens.sqlite-wal": 0o600,
        "tokens.sqlite-shm": 0o600,
    }
    assert mode(state) == 0o700
    tokens.close()


def test_the_node_log_is_owner_only(tmp_path: Path) -> None:
    locallog.append(tmp_path / "state", "probe", n=1)
    assert mode(tmp_path / "state") == 0o700
    assert mode(tmp_path / "state" / "node.log") == 0o600


def test_linked_csv_neutralises_formulas_and_reads_back(tmp_path: Path) -> None:
    output = tmp_path / "linked.csv"
    rows = [
        ("=1+1", "key-a"),
        ("+44 20", "key-b"),
        ("-7", "key-c"),
        ("@SUM(A1)", "key-d"),
        ("\tR9", "key-e"),
        ("\rR10", "key-f"),
        ("R11", "key-g"),
    ]
    _write_atomically(output, ["local_id", "linkage_key"], rows)
    assert mode(output) == 0o600
    with output.open(newline="", encoding="utf-8") as handle:
        read = [(r["local_id"], r["linkage_key"]) for r in csv.DictReader(handle)]
    assert read == [
        ("'=1+1", "key-a"),
        ("'+44 20", "key-b"),
        ("'-7", "key-c"),
        ("'@SUM(A1)", "key-d"),
        ("'\tR9", "key-e"),
        ("'\rR10", "key-f"),
        ("R11", "key-g"),
    ]
    # The documented way back: one leading quote off a quoted formula start.
    back = [i[1:] if i.startswith("'") and i[1:2] in "=+-@\t\r" else i for i, _ in read]
    assert back == [as_written(i) for i, _ in read]
    assert back == [i for i, _ in rows]
    assert spreadsheet_safe("O'Brien") == "O'Brien"


def test_names_in_a_non_latin_script_are_counted_in_the_exclusion_report(
    tmp_path: Path,
) -> None:
    lines = [good_row(n) for n in range(10)]
    lines[3] = "R3,Дмитрий,Jones,03/04/2022,CF10 1AA,,Y,"
    lines[4] = "R4,明,Jones,03/04/2022,CF10 1AA,,Y,"
    lines[5] = "R5,Zoë,Jones,03/04/2022,CF10 1AA,,Y,"  # Latin with a diacritic: kept
    lines[6] = "R6,,Jones,03/04/2022,CF10 1AA,,Y,"  # blank: missing, not a script matter
    cfg = config(tmp_path, write_csv(tmp_path, lines))
    intake = run(cfg)
    assert dict(intake.names_not_latin) == {"given_name": 2}
    report = exclusions.build(
        intake, mode="dry-run", organisation="o", project_id="p", schema_sha256="0" * 64
    )
    json_path, text_path = exclusions.write(cfg.state_dir, report)
    assert json.loads(json_path.read_text())["names_not_latin"] == {"given_name": 2}
    text = text_path.read_text(encoding="utf-8")
    assert "non-Latin script" in text and "given_name" in text
    assert "Дмитрий" not in text and "明" not in text
    assert mode(json_path) == mode(text_path) == 0o600
    assert mode(cfg.state_dir) == 0o700
