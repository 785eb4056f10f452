"""The IG officer's commands as issue 24 found them, fixed: show, keep, compare, certificates.

Each test is one problem from the issue: JSON blobs by default, times with
no date or zone, dotted action names, slugs for organisations, a bad
``--since`` ignored, no command to keep a checkpoint, ``compare`` refusing a
node's own checkpoint file, no step issuing an auditor certificate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from coordinator.core.audit import AuditEvent
from coordinator.core.store import Store
from hublink.audit.checkpoint import Verifier, write_public_key
from hublink.cli import main
from hublink.identity import Role, identity_from_certificate
from node.receipts import record_checkpoint

NAMES = '[display_names]\n"health-visiting" = "Health visiting (NHS)"\n'


@dataclass
class Files:
    root: Path
    export: Path
    key: Path
    database: Path
    early_note: str

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args))


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Files]:
    database = tmp_path / "coordinator.db"
    store = Store(database)
    events = [
        AuditEvent("project.created", "coordinator", "coordinator", "p", {"organisations": []}),
        AuditEvent("upload.started", "health-visiting", "node", "p", {"upload_id": "u1"}),
        AuditEvent(
            "upload.committed",
            "health-visiting",
            "node",
            "p",
            {"upload_id": "u1", "records": 1200, "digest_sha256": "ab" * 32},
        ),
        AuditEvent("records.withdrawn", "health-visiting", "node", "p", {"records": 2}),
    ]
    early = ""
    for n, event in enumerate(events):
        with store.transaction() as tx:
            tx.audit(event)
        if n == 1:
            early = store.audit_checkpoint().note
    key = tmp_path / "coordinator.pub"
    write_public_key(store.signer.verifier, key)
    store.close()
    export = tmp_path / "audit.jsonl"
    result = CliRunner().invoke(
        main, ["audit", "export", "--database", str(database), "--out", str(export)]
    )
    assert result.exit_code == 0, result.output
    yield Files(tmp_path, export, key, database, early)


def _names_file(root: Path) -> Path:
    path = root / "auditor.toml"
    path.write_text(
        'coordinator = "localhost:1"\n[tls]\nca = "ca.pem"\ncert = "c.pem"\nkey = "c.key"\n\n'
        + NAMES
    )
    return path


# --- audit show ---------------------------------------------------------------------------


def test_show_prints_a_readable_table_by_default(files: Files) -> None:
    result = files.run("audit", "show", str(files.export), "--names", str(_names_file(files.root)))
    assert result.exit_code == 0, result.output
    heading, *rows = result.output.splitlines()
    assert heading.split() == ["#", "When", "Organisation", "Role", "What", "Project", "Details"]
    assert len(rows) == 4
    assert "Records withdrawn" in rows[3] and "records.withdrawn" not in result.output
    assert "Health visiting (NHS)" in rows[2] and "Upload completed" in rows[2]
    assert "records 1,200" in rows[2] and "abab…" in rows[2]
    assert " UTC " in rows[0] and rows[0].split()[1].count("-") == 2  # a date, then the time
    assert "{" not in result.output


def test_show_json_prints_every_entry_in_full(files: Files) -> None:
    result = files.run("audit", "show", str(files.export), "--json")
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.output.splitlines()]
    assert [e["action"] for e in entries][-1] == "records.withdrawn"
    assert all(len(e["entry_hash"]) == 64 for e in entries)


def test_show_plain_sentences_carry_date_zone_and_display_names(files: Files) -> None:
    result = files.run(
        "audit", "show", str(files.export), "--plain", "--names", str(_names_file(files.root))
    )
    assert result.exit_code == 0, result.output
    last = result.output.splitlines()[-1]
    assert last[:10].count("-") == 2 and last[19:24] == " UTC "
    assert "Records withdrawn by Health visiting (NHS) (node)" in last


def test_a_bad_since_is_a_usage_error_naming_the_format(files: Files) -> None:
    result = files.run("audit", "show", str(files.export), "--since", "last tuesday")
    assert result.exit_code == 2
    assert "Invalid value for '--since'" in result.output
    assert "2026-06-01T09:30:00Z" in result.output  # the format it expects
    result = files.run("audit", "export", str(files.export), "--out", "x.csv", "--until", "13/06")
    assert result.exit_code == 2


def test_since_with_a_time_zone_filters_in_utc(files: Files) -> None:
    first = json.loads(files.export.read_text().splitlines()[0])["time"]
    result = files.run("audit", "show", str(files.export), "--since", "2999-01-01T00:00+01:00")
    assert result.exit_code == 0 and "no entries match" in result.output
    result = files.run("audit", "show", str(files.export), "--json", "--since", first[:10])
    assert len(result.output.splitlines()) == 4


# --- keeping and comparing checkpoints ------------------------------------------------------


def test_audit_checkpoint_keeps_the_newest_checkpoint_of_a_verified_export(files: Files) -> None:
    out = files.root / "kept" / "checkpoint-2026-06-30.note"
    result = files.run(
        "audit", "checkpoint", str(files.export), "--key", str(files.key), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "kept the checkpoint of 4 entries, signed 20" in result.output
    checkpoint = Verifier.from_file(files.key).open_checkpoint(out.read_text())
    assert checkpoint.size == 4 and checkpoint.time.endswith("Z")
    again = files.run(
        "audit", "checkpoint", str(files.export), "--key", str(files.key), "--out", str(out)
    )
    assert again.exit_code == 2 and "already exists" in again.output


def test_audit_checkpoint_refuses_to_keep_from_a_tampered_export(files: Files) -> None:
    lines = files.export.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["details"]["records"] = 1
    lines[2] = json.dumps(entry)
    files.export.write_text("\n".join(lines) + "\n")
    out = files.root / "kept.note"
    result = files.run(
        "audit", "checkpoint", str(files.export), "--key", str(files.key), "--out", str(out)
    )
    assert result.exit_code == 1
    assert "first bad entry: entry 2" in result.output
    assert not out.exists()


def test_audit_checkpoint_over_the_network_that_cannot_connect_exits_2(files: Files) -> None:
    from hublink.identity import Identity
    from hublink.pki import create_authority, issue_certificate

    pki = files.root / "pki"
    authority = create_authority(pki)
    cert = issue_certificate(authority, Identity("information-governance", Role.AUDITOR), pki)
    config = files.root / "auditor.toml"
    config.write_text(
        f'coordinator = "127.0.0.1:9"\ntimeout_seconds = 2.0\n[tls]\nca = "{cert.ca}"\n'
        f'cert = "{cert.cert}"\nkey = "{cert.key}"\n'
    )
    result = files.run(
        "audit", "checkpoint", "--config", str(config), "--key", str(files.key),
        "--out", str(files.root / "k.note"),
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "UNAVAILABLE" in result.output


def test_compare_accepts_a_nodes_own_checkpoints_file(files: Files) -> None:
    state = files.root / "node-state"
    record_checkpoint(state, files.early_note, "receipt for upload u1")
    later = files.root / "later.note"
    files.run(
        "audit", "checkpoint", str(files.export), "--key", str(files.key), "--out", str(later)
    )
    result = files.run(
        "audit", "compare", str(state / "checkpoints.jsonl"), str(later),
        "--key", str(files.key), "--log", str(files.export),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "the log of 4 entries extends the log of 2 entries" in result.output
    # an export works as either side too (its newest checkpoint is used)
    result = files.run("audit", "compare", str(files.export), str(later), "--key", str(files.key))
    assert result.exit_code == 0, result.output
    assert "same log of 4 entries" in result.output


# --- the auditor's certificate --------------------------------------------------------------


def test_pki_issues_an_auditor_certificate(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    assert CliRunner().invoke(main, ["pki", "init", str(pki)]).exit_code == 0
    result = CliRunner().invoke(
        main,
        ["pki", "issue", str(pki), "--organisation", "information-governance", "--role", "auditor"],
    )
    assert result.exit_code == 0, result.output
    certificate = pki / "auditor-information-governance.pem"
    assert (pki / "auditor-information-governance.key").stat().st_mode & 0o077 == 0
    who = identity_from_certificate(certificate.read_bytes())
    assert (who.organisation, who.role) == ("information-governance", Role.AUDITOR)
