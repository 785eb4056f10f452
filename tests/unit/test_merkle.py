"""hublink.audit.merkle: RFC 6962 tree shape, inclusion and consistency proofs.

The worked examples are the seven-leaf tree of RFC 6962 section 2.1.3, with
its audit paths and consistency proofs written out by hand.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hublink.audit.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


D = [bytes([i]) * (i + 1) for i in range(7)]
a, b, c, d, e, f, j_leaf = (sha(b"\x00" + x) for x in D)
g = sha(b"\x01" + a + b)
h = sha(b"\x01" + c + d)
i = sha(b"\x01" + e + f)
j = j_leaf
k = sha(b"\x01" + g + h)
l_ = sha(b"\x01" + i + j)
ROOT7 = sha(b"\x01" + k + l_)
TREE = MemoryTree(leaf_hash(x) for x in D)


def test_hashes_use_distinct_leaf_and_node_prefixes() -> None:
    assert leaf_hash(b"x") == sha(b"\x00x")
    assert node_hash(b"L", b"R") == sha(b"\x01LR")
    assert sha(b"") == EMPTY_ROOT


def test_roots_of_small_trees_by_hand() -> None:
    assert root(TREE, 0) == EMPTY_ROOT
    assert root(TREE, 1) == a
    assert root(TREE, 2) == g
    assert root(TREE, 3) == sha(b"\x01" + g + c)
    assert root(TREE, 4) == k
    assert root(TREE, 5) == sha(b"\x01" + k + e)
    assert root(TREE, 6) == sha(b"\x01" + k + i)
    assert root(TREE, 7) == ROOT7


def test_audit_paths_of_rfc_6962() -> None:
    assert inclusion_proof(TREE, 0, 7) == [b, h, l_]
    assert inclusion_proof(TREE, 3, 7) == [c, g, l_]
    assert inclusion_proof(TREE, 4, 7) == [f, j, k]
    assert inclusion_proof(TREE, 6, 7) == [i, k]
    assert inclusion_proof(TREE, 0, 1) == []


def test_consistency_proofs_of_rfc_6962() -> None:
    assert consistency_proof(TREE, 3, 7) == [c, d, g, l_]
    assert consistency_proof(TREE, 4, 7) == [l_]
    assert consistency_proof(TREE, 6, 7) == [i, j, k]
    assert consistency_proof(TREE, 7, 7) == []
    assert consistency_proof(TREE, 0, 7) == []
    verify_consistency(3, 7, root(TREE, 3), ROOT7, [c, d, g, l_])


def test_a_size_beyond_the_tree_is_refused() -> None:
    with pytest.raises(ProofError):
        root(TREE, 8)
    with pytest.raises(ProofError):
        inclusion_proof(TREE, 7, 7)
    with pytest.raises(ProofError):
        consistency_proof(TREE, 5, 4)


def test_same_size_different_roots_is_inconsistent() -> None:
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(7, 7, ROOT7, k, [])


# --- properties -----------------------------------------------------------------------------

leaves = st.lists(st.binary(max_size=12), min_size=1, max_size=70)
distinct_leaves = st.lists(st.binary(max_size=12), min_size=1, max_size=70, unique=True)


@given(leaves)
def test_the_stored_tree_agrees_with_the_definition(data: list[bytes]) -> None:
    hashes = [leaf_hash(x) for x in data]
    tree = MemoryTree(hashes)
    for size in range(len(hashes) + 1):
        assert root(tree, size) == root_of(hashes[:size])


@given(leaves)
def test_every_inclusion_proof_verifies(data: list[bytes]) -> None:
    tree = MemoryTree(leaf_hash(x) for x in data)
    for size in range(1, len(data) + 1):
        expected = root(tree, size)
        for index in range(size):
            proof = inclusion_proof(tree, index, size)
            verify_inclusion(index, size, tree.levels[0][index], proof, expected)


@given(leaves)
def test_every_consistency_proof_verifies(data: list[bytes]) -> None:
    tree = MemoryTree(leaf_hash(x) for x in data)
    for new in range(len(data) + 1):
        for old in range(new + 1):
            proof = consistency_proof(tree, old, new)
            verify_consistency(old, new, root(tree, old), root(tree, new), proof)


@given(distinct_leaves, st.data())
def test_a_tampered_leaf_or_proof_fails_inclusion(data: list[bytes], draw: st.DataObject) -> None:
    tree = MemoryTree(leaf_hash(x) for x in data)
    size = draw.draw(st.integers(1, len(data)), label="size")
    index = draw.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(tree, index, size)
    expected = root(tree, size)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf_hash(b"tampered" + data[index]), proof, expected)
    if proof:
        at = draw.draw(st.integers(0, len(proof) - 1), label="at")
        bad = list(proof)
        bad[at] = sha(bad[at])
        with pytest.raises(ProofError):
            verify_inclusion(index, size, tree.levels[0][index], bad, expected)
        with pytest.raises(ProofError):
            verify_inclusion(index, size, tree.levels[0][index], proof[:-1], expected)
    if size > 1:
        other = (index + 1) % size
        with pytest.raises(ProofError):
            verify_inclusion(other, size, tree.levels[0][index], proof, expected)


@given(leaves, st.data())
def test_a_rewritten_prefix_or_tampered_proof_fails_consistency(
    data: list[bytes], draw: st.DataObject
) -> None:
    new = draw.draw(st.integers(1, len(data)), label="new")
    old = draw.draw(st.integers(1, new), label="old")
    tree = MemoryTree(leaf_hash(x) for x in data)
    changed = list(data)
    changed[draw.draw(st.integers(0, old - 1), label="changed")] += b"!"
    forked = MemoryTree(leaf_hash(x) for x in changed)
    # The forked log extends itself, but not the original's old checkpoint.
    proof = consistency_proof(forked, old, new)
    with pytest.raises(ProofError):
        verify_consistency(old, new, root(tree, old), root(forked, new), proof)
    good = consistency_proof(tree, old, new)
    if good:
        at = draw.draw(st.integers(0, len(good) - 1), label="at")
        bad = list(good)
        bad[at] = sha(bad[at])
        with pytest.raises(ProofError):
            verify_consistency(old, new, root(tree, old), root(tree, new), bad)
