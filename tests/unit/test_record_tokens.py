"""node.record_tokens: tokens are random, valid on the wire, unique and ascending."""

from __future__ import annotations

import itertools
import re

from node.record_tokens import TOKEN_DIGITS, TokenSequence

#: What the coordinator accepts as a token.
WIRE = re.compile(r"[A-Za-z0-9_-]{8,64}")


def test_tokens_ascend_and_fit_the_wire_format() -> None:
    tokens = TokenSequence(5000)
    drawn = [tokens() for _ in range(5000)]

    assert drawn == sorted(drawn) and len(set(drawn)) == 5000
    assert all(WIRE.fullmatch(t) and len(t) == TOKEN_DIGITS for t in drawn)


def test_two_uploads_draw_unrelated_tokens() -> None:
    first, second = TokenSequence(100), TokenSequence(100)

    a, b = [first() for _ in range(100)], [second() for _ in range(100)]

    assert not set(a) & set(b)
    # Neither the start nor the steps repeat: the gaps between tokens differ too.
    gaps = [int(y, 16) - int(x, 16) for x, y in itertools.pairwise(a)]
    assert len(set(gaps)) > 90


def test_even_the_largest_upload_stays_within_128_bits() -> None:
    tokens = TokenSequence(2**40)
    tokens._value = 2**125 - 1  # the largest start it can draw
    for _ in range(1000):
        last = tokens()
    assert int(last, 16) < 2**127 and len(last) == TOKEN_DIGITS
