"""The per-field model: levels, anchors, the fit, and weighing a run's within candidates."""

from __future__ import annotations

from array import array

import numpy as np
import pytest

from coordinator.core import field_scoring, matching
from coordinator.core.field_scoring import (
    Profile,
    WithinModel,
    anchors,
    dice,
    fit,
    levels,
    weigh,
)

GROUPS = ("given", "family", "birth", "place")


def scores(rows: list[tuple[float, float, float, float]]) -> dict[str, np.ndarray]:
    return {g: np.array([r[i] for r in rows], dtype=np.float64) for i, g in enumerate(GROUPS)}


def test_levels_count_down_from_full_agreement() -> None:
    assert levels(np.array([1.0, 0.99, 0.97, 0.95, 0.92, 0.85, 0.5])).tolist() == [
        0,
        0,
        1,
        1,
        2,
        3,
        4,
    ]


def test_flipped_bits_move_the_cuts_to_where_flipped_filters_land() -> None:
    # With 2% of bits flipped, identical values land near 0.96, not 1.
    assert levels(np.array([0.962]), flip=0.02).tolist() == [0]
    assert levels(np.array([0.962])).tolist() == [1]
    assert levels(np.array([0.93]), flip=0.02).tolist() == [1]


def test_dice_of_packed_rows() -> None:
    left = np.array([[0b11110000], [0b11111111], [0]], dtype=np.uint8)
    right = np.array([[0b11000000], [0b11111111], [0]], dtype=np.uint8)
    assert dice(left, right).tolist() == pytest.approx([2 * 2 / 6, 1.0, 0.0])


def test_profile_is_smoothed_so_no_level_is_impossible() -> None:
    profile = Profile.count(scores([(1.0, 1.0, 1.0, 1.0)] * 10))
    assert all(min(c) > 0 for c in profile.chances.values())
    assert profile.chances["given"][0] > 0.8
    assert sum(profile.chances["given"]) == pytest.approx(1.0)


MATCH = [(1.0, 1.0, 1.0, 1.0)] * 90 + [(0.92, 1.0, 1.0, 0.85)] * 10
RELATIVE = [(0.6, 1.0, 0.85, 1.0)] * 100  # siblings: surname and address, not name or birthday
STRANGER = [(0.6, 0.6, 0.7, 0.6)] * 990 + [(1.0, 0.6, 0.7, 0.6)] * 10


def test_a_duplicate_a_sibling_and_two_strangers_with_one_name_and_birthday() -> None:
    candidates = [
        (1.0, 1.0, 1.0, 1.0),  # a duplicate referral
        (0.93, 1.0, 1.0, 0.85),  # a duplicate with a typo and a missing NHS number
        (0.6, 1.0, 0.85, 1.0),  # a sibling
        (0.6, 1.0, 1.0, 1.0),  # a twin
        (1.0, 0.6, 1.0, 0.6),  # strangers sharing a given name and a birthday
    ] + [(0.6, 1.0, 0.85, 1.0)] * 50
    model = fit(
        match=scores(MATCH),
        relative=scores(RELATIVE),
        stranger=scores(STRANGER),
        candidates=scores(candidates),
        all_pairs=1_000_000,
    )
    chance = model.probability(scores(candidates[:5]))
    assert chance[0] > 0.99
    assert chance[1] > 0.5
    assert chance[2] < 0.01
    assert chance[3] < 0.5
    assert chance[4] < 0.5
    assert 1.5 < model.matches < 3.5  # about the two duplicates
    assert model.weights()["given"][0] > 0 > model.weights()["given"][-1]


def test_strangers_who_agree_by_chance_stay_strangers_among_many_pairs() -> None:
    """The same pair is one child when pairs are few, not when chance agreement is cheap."""
    pair = [(1.0, 0.6, 1.0, 0.6)]

    def fitted(all_pairs: int) -> WithinModel:
        return fit(
            match=scores(MATCH),
            relative=scores(RELATIVE),
            stranger=scores(STRANGER),
            candidates=scores(pair * 5 + [(1.0, 1.0, 1.0, 1.0)] * 5),
            all_pairs=all_pairs,
        )

    few, many = fitted(10), fitted(10_000_000)
    assert many.probability(scores(pair))[0] < few.probability(scores(pair))[0]
    assert many.probability(scores(pair))[0] < 0.5


def fitted_on(
    candidates: dict[str, np.ndarray],
    match: list[tuple[float, float, float, float]] = MATCH,
    agreeing: list[tuple[float, float, float, float]] | None = None,
    scanned: int = 0,
    pivot: str = "given",
) -> WithinModel:
    """The model fitted on the anchors above among a million within-dataset pairs."""
    return fit(
        match=scores(match),
        relative=scores(RELATIVE),
        stranger=scores(STRANGER),
        candidates=candidates,
        all_pairs=1_000_000,
        agreeing=scores(agreeing) if agreeing is not None else None,
        scanned=scanned,
        pivot=pivot,
    )


def test_strangers_who_share_a_salted_given_name_share_a_birth_month_too() -> None:
    """Two strangers with one given name, surname and birth month, living apart.

    Salting the given name with the month of birth makes a given-name agreement
    also a birth-month agreement, which random pairs (groups independent) do not
    know: they read the near birthday as a second, independent coincidence.
    The pairs a scan found agreeing on the given name show how often such
    strangers also agree on the rest.
    """
    pair = [(1.0, 1.0, 0.92, 0.6)]
    match = [(1.0, 1.0, 1.0, 1.0)] * 80 + [(1.0, 1.0, 0.92, 0.6)] * 5 + [(1.0, 1.0, 1.0, 0.6)] * 15
    # Random pairs agreeing on the given name: born in the same month (birth 0.92 or 0.85),
    # some with a common surname, few at one address; a few duplicates among them.
    agreeing = (
        [(1.0, 0.6, 0.85, 0.6)] * 50
        + [(1.0, 0.6, 0.92, 0.6)] * 30
        + [(1.0, 1.0, 0.92, 0.6)] * 15
        + [(1.0, 1.0, 1.0, 1.0)] * 5
    )
    candidates = scores(pair * 5 + [(1.0, 1.0, 1.0, 1.0)] * 20 + [(0.6, 1.0, 0.85, 1.0)] * 40)

    def chance(model: WithinModel) -> float:
        return float(model.probability(scores(pair))[0])

    independent = chance(fitted_on(candidates, match))
    assert independent > 0.5  # read as a duplicate who moved
    assert chance(fitted_on(candidates, match, agreeing, scanned=10_000)) < 0.5
    # The pivot must be a group the filters have; without it, groups stay independent.
    unknown = fitted_on(candidates, match, agreeing, scanned=10_000, pivot="none")
    assert chance(unknown) == independent


def test_duplicates_found_by_the_scan_are_weighed_out_of_the_strangers() -> None:
    """The scan also finds duplicates (they agree on the given name); counted as strangers
    they would make strangers look like duplicates, and every duplicate less likely."""
    agreeing = [(1.0, 0.6, 0.85, 0.6)] * 80 + [(1.0, 1.0, 1.0, 1.0)] * 20
    candidates = scores([(1.0, 1.0, 1.0, 1.0)] * 20 + [(0.6, 1.0, 0.85, 1.0)] * 40)
    # The scan found the 20 duplicates among a million pairs.
    model = fitted_on(candidates, agreeing=agreeing, scanned=1_000_000)
    assert model.agreeing is not None
    # Counted plainly, 20 of 100 agreeing pairs agree on the surname; weighed, far fewer.
    assert model.agreeing.chances["family"][0] < 0.05
    assert model.probability(scores([(1.0, 1.0, 1.0, 1.0)]))[0] > 0.99


def test_the_scan_pairs_records_that_agree_on_the_pivot_and_never_a_record_with_itself() -> None:
    rng = np.random.default_rng(2)
    pivot = rng.integers(0, 256, (12, 16), dtype=np.uint8)
    pivot[3] = pivot[1]  # dataset 0 rows 1 and 3 agree
    pivot[10] = pivot[8]  # dataset 1 rows 2 and 4 agree (global 8 and 10)
    sample = [np.array([0, 1, 2]), np.arange(6), np.array([7, 8]), np.arange(6, 12)]
    (left, right), scanned = field_scoring.agreeing_pairs(sample, lambda rows: pivot[rows], 0.9)
    assert sorted(zip(left.tolist(), right.tolist(), strict=True)) == [(1, 3), (8, 10)]
    assert scanned == (3 * 6 - 3) + (2 * 6 - 2)


def test_the_scan_sample_is_distinct_sorted_rows_of_each_dataset() -> None:
    sample = field_scoring.pivot_sample([5, 1, 30_000], seed=3)
    assert [len(rows) for rows in sample] == [5, 5, 0, 0, 1_000, 20_000]
    for rows, (low, high) in zip(
        sample, [(0, 5), (0, 5), (5, 6), (5, 6), (6, 30_006), (6, 30_006)], strict=True
    ):
        assert (np.diff(rows) > 0).all()
        assert all(low <= r < high for r in rows.tolist())


def test_fit_refuses_a_run_without_pairs() -> None:
    with pytest.raises(ValueError, match="no within-dataset pairs"):
        fit(
            match=scores(MATCH),
            relative=scores(RELATIVE),
            stranger=scores(STRANGER),
            candidates=scores([]),
            all_pairs=0,
        )


def test_the_cut_maximises_the_models_expected_f1() -> None:
    # Linking the 0.6 pair: expected F1 7.08/7.60 = 0.932 against 5.88/6.40 = 0.919 without.
    chance = np.array([0.99, 0.98, 0.97, 0.6, 0.05, 0.01])
    assert field_scoring.best_cut(chance) == pytest.approx(0.6)
    # A 0.4 pair is not worth it: 6.68/7.40 = 0.903.
    assert field_scoring.best_cut(np.array([0.99, 0.98, 0.97, 0.4, 0.05])) == pytest.approx(0.97)
    assert field_scoring.best_cut(np.array([0.99, 0.2, 0.1])) == pytest.approx(0.99)
    assert field_scoring.best_cut(np.zeros(0)) == field_scoring.CUT


def test_anchors_are_mutual_best_links_and_pairs_best_for_neither() -> None:
    # dataset 0 rows 0,1 against dataset 1 rows 0,1: 0-0 mutual best, 1-1 mutual best,
    # 0-1 is the runner-up of both its records.
    sims = np.array([0.95, 0.9, 0.85, 0.82])
    d = (np.zeros(4, dtype=np.uint32), np.ones(4, dtype=np.uint32))
    r = (np.array([0, 1, 0, 1], dtype=np.uint32), np.array([0, 1, 1, 0], dtype=np.uint32))
    matches, relatives = anchors(sims, d, r, threshold=0.88)
    assert matches.tolist() == [True, True, False, False]
    assert relatives.tolist() == [False, False, True, True]
    # A mutual best below the threshold is no match anchor.
    assert anchors(sims, d, r, threshold=0.92)[0].tolist() == [True, False, False, False]


def test_stranger_pairs_never_pair_a_record_with_itself() -> None:
    drawn = field_scoring.stranger_pairs([5, 1, 300], seed=3)
    assert drawn[0].shape == (field_scoring.STRANGER_PAIRS, 2)
    assert (drawn[0][:, 0] != drawn[0][:, 1]).all()
    assert drawn[0].max() < 5 and drawn[2].max() < 300
    assert len(drawn[1]) == 0


def _candidates(rows: list[tuple[float, int, int, int, int]]) -> matching.Candidates:
    return (
        array("d", [r[0] for r in rows]),
        (array("I", [r[1] for r in rows]), array("I", [r[2] for r in rows])),
        (array("I", [r[3] for r in rows]), array("I", [r[4] for r in rows])),
    )


def test_weigh_reads_only_the_records_it_needs_and_keeps_the_duplicate() -> None:
    """Two datasets of 40 records; filters are random except where a pair should agree."""
    rng = np.random.default_rng(5)
    sizes = [40, 40]
    filters = {g: rng.integers(0, 256, (80, 16), dtype=np.uint8) for g in GROUPS}
    # Cross links 0:i <-> 1:i agree in every group; within dataset 0, rows 1 and 2 agree
    # everywhere (a duplicate) and rows 3 and 4 share surname and address only (siblings).
    for g in GROUPS:
        filters[g][40:80] = filters[g][0:40]
        filters[g][2] = filters[g][1]
    for g in ("family", "place"):
        filters[g][4] = filters[g][3]
    # Row 2's copy in dataset 1 is left out: were both duplicates linked to different
    # records there, they would be two children (partners_apart).
    across = _candidates([(0.97, 0, 1, i, i) for i in range(30) if i != 2] + [(0.82, 0, 1, 3, 4)])
    within = _candidates([(0.95, 0, 0, 1, 2), (0.9, 0, 0, 3, 4)])
    asked: list[np.ndarray] = []

    def read(rows: np.ndarray) -> dict[str, np.ndarray]:
        asked.append(rows)
        return {g: a[rows] for g, a in filters.items()}

    keep, found = weigh(across, within, 0.9, sizes, read, seed=1)
    assert keep.tolist() == [True, False]
    assert found.weighed == 2 and found.linked == 1
    assert found.match_anchors == 29 and found.relative_anchors == 1
    assert found.groups == GROUPS
    assert len(asked) == 1 and (np.diff(asked[0]) > 0).all()
    # With 0:1 and 0:2 each linked to its own record of dataset 1, they are two children.
    both = _candidates([(0.97, 0, 1, i, i) for i in range(30)])
    keep, found = weigh(both, within, 0.9, sizes, read, seed=1)
    assert keep.tolist() == [False, False]
    assert found.apart == 1 and found.linked == 0


def test_two_records_linked_to_two_records_elsewhere_are_two_children() -> None:
    """Twins known to both organisations: each links to its own twin in the other."""
    across = _candidates(
        [
            (0.97, 0, 1, 0, 0),  # twin A, in both
            (0.96, 0, 1, 1, 1),  # twin B, in both
            (0.95, 0, 1, 2, 2),  # a child referred twice to dataset 0, once to dataset 1
            (0.91, 0, 1, 3, 2),
            (0.89, 0, 1, 0, 1),  # twin A's runner-up: not its partner
            (0.80, 0, 1, 5, 5),  # below the threshold: no partner
            (0.93, 0, 2, 4, 0),
        ]
    )
    within = _candidates(
        [(0.92, 0, 0, 0, 1), (0.9, 0, 0, 2, 3), (0.88, 0, 0, 4, 5), (0.87, 1, 1, 0, 1)]
    )
    apart = field_scoring.partners_apart(across, within, 0.85)
    # The twins are apart; the duplicate shares its partner; row 5 has none above the
    # threshold; in dataset 1, the twins' partners in dataset 0 differ as well.
    assert apart.tolist() == [True, False, False, True]
    assert not field_scoring.partners_apart(across, within, 0.99).any()
    assert len(field_scoring.partners_apart(across, _candidates([]), 0.85)) == 0
