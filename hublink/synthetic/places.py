"""Made-up places: postcodes of a real shape that name nowhere, and local-authority codes.

Outward codes come from ``data/outward_codes.csv``; inward codes are drawn at
random, so the full postcodes are made up. The local-authority codes are
shaped like ONS codes and none is real.
"""

from __future__ import annotations

import random
import zlib

from hublink.synthetic.names import OUTWARD_CODES

# Letters used in the last two places of a UK postcode (C, I, K, M, O and V never are).
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
# When a family moves, how often it stays in the same postcode district.
_MOVE_LOCAL_SHARE = 0.7

# Made-up local-authority codes (shaped like ONS codes, none of them real):
# each postcode district lies in two of them, and a full postcode in one.
AREA_CODES = (
    "E06000901", "E06000902", "E06000903", "E06000904",
    "W06000901", "W06000902", "W06000903", "W06000904",
)  # fmt: skip


def area_code(postcode: str) -> str:
    """The made-up local authority a postcode lies in: fixed by the postcode, two per district."""
    outward, _, inward = postcode.partition(" ")
    first = zlib.crc32(outward.encode()) % len(AREA_CODES)
    second = (first + 1 + zlib.crc32(outward.encode()[::-1]) % 3) % len(AREA_CODES)
    return AREA_CODES[second if zlib.crc32(inward.encode()) % 3 == 0 else first]


def random_inward(rng: random.Random) -> str:
    return f"{rng.randrange(10)}{rng.choice(_INWARD_LETTERS)}{rng.choice(_INWARD_LETTERS)}"


def random_postcode(rng: random.Random) -> str:
    return f"{rng.choice(OUTWARD_CODES)} {random_inward(rng)}"


def moved_postcode(rng: random.Random, postcode: str) -> str:
    outward = postcode.split(" ")[0]
    while True:
        if rng.random() < _MOVE_LOCAL_SHARE:
            moved = f"{outward} {random_inward(rng)}"
        else:
            moved = random_postcode(rng)
        if moved != postcode:
            return moved
