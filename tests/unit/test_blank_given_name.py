"""A blank given name (a newborn registered as BABY, a field left empty) reads as missing.

The node sends all-zero given-name filters for it, in both variants, and the
coordinator scores the comparison as missing (``field_levels.MISSING``): no evidence
either way. Before, the empty value was hashed like a name, so it read as disagreeing
with every given name (the same child lost its match) and two blank names under one
salt read as agreeing (two unnamed siblings at one address looked like one child).
"""

from __future__ import annotations

import numpy as np

from coordinator.core import field_levels, field_scoring
from hublink.spec import LinkageSpec
from node.encoder import Encoder
from node.prepare import normalise_row, normalisers
from node.source import SourceRow

SPEC = LinkageSpec.from_json(LinkageSpec.default().json_text, field_scoring=True)
SECRET = b"a-secret-of-16+chars"


def prepared(given_name: str, date_of_birth: str = "03/04/2021") -> tuple[str, ...]:
    row = SourceRow(
        2,
        "HV-001",
        {
            "given_name": given_name,
            "family_name": "Pryce",
            "date_of_birth": date_of_birth,
            "sex": "F",
            "postcode": "CF10 1AA",
            "nhs_number": "9990000018",
        },
    )
    return normalise_row(row, SPEC.all_fields, normalisers())


def sent(rows: list[tuple[str, ...]]) -> dict[str, np.ndarray]:
    """Each field filter the node sends for ``rows``, as a packed array per group."""
    encoded = Encoder(SPEC, SECRET).encode_all(rows, [f"t{i}" for i in range(len(rows))])
    names = [e.name for e in SPEC.encodings]
    return {
        name: np.array([np.frombuffer(r[at], dtype=np.uint8) for r in encoded])
        for at, name in enumerate(names)
        if name != "clk"
    }


def test_a_blank_given_name_sends_all_zero_given_filters_and_nothing_else_empty() -> None:
    filters = sent([prepared("Amelia"), prepared("BABY"), prepared("")])
    for variant in ("given@birth", "given@home"):
        assert filters[variant][0].any()
        assert not filters[variant][1].any() and not filters[variant][2].any()
    for variant in ("family@birth", "birth@home", "place@family", "nhs@birth"):
        assert filters[variant].any(axis=1).all(), variant


def test_a_blank_given_name_is_missing_against_a_name_and_against_another_blank() -> None:
    rows = [
        prepared("Amelia"),
        prepared("BABY GIRL"),  # the same child, before she was named
        prepared("Amelia"),  # the same child again
        prepared("TWIN 2"),  # another unnamed record at the same address and date
    ]
    filters = sent(rows)
    left, right = np.array([0, 1, 0]), np.array([1, 3, 2])
    best = field_scoring.compare(filters, left, right)
    scale = field_levels.Scale(field_levels.exact_score(SPEC.group_flip), chance=0.5)
    levels = scale.levels(best["given"])
    # Named against blank, and blank against blank: missing, neither agreeing nor not.
    assert levels[0] == field_levels.MISSING
    assert levels[1] == field_levels.MISSING
    # Two named records still agree; the other comparisons are read as before.
    assert levels[2] == 0
    assert not np.isnan(best["family"]).any() and (best["family"] > 0.9).all()
