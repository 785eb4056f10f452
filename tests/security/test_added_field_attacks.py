"""Frequency and graph-matching attacks on the filters of fields a project adds.

A project may add an address line, a town and a local identifier to its schema;
with field_scoring each gets two filters salted per record (``field@birth`` by
the sorted date of birth, ``field@family`` by the first part of the family
name), like the shipped ones. The attacker holds a public list per field: towns
by population (approximate, as for names), and, strongest case, the
population's own address lines and local ids with blurred frequencies. The
measure is the share of all records whose value the attacker names; the
ceiling (issue 20) is 1%. Each attack is first shown to work on a weak
(unsalted, unbalanced, unflipped) filter of the same field, where it can.

Measured at 3,000 records (seed 0): town, weak: frequency 5.6%, graph matching
100%; shipped: at most 0.53% and 0.33%. Address line, weak: graph 4.4%;
shipped 0.03%. Local ids are unique, so neither attack has frequencies to
align even unsalted (0.0% and 0.17%): those two are expected failures.
"""

from __future__ import annotations

import pytest
from privacy_harness import (
    ADDED_FIELDS,
    People,
    Sent,
    added_fields_spec,
    encode,
    weak_added_spec,
    with_places,
    zipf_people,
)

from hublink.privacy.bits import reidentified
from hublink.privacy.frequency import cluster_frequency_attack
from hublink.privacy.graph import filter_attack

pytestmark = pytest.mark.slow

CEILING = 0.01
RECORDS = 3000


@pytest.fixture(scope="module")
def people() -> People:
    return with_places(zipf_people(RECORDS, seed=0))


@pytest.fixture(scope="module")
def shipped(people: People) -> Sent:
    return encode(added_fields_spec(), people)


@pytest.fixture(scope="module")
def weak(people: People) -> Sent:
    return encode(weak_added_spec(), people)


def _layouts(name: str) -> list[str]:
    return [g.name for g in added_fields_spec().field_groups if g.comparison == name]


def test_every_added_field_is_sent_as_two_salted_filters() -> None:
    for name in ADDED_FIELDS:
        groups = [g for g in added_fields_spec().field_groups if g.comparison == name]
        assert len(groups) == 2 and all(g.salt for g in groups)
        assert len({g.salt for g in groups}) == 2


def test_frequency_attack_names_towns_from_a_weak_filter(people: People, weak: Sent) -> None:
    public = people.public_added["town"].counts()
    rate = reidentified(cluster_frequency_attack(weak.arrays["town"], public), people.added["town"])
    print(f"\ncluster frequency, weak town filter: {rate:.2%}")
    assert rate > 0.05


def test_graph_matching_names_towns_and_address_lines_from_weak_filters(
    people: People, weak: Sent
) -> None:
    for name, floor in (("town", 0.5), ("address_line", 0.03)):
        guesses = filter_attack(weak.arrays[name], people.public_added[name])
        rate = reidentified(guesses, people.added[name])
        print(f"\ngraph matching, weak {name} filter: {rate:.2%}")
        assert rate > floor


@pytest.mark.xfail(
    strict=True,
    reason="address lines are near-unique (a number and a street): cluster frequency names "
    "0.13% even of an unsalted filter; local ids are unique: 0.0%",
)
def test_frequency_attack_on_weak_address_line_and_local_id_filters(
    people: People, weak: Sent
) -> None:
    for name in ("address_line", "local_id"):
        public = people.public_added[name].counts()
        rate = reidentified(cluster_frequency_attack(weak.arrays[name], public), people.added[name])
        print(f"\ncluster frequency, weak {name} filter: {rate:.2%}")
        assert rate > CEILING


@pytest.mark.xfail(
    strict=True,
    reason="local ids are unique: graph matching has no frequencies to align and names 0.17% "
    "even of an unsalted filter",
)
def test_graph_matching_on_a_weak_local_id_filter(people: People, weak: Sent) -> None:
    rate = reidentified(
        filter_attack(weak.arrays["local_id"], people.public_added["local_id"]),
        people.added["local_id"],
    )
    print(f"\ngraph matching, weak local_id filter: {rate:.2%}")
    assert rate > CEILING


@pytest.mark.parametrize("name", list(ADDED_FIELDS))
def test_frequency_attack_on_the_shipped_added_field_filters(
    people: People, shipped: Sent, name: str
) -> None:
    public = people.public_added[name].counts()
    for layout in _layouts(name):
        rate = reidentified(
            cluster_frequency_attack(shipped.arrays[layout], public), people.added[name]
        )
        print(f"\ncluster frequency, shipped {layout!r}: {rate:.2%}")
        assert rate <= CEILING


@pytest.mark.parametrize("name", list(ADDED_FIELDS))
def test_graph_matching_on_the_shipped_added_field_filters(
    people: People, shipped: Sent, name: str
) -> None:
    for layout in _layouts(name):
        rate = reidentified(
            filter_attack(shipped.arrays[layout], people.public_added[name]), people.added[name]
        )
        print(f"\ngraph matching, shipped {layout!r}: {rate:.2%}")
        assert rate <= CEILING
