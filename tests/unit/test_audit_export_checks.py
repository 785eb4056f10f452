"""``hublink audit verify`` on an export fails whatever no signature covers, and says where.

Issue 21, finding 3: an export with its checkpoints removed, a fabricated log,
a forged entry after the last checkpoint (beside a kept checkpoint and the
nodes' receipts), a checkpoint whose time was changed, and bytes that are not
UTF-8 all passed or crashed. Each is now exit status 1 naming the first bad
entry; a command that could not run at all exits 2.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordinator.core.audit import AuditEvent
from coordinator.core.store import Store
from hublink.audit import merkle
from hublink.audit.checkpoint import Signer, Verifier, write_public_key
from hublink.audit.log import LogEntry, content_leaf, entry_content, export_jsonl
from hublink.audit.verify import verify_export
from hublink.cli import main

ORGS = ("health-visiting", "flying-start")


@dataclass
class Export:
    path: Path
    key: Path
    database: Path
    kept: Path
    """A checkpoint an auditor kept at the end, as a note file."""

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines()

    def write(self, lines: list[str]) -> None:
        self.path.write_text("".join(line + "\n" for line in lines))

    def verify(self, *extra: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            main, ["audit", "verify", str(self.path), "--key", str(self.key), *extra]
        )
        return result.exit_code, result.output


@pytest.fixture
def export(tmp_path: Path) -> Iterator[Export]:
    database = tmp_path / "coordinator.db"
    store = Store(database)
    events = [AuditEvent("project.created", "coordinator", "coordinator", "p", {})]
    for n, org in enumerate(ORGS):
        events += [
            AuditEvent("upload.started", org, "node", "p", {"upload_id": f"u{n}"}),
            AuditEvent("upload.committed", org, "node", "p", {"upload_id": f"u{n}", "records": 9}),
        ]
    events += [AuditEvent("access.refused", "outsider", "admin", "p", {"reason": "not a member"})]
    for event in events:
        with store.transaction() as tx:
            tx.audit(event)
    kept = tmp_path / "kept.note"
    kept.write_text(store.audit_checkpoint().note)
    key = tmp_path / "coordinator.pub"
    write_public_key(store.signer.verifier, key)
    store.close()
    path = tmp_path / "audit.jsonl"
    result = CliRunner().invoke(
        main, ["audit", "export", "--database", str(database), "--out", str(path)]
    )
    assert result.exit_code == 0, result.output
    yield Export(path, key, database, kept)


def _entry_lines(export: Export) -> list[str]:
    return [line for line in export.lines() if '"kind": "entry"' in line]


def _forged(index: int, time: str) -> str:
    """An entry line whose hash is right for its content: what a forger appends."""
    content = entry_content(index, time, "keys.released", "flying-start", "node", "p", {"keys": 9})
    return json.dumps(
        {"kind": "entry", **content, "entry_hash": content_leaf(content).hex()}, sort_keys=True
    )


def test_an_untouched_export_passes_and_says_how_far_its_signatures_reach(
    export: Export,
) -> None:
    code, output = export.verify("--checkpoint", str(export.kept))
    assert code == 0, output
    assert "6 entries, 7 signed checkpoints" in output
    assert "The newest checkpoint covers all 6, signed 20" in output and " UTC" in output


def test_an_export_with_every_checkpoint_removed_fails(export: Export) -> None:
    export.write(_entry_lines(export))
    code, output = export.verify()
    assert code == 1
    assert "first bad entry: entries 0 to 5: no signed checkpoint covers any of the 6" in output


def test_a_fabricated_three_entry_log_fails(export: Export) -> None:
    export.write([_forged(i, f"2026-01-01T00:00:0{i}.000Z") for i in range(3)])
    code, output = export.verify()
    assert code == 1
    assert "no signed checkpoint covers any of the 3 entries" in output


def test_a_fabricated_log_signed_with_another_key_fails(export: Export, tmp_path: Path) -> None:
    entries = [LogEntry.from_json(json.loads(_forged(i, "2026-01-01T00:00:00Z"))) for i in range(3)]
    forger = Signer.generate()
    tree = merkle.MemoryTree(e.leaf() for e in entries)
    from hublink.audit.log import StoredCheckpoint

    export_jsonl(entries, [StoredCheckpoint(forger.sign_checkpoint(3, tree.root()))], export.path)
    code, output = export.verify()
    assert code == 1
    assert "is not signed by the key" in output


def test_a_forged_entry_after_the_last_checkpoint_fails_beside_kept_checkpoints(
    export: Export, tmp_path: Path
) -> None:
    entries, checkpoints = _entry_lines(export), export.lines()[len(_entry_lines(export)) :]
    export.write([*entries, _forged(6, "2026-12-31T23:59:59.000Z"), *checkpoints])
    code, output = export.verify("--checkpoint", str(export.kept))
    assert code == 1
    assert "first bad entry: entry 6: the last 1 entries are covered by no signed checkpoint" in (
        output
    )
    report = verify_export(
        export.path, Verifier.from_file(export.key), checkpoints=[("kept", export.kept.read_text())]
    )
    assert (report.unsigned_tail, report.signed_size, report.first_bad_entry) == (1, 6, 6)


def test_a_checkpoint_whose_time_was_changed_fails(export: Export) -> None:
    lines = export.lines()
    last = json.loads(lines[-1])
    last["time"] = "2027-01-01T00:00:00.000Z"
    lines[-1] = json.dumps(last, sort_keys=True)
    export.write(lines)
    code, output = export.verify()
    assert code == 1
    assert "is given the time 2027-01-01T00:00:00.000Z, but the time signed in it is" in output
    assert f"line {len(lines)}" in output


def test_a_checkpoint_signed_before_times_were_signed_passes_with_a_note(
    export: Export, tmp_path: Path
) -> None:
    verifier = Verifier.from_file(export.key)
    from hublink.audit.checkpoint import default_audit_key, load_or_create_key

    signer = load_or_create_key(default_audit_key(export.database))
    lines = export.lines()
    old = []
    for line in lines:
        data = json.loads(line)
        if data["kind"] == "checkpoint":
            checkpoint = verifier.open_checkpoint(data["note"])
            data["note"] = signer.sign_checkpoint(checkpoint.size, checkpoint.root)  # no time
        old.append(json.dumps(data, sort_keys=True))
    export.write(old)
    code, output = export.verify()
    assert code == 0, output
    assert "signed by an earlier hublink without their time" in output


def test_invalid_utf8_is_a_bad_entry_named_by_line_not_a_traceback(export: Export) -> None:
    raw = export.path.read_bytes().split(b"\n")
    raw[3] = raw[3].replace(b"upload", b"upl\xffad", 1)
    export.path.write_bytes(b"\n".join(raw))
    code, output = export.verify()
    assert code == 1
    assert "Traceback" not in output
    assert "first bad entry: entry 3 (line 4): cannot be read as an entry: invalid UTF-8" in output


def test_a_line_that_is_not_json_is_a_bad_entry(export: Export) -> None:
    lines = export.lines()
    lines[2] = lines[2][:-5]
    export.write(lines)
    code, output = export.verify()
    assert code == 1
    assert "first bad entry: entry 2 (line 3): cannot be read as an entry" in output


def test_verify_that_cannot_run_exits_2(export: Export, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["audit", "verify", str(tmp_path / "missing.jsonl"), "--key", str(export.key)]
    )
    assert result.exit_code == 2 and "no such file" in result.output
    result = CliRunner().invoke(main, ["audit", "verify", str(export.path)])
    assert result.exit_code == 2 and "--key coordinator.pub is needed" in result.output
    result = CliRunner().invoke(main, ["audit", "verify", "--no-such-option"])
    assert result.exit_code == 2


def test_a_database_from_an_earlier_version_gets_its_unsigned_tail_signed_at_start(
    export: Export,
) -> None:
    db = sqlite3.connect(export.database)
    with db:
        db.execute("DELETE FROM checkpoints WHERE size > 3")
    db.close()
    before = CliRunner().invoke(
        main, ["audit", "verify", "--database", str(export.database), "--key", str(export.key)]
    )
    assert before.exit_code == 1 and "the last 3 entries are covered by no" in before.output
    Store(export.database).close()
    db = sqlite3.connect(export.database)
    sizes = [size for (size,) in db.execute("SELECT size FROM checkpoints ORDER BY size")]
    db.close()
    assert sizes == [1, 2, 3, 6]
    result = CliRunner().invoke(
        main, ["audit", "verify", "--database", str(export.database), "--key", str(export.key)]
    )
    assert result.exit_code == 0, result.output
