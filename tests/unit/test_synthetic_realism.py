"""The generator's harder-than-tidy features: spelling variants, nicknames by organisation,
"Baby" placeholders, Polish and double-barrelled family names, shared postcodes and twins."""

from __future__ import annotations

import csv
import dataclasses
import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hublink.nhs import is_valid
from hublink.synthetic import (
    DEFAULT_LAYOUTS,
    ErrorRates,
    GeneratedData,
    PopulationSettings,
    generate,
)
from hublink.synthetic.names import (
    BOYS,
    GIRLS,
    NICKNAMES,
    SPELLING_VARIANTS,
    SURNAMES,
    feminine_form,
    form_for,
)
from hublink.synthetic.population import REFERENCE_DATE, Child, Population
from node import normalise

LAYOUTS = {layout.organisation: layout for layout in DEFAULT_LAYOUTS}
NONE = ErrorRates.none()


def only(**rates: float) -> ErrorRates:
    """No errors but the ones named."""
    return dataclasses.replace(NONE, **rates)


def rows_by_id(data: GeneratedData, organisation: str) -> dict[str, dict[str, str]]:
    """Local id -> the row keyed by linkage field, plus the true person_id."""
    layout = LAYOUTS[organisation]
    truth = data.truth()
    with data.csv_paths[organisation].open(newline="", encoding="utf-8") as handle:
        out = {}
        for record in csv.DictReader(handle):
            local_id = record[layout.id_column]
            row = {name: record[column] for name, column in layout.columns.items()}
            row["person_id"] = truth[(organisation, local_id)]
            out[local_id] = row
        return out


def families(seed: int, count: int, **options: float) -> list[list[Child]]:
    population = Population(random.Random(seed), 0.02, PopulationSettings(**options))
    supply = population.families()
    return [next(supply) for _ in range(count)]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    return generate(tmp_path_factory.mktemp("clean"), 1500, seed=13, rates=NONE)


# --------------------------------------------------------------------------- word lists


def test_spelling_variants_are_other_spellings_of_names_the_generator_uses() -> None:
    names = set(GIRLS) | set(BOYS)
    assert {"Muhammad", "Siân", "Zoë", "Alexander", "Catherine"} <= set(SPELLING_VARIANTS)
    assert "Mohammed" in SPELLING_VARIANTS["Muhammad"]
    assert "Aleksander" in SPELLING_VARIANTS["Alexander"]
    for name, others in SPELLING_VARIANTS.items():
        assert name in names, name
        assert others and name not in others


@given(st.sampled_from(SURNAMES), st.sampled_from(("F", "M")))
def test_a_girl_bears_the_feminine_form_of_a_polish_name_and_a_boy_the_masculine(
    surname: str, sex: str
) -> None:
    feminine = feminine_form(surname)
    borne = form_for(surname, sex)
    if feminine is None:
        assert borne == surname
    elif sex == "F":
        assert borne == feminine and borne[-3:] in ("ska", "cka")
        assert borne[:-1] == surname[:-1]  # only the ending changes
    else:
        assert borne == surname
    assert feminine_form("Kowalski") == "Kowalska"
    assert feminine_form("Evans-Górecki") == "Evans-Górecka"


# --------------------------------------------------------------------------- population


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_families_share_a_postcode_and_the_mothers_name_and_girls_bear_feminine_forms(
    seed: int,
) -> None:
    for family in families(seed, 40):
        assert len({child.postcode for child in family}) == 1
        assert len({child.mother_family_name for child in family}) == 1
        assert len({child.given_name for child in family}) == len(family)
        for child in family:
            assert child.nhs_number.startswith("999") and is_valid(child.nhs_number)
            if child.sex == "F":
                assert not child.family_name.endswith(("ski", "cki"))
            if child.other_family_form:
                forms = {child.family_name, child.other_family_form}
                masculine = next(form for form in forms if form.endswith("i"))
                assert forms == {masculine, feminine_form(masculine)}
            # The mother bears the feminine form of her own name too.
            assert not child.mother_family_name.endswith(("ski", "cki"))


def test_twins_share_everything_but_given_name_and_are_usually_one_sex() -> None:
    population = Population(random.Random(5), 1.0, PopulationSettings())
    supply = population.families()
    pairs: list[tuple[Child, Child]] = []
    while len(pairs) < 600:
        by_birthday: dict[object, list[Child]] = defaultdict(list)
        for child in next(supply):
            by_birthday[child.date_of_birth].append(child)
        pairs += [(a, b) for a, b in by_birthday.values()]
    same_sex = similar = 0
    for a, b in pairs:
        assert a.postcode == b.postcode and a.mother_family_name == b.mother_family_name
        assert a.given_name != b.given_name and a.nhs_number != b.nhs_number
        # Boy-girl twins of a Polish family bear the two forms of its name.
        assert b.family_name in (a.family_name, a.other_family_form)
        same_sex += a.sex == b.sex
        similar += a.given_name[0] == b.given_name[0]
    assert same_sex / len(pairs) == pytest.approx(0.65, abs=0.06)
    # 30% are chosen alike, and a few more share a first letter by chance.
    assert 0.28 < similar / len(pairs) < 0.45


def test_without_similar_twin_names_twins_share_a_first_letter_only_by_chance() -> None:
    population = Population(
        random.Random(5), 1.0, PopulationSettings(similar_twin_names=0.0, same_sex_twins=1.0)
    )
    supply = population.families()
    alike = total = 0
    while total < 400:
        by_birthday: dict[object, list[Child]] = defaultdict(list)
        for child in next(supply):
            by_birthday[child.date_of_birth].append(child)
        for a, b in by_birthday.values():
            assert a.sex == b.sex
            alike += a.given_name[0] == b.given_name[0]
            total += 1
    assert alike / total < 0.2


def test_unrelated_families_share_postcodes_at_about_the_asked_rate() -> None:
    def postcode_counts(share: float) -> Counter[str]:
        return Counter(family[0].postcode for family in families(3, 2000, shared_postcode=share))

    shared = postcode_counts(0.3)
    # Each family after the first joins an existing postcode with chance 0.3.
    assert 2000 - len(shared) == pytest.approx(0.3 * 2000, rel=0.15)
    assert max(shared.values()) >= 5  # a block of flats or a refuge
    alone = postcode_counts(0.0)
    assert 2000 - len(alone) < 30  # only chance collisions of random postcodes


def test_double_barrelled_names_join_the_children_s_and_the_mother_s_names() -> None:
    found = families(9, 3000, double_barrelled=0.2, mother_other_surname=0.0)
    hyphenated = [family for family in found if "-" in family[0].family_name]
    # 20% of families, plus the double-barrelled names already in the list.
    assert 0.2 <= len(hyphenated) / len(found) < 0.3
    joined = [
        family
        for family in hyphenated
        if form_for(family[0].family_name.split("-")[-1], "F") == family[0].mother_family_name
    ]
    assert len(joined) / len(found) == pytest.approx(0.2, abs=0.03)


def test_population_settings_refuse_impossible_shares() -> None:
    with pytest.raises(ValueError, match="shared_postcode"):
        PopulationSettings(shared_postcode=1.5)
    with pytest.raises(ValueError, match="nickname_factor"):
        dataclasses.replace(DEFAULT_LAYOUTS[0], nickname_factor=-1.0)


def test_population_settings_keep_the_same_seed_reproducible(tmp_path: Path) -> None:
    options = PopulationSettings(shared_postcode=0.5, double_barrelled=0.2)
    first = generate(tmp_path / "a", 200, seed=4, population=options)
    second = generate(tmp_path / "b", 200, seed=4, population=options)
    other = generate(tmp_path / "c", 200, seed=4)
    for organisation, path in first.csv_paths.items():
        assert path.read_bytes() == second.csv_paths[organisation].read_bytes()
        assert path.read_bytes() != other.csv_paths[organisation].read_bytes()


# --------------------------------------------------------------------------- copies


def test_spelling_variants_replace_a_name_with_another_spelling_of_it(
    tmp_path: Path, clean: GeneratedData
) -> None:
    varied = generate(tmp_path, 1500, seed=13, rates=only(spelling_variant=1.0))
    before = rows_by_id(clean, "flying-start")
    changed = 0
    for local_id, row in rows_by_id(varied, "flying-start").items():
        true = before[local_id]["given_name"]
        if true in SPELLING_VARIANTS:
            assert row["given_name"] in SPELLING_VARIANTS[true]
            changed += 1
        else:
            assert row["given_name"] == true
    assert changed > 300


def test_childcare_uses_short_forms_more_than_health_visiting(
    tmp_path: Path, clean: GeneratedData
) -> None:
    nicknamed = generate(tmp_path, 1500, seed=13, rates=only(nickname=0.2))
    shares = {}
    for organisation in LAYOUTS:
        before, after = rows_by_id(clean, organisation), rows_by_id(nicknamed, organisation)
        eligible = [key for key, row in before.items() if row["given_name"] in NICKNAMES]
        short = sum(after[key]["given_name"] != before[key]["given_name"] for key in eligible)
        shares[organisation] = short / len(eligible)
    assert shares["health-visiting"] == pytest.approx(0.2 * 0.25, abs=0.03)
    assert shares["flying-start"] == pytest.approx(0.2, abs=0.05)
    assert shares["childcare"] == pytest.approx(0.2 * 2.5, abs=0.06)


def test_health_visiting_holds_some_newborns_as_baby_with_the_mothers_surname(
    tmp_path: Path, clean: GeneratedData
) -> None:
    babies = generate(tmp_path, 1500, seed=13, rates=only(baby_placeholder=1.0))
    layout = LAYOUTS["health-visiting"]
    before, after = rows_by_id(clean, layout.organisation), rows_by_id(babies, layout.organisation)
    placeholders = other_surname = 0
    for key, row in after.items():
        born = normalise.date_of_birth(row["date_of_birth"])
        assert born is not None
        if (REFERENCE_DATE - born).days < 365:
            assert row["given_name"] in ("Baby", "BABY")
            assert normalise.given_name(row["given_name"]) is None  # a placeholder is missing
            placeholders += 1
            other_surname += row["family_name"] != before[key]["family_name"]
        else:
            assert row["given_name"] == before[key]["given_name"]
            assert row["family_name"] == before[key]["family_name"]
    assert placeholders > 150
    # About 40% of mothers have another family name than their children.
    assert 0.25 < other_surname / placeholders < 0.55
    # Organisations that do not register newborns never hold a placeholder.
    for organisation in ("flying-start", "childcare"):
        clean_rows = rows_by_id(clean, organisation)
        for key, row in rows_by_id(babies, organisation).items():
            assert row["given_name"] == clean_rows[key]["given_name"]


def test_polish_family_names_are_sometimes_written_in_the_other_parents_form(
    tmp_path: Path, clean: GeneratedData
) -> None:
    swapped = generate(tmp_path, 1500, seed=13, rates=only(surname_other_form=1.0))
    girls_ska = 0
    for organisation in LAYOUTS:
        before, after = rows_by_id(clean, organisation), rows_by_id(swapped, organisation)
        for key, row in before.items():
            name = row["family_name"]
            if name.endswith(("ska", "cka")):
                girls_ska += 1
                assert after[key]["family_name"] == name[:-1] + "i"
            elif name.endswith(("ski", "cki")):
                assert after[key]["family_name"] == name[:-1] + "a"
            else:
                assert after[key]["family_name"] == name
    assert girls_ska > 10


def test_a_double_barrelled_name_sometimes_loses_a_part(
    tmp_path: Path, clean: GeneratedData
) -> None:
    dropped = generate(tmp_path, 1500, seed=13, rates=only(hyphen_part_dropped=1.0))
    hyphenated = 0
    for organisation in LAYOUTS:
        before, after = rows_by_id(clean, organisation), rows_by_id(dropped, organisation)
        for key, row in before.items():
            if "-" in row["family_name"]:
                hyphenated += 1
                assert after[key]["family_name"] in row["family_name"].split("-")
            else:
                assert after[key]["family_name"] == row["family_name"]
    assert hyphenated > 200
