"""Tampering with the coordinator's audit log is caught, and verify names where.

A real store (SQLite, real Ed25519 key) records a small project's life; the
tests then edit the database file the way an operator with shell access
could — change a byte, delete, reorder, truncate, re-sign with another key —
and run ``hublink audit verify`` on it, on an export of it, and against the
checkpoints and receipts other parties kept.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordinator.core import auditstore
from coordinator.core.audit import AuditEvent
from coordinator.core.store import Store
from hublink.audit import merkle
from hublink.audit.checkpoint import Signer, Verifier, default_audit_key, write_public_key
from hublink.audit.log import (
    ForkDetected,
    LogEntry,
    Receipt,
    compare_checkpoints,
    content_leaf,
    read_jsonl,
)
from hublink.audit.verify import verify_log
from hublink.cli import main
from hublink.cli.audit import load_source

ORGS = ("health-visiting", "flying-start", "childcare")


@dataclass
class Log:
    path: Path
    key: Path
    receipts: dict[str, Receipt]
    later_checkpoint: str
    """A checkpoint an auditor fetched and kept at the end."""

    def verify(self, *extra: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            main, ["audit", "verify", "--database", str(self.path), "--key", str(self.key), *extra]
        )
        return result.exit_code, result.output

    def sql(self, statement: str, *parameters: object) -> None:
        db = sqlite3.connect(self.path)
        with db:
            db.execute(statement, parameters)
        db.close()

    def rows(self) -> list[tuple[object, ...]]:
        db = sqlite3.connect(self.path)
        rows = db.execute("SELECT * FROM audit ORDER BY idx").fetchall()
        db.close()
        return rows


def _receipt(store: Store, index: int, upload_id: str) -> Receipt:
    [entry] = store.audit_entries(index, index)
    signed = store.audit_checkpoint_at(index + 1)
    assert signed is not None
    e = entry.to_log_entry()
    return Receipt(
        upload_id,
        e.project_id,
        e.actor_organisation,
        int(e.details["records"]),
        str(e.details["digest_sha256"]),
        index,
        e,
        tuple(store.audit_inclusion_proof(index, signed.size)),
        signed.note,
    )


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    path = tmp_path / "coordinator.db"
    store = Store(path)
    receipts: dict[str, Receipt] = {}
    events = [AuditEvent("project.created", "coordinator", "coordinator", "p", {"orgs": 3})]
    for n, org in enumerate(ORGS):
        events += [
            AuditEvent("upload.started", org, "node", "p", {"upload_id": f"up-{org}"}),
            AuditEvent(
                "upload.committed",
                org,
                "node",
                "p",
                {"upload_id": f"up-{org}", "records": 100 + n, "digest_sha256": f"{n:064x}"},
            ),
        ]
    events += [
        AuditEvent("run.started", "hub", "admin", "p", {"run_id": "r1"}),
        AuditEvent("run.completed", "hub", "admin", "p", {"run_id": "r1", "entities": 250}),
    ]
    events += [AuditEvent("keys.released", org, "node", "p", {"keys": 100}) for org in ORGS]
    events.append(AuditEvent("access.refused", "outsider", "node", "p", {"reason": "no"}))
    for event in events:
        with store.transaction() as tx:
            entry = tx.audit(event)
        if event.action == "upload.committed":
            receipts[event.actor_organisation] = _receipt(
                store, entry.index, str(event.details["upload_id"])
            )
    later = store.audit_checkpoint().note
    key = tmp_path / "coordinator.pub"
    write_public_key(store.signer.verifier, key)
    store.close()
    yield Log(path, key, receipts, later)


def _write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


def _receipt_file(tmp_path: Path, receipt: Receipt) -> str:
    return _write(tmp_path, f"{receipt.upload_id}.json", json.dumps(receipt.to_json()))


def _rehash_everything(log: Log) -> None:
    """What a careful forger does after editing: recompute every hash and tree node."""
    db = sqlite3.connect(log.path)
    with db:
        rows = db.execute(
            "SELECT idx, time, action, actor_organisation, actor_role, project_id, details_json "
            "FROM audit ORDER BY idx"
        ).fetchall()
        db.execute("DELETE FROM merkle_nodes")
        tree = merkle.MemoryTree()
        for idx, time, action, org, role, project, details in rows:
            leaf = content_leaf(
                {
                    "index": idx,
                    "time": time,
                    "action": action,
                    "actor_organisation": org,
                    "actor_role": role,
                    "project_id": project,
                    "details": json.loads(details),
                }
            )
            db.execute("UPDATE audit SET entry_hash = ? WHERE idx = ?", (leaf.hex(), idx))
            tree.append(leaf)
        for level, hashes in enumerate(tree.levels):
            db.executemany(
                "INSERT INTO merkle_nodes VALUES (?, ?, ?)",
                [(level, i, h) for i, h in enumerate(hashes)],
            )
    db.close()


# --- an honest log ---------------------------------------------------------------------------


def test_an_untouched_log_verifies_with_its_checkpoints_and_receipts(
    log: Log, tmp_path: Path
) -> None:
    receipts = [a for r in log.receipts.values() for a in ("--receipt", _receipt_file(tmp_path, r))]
    code, output = log.verify(
        "--checkpoint", _write(tmp_path, "later.note", log.later_checkpoint), *receipts
    )
    assert code == 0, output
    assert "audit verify passed: 13 entries" in output
    assert "3 receipts" in output


def test_a_checkpoint_is_signed_after_every_entry_with_its_time(log: Log) -> None:
    source = load_source(None, log.path, None)
    verifier = Verifier.from_file(log.key)
    signed = [verifier.open_checkpoint(c.note) for c in source.checkpoints]
    assert [c.size for c in signed] == list(range(1, len(source.entries) + 1))
    # refusals, upload.started and run.started are covered like every other action
    assert {"access.refused", "upload.started", "run.started"} <= {
        source.entries[c.size - 1].action for c in signed
    }
    # the time stored beside each checkpoint is the time signed inside it
    assert [c.time for c in signed] == [c.time for c in source.checkpoints]
    assert all(c.time == source.entries[c.size - 1].time for c in signed)


# --- tampering in the database ---------------------------------------------------------------


def test_one_changed_byte_is_named_at_its_entry(log: Log) -> None:
    log.sql("UPDATE audit SET details_json = replace(details_json, '101', '111') WHERE idx = 4")
    code, output = log.verify()
    assert code == 1
    assert "entry 4: its content does not match its recorded hash" in output


def test_a_changed_byte_with_every_hash_recomputed_is_caught_by_the_checkpoints(log: Log) -> None:
    log.sql("UPDATE audit SET details_json = replace(details_json, '101', '111') WHERE idx = 4")
    _rehash_everything(log)
    code, output = log.verify()
    assert code == 1
    # The checkpoint signed after entry 3 still matches; the one after entry 4 does not.
    assert "first bad entry: entry 4:" in output
    assert "entry 4 was changed, removed or reordered" in output


def test_a_deleted_entry_is_named(log: Log) -> None:
    log.sql("DELETE FROM audit WHERE idx = 5")
    code, output = log.verify()
    assert code == 1
    assert "first bad entry: entry 5: entry 5 is missing or out of place (entry 6 stands" in output


def test_a_deleted_and_renumbered_entry_is_caught(log: Log) -> None:
    log.sql("DELETE FROM audit WHERE idx = 5")
    log.sql("UPDATE audit SET idx = idx - 1 WHERE idx > 5")
    _rehash_everything(log)
    code, output = log.verify()
    assert code == 1
    assert "first bad entry: entry 5:" in output
    assert "entry 5 was changed, removed or reordered" in output


def test_two_swapped_entries_are_named_at_the_first(log: Log) -> None:
    rows = log.rows()
    for target, source in ((3, rows[5]), (5, rows[3])):
        log.sql(
            "UPDATE audit SET time = ?, actor_organisation = ?, actor_role = ?, action = ?, "
            "project_id = ?, details_json = ?, entry_hash = ? WHERE idx = ?",
            *source[1:],
            target,
        )
    code, output = log.verify()
    assert code == 1
    problems = output.split("audit verify FAILED", 1)[1].splitlines()[1:]
    assert problems[0].startswith("  first bad entry: entry 3: its content does not match its")
    assert any(p.startswith("  entry 5:") for p in problems)


def test_two_swapped_entries_rehashed_are_still_caught(log: Log) -> None:
    rows = log.rows()
    for target, source in ((3, rows[5]), (5, rows[3])):
        log.sql(
            "UPDATE audit SET actor_organisation = ?, action = ?, details_json = ? WHERE idx = ?",
            source[2],
            source[4],
            source[6],
            target,
        )
    _rehash_everything(log)
    code, output = log.verify()
    assert code == 1
    assert "first bad entry: entry 3:" in output
    assert "entry 3 was changed" in output


def test_a_truncated_tail_is_caught_against_a_later_checkpoint(log: Log, tmp_path: Path) -> None:
    log.sql("DELETE FROM audit WHERE idx >= 10")
    log.sql("DELETE FROM checkpoints WHERE size > 10")
    log.sql("DELETE FROM merkle_nodes WHERE position * (1 << level) >= 10")
    code, output = log.verify()
    assert code == 0, "the truncated log is consistent with itself"
    assert "The newest checkpoint covers all 10, signed 20" in output
    assert "compare it with a checkpoint you kept" in output
    code, output = log.verify("--checkpoint", _write(tmp_path, "kept.note", log.later_checkpoint))
    assert code == 1
    assert "entry 10:" in output
    assert "signed over 13 entries but the log has only 10" in output
    assert "truncated" in output


def test_a_receipt_the_log_no_longer_contains_is_reported(log: Log, tmp_path: Path) -> None:
    receipt = log.receipts["childcare"]  # entry 6
    log.sql("DELETE FROM audit WHERE idx >= 6")
    log.sql("DELETE FROM checkpoints WHERE size > 6")
    code, output = log.verify("--receipt", _receipt_file(tmp_path, receipt))
    assert code == 1
    assert "upload up-childcare was recorded as entry 6, which the log no longer contains" in output


def test_a_receipt_whose_entry_was_rewritten_is_reported(log: Log, tmp_path: Path) -> None:
    receipt = log.receipts["flying-start"]  # entry 4
    log.sql("UPDATE audit SET details_json = replace(details_json, '101', '99') WHERE idx = 4")
    _rehash_everything(log)
    code, output = log.verify("--receipt", _receipt_file(tmp_path, receipt))
    assert code == 1
    assert "entry 4:" in output
    assert "no longer holds the entry that recorded upload up-flying-start" in output


def test_checkpoints_signed_with_another_key_fail_against_the_pinned_key(
    log: Log, tmp_path: Path
) -> None:
    # A forger rewrites the log and signs it with a key of their own, passing it off as new.
    log.sql("UPDATE audit SET details_json = replace(details_json, '101', '111') WHERE idx = 4")
    _rehash_everything(log)
    forger = Signer.generate()
    db = sqlite3.connect(log.path)
    with db:
        tree = auditstore.SqlSubtrees(db)
        for (size,) in db.execute("SELECT size FROM checkpoints").fetchall():
            note = forger.sign_checkpoint(size, merkle.root(tree, size))
            db.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (note, size))
    db.close()
    forged_key = tmp_path / "forged.pub"
    write_public_key(forger.verifier, forged_key)
    code, output = (
        CliRunner()
        .invoke(main, ["audit", "verify", "--database", str(log.path), "--key", str(forged_key)])
        .exit_code,
        "",
    )
    assert code == 0, "with the forger's key the forged log is self-consistent"
    code, output = log.verify()
    assert code == 1
    assert f"not signed by the key {Verifier.from_file(log.key).name}" in output


# --- offline, from an export -----------------------------------------------------------------


def test_an_exported_log_verifies_offline_with_only_the_public_key(
    log: Log, tmp_path: Path
) -> None:
    out = tmp_path / "audit.jsonl"
    runner = CliRunner()
    result = runner.invoke(
        main, ["audit", "export", "--database", str(log.path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    log.path.unlink()  # nothing of the coordinator is left but the export and the key
    default_audit_key(log.path).unlink()
    result = runner.invoke(main, ["audit", "verify", str(out), "--key", str(log.key)])
    assert result.exit_code == 0, result.output
    assert "audit verify passed: 13 entries" in result.output

    lines = out.read_text().splitlines()
    entry = json.loads(lines[7])
    entry["details"]["records"] = 1000
    lines[7] = json.dumps(entry)
    out.write_text("\n".join(lines) + "\n")
    result = runner.invoke(main, ["audit", "verify", str(out), "--key", str(log.key)])
    assert result.exit_code == 1
    assert "first bad entry: entry 7 (line 8): its content does not match" in result.output


def test_verify_without_a_key_for_an_export_says_what_is_needed(log: Log, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    CliRunner().invoke(main, ["audit", "export", "--database", str(log.path), "--out", str(out)])
    result = CliRunner().invoke(main, ["audit", "verify", str(out)])
    assert result.exit_code == 2, "could not run: not a failed verification"
    assert "--key coordinator.pub is needed" in result.output


def test_a_broken_export_line_is_named(tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    out.write_text('{"kind": "entry", "index": 0}\n')
    with pytest.raises(ValueError, match="line 1: not an audit log line"):
        read_jsonl(out)


def test_csv_export_and_filters(log: Log, tmp_path: Path) -> None:
    out = tmp_path / "uploads.csv"
    result = CliRunner().invoke(
        main,
        ["audit", "export", "--database", str(log.path), "--out", str(out), "--action", "upload"],
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("index,time,actor_organisation")
    assert len(lines) == 1 + 6
    shown = CliRunner().invoke(
        main,
        ["audit", "show", "--database", str(log.path), "--organisation", "childcare", "--plain"],
    )
    assert shown.exit_code == 0
    assert len(shown.output.splitlines()) == 3  # started, committed, keys


# --- comparing checkpoints from different parties ------------------------------------------


def test_two_parties_checkpoints_of_one_growing_log_agree(log: Log) -> None:
    verifier = Verifier.from_file(log.key)
    source = load_source(None, log.path, None)
    early = log.receipts["health-visiting"].checkpoint
    early_size = verifier.open_checkpoint(early).size
    assert source.consistency is not None
    proof = source.consistency(early_size, 13)
    assert "extends" in compare_checkpoints(early, log.later_checkpoint, verifier, proof)


def test_a_coordinator_that_shows_two_logs_is_caught(log: Log, tmp_path: Path) -> None:
    signer_key = default_audit_key(log.path)
    from hublink.audit.checkpoint import load_or_create_key

    signer = load_or_create_key(signer_key)
    honest = log.later_checkpoint
    size = Verifier.from_file(log.key).open_checkpoint(honest).size
    entries = load_source(None, log.path, None).entries
    forked = [LogEntry(**{**e.__dict__}) for e in entries]
    forked[2] = LogEntry(**{**forked[2].__dict__, "details": {"upload_id": "other"}})
    other_root = merkle.MemoryTree(e.leaf() for e in forked).root()
    other = signer.sign_checkpoint(size, other_root)
    with pytest.raises(ForkDetected, match="showed different logs"):
        compare_checkpoints(honest, other, Verifier.from_file(log.key))
    result = CliRunner().invoke(
        main,
        [
            "audit",
            "compare",
            _write(tmp_path, "a.note", honest),
            _write(tmp_path, "b.note", other),
            "--key",
            str(log.key),
        ],
    )
    assert result.exit_code == 1
    assert "two different logs of 13 entries" in result.output


def test_an_honest_export_passes_verify_log_directly(log: Log) -> None:
    source = load_source(None, log.path, None)
    report = verify_log(
        source.entries,
        Verifier.from_file(log.key),
        checkpoints=[("db", c) for c in source.checkpoints],
        receipts=[(k, r) for k, r in log.receipts.items()],
    )
    assert report.ok, report.problems
    assert report.root == merkle.root_of([e.leaf() for e in source.entries])
    assert report.signed_size == 13 and report.unsigned_tail == 0
    assert report.first_bad_entry is None
