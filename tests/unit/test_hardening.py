"""node.hardening: balance a CLK with its complement, then permute it with a secret-derived key."""

from __future__ import annotations

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
