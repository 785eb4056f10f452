"""The audit trail of a real linked deployment, as the nodes and an IG officer hold it.

Each node kept a signed receipt for its upload, the coordinator's key (trusted
on first use) and every checkpoint it saw; the coordinator's log verifies
against all of them, and none of them holds a token, an encoding or a key.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pytest
from click.testing import CliRunner

from hublink.audit.checkpoint import Verifier
from hublink.audit.log import read_receipt_file
from hublink.cli import main
from node import receipts

pytestmark = pytest.mark.e2e


def test_each_node_kept_a_receipt_that_verifies_against_the_coordinators_log(linked_deployment):
    args = ["audit", "verify", "--database", str(linked_deployment.database)]
    keys = set()
    for organisation in linked_deployment.organisations:
        state = linked_deployment.node_config(organisation).state_dir
        [receipt_file] = receipts.receipts(state)
        receipt = read_receipt_file(receipt_file)
        assert receipt.organisation == organisation
        assert receipt.record_count == receipt.entry.details["records"] > 0
        keys.add((state / receipts.TRUSTED_KEY_FILE).read_text().strip())
        args += [
            "--receipt",
            str(receipt_file),
            "--checkpoint",
            str(state / receipts.CHECKPOINTS_FILE),
        ]
        with closing(sqlite3.connect(state / "tokens.sqlite")) as db, db:
            (kept,) = db.execute(
                "SELECT receipt_json FROM uploads WHERE state = 'committed'"
            ).fetchone()
        assert json.loads(kept)["checkpoint"] == receipt.checkpoint
        # Fetching keys later checked the coordinator's log still extends the receipt's.
        sources = [
            json.loads(line)["source"]
            for line in (state / receipts.CHECKPOINTS_FILE).read_text().splitlines()
        ]
        assert sources == [f"receipt for upload {receipt.upload_id}", "consistency check"]
    [key] = keys  # every node trusted the same coordinator key
    key_file = linked_deployment.root / "pinned.pub"
    key_file.write_text(key + "\n")
    Verifier.from_file(key_file)
    result = CliRunner().invoke(main, [*args, "--key", str(key_file)])
    assert result.exit_code == 0, result.output
    assert f"{len(linked_deployment.organisations)} receipts" in result.output


def test_receipts_and_checkpoints_hold_no_token_or_key(linked_deployment):
    keys = set(linked_deployment.predicted().values())
    for organisation in linked_deployment.organisations:
        state = linked_deployment.node_config(organisation).state_dir
        with closing(sqlite3.connect(state / "tokens.sqlite")) as db, db:
            tokens = {t for (t,) in db.execute("SELECT token FROM tokens")}
        text = "".join(p.read_text() for p in receipts.receipts(state))
        text += (state / receipts.CHECKPOINTS_FILE).read_text()
        assert tokens and not any(token in text for token in tokens)
        assert not any(key in text for key in keys)
    with closing(sqlite3.connect(linked_deployment.database)) as db, db:
        notes = " ".join(n for (n,) in db.execute("SELECT note FROM checkpoints"))
    assert notes and not any(key in notes for key in keys)
