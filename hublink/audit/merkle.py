"""A Merkle log in the shape RFC 6962 / RFC 9162 (Certificate Transparency) define.

Why this shape: anyone holding a signed (size, root) pair can check, with a
handful of hashes and without the rest of the log, that one entry is in it
(an inclusion proof) and that a later log still contains it unchanged as its
prefix (a consistency proof). Leaves and interior nodes are hashed with
different prefixes (0x00 and 0x01), so a leaf can never pass for a node.

The functions are pure. Trees are read through ``Subtrees``: something that
returns the hash of an aligned, perfect subtree (2**level leaves starting at
a multiple of 2**level). Every node of an RFC 6962 tree is either such a
subtree or is built from O(log n) of them, so a store that keeps those
hashes answers roots and proofs in O(log n) look-ups instead of rehashing
every leaf. ``MemoryTree`` is the in-memory version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of a log with no entries: SHA-256 of nothing (RFC 6962 section 2.1)."""


class ProofError(ValueError):
    """A proof that does not prove what it claims (or asks for something a tree lacks)."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one log entry's canonical bytes."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n >= 2): where RFC 6962 splits."""
    return 1 << ((n - 1).bit_length() - 1)


class Subtrees(Protocol):
    """Hashes of the aligned perfect subtrees of a log."""

    def perfect(self, start: int, level: int) -> bytes:
        """Hash of leaves [start, start + 2**level); ``start`` is a multiple of 2**level."""
        ...


class MemoryTree:
    """A log's leaf hashes and every complete interior node, kept level by level.

    Appending is amortised O(1) hashes; ``levels[k][i]`` is the hash of the
    perfect subtree of 2**k leaves starting at leaf i * 2**k.
    """

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for leaf in leaves:
            self.append(leaf)

    def __len__(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash and every interior node it completes."""
        self.levels[0].append(leaf)
        level, index, current = 0, len(self.levels[0]) - 1, leaf
        while index % 2 == 1:
            current = node_hash(self.levels[level][index - 1], current)
            level, index = level + 1, index // 2
            if level == len(self.levels):
                self.levels.append([])
            self.levels[level].append(current)

    def perfect(self, start: int, level: int) -> bytes:
        return self.levels[level][start >> level]

    def root(self, size: int | None = None) -> bytes:
        return root(self, len(self) if size is None else size)


def _check_size(tree: Subtrees, size: int) -> None:
    if isinstance(tree, MemoryTree) and size > len(tree):
        raise ProofError(f"the tree has {len(tree)} leaves, not {size}")


def subtree_hash(tree: Subtrees, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a subtree that occurs in an RFC 6962 tree."""
    n = end - start
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        return tree.perfect(start, n.bit_length() - 1)
    k = split_point(n)
    return node_hash(subtree_hash(tree, start, start + k), subtree_hash(tree, start + k, end))


def root(tree: Subtrees, size: int) -> bytes:
    """The root hash of the first ``size`` leaves."""
    if size < 0:
        raise ProofError("a tree size cannot be negative")
    _check_size(tree, size)
    return subtree_hash(tree, 0, size)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The root hash of a list of leaf hashes, computed directly from the definition."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


# ------------------------------------------------------------------------ inclusion
def inclusion_proof(tree: Subtrees, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    _check_size(tree, size)
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            proof.append(subtree_hash(tree, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(tree, start, start + k))
            start = start + k
    proof.reverse()
    return proof


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` at ``index`` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Raise ProofError unless ``proof`` shows ``leaf`` at ``index`` in the tree with that root."""
    if root_from_inclusion(index, size, leaf, proof) != expected_root:
        raise ProofError(f"leaf {index} is not in the tree of size {size} with that root")


# ---------------------------------------------------------------------- consistency
def consistency_proof(tree: Subtrees, old_size: int, new_size: int) -> list[bytes]:
    """Proof that the first ``old_size`` leaves are a prefix of ``new_size`` (RFC 9162 2.1.4.1)."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
    _check_size(tree, new_size)
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, m, whole = 0, new_size, old_size, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            proof.append(subtree_hash(tree, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(tree, start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append(subtree_hash(tree, start, end))
    proof.reverse()
    return proof


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless ``proof`` shows the old tree is a prefix of the new.

    The algorithm of RFC 9162 section 2.1.4.2.
    """
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a log of {new_size} entries cannot extend one of {old_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn % 2 == 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError(
            f"the log of {new_size} entries does not extend the log of {old_size} entries"
        )
