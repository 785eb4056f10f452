"""The field model on small synthetic level arrays: it learns m and u, keeps relatives apart,
and links at the cut-off that maximises its own expected F1."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.core import field_levels, field_model, rivals
from coordinator.core.field_model import ACROSS, WITHIN

GROUPS = ("given", "family", "birth", "place")
TOP = field_levels.LEVELS - 1  # "no more than chance"


def pairs(rng: np.random.Generator, chances: list[list[float]], n: int) -> np.ndarray:
    """n pairs ([group, pair] levels) drawn from per-group level chances."""
    return np.vstack([rng.choice(field_levels.LEVELS, n, p=c) for c in chances])


def spread(*weights: float) -> list[float]:
    w = np.array(weights, dtype=float)
    return list(w / w.sum())


# A match's given name is rarely another name with the same salt (level 4: a nickname the
# table lacks); a slip in the salt sends it to chance (level 5) more often.
MATCH = [spread(90, 3, 3, 2, 0.2, 1.8), *[spread(90, 3, 3, 2, 1, 1)] * 3]
STRANGER = [spread(0.1, 0.1, 0.3, 1, 8, 90)] * 4
SIBLING = [  # share family and address, not given name or birthday
    spread(0.2, 0.1, 0.5, 2, 8, 89),
    spread(90, 3, 3, 2, 1, 1),
    spread(0.5, 0.5, 5, 20, 35, 39),
    spread(85, 3, 6, 3, 2, 1),
]
TWIN = [spread(0.1, 0.1, 1, 10, 60, 29), *MATCH[1:]]  # everything but the given name


@pytest.fixture(scope="module")
def run() -> dict[str, np.ndarray]:
    """A run's candidates: 1,000 cross matches, 600 cross siblings, 40 cross twin pairs (each
    twin's record against the other twin's), 2,000 similar strangers; within: 60 duplicates,
    300 siblings, 40 twin pairs. Twins' ends compete with their own matches."""
    rng = np.random.default_rng(3)
    parts = {
        "match": pairs(rng, MATCH, 1000),
        "sibling": pairs(rng, SIBLING, 600),
        "twin": pairs(rng, TWIN, 40),
        "stranger": pairs(rng, STRANGER, 2000),
        "dup": pairs(rng, MATCH, 60),
        "wsib": pairs(rng, SIBLING, 300),
        "wtwin": pairs(rng, TWIN, 40),
    }
    levels = np.concatenate(list(parts.values()), axis=1)
    n_across = 1000 + 600 + 40 + 2000
    kinds = np.array([ACROSS] * n_across + [WITHIN] * 400)
    truth = np.array([True] * 1000 + [False] * 2640 + [True] * 60 + [False] * 340)
    # Ends: match i joins records (i) and (10_000 + i); twin pair j joins the ends of
    # matches j and 20 + j, so each twin competes with its own match at both ends.
    left = np.full(len(kinds), -1)
    right = np.full(len(kinds), -1)
    left[:1000], right[:1000] = np.arange(1000), 10_000 + np.arange(1000)
    twins = slice(1600, 1640)
    left[twins], right[twins] = np.arange(40), 10_000 + 20 + np.arange(40)
    others = slice(1000, 1600)
    left[others], right[others] = 50_000 + np.arange(600), 60_000 + np.arange(600)
    rest = slice(1640, n_across)
    left[rest], right[rest] = 70_000 + np.arange(2000), 80_000 + np.arange(2000)
    _, dense = np.unique(np.concatenate([left, right]), return_inverse=True)
    dense[np.concatenate([left, right]) < 0] = -1
    ends = (dense[: len(kinds)], dense[len(kinds) :])
    sure = np.zeros(len(kinds), dtype=bool)
    sure[:1000] = True  # mutual best cross pairs: the matches
    random_levels = pairs(rng, STRANGER, 50_000)
    model = field_model.fit(GROUPS, levels, kinds, random_levels, ends=ends, sure=sure)
    return {
        "random": random_levels,
        "left": ends[0],
        "right": ends[1],
        "sure": sure,
        "levels": levels,
        "kinds": kinds,
        "truth": truth,
        "p": model.probability(levels, kinds),
        "model": model,  # type: ignore[dict-item]
    }


def test_u_is_the_random_pairs_and_m_the_sure_pairs(run: dict[str, np.ndarray]) -> None:
    model: field_model.FieldModel = run["model"]  # type: ignore[assignment]
    assert model.stranger[:, TOP] == pytest.approx([0.9] * 4, abs=0.01)
    assert model.match[:, 0] == pytest.approx([0.9] * 4, abs=0.03)
    weights = model.weights()
    assert weights["given"][0] > 5 > 0 > weights["given"][TOP]


def test_the_levels_separate_matches_from_the_rest(run: dict[str, np.ndarray]) -> None:
    p, truth, kinds = run["p"], run["truth"], run["kinds"]
    across = kinds == ACROSS
    assert p[across & truth].mean() > 0.95
    assert p[across & ~truth].mean() < 0.05
    # Within, where duplicates are rare, the same levels still give the same verdicts.
    assert p[~across & truth].mean() > 0.85
    assert p[~across & ~truth].mean() < 0.1


def test_priors_are_learnt_per_kind(run: dict[str, np.ndarray]) -> None:
    model: field_model.FieldModel = run["model"]  # type: ignore[assignment]
    assert model.priors[ACROSS, field_model.MATCH] == pytest.approx(1000 / 3640, abs=0.03)
    assert model.priors[WITHIN, field_model.MATCH] == pytest.approx(60 / 400, abs=0.03)


def test_twins_who_agree_on_all_but_the_given_name_are_kept_apart(
    run: dict[str, np.ndarray],
) -> None:
    p, levels = run["p"], run["levels"]
    for twins in (slice(1600, 1640), slice(-40, None)):  # across, then within
        # Different names (given at "little in common" or below) are two children; a twin
        # whose name is one letter from the other's is a coin toss, but few are.
        apart = levels[0, twins] >= TOP - 1
        assert p[twins][apart].max() < 0.5
        assert p[twins].mean() < 0.3
    twin = np.array([[TOP - 1], [0], [0], [0]])
    for kind in (ACROSS, WITHIN):
        assert run["model"].probability(twin, np.array([kind]))[0] < 0.2  # type: ignore[attr-defined]


def test_a_match_with_one_slip_is_still_a_match(run: dict[str, np.ndarray]) -> None:
    model: field_model.FieldModel = run["model"]  # type: ignore[assignment]
    slipped = np.array([[0, 0], [0, 0], [2, 0], [0, 2]])  # a date slip; a moved address
    assert (model.probability(slipped, np.array([ACROSS, ACROSS])) > 0.9).all()


def test_expected_f1_cut_and_own_precision_recall_follow_the_truth(
    run: dict[str, np.ndarray],
) -> None:
    p, truth, kinds = run["p"], run["truth"], run["kinds"]
    across = kinds == ACROSS
    cut = field_model.best_cut(p[across])
    keep = p[across] >= cut
    precision, recall = field_model.expected(p[across], keep)
    true_precision = truth[across][keep].mean()
    true_recall = keep[truth[across]].mean()
    assert precision == pytest.approx(true_precision, abs=0.02)
    assert recall == pytest.approx(true_recall, abs=0.02)


def test_the_cut_maximises_the_models_expected_f1() -> None:
    # Linking the 0.6 pair: expected F1 7.08/7.60 = 0.932 against 5.88/6.40 = 0.919 without.
    chance = np.array([0.99, 0.98, 0.97, 0.6, 0.05, 0.01])
    assert field_model.best_cut(chance) == pytest.approx(0.6)
    # A 0.4 pair is not worth it: 6.68/7.40 = 0.903.
    assert field_model.best_cut(np.array([0.99, 0.98, 0.97, 0.4, 0.05])) == pytest.approx(0.97)
    assert field_model.best_cut(np.zeros(0)) == field_model.CUT
    # Nothing worth linking: the cut stays above the top pair rather than linking it.
    assert field_model.best_cut(np.array([1e-8, 1e-9])) == field_model.MIN_CUT


def test_one_to_one_moves_a_records_excess_match_mass_to_relatives() -> None:
    post = np.zeros((3, 3))
    post[field_model.MATCH] = [0.9, 0.9, 0.8]
    post[field_model.RELATIVE] = [0.1, 0.1, 0.2]
    ends = (np.array([0, 0, 1]), np.array([2, 3, -1]))  # pairs 0 and 1 share a record
    out = field_model.one_to_one(post, ends)
    # Pair 0 wins its record only on ties: both keep 0.9 when equal. Make pair 1 weaker.
    assert out[field_model.MATCH].tolist() == pytest.approx([0.9, 0.9, 0.8])
    post[field_model.MATCH, 1], post[field_model.RELATIVE, 1] = 0.6, 0.4
    out = field_model.one_to_one(post, ends)
    # The record's best keeps 0.9; the runner-up gets what is left of 1.
    assert out[field_model.MATCH].tolist() == pytest.approx([0.9, 0.1, 0.8])
    assert out.sum(axis=0) == pytest.approx([1, 1, 1])


def test_levels_read_each_group_on_its_own_scale() -> None:
    # Identical flipped filters land near 0.96; unrelated ones where random pairs do.
    scales = field_levels.learn_scales(
        {"full": np.full(100, 0.75), "sparse": np.full(100, 0.5)}, flip=0.02
    )
    assert scales["full"].exact == pytest.approx(0.9608)
    dice = np.array([0.96, 0.9, 0.78, 0.7])
    assert scales["sparse"].levels(dice).tolist() == [0, 1, 3, 4]
    assert scales["full"].levels(dice).tolist() == [0, 2, 5, 5]


def test_a_missing_level_adds_nothing_to_a_pair_and_is_not_counted() -> None:
    from coordinator.core.field_levels import MISSING

    levels = np.array([[0, 0, 5, 5], [0, MISSING, 0, MISSING]])
    counted = field_model.count(levels)
    # The second group counts only its two known pairs.
    assert counted[1, 0] == pytest.approx((2 + 0.5) / (2 + 0.5 * field_levels.LEVELS))
    chances = np.full((2, field_levels.LEVELS), 1 / field_levels.LEVELS)
    chances[1] = np.linspace(1, 2, field_levels.LEVELS) / np.linspace(1, 2, 6).sum()
    model = field_model.FieldModel(
        ("a", "b"), np.stack([chances, chances, chances]), np.ones((2, 3)) / 3, 0, 0
    )
    terms = model.log_terms(levels)[0]
    # Pairs 0 and 1 differ only in group b, known (level 0) against missing.
    assert terms[1] == pytest.approx(np.log(chances[0, 0]))
    assert terms[0] == pytest.approx(np.log(chances[0, 0]) + np.log(chances[1, 0]))
    scale = field_levels.Scale(exact=0.96, chance=0.5)
    assert scale.levels(np.array([0.96, np.nan, 0.5])).tolist() == [0, MISSING, 5]
    learnt = field_levels.learn_scales({"b": np.array([0.4, np.nan, np.nan, 0.6])}, 0.02)
    assert learnt["b"].chance == pytest.approx(0.5)


def test_no_class_hides_in_a_comparison_most_pairs_lack() -> None:
    # An identifier (the last group) that most records lack: known in a fifth of the cross
    # pairs and in few within duplicates, but in most within sibling pairs (one service
    # records it, and siblings' numbers share digits: levels 2-3, which no match reaches).
    def known_in(share: float, found: np.ndarray) -> np.ndarray:
        found[-1, rng.random(found.shape[1]) >= share] = field_levels.MISSING
        return found

    match = [*MATCH, spread(97, 1, 1, 1, 0, 0)]
    stranger = [*STRANGER, spread(0.01, 0.01, 0.1, 1, 5, 94)]
    sibling = [
        spread(5, 3, 8, 10, 30, 44),
        spread(90, 3, 3, 2, 1, 1),
        spread(40, 10, 10, 20, 10, 10),
        spread(90, 3, 3, 2, 1, 1),
        spread(0.5, 0.5, 40, 55, 2, 2),
    ]
    rng = np.random.default_rng(2)
    parts = [
        known_in(0.2, pairs(rng, match, 1000)),
        known_in(0.2, pairs(rng, stranger, 2000)),
        known_in(0.05, pairs(rng, match, 100)),  # within duplicates
        known_in(0.95, pairs(rng, sibling, 300)),
        known_in(0.5, pairs(rng, stranger, 1000)),
    ]
    levels = np.concatenate(parts, axis=1)
    kinds = np.array([ACROSS] * 3000 + [WITHIN] * 1400)
    sure = np.zeros(len(kinds), dtype=bool)
    sure[:1000] = True
    model = field_model.fit(
        (*GROUPS, "id"), levels, kinds, known_in(0.3, pairs(rng, stranger, 50_000)), sure=sure
    )
    # A duplicate that agrees on everything it has is a match, not a relative who would
    # differ in the identifier nobody recorded.
    agrees = np.array([[0], [0], [0], [0], [field_levels.MISSING]])
    assert model.probability(agrees, np.array([WITHIN]))[0] > 0.95
    p = model.probability(levels, kinds)
    assert p[3000:3100].mean() > 0.8
    assert p[3100:3400].mean() < 0.1  # the siblings stay apart
    assert field_model.telling_groups(levels, kinds, np.ones(len(kinds))).tolist() == [
        True,
        True,
        True,
        True,
        False,
    ]


def _fit_with_twins(
    seed: int, match: list[list[float]], sibling: list[list[float]], twin: list[list[float]]
) -> tuple[field_model.FieldModel, np.ndarray, np.ndarray]:
    """A fit over 1,000 cross matches (sure), 2,000 strangers, then inside one organisation
    100 duplicates, 600 siblings and 80 twins (the last rows)."""
    rng = np.random.default_rng(seed)
    parts = [
        pairs(rng, match, 1000),
        pairs(rng, STRANGER, 2000),
        pairs(rng, match, 100),  # within duplicates
        pairs(rng, sibling, 600),
        pairs(rng, twin, 80),
    ]
    levels = np.concatenate(parts, axis=1)
    kinds = np.array([ACROSS] * 3000 + [WITHIN] * 780)
    sure = np.zeros(len(kinds), dtype=bool)
    sure[:1000] = True
    model = field_model.fit(GROUPS, levels, kinds, pairs(rng, STRANGER, 50_000), sure=sure)
    return model, levels, kinds


def test_twins_whose_given_names_are_close_are_not_a_match_with_a_slip() -> None:
    # Twins share family, birthday and address; their given names are closer than two
    # strangers' (Renee and Rebecca: level 3, which a match reaches by a nickname or two
    # slips). Siblings, the bulk of the relatives, have other birthdays and one address,
    # so to the relative class a shared birthday and an address with a slip are both rare,
    # and without a class of their own such twins read as a match with a slip in the name.
    match = [spread(85, 3, 4, 6, 0.5, 1.5), *MATCH[1:]]
    sibling = [*SIBLING[:3], spread(98, 0.5, 1, 0.2, 0.2, 0.1)]
    close_twin = [spread(0.1, 0.1, 0.5, 70, 20, 9.3), *match[1:]]
    model, levels, kinds = _fit_with_twins(5, match, sibling, close_twin)
    # Close given names, the rest exact; then the address with a slip too.
    twins = np.array([[3, 3, 3], [0, 0, 0], [0, 0, 0], [0, 2, 3]])
    assert (model.probability(twins, np.array([WITHIN] * 3)) < 0.3).all()
    p = model.probability(levels, kinds)
    assert p[-80:].mean() < 0.2
    # A duplicate with a typo in the name (levels 1-2) is still one child: one letter out
    # (level 2) a little less surely, as a few of these twins read there too.
    near, letter = model.probability(
        np.array([[1, 2], [0, 0], [0, 0], [0, 0]]), np.array([WITHIN] * 2)
    )
    assert near > 0.9
    assert letter > 0.75
    assert p[3000:3100].mean() > 0.9


def test_twins_named_alike_are_not_a_duplicate_with_a_typo() -> None:
    # Twins often get names one letter apart (Oisin and Osian, Ifan and Ioan: level 2), as
    # often as, or more than, a duplicate's name slips that far. m is read from the cross
    # matches (4% at level 2); inside one organisation the pairs one letter out, all else
    # exact, are mostly such twins, and EM counts how many the duplicates' slips explain.
    match = [spread(85, 3, 4, 6, 0.5, 1.5), *MATCH[1:]]
    twin_alike = [spread(0.1, 0.1, 30, 20, 40, 9.8), *match[1:]]
    model, levels, kinds = _fit_with_twins(7, match, SIBLING, twin_alike)
    # One letter out, the rest exact, inside one organisation: twins, not one child.
    alike = np.array([[2], [0], [0], [0]])
    assert model.probability(alike, np.array([WITHIN]))[0] < 0.5
    p = model.probability(levels, kinds)
    assert p[-80:].mean() < 0.2
    # An as-good-as-identical name is still one child, and so are the cross matches.
    same = np.array([[0, 1], [0, 0], [0, 0], [0, 0]])
    assert (model.probability(same, np.array([WITHIN] * 2)) > 0.9).all()
    dups = slice(3000, 3100)
    assert p[dups][levels[0, dups] <= 1].mean() > 0.9
    assert p[:1000].mean() > 0.97


def _scale_pair_by_pair(p: np.ndarray, ends: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The one-to-one factor written the plain way: every bound pair, a maximum per record."""
    scale = np.ones(len(p))
    for end in ends:
        bound = np.flatnonzero(end >= 0)
        at = end[bound]
        total = np.bincount(at, weights=p[bound])
        best = np.zeros(len(total))
        np.maximum.at(best, at, p[bound])
        rest = total[at] - best[at]
        room = np.where(rest > 0, (1.0 - best[at]) / np.maximum(rest, 1e-300), 1.0)
        runner = p[bound] < best[at]
        factor = np.where(runner & (total[at] > 1.0), np.clip(room, 0.0, 1.0), 1.0)
        scale[bound] = np.minimum(scale[bound], factor)
    return scale


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_one_to_one_factor_weighs_only_records_with_rivals_as_the_plain_rule_does(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    n = 5_000

    def end() -> np.ndarray:
        return np.where(rng.random(n) < 0.2, -1, rng.integers(0, 1_500, n))

    ends = (end(), end())
    p = rng.choice([0.0, 0.3, 0.7, 0.99, 1.0], n) * rng.choice([1.0, rng.random()], n)
    expected = _scale_pair_by_pair(p, ends)
    assert np.array_equal(rivals.scale(p, ends), expected)
    assert (expected < 1).sum() > 100  # records with rival candidates were scaled


@pytest.mark.parametrize("missing", [True, False])
def test_distinct_columns_are_numpys_unique_columns_in_the_same_order(missing: bool) -> None:
    rng = np.random.default_rng(7)
    table = rng.integers(-1 if missing else 0, 6, (6, 20_000)).astype(np.int8)
    expected_rows, expected_inverse = np.unique(table, axis=1, return_inverse=True)
    rows, inverse = field_model.distinct_columns(table)
    assert np.array_equal(rows, expected_rows)
    assert np.array_equal(inverse, expected_inverse.ravel())
    assert np.array_equal(rows[:, inverse], table)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_mass_moved_per_row_is_the_pair_by_pair_rule_summed_back(seed: int) -> None:
    # EM reads the pairs' probabilities from their rows and scales only records over one
    # match: the per-row sums must be those of scaling every pair and summing back.
    rng = np.random.default_rng(seed)
    n, rows = 5_000, 40
    inverse = rng.integers(0, rows, n)
    p_rows = rng.choice([0.0, 0.3, 0.7, 0.99, 1.0], rows) * rng.choice([1.0, 0.5], rows)

    def end() -> np.ndarray:
        return np.where(rng.random(n) < 0.2, -1, rng.integers(0, 1_500, n))

    ends = (end(), end())
    weights = rng.poisson(1.0, n).astype(np.float64)
    p = p_rows[inverse]
    shift = p * (1.0 - _scale_pair_by_pair(p, ends))
    groups = rivals.Rivals.of(ends, inverse)
    for w in (None, weights):
        expected = np.bincount(inverse, weights=shift if w is None else shift * w, minlength=rows)
        assert np.allclose(rivals.moved(p_rows, groups, w), expected, rtol=1e-12, atol=1e-12)
    assert expected.sum() > 10  # records over one match did move mass


def test_probabilities_and_log_odds_per_distinct_row_are_those_of_each_pair(
    run: dict[str, np.ndarray],
) -> None:
    # Worked out once per distinct (levels, kind) row and spread back: bit for bit the
    # figures of working every pair out on its own.
    model: field_model.FieldModel = run["model"]  # type: ignore[assignment]
    levels, kinds = run["levels"], run["kinds"]
    z = model.log_terms(levels) + np.log(model.priors[kinds]).T
    rest = np.logaddexp.reduce(np.delete(z, field_model.MATCH, axis=0), axis=0)
    each = field_model._posterior(model.log_terms(levels), model.priors, kinds)
    assert np.array_equal(model.probability(levels, kinds), each[field_model.MATCH])
    assert np.array_equal(model.log_odds(levels, kinds), z[field_model.MATCH] - rest)
    assert len(np.unique(model.probability(levels, kinds))) > 50  # many rows, not one


def test_em_stops_once_what_is_left_to_move_is_under_the_tolerance() -> None:
    shrinking = [0.1 * 0.5**i for i in range(12)]  # what is left after step i: step i
    assert not field_model.settled(shrinking[:3], tolerance=1e-3)
    stop = next(i for i in range(1, 13) if field_model.settled(shrinking[:i], tolerance=1e-3))
    assert shrinking[stop - 1] < 1e-3 <= shrinking[stop - 3]
    assert not field_model.settled([1e-4, 1.1e-4, 1.2e-4], tolerance=1e-3)  # drifting away
    assert not field_model.settled([0.3, 1e-9, 0.3], tolerance=1e-3)  # one lull is not enough


def test_a_settled_fit_links_what_the_fit_run_to_the_end_links(
    run: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopping once the match probabilities settle must change no linked pair and no
    # expected count, against the fit run for every one of its steps.
    levels, kinds = run["levels"], run["kinds"]
    early: field_model.FieldModel = run["model"]  # type: ignore[assignment]
    monkeypatch.setattr(field_model, "SETTLED", 0.0)
    full = field_model.fit(
        GROUPS, levels, kinds, run["random"], ends=(run["left"], run["right"]), sure=run["sure"]
    )
    assert early.iterations < full.iterations
    p, q = early.probability(levels, kinds), full.probability(levels, kinds)
    assert np.abs(p - q).max() < 1e-2
    for k in (ACROSS, WITHIN):
        a, b = p[kinds == k], q[kinds == k]
        assert np.array_equal(a >= field_model.best_cut(a), b >= field_model.best_cut(b))
        assert abs(a.sum() - b.sum()) < 1e-3 * b.sum()


def test_an_identifier_that_agrees_keeps_a_match_whose_names_were_swapped() -> None:
    """FEBRL swaps given and family names: both read chance while the date, the place and a
    local id agree exactly. The given name's near-match class (twins), agreeing on the id
    like a match, took such pairs; held to a random pair's agreement there
    (``identifiers``), it cannot, and twins, whose ids differ, stay apart."""
    groups = (*GROUPS, "local_id")
    rng = np.random.default_rng(5)
    id_match, id_stranger = spread(95, 2, 1, 1, 0.5, 0.5), spread(0, 0, 0.5, 5, 10, 84.5)
    swapped_names = [[0, 0, 0, 0, 0.1, 0.9]] * 2
    levels = np.concatenate(
        [
            pairs(rng, [*MATCH, id_match], 1000),
            pairs(rng, [*swapped_names, MATCH[2], MATCH[3], id_match], 120),
            pairs(rng, [*TWIN, id_stranger], 60),
            pairs(rng, [*STRANGER, id_stranger], 3000),
        ],
        axis=1,
    )
    kinds = np.full(levels.shape[1], ACROSS)
    sure = np.arange(levels.shape[1]) < 1000
    random_levels = pairs(rng, [*STRANGER, id_stranger], 50_000)
    swapped, twins = slice(1000, 1120), slice(1120, 1180)
    found = {}
    for identifiers in ((), ("local_id",)):
        model = field_model.fit(
            groups, levels, kinds, random_levels, sure=sure, identifiers=identifiers
        )
        found[identifiers] = model.probability(levels, kinds)
    held = found[("local_id",)]
    assert (held[swapped] > 0.5).mean() > 0.95
    assert held[twins].max() < 0.2
    assert held[:1000].mean() > 0.99
    assert (found[()][swapped] > 0.5).mean() < 0.05  # as it was: the swaps read as twins
