"""node.hardening: balance a CLK with its complement, then permute it with a secret-derived key."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from bitarray import bitarray

from node.hardening import Balancer, keyed_permutation, permutation_key

SPEC_HASH = "0" * 64


def bits_of(raw: bytes) -> bitarray:
    bits = bitarray(endian="big")
    bits.frombytes(raw)
    return bits


def random_clks(count: int, nbytes: int = 128, *, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(nbytes) for _ in range(count)]


def test_the_permutation_is_a_permutation_and_repeats_for_the_same_key() -> None:
    key = permutation_key(b"a-secret-of-16+chars", SPEC_HASH)
    order = keyed_permutation(key, 2048)
    assert sorted(order.tolist()) == list(range(2048))
    assert order.tolist() == keyed_permutation(key, 2048).tolist()
    assert order.tolist() != list(range(2048))


def test_another_secret_or_spec_gives_another_permutation() -> None:
    ours = keyed_permutation(permutation_key(b"a-secret-of-16+chars", SPEC_HASH), 2048)
    other_secret = keyed_permutation(permutation_key(b"another-secret-16+ch", SPEC_HASH), 2048)
    other_spec = keyed_permutation(permutation_key(b"a-secret-of-16+chars", "1" * 64), 2048)
    # Two unrelated permutations of 2048 agree on about one position.
    assert int((ours == other_secret).sum()) < 10
    assert int((ours == other_spec).sum()) < 10


def test_the_permutation_is_the_one_every_node_has_always_made() -> None:
    """Pinned: encodings a node uploaded earlier must stay comparable with new ones, so the
    shuffle's output may not change when its code does (figures from the first release)."""
    order = keyed_permutation(permutation_key(b"a-secret-of-16+chars", SPEC_HASH), 2048)
    assert order[:8].tolist() == [1709, 1537, 642, 2020, 1341, 1875, 714, 1427]
    assert hashlib.sha256(order.tobytes()).hexdigest() == (
        "04216cd7594fa30bb57e986367988ce645a2cdb2f6c4a6bedfc3bef3b0fa785e"
    )


def test_a_rejected_draw_is_skipped_as_the_one_at_a_time_shuffle_skips_it() -> None:
    """This key's HMAC stream holds a word above the rejection limit within its first 2,000
    draws (about one key in two thousand does), so the bulk path must fall back."""
    key = hashlib.sha256(b"rejecting-7777").digest()
    assert keyed_permutation(key, 2000).tolist() == one_at_a_time(key, 2000)
    order = keyed_permutation(key, 2000)
    assert hashlib.sha256(order.tobytes()).hexdigest() == (
        "f38e3a3a4cb3d48e5322ba5464e252636a4966125cbbf05adba16bef5ca45182"
    )


def test_the_bulk_shuffle_equals_the_one_at_a_time_shuffle() -> None:
    for n in range(20):
        key = hashlib.sha256(f"key-{n}".encode()).digest()
        for size in (1, 2, 9, 1024, 2048):
            assert keyed_permutation(key, size).tolist() == one_at_a_time(key, size)


def one_at_a_time(key: bytes, size: int) -> list[int]:
    """The shuffle as first written: Fisher-Yates, each index drawn by rejection from
    4-byte big-endian words of HMAC-SHA256(key, 8-byte counter)."""
    words = (
        int.from_bytes(block[k : k + 4], "big")
        for counter in range(size + 64)
        for block in [hmac.digest(key, counter.to_bytes(8, "big"), "sha256")]
        for k in range(0, 32, 4)
    )
    order = list(range(size))
    for i in range(size - 1, 0, -1):
        bound = i + 1
        limit = (1 << 32) - (1 << 32) % bound
        value = next(words)
        while value >= limit:
            value = next(words)
        j = value % bound
        order[i], order[j] = order[j], order[i]
    return order


def test_an_empty_secret_gives_no_key() -> None:
    with pytest.raises(ValueError, match="secret is empty"):
        permutation_key(b"", SPEC_HASH)


def test_hardened_encodings_are_twice_as_long_with_exactly_half_the_bits_set() -> None:
    balancer = Balancer(permutation_key(b"a-secret-of-16+chars", SPEC_HASH), 1024)
    clks = [*random_clks(50), bytes(128), b"\xff" * 128]
    hardened = balancer.harden(clks)
    assert balancer.bits == 2048
    assert {len(h) for h in hardened} == {256}
    assert {bits_of(h).count() for h in hardened} == {1024}


def test_hardening_keeps_the_clk_bits_but_not_where_they_were() -> None:
    key = permutation_key(b"a-secret-of-16+chars", SPEC_HASH)
    (clk,) = random_clks(1)
    (hardened,) = Balancer(key, 1024).harden([clk])
    order = keyed_permutation(key, 2048)
    original = bits_of(clk)
    doubled = original + ~original
    assert bits_of(hardened) == bitarray([doubled[i] for i in order.tolist()], endian="big")
    assert bits_of(hardened)[:1024] != original


def test_dice_of_hardened_encodings_is_the_share_of_agreeing_clk_positions() -> None:
    balancer = Balancer(permutation_key(b"a-secret-of-16+chars", SPEC_HASH), 1024)
    a, b = random_clks(2, seed=7)
    ha, hb = (bits_of(h) for h in balancer.harden([a, b]))
    dice = 2 * (ha & hb).count() / (ha.count() + hb.count())
    agreeing = 1024 - (bits_of(a) ^ bits_of(b)).count()
    assert dice == pytest.approx(agreeing / 1024)


def test_clks_of_the_wrong_length_are_refused() -> None:
    balancer = Balancer(permutation_key(b"a-secret-of-16+chars", SPEC_HASH), 1024)
    with pytest.raises(ValueError, match="128 bytes"):
        balancer.harden([bytes(64)])
    assert balancer.harden([]) == []
