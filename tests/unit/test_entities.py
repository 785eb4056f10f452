"""coordinator.core.entities: a run's groups as arrays, and entity ids stable across runs.

``assign`` works on arrays for runs of millions of records; it must give
exactly what choosing one entity at a time gives. ``one_at_a_time`` below is
that simple rule written out, and the property tests hold ``assign`` to it on
regroupings full of contested ids.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pytest

from coordinator.core.entities import (
    ID_DTYPE,
    Grouping,
    Previous,
    assign,
    ids_in,
    random_ids,
    unique_ids,
)


def counter_ids(prefix: str = "entity") -> Callable[[int], np.ndarray]:
    numbers = itertools.count(1)
    return lambda n: np.array([f"{prefix}-{next(numbers)}" for _ in range(n)], dtype=ID_DTYPE)


def assign_ids(
    groups: Iterable[Iterable[int]],
    records: Iterable[int],
    previous: Mapping[int, str],
    *,
    new_ids: Callable[[int], np.ndarray] | None = None,
    new_id: Callable[[], str] | None = None,
) -> dict[int, str]:
    """``assign`` on one dataset whose records are ``records``, as a record -> id dict."""
    ids = np.array(sorted(set(records)), dtype=np.int64)
    place = {int(r): i for i, r in enumerate(ids)}
    solution = [[(0, place[r]) for r in group] for group in groups]
    grouping = Grouping.from_solution(solution, [len(ids)])
    kept = Previous(
        np.array(list(previous), dtype=np.int64), np.array(list(previous.values()), dtype=ID_DTYPE)
    )
    if new_id is not None:
        issue = new_id
        new_ids = lambda n: np.array([issue() for _ in range(n)], dtype=ID_DTYPE)  # noqa: E731
    result = assign(grouping, ids, kept, new_ids=new_ids or counter_ids())
    return {int(r): result.id_of(i) for i, r in enumerate(ids)}


def one_at_a_time(
    groups: Iterable[Iterable[int]],
    records: Iterable[int],
    previous: Mapping[int, str],
    new_id: Callable[[], str],
) -> dict[int, str]:
    """The rule ``assign`` follows, one entity at a time: larger entities first (then lowest
    record id), each taking the id most of its records had (ties: the smaller id) unless an
    earlier entity took it, then its next choice, else a new id."""
    assigned: dict[int, str] = {}
    taken: set[str] = set()
    members = [sorted(g) for g in groups]
    grouped = {r for g in members for r in g}
    members.extend([r] for r in sorted(set(records) - grouped))
    for group in sorted(members, key=lambda g: (-len(g), g[0])):
        votes = Counter(previous[r] for r in group if r in previous)
        ranked = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))
        choice = next((eid for eid, _ in ranked if eid not in taken), None)
        if choice is None:
            choice = new_id()
            while choice in taken:
                choice = new_id()
        taken.add(choice)
        for record in group:
            assigned[record] = choice
    return assigned


def entities(assignment: dict[int, str]) -> list[list[int]]:
    """The assignment as sorted groups of records, to compare ignoring the ids themselves."""
    by_id: dict[str, list[int]] = {}
    for record, entity in assignment.items():
        by_id.setdefault(entity, []).append(record)
    return sorted(sorted(group) for group in by_id.values())


def test_every_record_gets_an_id_singletons_included() -> None:
    assignment = assign_ids([[1, 4], [2, 5, 6]], range(1, 8), {}, new_ids=counter_ids())

    assert set(assignment) == {1, 2, 3, 4, 5, 6, 7}
    assert entities(assignment) == [[1, 4], [2, 5, 6], [3], [7]]


def test_ids_are_stable_when_the_same_groups_are_matched_again() -> None:
    groups = [[10, 20], [11, 21, 31]]
    records = [10, 11, 12, 20, 21, 31, 32]
    first = assign_ids(groups, records, {}, new_ids=counter_ids("run1"))

    again = assign_ids(groups, records, first, new_ids=counter_ids("run2"))

    assert again == first


def test_a_record_added_to_a_known_entity_takes_its_id() -> None:
    first = assign_ids([[1, 2]], [1, 2, 3], {}, new_ids=counter_ids("run1"))

    again = assign_ids([[1, 2, 4]], [1, 2, 3, 4], first, new_ids=counter_ids("run2"))

    assert again[4] == again[1] == first[1]
    assert again[3] == first[3]


def test_a_split_group_keeps_the_old_id_on_its_larger_side() -> None:
    previous = {1: "child-a", 2: "child-a", 3: "child-a", 4: "child-b"}

    # Record 1 (the smaller side) is listed first so that order alone would favour it.
    split = assign_ids([[1], [2, 3]], [1, 2, 3, 4], previous, new_ids=counter_ids())

    assert split[2] == split[3] == "child-a"
    assert split[1] not in {"child-a", "child-b"}
    assert split[4] == "child-b"


def test_a_merged_group_takes_the_id_most_of_its_records_had() -> None:
    previous = {1: "child-b", 2: "child-a", 3: "child-a"}

    merged = assign_ids([[1, 2, 3]], [1, 2, 3], previous, new_ids=counter_ids())

    assert set(merged.values()) == {"child-a"}


def test_no_id_is_given_twice() -> None:
    previous = {1: "child-a", 2: "child-a", 3: "child-a", 4: "child-a"}
    # The id a new entity would be given already belongs to someone else's previous entity.
    issued = iter(["child-a", "child-a", "fresh-1", "fresh-2", "fresh-3"])

    assignment = assign_ids(
        [[1, 2], [3, 4]], [1, 2, 3, 4, 5], previous, new_id=lambda: next(issued)
    )

    assert entities(assignment) == [[1, 2], [3, 4], [5]]
    assert len(set(assignment.values())) == 3
    assert assignment[1] == "child-a"
    assert assignment[3] == "fresh-1"
    assert assignment[5] == "fresh-2"


@pytest.mark.parametrize("seed", range(5))
def test_ids_are_unique_per_entity_for_arbitrary_regroupings(seed: int) -> None:
    rng = random.Random(seed)
    records = list(range(40))
    previous = {r: f"old-{rng.randrange(10)}" for r in records if rng.random() < 0.7}
    shuffled = records[:]
    rng.shuffle(shuffled)
    groups: list[Sequence[int]] = []
    while shuffled:
        size = rng.randint(1, 4)
        groups.append(shuffled[:size])
        shuffled = shuffled[size:]

    assignment = assign_ids(groups, records, previous, new_ids=counter_ids())

    assert set(assignment) == set(records)
    assert len(set(assignment.values())) == len(groups)
    assert entities(assignment) == sorted(sorted(g) for g in groups)


def regrouping(rng: random.Random, records: Sequence[int], most: int) -> list[list[int]]:
    shuffled = list(records)
    rng.shuffle(shuffled)
    groups = []
    while shuffled:
        size = rng.randint(1, most)
        groups.append(shuffled[:size])
        shuffled = shuffled[size:]
    return groups


@pytest.mark.parametrize("seed", range(40))
def test_arrays_choose_exactly_as_one_entity_at_a_time_would(seed: int) -> None:
    rng = random.Random(seed)
    records = rng.sample(range(1, 10_000), rng.randint(1, 300))
    # Few old ids shared by many records: most entities want an id an earlier one took.
    old_ids = [f"old-{i:03d}" for i in range(rng.randint(1, 40))]
    previous = {r: rng.choice(old_ids) for r in records if rng.random() < 0.8}
    previous.update({r: rng.choice(old_ids) for r in rng.sample(range(10_000, 10_100), 5)})
    groups = regrouping(rng, records, rng.randint(1, 6))

    fast = assign_ids(groups, records, previous, new_ids=counter_ids("new"))
    fresh = itertools.count(1)
    slow = one_at_a_time(groups, records, previous, new_id=lambda: f"new-{next(fresh)}")

    assert fast == slow


def test_a_rerun_of_the_same_groups_keeps_every_id() -> None:
    rng = random.Random(7)
    records = list(range(5000))
    groups = regrouping(rng, records, 3)
    first = assign_ids(groups, records, {}, new_ids=random_ids)

    again = assign_ids(groups, records, first, new_ids=random_ids)

    assert again == first
    assert len(set(first.values())) == len(groups)
    assert all(len(v) == 32 and int(v, 16) >= 0 for v in first.values())


def test_status_flags_linked_and_duplicated_records() -> None:
    grouping = Grouping.from_solution([[(0, 0), (1, 0)], [(0, 1), (0, 2)], [(1, 2)]], [3, 3])

    linked, duplicated = grouping.status()

    assert grouping.groups == 2  # a one-record group is a record left alone
    assert grouping.group.tolist() == [0, 1, 1, 0, -1, -1]
    assert linked.tolist() == [True, False, False, True, False, False]
    assert duplicated.tolist() == [False, True, True, False, False, False]
    assert grouping.linked_entities() == 1


def test_rows_give_each_record_its_entity_in_load_order() -> None:
    grouping = Grouping.from_solution([[(0, 1), (1, 0)]], [2, 1])
    result = assign(grouping, np.array([10, 11, 20]), Previous.empty(), new_ids=counter_ids())

    rows = list(result.rows(np.array([10, 11, 20]), batch=2))

    assert [r for r, _ in rows] == [10, 11, 20]
    assert rows[1][1] == rows[2][1] != rows[0][1]
    assert result.count == 2 and result.inherited == 0


def test_ids_in_is_isin_for_entity_ids_even_when_prefixes_collide() -> None:
    ids = random_ids(2_000)
    # Ids sharing their first 16 characters with a wanted one, and empty ids, must not count.
    twins = np.array([bytes(i)[:16] + b"f" * 16 for i in ids[:50]], dtype=ID_DTYPE)
    values = np.concatenate([ids, twins, np.array([b""], dtype=ID_DTYPE)])
    wanted = np.concatenate([ids[::7], random_ids(5)])
    found = ids_in(values, wanted)
    assert np.array_equal(found, np.isin(values, wanted))
    assert found.sum() == len(ids[::7]) and not found[len(ids) :].any()


def test_ids_in_asks_only_the_wanted_ids_a_few_values_can_meet() -> None:
    wanted = random_ids(3_000)
    # Few values against many wanted ids: twins share a wanted id's prefix, not the id.
    twins = np.array([bytes(i)[:16] + b"0" * 16 for i in wanted[:5]], dtype=ID_DTYPE)
    values = np.concatenate([wanted[10:14], twins, random_ids(3)])
    found = ids_in(values, np.concatenate([wanted, twins[:1]]))
    assert found.tolist() == [True] * 4 + [True] + [False] * 4 + [False] * 3


def test_unique_ids_orders_ids_that_are_not_hex_as_numpy_does() -> None:
    values = np.array([b"zz", b"", b"0123456789abcdef9", b"zz", b"0123456789abcdefz"], ID_DTYPE)
    distinct, place = unique_ids(values)
    expected, expected_place = np.unique(values, return_inverse=True)
    assert np.array_equal(distinct, expected) and np.array_equal(place, expected_place)


def test_unique_ids_is_unique_for_entity_ids_in_order() -> None:
    ids = random_ids(500)
    twins = np.array([bytes(i)[:16] + b"0" * 16 for i in ids[:20]], dtype=ID_DTYPE)
    for values in (
        ids[np.random.default_rng(1).integers(0, 500, 3_000)],
        np.concatenate([ids, twins, ids[:40]]),
    ):
        distinct, place = unique_ids(values)
        expected, expected_place = np.unique(values, return_inverse=True)
        assert np.array_equal(distinct, expected) and np.array_equal(place, expected_place)
