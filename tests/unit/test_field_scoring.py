"""Scoring a run's candidates field by field: Dice of packed filters, random pairs for u,
mutual-best anchors, one model for cross and within pairs, and the pairs the solver gets."""

from __future__ import annotations

from array import array

import numpy as np
import pytest

from coordinator.core import field_levels, field_scoring, matching
from coordinator.core.field_scoring import decide, dice, mutual_best, score
from hublink.spec import salt_checks, shipped_field_groups

GROUPS = ("given", "family", "birth", "place")


def test_dice_of_packed_rows() -> None:
    left = np.array([[0b11110000], [0b11111111], [0]], dtype=np.uint8)
    right = np.array([[0b11000000], [0b11111111], [0]], dtype=np.uint8)
    assert dice(left, right).tolist() == pytest.approx([2 * 2 / 6, 1.0, 0.0])


def test_random_pairs_never_pair_a_record_with_itself() -> None:
    left, right = field_scoring.random_pairs(10_000, seed=3)
    assert len(left) == field_scoring.RANDOM_PAIRS
    assert (left != right).all()
    assert len(np.unique(np.concatenate([left, right]))) <= field_scoring.RANDOM_RECORDS
    assert len(field_scoring.random_pairs(1)[0]) == 0


def test_mutual_best_pairs_are_each_records_best_candidate() -> None:
    # dataset 0 rows 0,1 against dataset 1 rows 0,1: 0-0 and 1-1 are mutual best; 0-1 and
    # 1-0 are runners-up.
    across = _candidates(
        [(0.95, 0, 1, 0, 0), (0.9, 0, 1, 1, 1), (0.85, 0, 1, 0, 1), (0.82, 0, 1, 1, 0)]
    )
    assert mutual_best(across).tolist() == [True, True, False, False]


def _candidates(rows: list[tuple[float, int, int, int, int]]) -> matching.Candidates:
    return (
        array("d", [r[0] for r in rows]),
        (array("I", [r[1] for r in rows]), array("I", [r[2] for r in rows])),
        (array("I", [r[3] for r in rows]), array("I", [r[4] for r in rows])),
    )


def test_one_model_scores_cross_and_within_pairs_and_keeps_twins_apart() -> None:
    """Two datasets of 60 children; filters are random except where records are one child.

    Rows 0-49 of dataset 0 are rows 0-49 of dataset 1. In dataset 0, row 51 is a
    duplicate of row 50; rows 52 and 53 are twins (everything but the given name), each
    known to dataset 1 too (rows 52, 53). The model reads the filters once.
    """
    rng = np.random.default_rng(5)
    sizes = [60, 60]
    filters = {g: rng.integers(0, 256, (120, 64), dtype=np.uint8) for g in GROUPS}
    for g in GROUPS:
        filters[g][60:110] = filters[g][0:50]
        filters[g][51] = filters[g][50]
        filters[g][112:114] = filters[g][52:54]
        if g != "given":
            filters[g][53] = filters[g][52]
            filters[g][113] = filters[g][112]
    across = _candidates(
        [(0.97, 0, 1, i, i) for i in range(50)]
        + [(0.95, 0, 1, 52, 52), (0.95, 0, 1, 53, 53), (0.9, 0, 1, 52, 53), (0.9, 0, 1, 53, 52)]
        + [(0.75, 0, 1, i, (i + 7) % 50) for i in range(50)]
    )
    within = _candidates([(0.95, 0, 0, 50, 51), (0.93, 0, 0, 52, 53), (0.93, 1, 1, 52, 53)])
    asked: list[np.ndarray] = []

    def read(rows: np.ndarray) -> dict[str, np.ndarray]:
        asked.append(rows)
        return {g: a[rows] for g, a in filters.items()}

    scored = score(across, within, sizes, read, seed=1)
    assert len(asked) == 1 and (np.diff(asked[0]) > 0).all()
    assert (scored.across[:52] > 0.9).all()  # the matches, twins' own included
    assert (scored.across[54:56] < 0.5).all()  # each twin against the other's record
    assert (scored.across[56:] < 0.1).all()
    assert scored.within[0] > 0.9  # the duplicate
    assert (scored.within[1:] < 0.5).all()  # the twins, in each dataset
    decision = decide(across, within, scored)
    assert decision.duplicates.linked == 1
    assert decision.duplicates.groups == GROUPS
    assert decision.across_linked == 52
    _, d0, d1, r0, r1 = matching.arrays(decision.linking)
    linked = set(zip(d0.tolist(), d1.tolist(), r0.tolist(), r1.tolist(), strict=True))
    assert (0, 0, 50, 51) in linked and (0, 0, 52, 53) not in linked
    groups = matching.solve(decision.linking, merge_threshold=0.9)
    together = next(g for g in groups if (0, 52) in g)
    assert set(together) == {(0, 52), (1, 52)}


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


def test_an_all_zero_filter_is_a_missing_field_not_a_disagreeing_one() -> None:
    """An added field (a local id) that dataset 1 lacks for half the children: its nodes
    send all-zero filters there, which weigh neither for nor against a pair."""
    rng = np.random.default_rng(8)
    sizes = [60, 60]
    groups = (*GROUPS, "local_id@birth", "local_id@family")
    base = {g: rng.integers(0, 256, (120, 64), dtype=np.uint8) for g in groups}
    for g in groups:
        base[g][60:110] = base[g][0:50]
    across = _candidates(
        [(0.97, 0, 1, i, i) for i in range(50)] + [(0.75, 0, 1, i, (i + 7) % 50) for i in range(50)]
    )
    within = _candidates([])

    def scored_with(lacking: str) -> field_scoring.Scored:
        filters = {g: a.copy() for g, a in base.items()}
        for g in groups[4:]:
            # Rows 25-49 of dataset 1 lack the local id: missing, or (to compare) a
            # different value's bits, as a node without missing-as-missing would send.
            filters[g][85:110] = 0 if lacking == "missing" else rng.integers(0, 256, (25, 64))
        return score(across, within, sizes, lambda rows: {g: a[rows] for g, a in filters.items()})

    filters = {g: a.copy() for g, a in base.items()}
    filters["local_id@birth"][85:110] = 0
    compared = field_scoring.compare(filters, np.arange(50), np.arange(60, 110))
    assert np.isnan(compared["local_id"][25:]).all()
    assert not np.isnan(compared["local_id"][:25]).any()
    assert not np.isnan(compared["given"]).any()

    missing, differing = scored_with("missing"), scored_with("differing")
    assert (missing.across[:50] > 0.9).all()
    # Lacking the value costs a match nothing beyond the evidence it would have added;
    # a differing value costs it much more.
    agreeing = missing.across_odds[:25].mean()
    lacking = missing.across_odds[25:50].mean()
    against = differing.across_odds[25:50].mean()
    assert agreeing > lacking > against + 2.0


def _scales() -> dict[str, field_levels.Scale]:
    return {c: field_levels.Scale(exact=1.0, chance=0.5) for c in ("given", "birth", "place")}


CHECKS = {"birth": "birth", "home": "place"}


def test_a_name_read_under_two_salts_shown_to_differ_is_missing_not_disagreeing() -> None:
    """Scale: exact 1.0, chance 0.5 (levels by drop: 0.96+ exact, 0.6- chance).

    Pair 0: the date reads a one-digit slip and the postcode a partial match, so both
    given-name variants were permuted under different salts: no evidence either way.
    Pair 1: the same given readings but the date agrees exactly, so given@birth compared
    like with like: a real disagreement. Pair 2: both salts unreadable (date and postcode
    read chance): the chance reading stands, as it must for two strangers. Pair 3: salts
    differ, yet a variant agrees well, which only the same salt value can give: kept."""
    variants = {
        "given@birth": np.array([0.5, 0.5, 0.5, 0.98]),
        "given@home": np.array([0.5, 0.5, 0.5, 0.5]),
        "birth@home": np.array([0.8, 1.0, 0.5, 0.8]),
        "place@birth": np.array([0.75, 0.75, 0.5, 0.75]),
    }
    best = field_scoring.best_variants(variants)
    out = field_scoring.unsalted_to_missing(best, variants, _scales(), CHECKS)
    given = out["given"]
    assert np.isnan(given[0])
    assert given[1:].tolist() == pytest.approx([0.5, 0.5, 0.98])
    # birth@home is salted by the postcode, shown to differ in pairs 0, 1 and 3, but its
    # readings are above chance, so they stand; place@birth likewise.
    assert out["birth"].tolist() == pytest.approx([0.8, 1.0, 0.5, 0.8])
    assert out["place"].tolist() == pytest.approx([0.75, 0.75, 0.5, 0.75])


def test_without_checks_every_reading_stands() -> None:
    variants = {"given@birth": np.array([0.5]), "birth@home": np.array([0.6])}
    best = field_scoring.best_variants(variants)
    out = field_scoring.unsalted_to_missing(best, variants, _scales(), {})
    assert out["given"].tolist() == [0.5]


def test_the_shipped_variants_name_the_comparison_that_checks_their_salt() -> None:
    checks = salt_checks()
    groups, _, _ = shipped_field_groups()
    for group in groups:
        variant = group.name.partition("@")[2]
        checker = checks[variant]
        # The checking comparison carries the salt's field (or the field it derives from).
        carried = {f for g in groups if g.comparison == checker for f in g.features}
        assert group.salt in carried or group.salt.rsplit("_", 1)[0] in carried, group.name
