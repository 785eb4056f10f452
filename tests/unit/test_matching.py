"""coordinator.core.matching: real clkhash encodings in, groups and stable entity ids out.

Every person here is made up. Values are already normalised, in the order of
``LinkageSpec.default().all_fields``: given name, family name, date of birth
(DDMMYYYY), sex, postcode, NHS number.
"""

from __future__ import annotations

import itertools
from array import array
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from bitarray import bitarray

from coordinator.core.matching import (
    Candidates,
    candidate_pairs,
    combine,
    completing,
    count_candidates,
    find_sorted,
    linked_both_ways,
    select,
    solve,
    unpack,
)
from hublink.spec import LinkageSpec
from node.encoder import Encoder

AMELIA = ("amelia", "pryce", "03042021", "F", "CF10 1AA", "")
# The salted record CLK keeps two parts of three when one salt field differs.
AMELIA_TYPO = ("amelia", "price", "03042021", "F", "CF10 1AA", "")  # ~0.8 to AMELIA
AMELIA_MOVED = ("amelia", "pryce", "03042021", "F", "CF24 3AB", "")  # ~0.75 to AMELIA
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


def listed(*found: tuple[float, tuple[int, int], tuple[int, int]]) -> Candidates:
    """A candidate structure from (similarity, record, record) triples, in the order given."""
    return combine(
        (
            array("d", [sim for sim, _, _ in found]),
            (array("I", [a[0] for _, a, _ in found]), array("I", [b[0] for _, _, b in found])),
            (array("I", [a[1] for _, a, _ in found]), array("I", [b[1] for _, _, b in found])),
        )
    )


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


def test_encodings_unpack_to_3072_balanced_bits() -> None:
    (bits,) = encode(AMELIA)
    assert len(bits) == 3072
    assert bits.count() == 1536


# --- candidate pairs ------------------------------------------------------------------------


def test_a_planted_pair_is_the_only_candidate() -> None:
    left = encode(AMELIA, OLIVER, ISLA)
    right = encode(CAI, AMELIA_TYPO, FREYA)

    candidates = candidate_pairs([left, right], 0.7)

    assert pairs(candidates) == [((0, 0), (1, 1))]
    assert candidates[0][0] > 0.75  # strangers score 0.5 give or take a few hundredths
    assert count_candidates(candidates) == 1


def test_the_threshold_is_respected() -> None:
    left = encode(AMELIA, OLIVER)
    right = encode(AMELIA_TYPO, AMELIA_MOVED)
    similarities = candidate_pairs([left, right], 0.7)[0]
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
    candidates = candidate_pairs([encode(AMELIA, OLIVER, AMELIA_TYPO), encode(CAI)], 0.7)
    assert pairs(candidates) == []


def test_within_threshold_finds_a_duplicate_inside_one_dataset_once() -> None:
    left = encode(AMELIA, OLIVER, AMELIA_TYPO)
    right = encode(CAI, ISLA)

    candidates = candidate_pairs([left, right], 0.7, within_threshold=0.75)

    assert pairs(candidates) == [((0, 0), (0, 2))]  # never (0, 2)-(0, 0), never a record to itself


def test_within_and_across_candidates_come_most_similar_first() -> None:
    left = encode(AMELIA, AMELIA_TYPO)
    right = encode(AMELIA_MOVED)

    candidates = candidate_pairs([left, right], 0.6, within_threshold=0.75)

    assert set(pairs(candidates)) == {
        ((0, 0), (0, 1)),  # the typo, ~0.8
        ((0, 0), (1, 0)),  # moved house, ~0.75
        ((0, 1), (1, 0)),  # typo and moved: one part of three agrees, ~0.62
    }
    assert pairs(candidates)[0] == ((0, 0), (0, 1))
    similarities = list(candidates[0])
    assert similarities == sorted(similarities, reverse=True)


# --- solving --------------------------------------------------------------------------------


def test_greedy_solve_puts_at_most_one_record_per_dataset_in_a_group() -> None:
    left = encode(AMELIA, AMELIA_TYPO, OLIVER)
    right = encode(AMELIA_MOVED, CAI)
    candidates = candidate_pairs([left, right], 0.6)
    assert count_candidates(candidates) == 2  # both Amelias of dataset 0 match dataset 1

    groups = solve(candidates)

    assert [sorted(g) for g in groups] == [[(0, 0), (1, 0)]]  # the closer one wins
    for group in groups:
        datasets = Counter(d for d, _ in group)
        assert max(datasets.values()) == 1


def test_probabilistic_solve_can_group_two_records_of_one_dataset() -> None:
    left = encode(AMELIA, AMELIA_TYPO, OLIVER)
    right = encode(AMELIA_MOVED, CAI)
    candidates = candidate_pairs([left, right], 0.6, within_threshold=0.75)

    groups = solve(candidates, merge_threshold=0.5)

    assert [sorted(g) for g in groups] == [[(0, 0), (0, 1), (1, 0)]]


def test_solve_returns_plain_int_pairs() -> None:
    groups = solve(candidate_pairs([encode(AMELIA), encode(AMELIA_TYPO)], 0.7))
    assert groups == [((0, 0), (1, 0))] or groups == [((1, 0), (0, 0))]
    assert all(type(x) is int for group in groups for ref in group for x in ref)


# --- completing: a within link and a cross link imply the third pair ------------------------

#: Dataset 0 holds a child twice (rows 0 and 1, the second after a change of surname);
#: dataset 1 holds the child once (row 0). Row 2 of dataset 0 is another child.
CHANGED_SURNAME = listed(
    (0.95, (0, 0), (1, 0)),  # linked: at or above the threshold
    (0.78, (0, 1), (1, 0)),  # the duplicate: a candidate, but below the threshold
    (0.74, (0, 2), (1, 0)),  # another child: below the threshold, no within link
)
DUPLICATE = listed((0.9, (0, 0), (0, 1)))


def test_completing_adds_the_pair_a_within_and_a_cross_link_imply() -> None:
    found = completing(CHANGED_SURNAME, DUPLICATE, 0.85)
    assert pairs(found) == [((0, 1), (1, 0))]
    assert list(found[0]) == [0.78]


def test_completing_lets_the_solver_put_the_duplicate_in_its_group() -> None:
    linked = select(CHANGED_SURNAME, np.array([True, False, False]))
    without = solve(combine(linked, DUPLICATE), merge_threshold=0.9)
    assert sorted(map(sorted, without)) == [[(0, 0), (1, 0)]]  # the duplicate is left out

    implied = completing(CHANGED_SURNAME, DUPLICATE, 0.85)
    grouped = solve(combine(linked, DUPLICATE, implied), merge_threshold=0.9)
    assert sorted(map(sorted, grouped)) == [[(0, 0), (0, 1), (1, 0)]]


def test_completing_follows_the_within_link_from_either_end() -> None:
    # The linked record is the within pair's second, and the cross pair names dataset 1 first.
    across = listed((0.95, (1, 0), (0, 1)), (0.78, (1, 0), (0, 0)))
    assert pairs(completing(across, DUPLICATE, 0.85)) == [((1, 0), (0, 0))]


def test_completing_adds_nothing_without_a_link_on_both_sides() -> None:
    assert pairs(completing(CHANGED_SURNAME, listed(), 0.85)) == []
    # No cross pair reaches the threshold, so no within link is joined to a group.
    assert pairs(completing(CHANGED_SURNAME, DUPLICATE, 0.96)) == []
    # A within link between two records neither of which is linked across.
    assert pairs(completing(CHANGED_SURNAME, listed((0.9, (0, 1), (0, 2))), 0.85)) == []


def test_completing_never_repeats_a_pair_already_linked() -> None:
    across = listed((0.95, (0, 0), (1, 0)), (0.9, (0, 1), (1, 0)))
    assert pairs(completing(across, DUPLICATE, 0.85)) == []


def test_completing_reaches_every_organisation_the_record_is_linked_in() -> None:
    across = listed(
        (0.95, (0, 0), (1, 0)),
        (0.93, (0, 0), (2, 4)),
        (0.8, (0, 1), (2, 4)),
        (0.79, (0, 1), (1, 0)),
        (0.75, (1, 0), (2, 4)),  # a cross pair of two other organisations: never implied
    )
    assert sorted(pairs(completing(across, DUPLICATE, 0.85))) == [
        ((0, 1), (1, 0)),
        ((0, 1), (2, 4)),
    ]


#: One child known to three organisations: A (dataset 0) and C (dataset 2) both linked to
#: B (dataset 1), but A-C, a surname changed between them, just under the cut. Row 1 of
#: dataset 2 is another child, a candidate of A's, never linked.
CHAIN = listed(
    (0.95, (0, 0), (1, 0)),  # A-B linked
    (0.92, (1, 0), (2, 0)),  # B-C linked
    (0.8, (0, 0), (2, 0)),  # A-C: a candidate below the threshold
    (0.78, (0, 0), (2, 1)),  # A and another child: no link on the other side
)


def test_two_cross_links_imply_the_pair_of_their_far_ends() -> None:
    assert pairs(completing(CHAIN, listed(), 0.85)) == []  # within triangles only
    implied = completing(CHAIN, listed(), 0.85, through_links=True)
    assert pairs(implied) == [((0, 0), (2, 0))]
    assert list(implied[0]) == [0.8]


def test_the_chain_of_three_organisations_becomes_one_group() -> None:
    linked = select(CHAIN, np.array([True, True, False, False]))
    apart = solve(linked, merge_threshold=0.9)
    assert sorted(map(sorted, apart)) == [[(0, 0), (1, 0)]]  # C left out: half its pairs

    implied = completing(CHAIN, listed(), 0.85, through_links=True)
    grouped = solve(combine(linked, implied), merge_threshold=0.9)
    assert sorted(map(sorted, grouped)) == [[(0, 0), (1, 0), (2, 0)]]


def test_links_are_listed_from_both_ends_and_found_by_binary_search() -> None:
    sims, own, row, other, partner = linked_both_ways(CHANGED_SURNAME, 0.85)
    assert list(zip(sims, own, row, other, partner, strict=True)) == [
        (0.95, 0, 0, 1, 0),
        (0.95, 1, 0, 0, 0),
    ]
    known = np.array([2, 5, 9])
    assert find_sorted(known, np.array([9, 1, 5, 10])).tolist() == [2, -1, 1, -1]
    assert find_sorted(np.array([], dtype=np.int64), np.array([3])).tolist() == [-1]
