"""The test suite's own shortcuts (tests/conftest.py) change no result, only how often work runs."""

from __future__ import annotations

import pytest

from hublink.spec import LinkageSpec
from node import encoder
from node.encoder import Encoder
from tests.conftest import SchemaParses

SECRET = b"a test project's linkage secret"
PERSON = {
    "given_name": "amelia",
    "family_name": "ahmed",
    "date_of_birth": "2021-03-04",
    "sex": "f",
    "postcode": "CF10 1AA",
    "nhs_number": "9990001234",
}


def test_encoders_share_one_parse_of_each_schema_and_encode_as_a_fresh_parse_does(
    schemas_parsed_once: SchemaParses, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = LinkageSpec.from_json(
        LinkageSpec.default().json_text, field_scoring=True, record_clk="salted"
    )
    values = [tuple(PERSON.get(f, "") for f in spec.all_fields)]
    first, second = Encoder(spec, SECRET), Encoder(spec, SECRET)
    assert encoder.from_json_dict is schemas_parsed_once
    assert first._schema is second._schema
    assert len(schemas_parsed_once.parsed) >= 1 + len(spec.field_groups)
    remembered = first.encode_all(values, ["token-1"])
    assert len(remembered[0]) == len(spec.encodings)
    # The same encoder built with clkhash's own parser, which reads and checks every schema.
    monkeypatch.setattr(encoder, "from_json_dict", schemas_parsed_once.parse)
    fresh = Encoder(spec, SECRET)
    assert fresh._schema is not first._schema
    assert fresh.encode_all(values, ["token-1"]) == remembered
    assert Encoder(spec, b"another secret").encode_all(values, ["token-1"]) != remembered
