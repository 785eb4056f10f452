"""Hardening a record-level CLK at the node: balance it, then permute it with a secret key.

Bloom-filter encodings leak through the frequencies of their bits and bit
patterns (Christen et al.). Two post-processing steps close the easy routes:

* **Balancing** appends the complement of the CLK, so every encoding has
  exactly half its bits set: the Hamming weight no longer says how long or how
  common the hashed values were.
* **A keyed permutation** then shuffles the doubled bit positions with a key
  derived from the project's linkage secret (HKDF-SHA256). Without the secret
  the coordinator cannot tell which positions came from the CLK and which from
  its complement, nor line positions up across projects.

Dice similarity of two balanced filters equals the share of positions the
original CLKs agree on (set in both or clear in both), so matching still works
but its thresholds mean something else: see the project defaults in
``hublink.config``. The permutation is built with a hash-driven Fisher-Yates
shuffle written out here rather than a library's RNG, so every node computes
the same permutation whatever numpy or Python version it runs.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"hublink balance-permutation v1"


def permutation_key(secret: bytes, spec_sha256: str) -> bytes:
    """The permutation key: HKDF of the linkage secret, bound to the pinned spec hash."""
    if not secret:
        raise ValueError("the linkage secret is empty")
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=spec_sha256.encode(),
        info=_INFO,
    ).derive(secret)


def keyed_permutation(key: bytes, size: int) -> np.ndarray:
    """A permutation of ``range(size)`` that only holders of ``key`` can compute.

    Fisher-Yates, drawing each index by rejection sampling from an HMAC-SHA256
    stream (so there is no modulo bias). A node makes one per salt value of every
    salted filter, thousands per upload, so the draws are read in bulk: the
    ``size - 1`` words the shuffle needs are taken at once and, when none would be
    rejected (all but about one permutation in a thousand of 2,048 positions), turned
    into indices together; otherwise the words are drawn one by one. Either way the
    indices, and so the permutation, are the same.
    """
    order = list(range(size))
    stream = _RandomStream(key)
    bounds = np.arange(size, 1, -1, dtype=np.uint64)
    words = stream.peek(len(bounds))
    limits = (1 << 32) - (1 << 32) % bounds
    if (words < limits).all():
        stream.skip(len(bounds))
        draws = (words % bounds).tolist()
    else:
        draws = [stream.below(int(bound)) for bound in bounds]
    for i, j in zip(range(size - 1, 0, -1), draws, strict=True):
        order[i], order[j] = order[j], order[i]
    return np.array(order, dtype=np.int64)


class _RandomStream:
    """Uniform integers from HMAC-SHA256(key, counter) blocks, read as big-endian words."""

    _WORDS_PER_BLOCK = 8

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._words = np.empty(0, dtype=np.uint64)
        self._next = 0

    def _fill(self, wanted: int) -> None:
        """Make at least ``wanted`` words beyond the next one available."""
        missing = self._next + wanted - len(self._words)
        if missing <= 0:
            return
        first = len(self._words) // self._WORDS_PER_BLOCK
        count = -(-missing // self._WORDS_PER_BLOCK)
        blocks = b"".join(
            hmac.digest(self._key, counter.to_bytes(8, "big"), "sha256")
            for counter in range(first, first + count)
        )
        fresh = np.frombuffer(blocks, dtype=">u4").astype(np.uint64)
        self._words = np.concatenate([self._words, fresh])

    def peek(self, n: int) -> np.ndarray:
        """The next ``n`` words, not consumed."""
        self._fill(n)
        return self._words[self._next : self._next + n]

    def skip(self, n: int) -> None:
        """Consume ``n`` words."""
        self._fill(n)
        self._next += n

    def below(self, bound: int) -> int:
        """A uniform integer in ``[0, bound)``."""
        limit = (1 << 32) - ((1 << 32) % bound)
        while True:
            self._fill(1)
            value = int(self._words[self._next])
            self._next += 1
            if value < limit:
                return value % bound


class Balancer:
    """Balances and permutes packed CLKs of one length with one key."""

    def __init__(self, key: bytes, clk_bits: int) -> None:
        if clk_bits <= 0 or clk_bits % 8:
            raise ValueError(f"a CLK must be a positive multiple of 8 bits, not {clk_bits}")
        self.clk_bits = clk_bits
        self._order = keyed_permutation(key, 2 * clk_bits)

    @property
    def bits(self) -> int:
        """Length of a hardened encoding in bits (twice the CLK's)."""
        return 2 * self.clk_bits

    def harden(self, packed: Sequence[bytes]) -> list[bytes]:
        """Each packed CLK (most significant bit first) balanced and permuted, packed."""
        if not packed:
            return []
        nbytes = self.clk_bits // 8
        if any(len(p) != nbytes for p in packed):
            raise ValueError(f"every CLK must be {nbytes} bytes")
        raw = np.frombuffer(b"".join(packed), dtype=np.uint8).reshape(len(packed), nbytes)
        bits = np.unpackbits(raw, axis=1)
        doubled = np.concatenate([bits, 1 - bits], axis=1)
        hardened = np.packbits(doubled[:, self._order], axis=1)
        return [row.tobytes() for row in hardened]
