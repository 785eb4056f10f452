"""node.attributes: coarse attributes derived at the node, only those the project releases."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hublink import synthetic
from hublink.config import AttributeSection
from node.attributes import AGE_BANDS, AttributeConfigError, age_band, attach, check, derive
from node.encoder import EncodedRecord
from node.prepare import PreparedRecord

ON = date(2026, 3, 31)
SPECS = {
    "age_band": AttributeSection(column="DOB", derive="age_band"),
    "area": AttributeSection(column="LA Code"),
    "flying_start": AttributeSection(column="FS", derive="flag"),
}


def test_age_bands_are_whole_years_at_the_reference_date() -> None:
    assert age_band(date(2026, 3, 31), ON) == "0-1"
    assert age_band(date(2025, 4, 1), ON) == "0-1"
    assert age_band(date(2025, 3, 31), ON) == "1-2"  # first birthday on the day
    assert age_band(date(2021, 4, 1), ON) == "4-5"
    assert age_band(date(2021, 3, 31), ON) == "5+"
    assert age_band(date(2026, 4, 1), ON) is None  # born after the reference date


@given(st.dates(min_value=date(2021, 4, 1), max_value=ON))
def test_every_child_in_the_five_year_window_gets_one_of_the_five_bands(born: date) -> None:
    assert age_band(born, ON) in AGE_BANDS


def test_derivation_sends_codes_bands_and_flags_never_dates() -> None:
    rows = [
        {"DOB": "25/06/2024", "LA Code": "w06000901", "FS": "Y"},
        {"DOB": "", "LA Code": "", "FS": "no"},
        {"DOB": "31/02/2024", "LA Code": "Flat 2, 14 High Street", "FS": "maybe"},
    ]
    derived = derive(rows, SPECS, ON)
    assert derived.attributes == (
        (("age_band", "1-2"), ("area", "W06000901"), ("flying_start", "yes")),
        (("flying_start", "no"),),
        (),
    )
    # Present but unusable values are counted, missing ones are not.
    assert derived.unusable == {"age_band": 1, "area": 1, "flying_start": 1}


def test_an_attribute_the_project_does_not_release_stops_the_node() -> None:
    with pytest.raises(AttributeConfigError, match="'flying_start' is configured but the project"):
        check(SPECS, ("age_band", "area"))
    with pytest.raises(AttributeConfigError, match="derive must be one of"):
        check({"area": AttributeSection(column="x", derive="exact")}, ("area",))
    check(SPECS, ("age_band", "area", "flying_start"))


def test_attach_puts_each_rows_attributes_on_its_encoded_record() -> None:
    prepared = [
        PreparedRecord("a", (), {"DOB": "01/01/2023", "LA Code": "E06000901", "FS": "1"}),
        PreparedRecord("b", (), {"DOB": "01/01/2025", "LA Code": "E06000902", "FS": "0"}),
    ]
    records = [
        EncodedRecord("tok-aaaaaaaa", "a", (b"x",)),
        EncodedRecord("tok-bbbbbbbb", "b", (b"y",)),
    ]
    out = attach(records, prepared, SPECS, ("age_band", "area", "flying_start"), "2026-03-31")
    assert [r.attributes for r in out] == [
        (("age_band", "3-4"), ("area", "E06000901"), ("flying_start", "yes")),
        (("age_band", "1-2"), ("area", "E06000902"), ("flying_start", "no")),
    ]
    assert attach(records, prepared, {}, (), "") == records


def test_synthetic_areas_follow_the_postcode_a_few_per_district(tmp_path) -> None:
    assert synthetic.area_code("CF10 1AB") == synthetic.area_code("CF10 1AB")
    district = {synthetic.area_code(f"CF10 {d}AB") for d in range(10)}
    assert 1 <= len(district) <= 2
    assert district <= set(synthetic.AREA_CODES)
    data = synthetic.generate(
        tmp_path, 60, seed=3, layouts=synthetic.with_areas(synthetic.DEFAULT_LAYOUTS[:2])
    )
    header = data.csv_paths["health-visiting"].read_text().splitlines()[0].split(",")
    assert header[-1] == "LA Code"
    rows = data.csv_paths["flying-start"].read_text().splitlines()[1:]
    assert {r.split(",")[-1] for r in rows} <= set(synthetic.AREA_CODES)
