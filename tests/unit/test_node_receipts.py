"""node.receipts: a node catches a coordinator whose log no longer extends what it was shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from hublink.audit import merkle
from hublink.audit.checkpoint import Signer, write_public_key
from node.receipts import (
    CHECKPOINTS_FILE,
    ReceiptRefused,
    check_log_grew,
    checkpoints,
    record_checkpoint,
)

LEAVES = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(20)]


@pytest.fixture
def signer() -> Signer:
    return Signer.generate()


def node_state(tmp_path: Path, signer: Signer, seen: int) -> tuple[Path, Path]:
    state = tmp_path / "state"
    key = tmp_path / "coordinator.pub"
    write_public_key(signer.verifier, key)
    tree = merkle.MemoryTree(LEAVES[:seen])
    record_checkpoint(state, signer.sign_checkpoint(seen, tree.root()), "receipt")
    return state, key


def test_a_log_that_grew_honestly_is_accepted_and_its_checkpoint_kept(
    tmp_path: Path, signer: Signer
) -> None:
    state, key = node_state(tmp_path, signer, 7)
    tree = merkle.MemoryTree(LEAVES)

    def fetch(old: int) -> tuple[str, list[bytes]]:
        return signer.sign_checkpoint(20, tree.root()), merkle.consistency_proof(tree, old, 20)

    assert check_log_grew(state, key, fetch) == (
        "the coordinator's log of 20 entries extends the 7 this node saw"
    )
    assert len(checkpoints(state)) == 2


def test_a_rewritten_log_is_refused_naming_the_sizes(tmp_path: Path, signer: Signer) -> None:
    state, key = node_state(tmp_path, signer, 7)
    forged = list(LEAVES)
    forged[3] = merkle.leaf_hash(b"rewritten")
    tree = merkle.MemoryTree(forged)

    def fetch(old: int) -> tuple[str, list[bytes]]:
        return signer.sign_checkpoint(20, tree.root()), merkle.consistency_proof(tree, old, 20)

    with pytest.raises(ReceiptRefused, match="log of 20 entries does not extend the log of 7"):
        check_log_grew(state, key, fetch)
    # The forged checkpoint is kept as evidence.
    assert len((state / CHECKPOINTS_FILE).read_text().splitlines()) == 2


def test_a_checkpoint_signed_by_another_key_is_refused(tmp_path: Path, signer: Signer) -> None:
    state, key = node_state(tmp_path, signer, 7)
    tree = merkle.MemoryTree(LEAVES)

    def fetch(old: int) -> tuple[str, list[bytes]]:
        return Signer.generate().sign_checkpoint(20, tree.root()), []

    with pytest.raises(ReceiptRefused, match="does not verify"):
        check_log_grew(state, key, fetch)


def test_nothing_to_check_before_the_first_receipt(tmp_path: Path) -> None:
    assert check_log_grew(tmp_path / "empty", None, lambda old: ("", [])) is None
