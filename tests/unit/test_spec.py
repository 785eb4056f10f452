"""hublink.spec: the linkage specification both sides pin, and the upload digest."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from hublink.spec import (
    NORMALISATION_VERSION,
    RECORD_CLK,
    LinkageSpec,
    SpecError,
    UploadDigest,
)
from node.encoder import Encoder

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from clkhash.schema import from_json_dict

EARLY_YEARS_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "nhs_number",
)


def default_schema() -> dict[str, Any]:
    return LinkageSpec.default().schema


def spec_of(schema: dict[str, Any], **kwargs: str) -> LinkageSpec:
    return LinkageSpec.from_json(json.dumps(schema), **kwargs)


def test_default_spec_is_a_balanced_record_clk_of_three_salted_parts_over_six_fields() -> None:
    spec = LinkageSpec.default()

    assert spec.normalisation == NORMALISATION_VERSION
    assert spec.hardening == "balance"
    # Three salted parts of 512 bits (hublink/schemas/record-clk.json), balanced to 3072.
    assert [(p.name, p.salt, p.bits) for p in spec.record_parts] == [
        ("clk@birth", ("date_of_birth_sorted",), 512),
        ("clk@home", ("postcode",), 512),
        ("clk@name", ("given_name_canonical", "family_name"), 512),
    ]
    assert spec.clk_bits == 1536
    assert [(e.name, e.bits) for e in spec.encodings] == [(RECORD_CLK, 3072)]
    assert spec.record_bytes == 384
    # No part hashes its own salt.
    for part in spec.record_parts:
        assert set(part.salt) <= set(part.without)
        assert spec.part_schema(part)["clkConfig"]["l"] == part.bits
    # Every field read from a file, in order, then the features derived from them
    # (node.derived); the raw given name and date are not hashed themselves, only
    # through what is derived from them.
    assert spec.all_fields == (
        *EARLY_YEARS_FIELDS,
        "given_name_canonical",
        "date_of_birth_sorted",
        "date_of_birth_order",
        "postcode_outward",
    )
    assert spec.fields == tuple(
        f for f in spec.all_fields if f not in ("given_name", "date_of_birth")
    )
    assert len(spec.sha256) == 64


def test_hash_is_stable_across_loads_and_layouts_of_the_same_json(tmp_path: Path) -> None:
    schema = default_schema()
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(schema, indent=4), encoding="utf-8")
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(schema, sort_keys=True), encoding="utf-8")

    expected = LinkageSpec.default().sha256
    assert LinkageSpec.default().sha256 == expected
    assert LinkageSpec.from_file(pretty).sha256 == expected
    assert LinkageSpec.from_file(compact).sha256 == expected


def test_hash_changes_with_the_schema() -> None:
    schema = default_schema()
    schema["features"][1]["hashing"]["strategy"]["bitsPerToken"] = 21  # family name
    assert spec_of(schema).sha256 != LinkageSpec.default().sha256


def test_hash_changes_with_the_encoding_length() -> None:
    schema = default_schema()
    schema["clkConfig"]["l"] = 2048
    changed = spec_of(schema)
    # The record CLK's length is its parts' (clkConfig.l is the length of the one unsalted
    # filter a spec without parts makes); the hash still changes with the schema.
    assert changed.record_bytes == LinkageSpec.default().record_bytes == 384
    assert changed.with_record_parts(()).record_bytes == 512
    assert changed.sha256 != LinkageSpec.default().sha256


def test_hash_changes_with_the_record_clk_parts() -> None:
    """Encodings made before the record CLK was salted are refused as a schema mismatch."""
    spec = LinkageSpec.default()
    unsalted = spec.with_record_parts(())
    assert unsalted.sha256 != spec.sha256
    resalted = spec.with_record_parts(
        [dataclasses.replace(p, salt=("year_of_birth",)) for p in spec.record_parts]
    )
    assert resalted.sha256 != spec.sha256


def test_hash_and_layout_change_with_the_hardening() -> None:
    unhardened = spec_of(default_schema(), hardening="none")
    assert [(e.name, e.bits) for e in unhardened.encodings] == [(RECORD_CLK, 1536)]
    assert unhardened.sha256 != LinkageSpec.default().sha256


def test_an_unknown_hardening_is_refused() -> None:
    with pytest.raises(SpecError, match="hardening must be one of balance, none"):
        spec_of(default_schema(), hardening="salt")


def test_hash_changes_with_the_normalisation_version() -> None:
    text = LinkageSpec.default().json_text
    other = LinkageSpec.from_json(text, normalisation="hublink-normalise-2")
    assert other.sha256 != LinkageSpec.from_json(text).sha256


def test_hash_changes_with_field_order() -> None:
    schema = default_schema()
    schema["features"][0], schema["features"][1] = schema["features"][1], schema["features"][0]
    swapped = spec_of(schema)
    assert swapped.all_fields[:2] == ("family_name", "given_name")
    assert swapped.sha256 != LinkageSpec.default().sha256


def test_clkhash_mutates_the_dict_it_is_given_but_not_the_spec() -> None:
    spec = LinkageSpec.default()
    before = spec.sha256

    handed_over = spec.schema
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_json_dict(handed_over)
    # clkhash fills in defaults in place; this is why the spec keeps text, not a dict.
    assert handed_over != spec.schema
    assert spec.sha256 == before


def test_encoding_through_the_encoder_leaves_the_pinned_hash_alone() -> None:
    spec = LinkageSpec.default()
    before = spec.sha256
    schema_before = spec.schema

    encoder = Encoder(spec, b"a-secret-of-16+chars")
    encoder.encode([("amelia", "pryce", "03042021", "F", "CF10 1AA", "")])

    assert spec.sha256 == before
    assert spec.schema == schema_before


def test_xor_folds_are_refused() -> None:
    schema = default_schema()
    schema["clkConfig"]["xorFolds"] = 1
    with pytest.raises(SpecError, match="xorFolds"):
        spec_of(schema)


@pytest.mark.parametrize("version", [2, "3", None])
def test_only_clkhash_v3_schemas_are_accepted(version: object) -> None:
    schema = default_schema()
    schema["version"] = version
    with pytest.raises(SpecError, match="v3"):
        spec_of(schema)


@pytest.mark.parametrize("bits", [0, -8, 1020])
def test_encoding_length_must_be_a_positive_multiple_of_8(bits: int) -> None:
    schema = default_schema()
    schema["clkConfig"]["l"] = bits
    with pytest.raises(SpecError, match="multiple of 8"):
        spec_of(schema)


def test_unreadable_schema_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(SpecError, match=r"broken\.json: not valid JSON"):
        LinkageSpec.from_file(broken)
    with pytest.raises(SpecError, match=r"absent\.json"):
        LinkageSpec.from_file(tmp_path / "absent.json")


# --- upload digest --------------------------------------------------------------------------


def digest(records: list[tuple[str, list[bytes]]]) -> str:
    upload = UploadDigest()
    for token, encodings in records:
        upload.add(token, encodings)
    return upload.hexdigest()


def test_digest_is_deterministic_and_order_sensitive() -> None:
    first = ("tok-aaaa", [b"\x01" * 4])
    second = ("tok-bbbb", [b"\x02" * 4])
    assert digest([first, second]) == digest([first, second])
    assert digest([first, second]) != digest([second, first])


def test_digest_sees_a_shifted_token_boundary() -> None:
    # Same bytes overall ("abc" then the encoding), split differently between records.
    assert digest([("ab", [b""]), ("c", [b"\x00"])]) != digest([("a", [b""]), ("bc", [b"\x00"])])
    assert digest([("ab", []), ("c", [])]) != digest([("a", []), ("bc", [])])


def test_digest_sees_a_changed_bit() -> None:
    assert digest([("tok-aaaa", [b"\x00\x01"])]) != digest([("tok-aaaa", [b"\x00\x03"])])
