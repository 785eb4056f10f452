"""Pairs the groups leave apart that cannot be matches, inside one organisation as across."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.core.field_estimate import Prepared, on_output
from coordinator.core.field_model import ACROSS, WITHIN
from coordinator.core.field_spoken import (
    moved_from_spoken,
    spoken_for_within,
    spoken_odds,
    twice_elsewhere,
)


def test_a_pair_inside_one_organisation_is_spoken_for_where_both_are_linked_elsewhere() -> None:
    # Organisation 0: records 0, 1, 5, 6; organisation 1: 2, 3; organisation 2: 4.
    # Groups: {0, 2, 6}, {1, 3}; 4 and 5 alone.
    group = np.array([0, 1, 0, 1, -1, -1, 0])
    dataset = np.array([0, 0, 1, 1, 2, 0, 0])
    left = np.array([0, 2, 0, 0, 1])
    right = np.array([1, 3, 5, 6, 5])
    found = spoken_for_within(left, right, group, dataset)
    # 0-1: both groups hold a record of organisation 1 (2 and 3): one child would be there
    # twice. 2-3 (organisation 1): both groups hold a record of organisation 0. 0-5 and
    # 1-5: 5 is free. 0-6: held.
    assert found.tolist() == [True, True, False, False, False]


def test_a_lone_pair_or_one_whose_groups_share_no_organisation_is_not_spoken_for() -> None:
    # 0 and 1 (organisation 0) grouped with records of different organisations (2 of 1, 3
    # of 2): merging them would put no organisation's child in twice.
    group = np.array([0, 1, 0, 1])
    dataset = np.array([0, 0, 1, 2])
    assert spoken_for_within(np.array([0]), np.array([1]), group, dataset).tolist() == [False]
    alone = np.full(4, -1)
    assert spoken_for_within(np.array([0]), np.array([1]), alone, dataset).tolist() == [False]
    assert (
        spoken_for_within(np.array([], dtype=int), np.array([], dtype=int), group, dataset).size
        == 0
    )


def twins_run(twins: float) -> tuple[Prepared, np.ndarray, np.ndarray]:
    """30 children in two organisations, each linked (certain cross pairs r, 30 + r);
    organisation 0 holds children 2-11 twice (records 60-69, grouped with their first
    record: certain within pairs). Records 0 and 1 are twins, each linked to its own
    record in organisation 1; their within pair, at ``twins``, the solver left apart."""
    n = 30
    left = [*range(n), *range(2, 12), 0]
    right = [*(n + r for r in range(n)), *range(60, 70), 1]
    chance = np.array([1.0] * n + [1.0] * 10 + [twins])
    kinds = np.array([ACROSS] * n + [WITHIN] * 11)
    group = np.array([*range(n), *range(n), *range(2, 12)])
    dataset = np.array([0] * n + [1] * n + [0] * 10)
    prepared = Prepared(
        left=np.array(left),
        right=np.array(right),
        kinds=kinds,
        chance=chance,
        draws=np.tile(chance, (4, 1)).astype(np.float32),
        broken=np.zeros(len(chance), dtype=np.int64),
        parts=3,
    )
    return prepared, group, dataset


def test_twins_in_one_register_each_linked_elsewhere_are_not_a_missed_duplicate() -> None:
    prepared, group, dataset = twins_run(0.9)
    found = on_output(prepared, group, dataset)
    assert found.within is not None
    # Not 10 / 10.9: the twins' pair is a match only if organisation 1 holds the child
    # twice too. Of the ten groups holding a child twice in organisation 0, none holds it
    # twice in organisation 1, so that chance is 0.5 / 11 (half a case each way), and the
    # pair keeps 0.9 at odds times that.
    q = 0.5 / 11
    kept = 0.9 * q / (0.9 * q + 0.1)
    assert twice_elsewhere(group, dataset) == pytest.approx(q)
    assert found.within.expected_matches == pytest.approx(10.0 + kept)
    assert found.within.recall == pytest.approx(10.0 / (10.0 + kept))
    assert found.within.recall > 0.97


def test_where_registers_often_hold_a_child_twice_together_a_pair_spoken_for_keeps_more() -> None:
    # Group 0: records 0, 1 of organisation 0 and 2, 3 of organisation 1 (the child twice
    # in each). Group 1: records 4, 5 of organisation 0, 6 of 2 and 7 of 1 (twice in 0 only).
    # Record 8 (organisation 0) is alone.
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1, -1])
    dataset = np.array([0, 0, 1, 1, 0, 0, 2, 1, 0])
    # Cases (an organisation held twice, against each other one the group holds): group 0,
    # 0 against 1 and 1 against 0, both twice; group 1, 0 against 2 and against 1, neither
    # twice. (2 + 0.5) / (4 + 1).
    q = 2.5 / 5
    assert twice_elsewhere(group, dataset) == pytest.approx(q)
    assert twice_elsewhere(np.full(9, -1), dataset) == 0.0
    # Pair 0-4 (organisation 0): besides themselves both groups hold organisations 0 and
    # 1, so were they one child, one of the two would hold it twice as well. Pair 0-8: 8
    # is alone, nothing shared.
    odds = spoken_odds(np.array([0, 0]), np.array([4, 8]), group, dataset)
    assert odds.tolist() == pytest.approx([1 - (1 - q) ** 2, 0.0])


def test_a_sure_pair_spoken_for_where_no_register_holds_a_child_twice_keeps_nothing() -> None:
    # Chance 1 and odds 0 would be 0 / 0: the pair keeps 0 (it cannot be a match), the
    # others keep theirs, and nothing reads as "not a number".
    chance = np.array([1.0, 0.6, 0.9, 0.2])
    pattern = np.array([0, 0, 1, 1])
    spoken = np.array([True, False, True, False])
    odds = np.array([0.0, 0.0, 0.5, 0.0])
    with np.errstate(all="raise"):
        out = moved_from_spoken(chance, pattern, spoken, odds)
    assert out[0] == 0.0
    assert out[2] == pytest.approx(0.9 * 0.5 / (0.9 * 0.5 + 0.1))
    assert np.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()
    # What the spoken-for pairs gave up goes to their patterns' other pairs.
    assert out[1] == pytest.approx(1.0) and out[3] == pytest.approx(0.2 + 0.9 - out[2])
