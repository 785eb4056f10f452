"""Record tokens: random, and ascending through one upload.

A token names a record between its node and the coordinator and nothing
else: it is drawn at random, never derived from anything about the person,
and a new upload draws new ones. The coordinator keeps tokens in an index of
its database; tokens in random order land all over that index, so every
chunk of a large upload rewrites a page of it per record, and uploading
slows as the project grows (a million records: several times slower than in
order). Tokens that ascend through an upload land side by side instead.

So an upload's tokens are random numbers in ascending order: each is the
last plus a random gap. That tells the coordinator only the order records
were sent in, which it sees anyway from the order of the chunks. Gaps are
sized so that the count of tokens the node will send fits in 128 bits.
"""

from __future__ import annotations

import secrets

#: Hex digits of a token (128 bits).
TOKEN_DIGITS = 32


class TokenSequence:
    """Random tokens, each larger than the last, for an upload of up to ``count`` records."""

    def __init__(self, count: int) -> None:
        # Start in the lower quarter and step by at most 2**gap_bits, so count steps stay
        # below 2**127: ``count`` steps of at most 2**(126 - bits(count)) add under 2**126.
        self._gap_bits = max(1, 126 - max(1, count).bit_length())
        self._value = secrets.randbits(125)

    def __call__(self) -> str:
        self._value += 1 + secrets.randbits(self._gap_bits)
        return f"{self._value:0{TOKEN_DIGITS}x}"
