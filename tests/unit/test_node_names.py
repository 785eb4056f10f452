"""node.names: a full-name column split as a separate given/family export would hold it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hublink.synthetic import names as synthetic_names
from node.names import split_full_name
from node.normalise import given_name
from node.source import mapping_warnings

FIELDS = ("given_name", "family_name", "date_of_birth")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Siân Jones", ("Siân", "Jones")),
        ("Amelia Rose Pryce", ("Amelia Rose", "Pryce")),
        ("JONES, Siân Mair", ("Siân Mair", "JONES")),
        ("Jones,Siân", ("Siân", "Jones")),
        ("Siân JONES", ("Siân", "JONES")),
        ("JONES Siân Mair", ("Siân Mair", "JONES")),
        ("Rhys ap Gwilym", ("Rhys", "ap Gwilym")),
        ("Anna van der Berg", ("Anna", "van der Berg")),
        ("Lucía De La Cruz", ("Lucía", "De La Cruz")),
        ("Ewan Mc Donald", ("Ewan", "Mc Donald")),
        ("Ewan McDonald", ("Ewan", "McDonald")),
        ("Niamh O'Neill", ("Niamh", "O'Neill")),
        ("Matilda Llwyd-ap Gwilym", ("Matilda", "Llwyd-ap Gwilym")),
        ("Lily-Mae  Smith-Jones ", ("Lily-Mae", "Smith-Jones")),
        ("Mr John Smith", ("Mr John", "Smith")),  # the normaliser drops the title
        ("Cai", ("Cai", "")),
        ("SMITH", ("", "SMITH")),
        ("  ", ("", "")),
    ],
)
def test_full_names_split_into_given_and_family(raw: str, expected: tuple[str, str]) -> None:
    assert split_full_name(raw) == expected


# The generator's own name lists, particles ("ap Rhys", "de Souza") included.
names = st.sampled_from(
    [n for n in (*synthetic_names.GIRLS, *synthetic_names.BOYS) if " " not in n]
)
families = st.sampled_from(synthetic_names.SURNAMES)


@given(names, st.lists(names, max_size=2), families)
def test_each_house_style_gives_back_the_separate_columns(
    first: str, middle: list[str], family: str
) -> None:
    forenames = " ".join([first, *middle])
    for written in (
        f"{forenames} {family}",
        f"{family.upper()}, {forenames}",
        f"{forenames} {family.upper()}",
    ):
        split = split_full_name(written)
        assert (given_name(split[0]), given_name(split[1])) == (
            given_name(forenames),
            given_name(family),
        ), written


def test_one_name_mapped_without_the_other_warns_that_linkage_will_fall() -> None:
    (warning,) = mapping_warnings({"given_name": "Name"}, FIELDS)
    assert "only given_name is mapped (column 'Name')" in warning
    assert "linkage quality will fall" in warning and "full_name" in warning
    assert mapping_warnings({"given_name": "A", "family_name": "B"}, FIELDS) == []
    assert mapping_warnings({"full_name": "Name"}, FIELDS) == []
