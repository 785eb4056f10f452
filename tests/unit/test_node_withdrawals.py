"""The node's memory of withdrawals, and reading the ids an operator hands it."""

from __future__ import annotations

import pytest

from node.errors import RunError as NodeError
from node.tokens import TokenStore
from node.withdraw import read_id_file


def test_withdrawals_are_remembered_and_pending_until_honoured(tmp_path):
    with TokenStore(tmp_path / "tokens.sqlite") as store:
        store.record_upload("u1", "p", [("tok-aaaaaaaa", "HV1"), ("tok-bbbbbbbb", "HV2")])
        sent = store.tokens_for("u1", ["HV1", "HV9"])
        assert sent == {"HV1": "tok-aaaaaaaa"}
        store.record_withdrawals("p", [("HV1", sent["HV1"]), ("HV9", None)])
        assert store.pending_withdrawals("p") == ["tok-aaaaaaaa"]  # HV9 was never sent
        store.mark_honoured("p", ["tok-aaaaaaaa"])
        assert store.pending_withdrawals("p") == []
        # Asking again is harmless and keeps the token already known.
        store.record_withdrawals("p", [("HV1", None)])
        assert store.withdrawn_tokens("p") == {"tok-aaaaaaaa"}
    with TokenStore(tmp_path / "tokens.sqlite") as store:
        assert store.withdrawn_local_ids() == {"HV1", "HV9"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HV1\nHV2\n\n", ["HV1", "HV2"]),
        ("\ufefflocal_id,linkage_key\nHV1,abc\nHV2,def\n", ["HV1", "HV2"]),
        ("Name,Patient ID\nx,HV7\ny, HV8 \n", ["HV7", "HV8"]),
    ],
)
def test_id_files(tmp_path, text, expected):
    path = tmp_path / "ids.csv"
    path.write_text(text, encoding="utf-8")
    assert read_id_file(path, "Patient ID") == expected


def test_an_empty_id_file_is_refused(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("\n")
    with pytest.raises(NodeError, match="empty"):
        read_id_file(path, "Patient ID")
