"""Derived features at the node: canonical names, swap-proof dates, surname parts, outward codes.

Every person here is made up.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator.core.matching import unpack
from hublink.spec import LinkageSpec
from node import derived
from node.encoder import Encoder
from node.prepare import normalise_row, normalisers
from node.source import SourceRow

SECRET = b"a-test-secret-of-16+chars"


def test_the_shipped_name_table_loads_and_maps_short_forms_to_one_canonical_form() -> None:
    table = derived.name_table()
    assert len(table) > 200
    assert table["libby"] == table["lizzie"] == "elizabeth"
    assert table["bill"] == table["will"] == "william"
    assert not set(table.values()) & set(table)  # no chains: a canonical form is never a form


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name,full\nbill,william\n", "header"),
        ("form,canonical\nbill\n", "line 2"),
        ("form,canonical\nbill,william\nbill,bilbo\n", "listed twice"),
        ("form,canonical\nbill,will\nwill,william\n", "both a form and a canonical"),
    ],
)
def test_a_broken_name_table_is_refused_with_a_reason(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        derived._read_table(text)


def test_canonical_given_name_maps_each_word_and_leaves_unknown_names_alone() -> None:
    assert derived.canonical_given_name("libby") == "elizabeth"
    assert derived.canonical_given_name("elizabeth") == "elizabeth"
    assert derived.canonical_given_name("seren") == "seren"
    assert derived.canonical_given_name("ollie mai") == "oliver mai"


DATES = st.dates(min_value=date(2015, 1, 1), max_value=date(2026, 12, 31))


@given(DATES)
def test_a_day_month_swap_gives_the_same_sorted_date_and_another_order(born: date) -> None:
    text = born.strftime("%d%m%Y")
    swapped = f"{text[2:4]}{text[:2]}{text[4:]}"
    assert derived.date_sorted(text) == derived.date_sorted(swapped)
    if born.day != born.month:
        assert derived.date_order(text) != derived.date_order(swapped)
    else:
        assert derived.date_order(text) == "E"


@given(DATES, st.sampled_from([-1, 1]))
def test_different_dates_mostly_stay_different_when_sorted(born: date, step: int) -> None:
    """Sorting keeps everything but the order: a day off by one is still a different value."""
    moved = born + timedelta(days=step)
    a, b = born.strftime("%d%m%Y"), moved.strftime("%d%m%Y")
    swap_of_each_other = a[2:4] + a[:2] + a[4:] == b
    assert (derived.date_sorted(a) == derived.date_sorted(b)) == swap_of_each_other


def test_a_date_that_is_not_eight_digits_derives_nothing() -> None:
    assert derived.date_sorted("") == derived.date_order("2021") == ""


def test_family_name_parts_and_postcode_outward_code() -> None:
    assert derived.family_name_first("bell vaughan") == "bell"
    assert derived.family_name_last("bell vaughan") == "vaughan"
    assert derived.family_name_first("bell") == derived.family_name_last("bell") == "bell"
    assert derived.postcode_outward("CF10 1AA") == "CF10"
    assert derived.postcode_outward("") == ""


def test_derive_values_fills_derived_features_from_their_sources_only() -> None:
    fields = ("given_name", "given_name_canonical", "date_of_birth", "date_of_birth_sorted")
    values = ("ollie", "ignored", "04032021", "")
    assert derived.derive_values(fields, values) == ("ollie", "oliver", "04032021", "03042021")
    # A missing source gives a missing derived value, never a made-up one.
    assert derived.derive_values(fields, ("", "x", "", "y")) == ("", "", "", "")


def schema_with(*features: dict[str, object]) -> LinkageSpec:
    """The shipped schema as it was before derived features, plus ``features``."""
    schema = LinkageSpec.default().schema
    plain = []
    for f in schema["features"]:
        if f["identifier"] in derived.DERIVATIONS:
            continue
        if f.get("ignored"):
            f = PLAIN_SOURCES[f["identifier"]]
        plain.append(f)
    schema["features"] = plain + list(features)
    return LinkageSpec.from_json(json.dumps(schema))


def _hashed(identifier: str, comparison: dict[str, object], bits: int) -> dict[str, object]:
    return {
        "identifier": identifier,
        "format": {"type": "string", "encoding": "utf-8"},
        "hashing": {
            "comparison": comparison,
            "strategy": {"bitsPerToken": bits},
            "hash": {"type": "blakeHash"},
        },
    }


PLAIN_SOURCES = {
    "given_name": _hashed("given_name", {"type": "ngram", "n": 2}, 20),
    "date_of_birth": _hashed("date_of_birth", {"type": "ngram", "n": 1, "positional": True}, 25),
}


CANONICAL = {
    "identifier": "given_name_canonical",
    "format": {"type": "string", "encoding": "ascii"},
    "hashing": {
        "comparison": {"type": "exact"},
        "strategy": {"bitsPerToken": 30},
        "hash": {"type": "blakeHash"},
    },
}


def test_a_derived_feature_is_computed_even_when_a_column_is_mapped_to_it() -> None:
    spec = schema_with(CANONICAL)
    row = SourceRow(
        2, "id-1", {"given_name": "Ollie", "given_name_canonical": "someone else", "sex": "M"}
    )
    values = normalise_row(row, spec.all_fields, normalisers())
    assert values[spec.all_fields.index("given_name_canonical")] == "oliver"


def dice(spec: LinkageSpec, a: tuple[str, ...], b: tuple[str, ...]) -> float:
    x, y = unpack(Encoder(spec, SECRET).encode([a, b]))
    return 2 * (x & y).count() / (x.count() + y.count())


def test_the_encoder_takes_source_values_alone_or_all_values_alike() -> None:
    spec = schema_with(CANONICAL)
    person = ("ollie", "jenkins", "15112020", "M", "SA1 1DP", "")
    encoder = Encoder(spec, SECRET)
    assert encoder.encode([person]) == encoder.encode([(*person, "")])
    with pytest.raises(ValueError, match="expected 7 values"):
        encoder.encode([person[:5]])


def test_a_nickname_pair_is_closer_with_the_canonical_name_feature_and_twins_are_not() -> None:
    plain = schema_with()
    canonical = schema_with(CANONICAL)
    long_form = ("oliver", "jenkins", "15112020", "M", "SA1 1DP", "")
    short_form = ("ollie", "jenkins", "15112020", "M", "SA1 1DP", "")
    twin = ("harri", "jenkins", "15112020", "M", "SA1 1DP", "")
    assert dice(canonical, long_form, short_form) > dice(plain, long_form, short_form)
    assert dice(canonical, long_form, twin) < dice(plain, long_form, twin)


def test_the_name_table_is_pinned_in_the_encoding_hash_of_a_schema_that_uses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hublink.spec

    with_table = LinkageSpec.default()
    assert "given_name_canonical" in with_table.fields
    schema = with_table.schema
    schema["features"] = [
        f for f in schema["features"] if f["identifier"] != "given_name_canonical"
    ]
    without = LinkageSpec.from_json(json.dumps(schema))
    before, without_before = with_table.sha256, without.sha256
    monkeypatch.setattr(hublink.spec, "name_table_sha256", lambda: "0" * 64)
    assert with_table.sha256 != before  # another table: encodings would differ, so must the hash
    assert without.sha256 == without_before  # a schema not using the table does not pin it


@pytest.mark.parametrize(
    ("variant", "gain", "same_salts"),
    [
        (("libby", "jenkins", "03042021", "F", "CF10 1AA", ""), 0.02, True),  # short form
        (("elizabeth", "jenkins", "04032021", "F", "CF10 1AA", ""), 0.02, True),  # day/month swap
        (("elizabeth", "jenkins", "03042021", "F", "CF10 9ZZ", ""), 0.003, False),  # move in CF10
    ],
    ids=["short-form", "day-month-swap", "local-move"],
)
def test_the_shipped_schema_absorbs_common_changes_better_than_plain_fields(
    variant: tuple[str, ...], gain: float, same_salts: bool
) -> None:
    """Measured on the one-filter (unsalted) record CLK, where only the features differ.
    In the salted record CLK, a change that keeps every salt value gains as much; a move
    changes the postcode salt, so the home part is unrelated whichever features are
    hashed (tests/unit/test_node_encoder.py measures that)."""
    child = ("elizabeth", "jenkins", "03042021", "F", "CF10 1AA", "")
    shipped, plain = LinkageSpec.default(), schema_with()
    unsalted = shipped.with_record_parts(()), plain.with_record_parts(())
    assert dice(unsalted[0], child, variant) > dice(unsalted[1], child, variant) + gain
    if same_salts:
        assert dice(shipped, child, variant) > dice(plain, child, variant) + gain


def test_the_year_of_birth_survives_a_day_month_swap() -> None:
    assert derived.year_of_birth("03042021") == derived.year_of_birth("04032021") == "2021"
    assert derived.derived_value("year_of_birth", ("date_of_birth",), ("15112020",)) == "2020"
    assert derived.derived_value("year_of_birth", ("sex",), ("F",)) == ""
    assert derived.derivable("year_of_birth", ("date_of_birth",))
    assert not derived.derivable("year_of_birth", ("sex",))
    assert derived.derivable("sex", ("sex",)) and not derived.derivable("school_year", ("sex",))


def test_the_smaller_of_day_and_month_survives_swaps_and_year_errors() -> None:
    # For a day above 12 it is the month, whatever the year.
    assert derived.day_month_smaller("15042021") == derived.day_month_smaller("15042022") == "04"
    # Written the other way round, it is the same.
    assert derived.day_month_smaller("03042021") == derived.day_month_smaller("04032021") == "03"
    # A slip in the day changes it only when the day is the smaller of the two.
    assert derived.day_month_smaller("16042021") == "04"
    assert derived.day_month_smaller("02042021") == "02"
    assert derived.derived_value("day_month_smaller", ("date_of_birth",), ("15112020",)) == "11"
    assert derived.day_month_smaller("2021") == ""
