"""coordinator.core.matching: real clkhash encodings in, groups and stable entity ids out.

Every person here is made up. Values are already normalised, in the order of
``LinkageSpec.default().all_fields``: given name, family name, date of birth
(DDMMYYYY), sex, postcode, NHS number.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Sequence

import pytest
from bitarray import bitarray

from coordinator.core.matching import (
    assign_entities,
    candidate_pairs,
    count_candidates,
    solve,
    unpack,
)
from hublink.spec import LinkageSpec
from node.encoder import Encoder

AMELIA = ("amelia", "pryce", "03042021", "F", "CF10 1AA", "")
AMELIA_TYPO = ("amelia", "price", "03042021", "F", "CF10 1AA", "")  # ~0.95 to AMELIA
AMELIA_MOVED = ("amelia", "pryce", "03042021", "F", "CF24 3AB", "")  # ~0.89 to AMELIA
OLIVER = ("oliver", "jenkins", "15112020", "M", "SA1 1DP", "")
ISLA = ("isla", "morgan", "22072022", "F", "NP20 4AB", "")
CAI = ("cai", "rowlands", "09012023", "M", "LL57 2PW", "")
FREYA = ("freya", "hughes", "30062021", "F", "CF10 1AA", "")

_ENCODER = Encoder(LinkageSpec.default(), b"a-secret-of-16+chars")


def encode(*people: tuple[str, ...]) -> list[bitarray]:
    return unpack(_ENCODER.encode(list(people)))


def pairs(candidates: object) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Candidates as ((dataset, record), (dataset, record)) pairs, most similar first."""
    _, (d0, d1), (r0, r1) = candidates  # type: ignore[misc]
    return [((d0[i], r0[i]), (d1[i], r1[i])) for i in range(len(d0))]


def counter_ids(prefix: str = "entity") -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}-{next(numbers)}"


# --- unpack ---------------------------------------------------------------------------------


def test_unpack_round_trips_bytes_most_significant_bit_first() -> None:
    raw = [bytes([0b1000_0000, 0x00, 0xFF]), bytes(range(16))]
    bits = unpack(raw)
    assert [b.tobytes() for b in bits] == raw
    assert bits[0][0] == 1
    assert bits[0][1:8].count() == 0
    assert len(bits[1]) == 128


def test_encodings_unpack_to_2048_balanced_bits() -> None:
    (bits,) = encode(AMELIA)
    assert len(bits) == 2048
    assert bits.count() == 1024


# --- candidate pairs ------------------------------------------------------------------------


def test_a_planted_pair_is_the_only_candidate() -> None:
    left = encode(AMELIA, OLIVER, ISLA)
    right = encode(CAI, AMELIA_TYPO, FREYA)

    candidates = candidate_pairs([left, right], 0.8)

    assert pairs(candidates) == [((0, 0), (1, 1))]
    assert candidates[0][0] > 0.9
    assert count_candidates(candidates) == 1


def test_the_threshold_is_respected() -> None:
    left = encode(AMELIA, OLIVER)
    right = encode(AMELIA_TYPO, AMELIA_MOVED)
    similarities = candidate_pairs([left, right], 0.8)[0]
    assert len(similarities) == 2
    between = (min(similarities) + max(similarities)) / 2

    strict = candidate_pairs([left, right], between)

    assert pairs(strict) == [((0, 0), (1, 0))]  # only the typo is that close
    assert all(s >= between for s in strict[0])
    assert count_candidates(candidate_pairs([left, right], 0.99)) == 0


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_a_threshold_outside_0_to_1_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        candidate_pairs([encode(AMELIA), encode(CAI)], threshold)


def test_without_within_threshold_a_duplicate_inside_one_dataset_is_not_a_candidate() -> None:
    candidates = candidate_pairs([encode(AMELIA, OLIVER, AMELIA_TYPO), encode(CAI)], 0.8)
    assert pairs(candidates) == []


def test_within_threshold_finds_a_duplicate_inside_one_dataset_once() -> None:
    left = encode(AMELIA, OLIVER, AMELIA_TYPO)
    right = encode(CAI, ISLA)

    candidates = candidate_pairs([left, right], 0.8, within_threshold=0.9)

    assert pairs(candidates) == [((0, 0), (0, 2))]  # never (0, 2)-(0, 0), never a record to itself


def test_within_and_across_candidates_come_most_similar_first() -> None:
    left = encode(AMELIA, AMELIA_TYPO)
    right = encode(AMELIA_MOVED)

    candidates = candidate_pairs([left, right], 0.8, within_threshold=0.9)

    assert set(pairs(candidates)) == {
        ((0, 0), (0, 1)),  # the typo, ~0.95
        ((0, 0), (1, 0)),  # moved house, ~0.89
        ((0, 1), (1, 0)),  # typo and moved, ~0.85
    }
    assert pairs(candidates)[0] == ((0, 0), (0, 1))
    similarities = list(candidates[0])
    assert similarities == sorted(similarities, reverse=True)


# --- solving --------------------------------------------------------------------------------


def test_greedy_solve_puts_at_most_one_record_per_dataset_in_a_group() -> None:
    left = encode(AMELIA, AMELIA_TYPO, OLIVER)
    right = encode(AMELIA_MOVED, CAI)
    candidates = candidate_pairs([left, right], 0.8)
    assert count_candidates(candidates) == 2  # both Amelias of dataset 0 match dataset 1

    groups = solve(candidates)

    assert [sorted(g) for g in groups] == [[(0, 0), (1, 0)]]  # the closer one wins
    for group in groups:
        datasets = Counter(d for d, _ in group)
        assert max(datasets.values()) == 1


def test_probabilistic_solve_can_group_two_records_of_one_dataset() -> None:
    left = encode(AMELIA, AMELIA_TYPO, OLIVER)
    right = encode(AMELIA_MOVED, CAI)
    candidates = candidate_pairs([left, right], 0.8, within_threshold=0.9)

    groups = solve(candidates, merge_threshold=0.5)

    assert [sorted(g) for g in groups] == [[(0, 0), (0, 1), (1, 0)]]


def test_solve_returns_plain_int_pairs() -> None:
    groups = solve(candidate_pairs([encode(AMELIA), encode(AMELIA_TYPO)], 0.8))
    assert groups == [((0, 0), (1, 0))] or groups == [((1, 0), (0, 0))]
    assert all(type(x) is int for group in groups for ref in group for x in ref)


# --- entity ids -----------------------------------------------------------------------------


def entities(assignment: dict[int, str]) -> list[list[int]]:
    """The assignment as sorted groups of records, to compare ignoring the ids themselves."""
    by_id: dict[str, list[int]] = {}
    for record, entity in assignment.items():
        by_id.setdefault(entity, []).append(record)
    return sorted(sorted(group) for group in by_id.values())


def test_every_record_gets_an_id_singletons_included() -> None:
    assignment = assign_entities([[1, 4], [2, 5, 6]], range(1, 8), {}, new_id=counter_ids())

    assert set(assignment) == {1, 2, 3, 4, 5, 6, 7}
    assert entities(assignment) == [[1, 4], [2, 5, 6], [3], [7]]


def test_ids_are_stable_when_the_same_groups_are_matched_again() -> None:
    groups = [[10, 20], [11, 21, 31]]
    records = [10, 11, 12, 20, 21, 31, 32]
    first = assign_entities(groups, records, {}, new_id=counter_ids("run1"))

    again = assign_entities(groups, records, first, new_id=counter_ids("run2"))

    assert again == first


def test_a_record_added_to_a_known_entity_takes_its_id() -> None:
    first = assign_entities([[1, 2]], [1, 2, 3], {}, new_id=counter_ids("run1"))

    again = assign_entities([[1, 2, 4]], [1, 2, 3, 4], first, new_id=counter_ids("run2"))

    assert again[4] == again[1] == first[1]
    assert again[3] == first[3]


def test_a_split_group_keeps_the_old_id_on_its_larger_side() -> None:
    previous = {1: "child-a", 2: "child-a", 3: "child-a", 4: "child-b"}

    # Record 1 (the smaller side) is listed first so that order alone would favour it.
    split = assign_entities([[1], [2, 3]], [1, 2, 3, 4], previous, new_id=counter_ids())

    assert split[2] == split[3] == "child-a"
    assert split[1] not in {"child-a", "child-b"}
    assert split[4] == "child-b"


def test_a_merged_group_takes_the_id_most_of_its_records_had() -> None:
    previous = {1: "child-b", 2: "child-a", 3: "child-a"}

    merged = assign_entities([[1, 2, 3]], [1, 2, 3], previous, new_id=counter_ids())

    assert set(merged.values()) == {"child-a"}


def test_no_id_is_given_twice() -> None:
    previous = {1: "child-a", 2: "child-a", 3: "child-a", 4: "child-a"}
    # The id a new entity would be given already belongs to someone else's previous entity.
    issued = iter(["child-a", "child-a", "fresh-1", "fresh-2", "fresh-3"])

    assignment = assign_entities(
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

    assignment = assign_entities(groups, records, previous, new_id=counter_ids())

    assert set(assignment) == set(records)
    assert len(set(assignment.values())) == len(groups)
    assert entities(assignment) == sorted(sorted(g) for g in groups)
