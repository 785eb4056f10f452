"""Key scope, closing a project and the retention period, on the real core and SQLite store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from coordinator.core.audit import verify
from coordinator.core.errors import InvalidRequest, NotAllowed, NotReady
from coordinator.core.model import ConsentSummary, IncomingRecord
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.projects import load_project
from hublink.identity import Identity, Role
from hublink.spec import LinkageSpec, UploadDigest
from node.encoder import Encoder

HEALTH = Identity("health-visiting", Role.NODE)
CHILDCARE = Identity("childcare", Role.NODE)
ADMIN = Identity("hub-admin", Role.ADMIN)
ANALYST = Identity("hub-analytics", Role.ANALYST)

CHILDREN = [
    ("amelia", "pryce", "03042021", "F", "CF10 1AA", ""),
    ("oliver", "jenkins", "15112020", "M", "SA1 1DP", ""),
    ("cai", "rowlands", "09012023", "M", "LL57 2PW", ""),
]
CLKS = Encoder(LinkageSpec.default(), b"a-secret-of-16+chars").encode(CHILDREN)


_OPENED: list[Store] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    """Every store a test opened is closed after it (sqlite3 warns of unclosed databases)."""
    yield
    while _OPENED:
        _OPENED.pop().close()


def make_core(tmp_path: Path, **settings: object) -> Coordinator:
    schema = resources.files("hublink").joinpath("schemas", "early-years.json")
    with resources.as_file(schema) as source:
        shutil.copy(source, tmp_path / "early-years.json")
    extra = "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in settings.items())
    (tmp_path / "project.toml").write_text(
        'id = "scoped"\npurpose = "tests"\norganisations = ["health-visiting", "childcare"]\n'
        'admins = ["hub-admin"]\nschema = "early-years.json"\nfield_scoring = false\n' + extra
    )
    project = load_project(tmp_path / "project.toml")
    _OPENED.append(Store(tmp_path / "c.db"))
    return Coordinator(_OPENED[-1], [project])


def upload(core: Coordinator, caller: Identity, prefix: str) -> None:
    sent = [IncomingRecord(f"{prefix}-token-{i}", [("clk", bits)]) for i, bits in enumerate(CLKS)]
    digest = UploadDigest()
    for record in sent:
        digest.add(record.token, [record.encodings[0][1]])
    spec = core.project(caller, "scoped")
    core.begin_upload(
        caller, "scoped", f"{prefix}-upload", spec.encoding_sha256, 3, ConsentSummary()
    )
    core.put_chunk(caller, f"{prefix}-upload", 0, sent)
    core.commit_upload(caller, f"{prefix}-upload", 1, 3, digest.hexdigest())


def keys_of(core: Coordinator, caller: Identity) -> dict[str, str]:
    return {
        token.split("-token-")[1]: key
        for batch in core.linkage_keys(caller, "scoped")
        for token, key in batch.keys
    }


def linked(core: Coordinator) -> None:
    upload(core, HEALTH, "hv")
    upload(core, CHILDCARE, "cc")
    core.start_run(ADMIN, "scoped", background=False)


def test_project_scope_gives_both_organisations_the_same_key(tmp_path: Path) -> None:
    core = make_core(tmp_path, key_scope="project")
    linked(core)
    assert keys_of(core, HEALTH) == keys_of(core, CHILDCARE)


def test_organisation_scope_gives_each_organisation_its_own_unrelated_key(tmp_path: Path) -> None:
    core = make_core(tmp_path, key_scope="organisation")
    linked(core)
    health, childcare = keys_of(core, HEALTH), keys_of(core, CHILDCARE)
    assert set(health) == set(childcare) == {"0", "1", "2"}
    assert not set(health.values()) & set(childcare.values())
    # Stable: the same data matched again keeps every key.
    core.start_run(ADMIN, "scoped", background=False)
    assert keys_of(core, HEALTH) == health


def test_a_bad_key_scope_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"project.toml: key_scope must be one of"):
        make_core(tmp_path, key_scope="everyone")


def test_closing_a_project_erases_its_encodings_from_the_database_file(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    linked(core)
    database = tmp_path / "c.db"
    core.store.compact()
    assert any(bits in database.read_bytes() for bits in CLKS)

    with pytest.raises(NotAllowed):
        core.request_close(ANALYST, "scoped", "not theirs to close")
    with pytest.raises(InvalidRequest):
        core.request_close(ADMIN, "scoped", "  ")
    asked = core.request_close(ADMIN, "scoped", "the evaluation has ended")
    with pytest.raises(NotReady, match="not issued to this caller for this project and reason"):
        core.close_project(ADMIN, "scoped", "another reason", asked.code)
    assert core.close_project(ADMIN, "scoped", "the evaluation has ended", asked.code) == 6

    data = database.read_bytes() + (tmp_path / "c.db-wal").read_bytes()
    assert not any(bits in data for bits in CLKS)
    assert not any(f"-token-{i}".encode() in data for i in range(3))
    for table in ("records", "entities", "chunks"):
        assert core.store.query(f"SELECT * FROM {table}") == []
    closed = [e for e in core.store.audit_entries() if e.event.action == "project.closed"]
    assert closed[0].event.details == {
        "reason": "the evaluation has ended",
        "records_erased": 6,
        "uploads": 2,
    }
    assert verify(core.store.audit_entries()) is None
    with pytest.raises(NotReady, match="closed"):
        list(core.linkage_keys(HEALTH, "scoped"))


def test_a_closed_project_stays_closed_after_a_restart(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    linked(core)
    core.close_project(ADMIN, "scoped", "ended", core.request_close(ADMIN, "scoped", "ended").code)
    core.store.close()
    again = make_core(tmp_path)
    with pytest.raises(NotReady, match="closed"):
        upload(again, HEALTH, "hv2")


def test_uploads_past_the_retention_period_are_erased(tmp_path: Path) -> None:
    core = make_core(tmp_path, retention_days=30)
    linked(core)
    assert core.purge_expired(datetime.now(UTC) + timedelta(days=29)) == 0
    assert core.purge_expired(datetime.now(UTC) + timedelta(days=31)) == 6
    assert core.store.query("SELECT * FROM records") == []
    states = {r["state"] for r in core.store.query("SELECT state FROM uploads")}
    assert states == {"expired"}
    deleted = [e for e in core.store.audit_entries() if e.event.action == "retention.deleted"]
    assert deleted[0].event.details["records_erased"] == 6
    assert deleted[0].event.actor_role == "coordinator"
