"""Upgrading a coordinator database in place (coordinator.core.migrations).

The version-1 database is made the way a linkage unit would have one: the
current code uploads real clkhash encodings, matches them and audits it all,
then the file is put back into the version-1 layout (the one hublink shipped
before run quality reports: no ``run_quality`` table, ``schema_version`` 1).
Opening it with the current code must keep every record and key, move it to
the current version, keep the audit log verifying, and leave a usable copy of
the old file beside it.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordinator.core import migrations
from coordinator.core.audit import verify
from coordinator.core.model import ConsentSummary, IncomingRecord
from coordinator.core.service import Coordinator
from coordinator.core.store import SCHEMA_VERSION, Store
from coordinator.projects import load_project
from hublink.cli import main
from hublink.identity import Identity, Role
from hublink.spec import LinkageSpec, UploadDigest
from node.encoder import Encoder

PROJECT = "early-years"
HEALTH = Identity("health-visiting", Role.NODE)
CHILDCARE = Identity("childcare", Role.NODE)
ADMIN = Identity("hub-admin", Role.ADMIN)

# Made-up children; three appear in both organisations' records.
HEALTH_CHILDREN = [
    ("amelia", "pryce", "03042021", "F", "CF10 1AA", ""),
    ("oliver", "jenkins", "15112020", "M", "SA1 1DP", ""),
    ("isla", "morgan", "22072022", "F", "NP20 4AB", ""),
    ("cai", "rowlands", "09012023", "M", "LL57 2PW", ""),
]
CHILDCARE_CHILDREN = [
    ("amelia", "price", "03042021", "F", "CF10 1AA", ""),
    ("oliver", "jenkins", "15112020", "M", "SA1 1DP", ""),
    ("harri", "lewis", "05052021", "M", "LL11 1AB", ""),
]


def _project_file(folder: Path) -> Path:
    schema = resources.files("hublink").joinpath("schemas", "early-years.json")
    with resources.as_file(schema) as source:
        shutil.copy(source, folder / "early-years.json")
    path = folder / "project.toml"
    path.write_text(
        f'id = "{PROJECT}"\n'
        'purpose = "Find children known to one early-years service but not the other"\n'
        'organisations = ["health-visiting", "childcare"]\n'
        'admins = ["hub-admin"]\n'
        'schema = "early-years.json"\n'
        "field_scoring = false\n"  # the record CLK alone is sent
        "threshold = 0.8\n"
        'disclosure = "unrounded"\n'
        "max_chunk_records = 2\n",
        encoding="utf-8",
    )
    return path


def _upload(core: Coordinator, caller: Identity, children: Sequence[tuple[str, ...]]) -> None:
    encoder = Encoder(LinkageSpec.default(), b"a-secret-of-16+chars")
    sent = [
        IncomingRecord(f"{caller.organisation}-{i}", [("clk", bits)])
        for i, bits in enumerate(encoder.encode(children))
    ]
    upload_id = f"upload-{caller.organisation}"
    core.begin_upload(
        caller, PROJECT, upload_id, LinkageSpec.default().sha256, len(sent), ConsentSummary()
    )
    digest = UploadDigest()
    chunks = [sent[i : i + 2] for i in range(0, len(sent), 2)]
    for index, chunk in enumerate(chunks):
        core.put_chunk(caller, upload_id, index, chunk)
        for record in chunk:
            digest.add(record.token, [bits for _, bits in record.encodings])
    core.commit_upload(caller, upload_id, len(chunks), len(sent), digest.hexdigest())


def _keys(core: Coordinator, caller: Identity) -> dict[str, str]:
    return {t: k for batch in core.linkage_keys(caller, PROJECT) for t, k in batch.keys}


def _downgrade_to_version_1(database: Path) -> None:
    """Put the file back into the layout hublink wrote before run quality reports."""
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("DROP TABLE run_quality")
        db.execute("DROP INDEX records_by_upload")
        db.execute("DROP INDEX entities_by_project_record")
        db.execute("CREATE INDEX entities_by_project ON entities(project_id, entity_id)")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    sqlite3.connect(database).close()


def _tables(database: Path) -> set[str]:
    with closing(sqlite3.connect(database)) as db, db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _indexes(database: Path) -> set[str]:
    with closing(sqlite3.connect(database)) as db, db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def _version(database: Path) -> str:
    with closing(sqlite3.connect(database)) as db, db:
        return str(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])


@pytest.fixture
def version_1(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, dict[str, str]]]]:
    """A version-1 database with two committed uploads and a completed run; its keys."""
    project_file = _project_file(tmp_path)
    database = tmp_path / "coordinator.db"
    store = Store(database)
    core = Coordinator(store, [load_project(project_file)])
    _upload(core, HEALTH, HEALTH_CHILDREN)
    _upload(core, CHILDCARE, CHILDCARE_CHILDREN)
    run = core.start_run(ADMIN, PROJECT, background=False)
    assert run.state == "completed", run.message
    keys = {"health": _keys(core, HEALTH), "childcare": _keys(core, CHILDCARE)}
    store.close()
    _downgrade_to_version_1(database)
    yield database, project_file, keys


def test_an_older_database_is_migrated_in_place_and_loses_nothing(
    version_1: tuple[Path, Path, dict[str, dict[str, str]]],
) -> None:
    database, project_file, keys_before = version_1
    assert "run_quality" not in _tables(database)
    with closing(sqlite3.connect(database)) as db, db:
        records_before = db.execute("SELECT token, encodings FROM records ORDER BY id").fetchall()
        audit_before = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]

    store = Store(database)
    try:
        core = Coordinator(store, [load_project(project_file)])
        assert _version(database) == str(SCHEMA_VERSION) == "6"
        assert "run_quality" in _tables(database)
        indexes = _indexes(database)
        assert {"records_by_upload", "entities_by_project_record"} <= indexes
        assert "entities_by_project" not in indexes
        records_after = [
            (r["token"], r["encodings"])
            for r in store.query("SELECT token, encodings FROM records ORDER BY id")
        ]
        assert records_after == records_before and len(records_after) == 7
        assert _keys(core, HEALTH) == keys_before["health"]
        assert _keys(core, CHILDCARE) == keys_before["childcare"]
        entries = store.audit_entries()
        assert verify(entries) is None
        migrated = [e for e in entries if e.event.action == "store.migrated"]
        assert len(migrated) == 1 and len(entries) > audit_before
        assert migrated[0].event.details["from_version"] == 1
        assert migrated[0].event.details["to_version"] == 6
        # What version 2 added works: a new run keeps its quality report.
        run = core.start_run(ADMIN, PROJECT, background=False)
        assert run.state == "completed", run.message
        quality = store.query_one("SELECT report FROM run_quality WHERE run_id = ?", (run.run_id,))
        assert quality is not None
    finally:
        store.close()

    # The copy taken before upgrading is the old file, unchanged.
    backup = database.with_name("coordinator.db.v1-backup")
    assert migrated[0].event.details["backup"] == backup.name
    assert _version(backup) == "1" and "run_quality" not in _tables(backup)
    with closing(sqlite3.connect(backup)) as db, db:
        assert db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 7

    # The whole log, checkpoints and signatures included, verifies from the command line.
    result = CliRunner().invoke(main, ["audit", "verify", "--database", str(database)])
    assert result.exit_code == 0, result.output

    # Opening it again migrates nothing more.
    Store(database).close()
    with closing(sqlite3.connect(database)) as db, db:
        actions = [r[0] for r in db.execute("SELECT action FROM audit")]
    assert actions.count("store.migrated") == 1


def test_a_failing_step_leaves_the_database_as_it_was(
    version_1: tuple[Path, Path, dict[str, dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    database, _, _ = version_1

    def half_done(tx: migrations.StepTransaction) -> None:
        tx.execute("CREATE TABLE run_quality (run_id TEXT PRIMARY KEY, report TEXT NOT NULL)")
        tx.execute("DELETE FROM entities")
        raise migrations.MigrationError("step failed half-way")

    monkeypatch.setattr(migrations, "STEPS", (migrations.Step(1, "broken", half_done),))
    with closing(sqlite3.connect(database)) as db, db:
        entities = db.execute("SELECT COUNT(*) FROM entities").fetchone()[0]
        audit = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    with pytest.raises(migrations.MigrationError, match="half-way"):
        Store(database)
    assert _version(database) == "1"
    assert "run_quality" not in _tables(database)
    with closing(sqlite3.connect(database)) as db, db:
        assert db.execute("SELECT COUNT(*) FROM entities").fetchone()[0] == entities > 0
        assert db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == audit


def test_a_database_newer_than_the_code_is_refused_untouched(tmp_path: Path) -> None:
    database = tmp_path / "coordinator.db"
    Store(database).close()
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    before = database.read_bytes()
    with pytest.raises(
        migrations.SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1} but this hublink knows"
    ):
        Store(database)
    assert database.read_bytes() == before
    assert not list(tmp_path.glob("*backup*"))


def test_the_pre_merkle_hash_chain_is_refused_with_what_to_do(tmp_path: Path) -> None:
    database = tmp_path / "coordinator.db"
    with closing(sqlite3.connect(database)) as db, db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '1');"
            "CREATE TABLE audit (idx INTEGER PRIMARY KEY, time TEXT, actor_organisation TEXT,"
            " actor_role TEXT, action TEXT, project_id TEXT, details_json TEXT,"
            " previous_hash TEXT NOT NULL, entry_hash TEXT NOT NULL);"
        )
    with pytest.raises(migrations.MigrationError, match="cannot be upgraded in place"):
        Store(database)
    assert _version(database) == "1"


def test_every_step_follows_the_last_and_reaches_the_current_version() -> None:
    versions = [step.from_version for step in migrations.STEPS]
    assert versions == list(range(1, SCHEMA_VERSION))
