"""The synthetic generator: file shapes, population properties, errors, and pair scoring."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import pytest

from hublink import nhs
from hublink.synthetic import (
    DEFAULT_LAYOUTS,
    REFERENCE_DATE,
    ErrorRates,
    GeneratedData,
    OrganisationLayout,
    generate,
    pairwise_quality,
)

POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$")
LAYOUTS = {layout.organisation: layout for layout in DEFAULT_LAYOUTS}


def read_rows(data: GeneratedData, organisation: str) -> list[dict[str, str]]:
    """An organisation's rows keyed by linkage field, plus local_id and the true person_id."""
    layout = LAYOUTS[organisation]
    truth = data.truth()
    with data.csv_paths[organisation].open(newline="", encoding="utf-8") as handle:
        raw = list(csv.DictReader(handle))
    rows = []
    for record in raw:
        row = {name: record[column] for name, column in layout.columns.items()}
        row["local_id"] = record[layout.id_column]
        row["person_id"] = truth[(organisation, row["local_id"])]
        rows.append(row)
    return rows


def parse_dob(row: dict[str, str], organisation: str) -> date:
    return datetime.strptime(row["date_of_birth"], LAYOUTS[organisation].date_format).date()


def tidy_postcode(postcode: str) -> str:
    compact = postcode.replace(" ", "").upper()
    return f"{compact[:-3]} {compact[-3:]}"


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: a transposition of neighbours counts as one edit."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_edit_distance_helper_counts_a_swap_as_one() -> None:
    assert edit_distance("Jones", "Jnoes") == 1
    assert edit_distance("Jones", "Jons") == 1
    assert edit_distance("Jones", "Jones") == 0


@pytest.fixture(scope="module")
def default_data(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    return generate(tmp_path_factory.mktemp("default"), 2000, seed=7)


@pytest.fixture(scope="module")
def clean_data(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    return generate(tmp_path_factory.mktemp("clean"), 2000, seed=11, rates=ErrorRates.none())


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", 300, seed=42)
    second = generate(tmp_path / "b", 300, seed=42)
    third = generate(tmp_path / "c", 300, seed=43)
    for organisation in first.csv_paths:
        assert (
            first.csv_paths[organisation].read_bytes()
            == second.csv_paths[organisation].read_bytes()
        )
        assert (
            first.csv_paths[organisation].read_bytes() != third.csv_paths[organisation].read_bytes()
        )
    assert first.truth_path.read_bytes() == second.truth_path.read_bytes()


# --------------------------------------------------------------------------- file layout


def test_each_organisation_gets_its_own_layout_and_exact_row_count(
    default_data: GeneratedData,
) -> None:
    assert set(default_data.csv_paths) == {"health-visiting", "flying-start", "childcare"}
    for layout in default_data.layouts:
        with default_data.csv_paths[layout.organisation].open(encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        assert header == [layout.id_column, *layout.columns.values()]
        assert default_data.records[layout.organisation] == 2000
        assert len(read_rows(default_data, layout.organisation)) == 2000
    assert "nhs_number" not in LAYOUTS["childcare"].columns


def test_local_ids_are_unique_and_in_house_style(default_data: GeneratedData) -> None:
    styles = {
        "health-visiting": r"HV\d{6}",
        "flying-start": r"FS-2026-\d{5}",
        "childcare": r"CC\d+",
    }
    truth = default_data.truth()
    assert len(truth) == 3 * 2000
    for organisation, style in styles.items():
        ids = [row["local_id"] for row in read_rows(default_data, organisation)]
        assert len(set(ids)) == len(ids)
        assert all(re.fullmatch(style, local_id) for local_id in ids)
        # Random order: ids are not written sorted.
        assert ids != sorted(ids)


def test_dates_parse_with_each_layouts_format_and_fall_in_the_window(
    default_data: GeneratedData,
) -> None:
    # Births fall in the five years to REFERENCE_DATE; a digit error may move the year by one.
    earliest = date(REFERENCE_DATE.year - 6, 1, 1)
    latest = date(REFERENCE_DATE.year + 1, 12, 31)
    births = [
        parse_dob(row, organisation)
        for organisation in LAYOUTS
        for row in read_rows(default_data, organisation)
    ]
    assert all(earliest <= born <= latest for born in births)
    in_window = [born for born in births if born > REFERENCE_DATE.replace(year=2021)]
    assert len(in_window) / len(births) > 0.98
    sample = read_rows(default_data, "childcare")[0]["date_of_birth"]
    assert re.fullmatch(r"\d{2}-[A-Z][a-z]{2}-\d{4}", sample)


def test_sex_is_written_in_each_systems_codes(default_data: GeneratedData) -> None:
    for organisation, layout in LAYOUTS.items():
        seen = Counter(row["sex"] for row in read_rows(default_data, organisation))
        assert set(seen) <= {*layout.sex_codes.values(), ""}
        assert seen[layout.sex_codes["F"]] > 800 and seen[layout.sex_codes["M"]] > 800
    assert set(LAYOUTS["childcare"].sex_codes.values()) == {"1", "2"}


def test_nhs_numbers_are_test_range_and_valid_with_expected_coverage(
    default_data: GeneratedData,
) -> None:
    missing = ErrorRates().missing_nhs_number
    spaced = 0
    for organisation in ("health-visiting", "flying-start"):
        rows = read_rows(default_data, organisation)
        present = [row["nhs_number"] for row in rows if row["nhs_number"]]
        for number in present:
            digits = number.replace(" ", "")
            assert digits.startswith("999")
            assert nhs.is_valid(digits), number
        spaced += sum(" " in number for number in present)
        expected = LAYOUTS[organisation].nhs_number_coverage * (1 - missing)
        assert len(present) / len(rows) == pytest.approx(expected, abs=0.05)
    assert spaced > 0


def test_one_person_keeps_one_nhs_number_everywhere(default_data: GeneratedData) -> None:
    numbers: dict[str, set[str]] = defaultdict(set)
    owners: dict[str, set[str]] = defaultdict(set)
    for organisation in ("health-visiting", "flying-start"):
        for row in read_rows(default_data, organisation):
            if row["nhs_number"]:
                digits = row["nhs_number"].replace(" ", "")
                numbers[row["person_id"]].add(digits)
                owners[digits].add(row["person_id"])
    assert all(len(found) == 1 for found in numbers.values())
    assert all(len(people) == 1 for people in owners.values())


def test_postcodes_are_validly_shaped_and_childcare_ones_are_sometimes_untidy(
    default_data: GeneratedData,
) -> None:
    shapes = set()
    for organisation in ("health-visiting", "flying-start"):
        for row in read_rows(default_data, organisation):
            if row["postcode"]:
                assert POSTCODE.fullmatch(row["postcode"]), row["postcode"]
                outward = row["postcode"].split()[0]
                shapes.add(re.sub(r"[A-Z]", "A", re.sub(r"\d", "9", outward)))
    assert shapes == {"A9", "A99", "AA9", "AA99", "A9A", "AA9A"}

    childcare = [row["postcode"] for row in read_rows(default_data, "childcare") if row["postcode"]]
    assert all(POSTCODE.fullmatch(tidy_postcode(postcode)) for postcode in childcare)
    assert any(" " not in postcode for postcode in childcare)
    assert any(postcode != postcode.upper() for postcode in childcare)


# --------------------------------------------------------------------------- population


def test_overlap_is_about_as_asked(default_data: GeneratedData) -> None:
    holders: dict[str, set[str]] = defaultdict(set)
    for (organisation, _local_id), person in default_data.truth().items():
        holders[person].add(organisation)
    for organisation in LAYOUTS:
        people = {row["person_id"] for row in read_rows(default_data, organisation)}
        shared = sum(len(holders[person]) > 1 for person in people)
        assert shared / len(people) == pytest.approx(0.6, abs=0.05)
    # Some children are known to all three organisations, some to just two.
    assert {len(found) for found in holders.values()} == {1, 2, 3}


def test_overlap_zero_means_nobody_is_shared(tmp_path: Path) -> None:
    data = generate(tmp_path, 300, seed=3, overlap=0.0)
    holders: dict[str, set[str]] = defaultdict(set)
    for (organisation, _local_id), person in data.truth().items():
        holders[person].add(organisation)
    assert all(len(found) == 1 for found in holders.values())


def test_duplicate_referrals_appear_at_about_the_asked_rate(default_data: GeneratedData) -> None:
    for organisation in LAYOUTS:
        rows = read_rows(default_data, organisation)
        copies = Counter(row["person_id"] for row in rows)
        duplicates = sum(count - 1 for count in copies.values())
        assert duplicates / len(rows) == pytest.approx(0.02, abs=0.01)


def test_twins_share_family_name_birthday_and_postcode(clean_data: GeneratedData) -> None:
    rows = read_rows(clean_data, "health-visiting")
    households: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for row in rows:
        households[(row["family_name"], row["date_of_birth"], row["postcode"])].add(
            row["person_id"]
        )
    twins = [people for people in households.values() if len(people) == 2]
    assert len(twins) >= 3
    given = {row["person_id"]: row["given_name"] for row in rows}
    for pair in twins:
        first, second = sorted(pair)
        assert given[first] != given[second]


def test_siblings_share_family_name_and_postcode_but_not_birthday(
    clean_data: GeneratedData,
) -> None:
    rows = read_rows(clean_data, "flying-start")
    households: dict[tuple[str, str], set[date]] = defaultdict(set)
    for row in rows:
        households[(row["family_name"], row["postcode"])].add(parse_dob(row, "flying-start"))
    assert sum(len(birthdays) > 1 for birthdays in households.values()) > 50


def test_without_errors_copies_of_a_person_agree_across_organisations(
    clean_data: GeneratedData,
) -> None:
    health = {row["person_id"]: row for row in read_rows(clean_data, "health-visiting")}
    childcare = read_rows(clean_data, "childcare")
    compared = 0
    for row in childcare:
        other = health.get(row["person_id"])
        if other is None:
            continue
        compared += 1
        assert row["given_name"] == other["given_name"]
        assert row["family_name"] == other["family_name"]
        assert parse_dob(row, "childcare") == parse_dob(other, "health-visiting")
        assert tidy_postcode(row["postcode"]) == other["postcode"]
        assert {"1": "M", "2": "F"}[row["sex"]] == other["sex"]
    assert compared > 300


def test_error_rates_change_values_but_not_who_is_held_where(
    tmp_path: Path, clean_data: GeneratedData
) -> None:
    rates = ErrorRates(**{**vars(ErrorRates.none()), "typo": 1.0})
    typos = generate(tmp_path, 2000, seed=11, rates=rates)
    assert typos.truth_path.read_bytes() == clean_data.truth_path.read_bytes()

    for organisation in LAYOUTS:
        true_rows = {row["local_id"]: row for row in read_rows(clean_data, organisation)}
        for row in read_rows(typos, organisation):
            truth = true_rows[row["local_id"]]
            given = edit_distance(row["given_name"], truth["given_name"])
            family = edit_distance(row["family_name"], truth["family_name"])
            # Exactly one keyboard slip, in exactly one of the two names.
            assert sorted((given, family)) == [0, 1], (row, truth)
            assert row["date_of_birth"] == truth["date_of_birth"]


def test_date_errors_are_a_day_month_swap_or_one_digit_off_by_one(
    tmp_path: Path, clean_data: GeneratedData
) -> None:
    swapped = generate(
        tmp_path / "swap",
        2000,
        seed=11,
        rates=ErrorRates(**{**vars(ErrorRates.none()), "dob_day_month_swap": 1.0}),
    )
    digits = generate(
        tmp_path / "digit",
        2000,
        seed=11,
        rates=ErrorRates(**{**vars(ErrorRates.none()), "dob_digit_error": 1.0}),
    )
    organisation = "flying-start"  # ISO dates: digits line up position by position
    truth = {
        row["local_id"]: parse_dob(row, organisation) for row in read_rows(clean_data, organisation)
    }
    swaps = 0
    for row in read_rows(swapped, organisation):
        born, true = parse_dob(row, organisation), truth[row["local_id"]]
        if true.day <= 12 and true.day != true.month:
            assert born == date(true.year, true.day, true.month)
            swaps += 1
        else:
            assert born == true
    assert swaps > 500
    for row in read_rows(digits, organisation):
        written, expected = row["date_of_birth"], truth[row["local_id"]].isoformat()
        changed = [(a, b) for a, b in zip(written, expected, strict=True) if a != b]
        assert len(changed) == 1, (written, expected)
        assert abs(int(changed[0][0]) - int(changed[0][1])) == 1


def test_nicknames_come_from_the_short_form_table(tmp_path: Path) -> None:
    rates = ErrorRates(**{**vars(ErrorRates.none()), "nickname": 1.0})
    data = generate(tmp_path, 1000, seed=5, rates=rates)
    given = {row["given_name"] for row in read_rows(data, "flying-start")}
    assert {"Will", "Bill", "Billy", "Liam", "Tom", "Tommy"} & given
    assert "William" not in given and "Thomas" not in given
    assert "Rhys" in given  # no short form, so it stays


def test_layouts_can_be_replaced(tmp_path: Path) -> None:
    solo = OrganisationLayout(
        organisation="gp",
        display_name="GP practice",
        id_column="id",
        columns={"given_name": "first", "date_of_birth": "born"},
        date_format="%Y%m%d",
        sex_codes={"F": "F", "M": "M"},
        nhs_number_coverage=0.0,
    )
    data = generate(tmp_path, 50, seed=1, layouts=[solo])
    with data.csv_paths["gp"].open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "first", "born"]
    assert len(rows) == 51
    assert data.records == {"gp": 50}


def test_rejects_impossible_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, 10, overlap=1.5)
    with pytest.raises(ValueError):
        ErrorRates(typo=-0.1)
    with pytest.raises(ValueError):
        generate(tmp_path, 10, layouts=[DEFAULT_LAYOUTS[0], DEFAULT_LAYOUTS[0]])


def test_three_organisations_of_five_thousand_records(tmp_path: Path) -> None:
    data = generate(tmp_path, 5000, seed=0)
    assert sum(data.records.values()) == 15000


# --------------------------------------------------------------------------- pairwise quality

TRUTH = {
    ("hv", "1"): "p1",
    ("fs", "1"): "p1",
    ("cc", "1"): "p1",
    ("hv", "2"): "p2",
    ("fs", "2"): "p2",
    ("hv", "3"): "p3",
    ("hv", "4"): "p3",  # duplicate referral within health visiting
    ("cc", "2"): "p4",
}
# True cross-organisation pairs: p1 has 3, p2 has 1. True within pairs: p3 has 1.


def test_perfect_linkage_scores_one() -> None:
    quality = pairwise_quality(dict(TRUTH), TRUTH)
    assert (quality.cross.true_pairs, quality.cross.predicted_pairs) == (4, 4)
    assert quality.cross.correct_pairs == 4
    assert (quality.cross.precision, quality.cross.recall, quality.cross.f1) == (1.0, 1.0, 1.0)
    assert (quality.within.true_pairs, quality.within.correct_pairs) == (1, 1)
    assert quality.within.f1 == 1.0


def test_one_wrong_merge_costs_precision_only() -> None:
    predicted = {**TRUTH, ("cc", "2"): "p2"}  # p4 wrongly joined to p2
    quality = pairwise_quality(predicted, TRUTH).cross
    assert (quality.true_pairs, quality.predicted_pairs, quality.correct_pairs) == (4, 6, 4)
    assert quality.precision == pytest.approx(4 / 6)
    assert quality.recall == 1.0
    assert quality.f1 == pytest.approx(0.8)


def test_one_missed_link_costs_recall_only() -> None:
    predicted = {**TRUTH, ("fs", "2"): "alone"}
    quality = pairwise_quality(predicted, TRUTH).cross
    assert (quality.true_pairs, quality.predicted_pairs, quality.correct_pairs) == (4, 3, 3)
    assert quality.precision == 1.0
    assert quality.recall == pytest.approx(3 / 4)
    assert quality.f1 == pytest.approx(6 / 7)


def test_missed_duplicate_shows_in_within_and_unlisted_records_are_singletons() -> None:
    predicted = {record: key for record, key in TRUTH.items() if record != ("hv", "4")}
    quality = pairwise_quality(predicted, TRUTH)
    assert quality.cross.f1 == 1.0
    within = quality.within
    assert (within.true_pairs, within.predicted_pairs, within.correct_pairs) == (1, 0, 0)
    assert (within.precision, within.recall, within.f1) == (1.0, 0.0, 0.0)


def test_keys_need_not_match_person_ids() -> None:
    predicted = {record: f"cluster-{person}" for record, person in TRUTH.items()}
    assert pairwise_quality(predicted, TRUTH).cross.f1 == 1.0


def test_empty_inputs_count_as_no_mistakes() -> None:
    quality = pairwise_quality({}, {})
    assert (quality.cross.precision, quality.cross.recall, quality.cross.true_pairs) == (
        1.0,
        1.0,
        0,
    )


def test_scores_a_large_truth_by_grouping() -> None:
    truth = {("org-a" if i % 2 else "org-b", str(i)): f"p{i // 4}" for i in range(100_000)}
    predicted = {
        record: person if int(record[1]) % 7 else "junk" for record, person in truth.items()
    }
    quality = pairwise_quality(predicted, truth)
    assert 0.0 < quality.cross.precision < 1.0
    assert 0.0 < quality.cross.recall < 1.0


def test_messy_values_normalise_to_the_clean_ones_or_to_missing(tmp_path):
    """The messy option only changes how values are written, never what they say."""
    import dataclasses

    from node import normalise

    layout = dataclasses.replace(DEFAULT_LAYOUTS[0], nhs_number_coverage=1.0)
    clean = generate(tmp_path / "clean", 400, seed=5, rates=ErrorRates.none(), layouts=[layout])
    messy = generate(
        tmp_path / "messy",
        400,
        seed=5,
        rates=dataclasses.replace(ErrorRates.none(), messy=0.5),
        layouts=[layout],
    )
    rules = {
        "Forename": normalise.given_name,
        "Surname": normalise.family_name,
        "DOB": normalise.date_of_birth,
        "Sex": normalise.sex,
        "Postcode": normalise.postcode,
        "NHS Number": normalise.nhs_number,
    }

    def rows(data):
        path = data.csv_paths[layout.organisation]
        with path.open(newline="", encoding="utf-8") as handle:
            return {row["Patient ID"]: row for row in csv.DictReader(handle)}

    before, after = rows(clean), rows(messy)
    assert before.keys() == after.keys()
    changed = placeholders = 0
    for local_id, row in after.items():
        for column, rule in rules.items():
            raw_changed = row[column] != before[local_id][column]
            changed += raw_changed
            got, want = rule(row[column]), rule(before[local_id][column])
            if column == "Forename" and got is None:
                placeholders += 1
                continue
            assert got == want, (column, local_id)
    assert changed > 400  # about half of every field was rewritten
    assert 0 < placeholders < 100
