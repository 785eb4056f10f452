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

import hashlib
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
    stream (so there is no modulo bias).
    """
    order = np.arange(size, dtype=np.int64)
    stream = _RandomStream(key)
    for i in range(size - 1, 0, -1):
        j = stream.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


class _RandomStream:
    """Uniform integers from HMAC-SHA256(key, counter) blocks."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._counter = 0
        self._buffer = b""

    def _take(self, n: int) -> bytes:
        while len(self._buffer) < n:
            block = hmac.new(self._key, self._counter.to_bytes(8, "big"), hashlib.sha256)
            self._buffer += block.digest()
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def below(self, bound: int) -> int:
        """A uniform integer in ``[0, bound)``."""
        limit = (1 << 32) - ((1 << 32) % bound)
        while True:
            value = int.from_bytes(self._take(4), "big")
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
