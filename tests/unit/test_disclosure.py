"""coordinator.core.disclosure and queries: suppression, rounding, secondary suppression, cell keys.

The secondary-suppression tests attack each protected table with an integer
solver (scipy's ``milp``): the attacker knows the rule, every published cell
and total, and that counts are whole and never negative; it must still be
unable to pin any primary cell to one value. (An attacker who also knew which
withheld cells are primary could pin a cell in some tiny tables, e.g. twenty
children in ten cells; see the issue note.) The differencing test plays an attacker who
sees a count with and without one person and guesses whether they were there.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from coordinator.core import disclosure, queries
from coordinator.core.disclosure import Constraint, ExactCell, Protected, protect, rule_for

HES = rule_for("hospital-statistics")
STRICT = rule_for("strict")
UNROUNDED = rule_for("unrounded")
ORGS = ("health-visiting", "flying-start", "childcare")


# --------------------------------------------------------------------------- presets
def test_presets_are_the_hospital_statistics_convention_and_a_stricter_one() -> None:
    assert (HES.threshold, HES.rounding) == (8, 5)
    assert (STRICT.threshold, STRICT.rounding) == (10, 5)
    assert (UNROUNDED.threshold, UNROUNDED.rounding) == (10, 1)
    assert rule_for("strict", threshold=12).threshold == 12
    assert rule_for("hospital-statistics", rounding=10).rounding == 10
    with pytest.raises(ValueError, match="unknown disclosure preset"):
        rule_for("lenient")
    assert "1 to 7" in HES.describe() and "nearest 5" in HES.describe()


@pytest.mark.parametrize("rule", [HES, STRICT])
def test_small_counts_are_suppressed_zero_is_zero_and_others_are_multiples_of_the_base(
    rule: disclosure.Rule,
) -> None:
    rng = random.Random(5)
    for value in range(0, 400):
        [cell] = protect([ExactCell(value, rng.randrange(256))], rule)
        if value == 0:
            assert cell == Protected(0, False)
        elif value < rule.threshold:
            assert cell.suppressed and cell.value is None and cell.reason == "primary"
        else:
            assert cell.value is not None and not cell.suppressed
            assert cell.value % rule.rounding == 0
            assert cell.value >= rule.threshold - rule.rounding // 2
            # Perturbation moves a count by at most one before rounding.
            assert abs(cell.value - value) <= rule.rounding // 2 + 1


def test_hospital_statistics_shows_one_to_seven_as_suppressed_and_eight_as_a_released_ten() -> None:
    released = [protect([ExactCell(v, 100)], HES)[0] for v in range(1, 9)]
    assert [c.suppressed for c in released] == [True] * 7 + [False]
    assert released[-1].value == 10  # key 100 adds no noise; 8 rounds to 10


def test_rounding_is_to_the_nearest_base_with_halves_up() -> None:
    assert [disclosure.round_to(v, 5) for v in (10, 12, 13, 17, 18)] == [10, 10, 15, 15, 20]
    assert disclosure.round_to(13, 1) == 13


def test_the_same_cell_key_always_gets_the_same_noise_and_the_ptable_covers_every_key() -> None:
    noises = [disclosure.noise(k) for k in range(256)]
    assert noises.count(1) == noises.count(-1) == 32  # unbiased
    assert noises.count(0) == 192
    assert [protect([ExactCell(123, 7)], HES)[0] for _ in range(5)] == [
        protect([ExactCell(123, 7)], HES)[0]
    ] * 5
    with pytest.raises(ValueError):
        disclosure.noise(256)


def test_record_keys_are_stable_spread_and_depend_on_the_project_key() -> None:
    first = [disclosure.record_key(b"k" * 32, f"entity-{i}") for i in range(4000)]
    again = [disclosure.record_key(b"k" * 32, f"entity-{i}") for i in range(4000)]
    other = [disclosure.record_key(b"j" * 32, f"entity-{i}") for i in range(4000)]
    assert first == again
    assert first != other
    assert set(first) == set(range(256))
    assert disclosure.cell_key([200, 100]) == 44


# --------------------------------------------------------------------------- tables
def entities(rng: random.Random, n: int, areas: int, bands: int) -> list[queries.Entity]:
    out = []
    for _ in range(n):
        datasets = frozenset(o for o in ORGS if rng.random() < 0.5) or frozenset({ORGS[0]})
        out.append(
            queries.Entity(
                datasets,
                {
                    "area": f"A{min(int(rng.expovariate(0.6)), areas - 1)}",
                    "age_band": f"{rng.randrange(bands)}-{rng.randrange(bands) + 1}",
                },
                rng.randrange(256),
            )
        )
    return out


def test_a_breakdown_counts_entities_with_every_margin_from_exact_values() -> None:
    rng = random.Random(3)
    people = entities(rng, 500, 4, 3)
    table = queries.count(people, queries.CountQuery(by=("area", "datasets")), ORGS)
    by_coords = {c.coordinates: c.exact.value for c in table.cells}
    assert by_coords[(None, None)] == 500
    for area in {e.attributes["area"] for e in people}:
        assert by_coords[(area, None)] == sum(1 for e in people if e.attributes["area"] == area)
    combo = "health-visiting+childcare"
    assert by_coords[(None, combo)] == sum(
        1 for e in people if e.datasets == {"health-visiting", "childcare"}
    )
    # Every constraint adds up exactly.
    values = [c.exact.value for c in table.cells]
    for constraint in table.constraints:
        assert values[constraint.total] == sum(values[p] for p in constraint.parts)


def test_in_a_but_not_in_b_keeps_only_those_entities() -> None:
    rng = random.Random(4)
    people = entities(rng, 300, 3, 2)
    query = queries.CountQuery(
        by=(), datasets_in=("health-visiting",), datasets_out=("flying-start",)
    )
    [cell] = queries.count(people, query, ORGS).cells
    assert cell.exact.value == sum(
        1 for e in people if "health-visiting" in e.datasets and "flying-start" not in e.datasets
    )
    assert "but not in flying-start" in query.describe()


def test_queries_naming_unreleased_attributes_or_unknown_datasets_are_refused() -> None:
    with pytest.raises(queries.QueryError, match="not an attribute this project releases"):
        queries.check(queries.CountQuery(by=("ethnicity",)), ORGS, ("area",))
    with pytest.raises(queries.QueryError, match="not a dataset"):
        queries.check(queries.CountQuery(datasets_in=("school",)), ORGS, ())
    with pytest.raises(queries.QueryError, match="both required and excluded"):
        queries.check(queries.CountQuery(datasets_in=ORGS[:1], datasets_out=ORGS[:1]), ORGS, ())
    queries.check(queries.CountQuery(by=("datasets", "area")), ORGS, ("area",))


def test_disagreeing_attribute_values_follow_the_projects_precedence() -> None:
    values = [("flying-start", "W1"), ("health-visiting", "W2"), ("childcare", "W1")]
    assert queries.resolve(values, ["health-visiting", "flying-start"], ORGS) == "W2"
    assert queries.resolve(values, [], ORGS) == "W1"  # most common
    tie = [("flying-start", "W1"), ("health-visiting", "W2")]
    assert queries.resolve(tie, [], ORGS) == "W2"  # tie: first organisation of the project
    assert queries.resolve([], [], ORGS) == queries.UNKNOWN


# --------------------------------------------------------------------------- secondary
def attack_bounds(
    table: queries.ExactTable,
    released: Sequence[Protected],
    threshold: int,
    *,
    knows_labels: bool = False,
) -> dict[int, tuple[float, float]]:
    """The tightest range an attacker can give each primary-suppressed cell (integer solver).

    The attacker knows the rule, every published cell and total, and that counts are
    whole and not negative: a withheld cell may be anything from 0 up, since a
    secondary cell can hold any value (the usual audit of a suppressed table). With
    ``knows_labels`` it also knows which withheld cells are primary (1 to threshold-1)
    and which secondary (0, or threshold and above).
    """
    hidden = [i for i, c in enumerate(released) if c.suppressed]
    column = {cell: j for j, cell in enumerate(hidden)}
    big = 1e6
    n = len(hidden)
    # Variables: the hidden values, then one binary per secondary cell (0, or >= threshold).
    secondary = [i for i in hidden if knows_labels and released[i].reason == "secondary"]
    width = n + len(secondary)
    rows, lower, upper = [], [], []
    for constraint in table.constraints:
        members = [(constraint.total, -1.0)] + [(p, 1.0) for p in constraint.parts]
        row = np.zeros(width)
        constant = 0.0
        for cell, sign in members:
            if cell in column:
                row[column[cell]] += sign
            else:
                value = released[cell].value
                assert value is not None
                constant += sign * value
        if row.any():
            rows.append(row)
            lower.append(-constant)
            upper.append(-constant)
    for b, cell in enumerate(secondary):
        # v <= big * z and v >= threshold * z
        row = np.zeros(width)
        row[column[cell]], row[n + b] = 1.0, -big
        rows.append(row)
        lower.append(-np.inf)
        upper.append(0.0)
        row = np.zeros(width)
        row[column[cell]], row[n + b] = 1.0, -float(threshold)
        rows.append(row)
        lower.append(0.0)
        upper.append(np.inf)
    labelled = [knows_labels and released[i].reason == "primary" for i in hidden]
    lo = np.array([1.0 if p else 0.0 for p in labelled] + [0.0] * len(secondary))
    hi = np.array([threshold - 1.0 if p else big for p in labelled] + [1.0] * len(secondary))
    constraints = [LinearConstraint(np.array(rows), lower, upper)] if rows else []
    out = {}
    for cell in hidden:
        if released[cell].reason != "primary":
            continue
        found = []
        for sign in (1.0, -1.0):
            c = np.zeros(width)
            c[column[cell]] = sign
            result = milp(
                c, constraints=constraints, integrality=np.ones(width), bounds=Bounds(lo, hi)
            )
            assert result.success, result.message
            found.append(sign * result.fun)
        out[cell] = (found[0], found[1])
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    size=st.integers(20, 400),
    areas=st.integers(2, 6),
    bands=st.integers(2, 5),
    two_attributes=st.booleans(),
)
def test_no_suppressed_cell_of_an_unrounded_table_can_be_recovered_exactly(
    seed: int, size: int, areas: int, bands: int, two_attributes: bool
) -> None:
    people = entities(random.Random(seed), size, areas, bands)
    by = ("area", "age_band") if two_attributes else ("area", "datasets")
    table = queries.count(people, queries.CountQuery(by=by), ORGS)
    released = protect([c.exact for c in table.cells], UNROUNDED, table.constraints)
    for i, (cell, out) in enumerate(zip(table.cells, released, strict=True)):
        if out.suppressed:
            assert out.reason == ("primary" if 0 < cell.exact.value < 10 else "secondary"), i
        else:
            assert out.value == cell.exact.value
    for cell, (low, high) in attack_bounds(table, released, UNROUNDED.threshold).items():
        assert low <= table.cells[cell].exact.value <= high
        assert high > low, f"cell {table.cells[cell].coordinates} is pinned to {low}"


def test_the_solver_attack_does_recover_a_cell_without_secondary_suppression() -> None:
    # A row of three cells and its total, one small: publishing the rest gives it away.
    cells = [ExactCell(v) for v in (40, 3, 25, 68)]
    margin = [Constraint(3, (0, 1, 2))]
    only_primary = [
        Protected(None, True, "primary") if 0 < c.value < 10 else Protected(c.value, False)
        for c in cells
    ]
    table = queries.ExactTable(
        ("x",), tuple(queries.TableCell((str(i),), c) for i, c in enumerate(cells)), tuple(margin)
    )
    assert attack_bounds(table, only_primary, 10) == {1: (3.0, 3.0)}
    protected = protect(cells, UNROUNDED, margin)
    assert [c.suppressed for c in protected] == [False, True, False, True]
    low, high = attack_bounds(table, protected, 10)[1]
    assert low == 0.0 and high > 3.0
    # Even knowing the 3 is primary and the total secondary, the attacker gets 1..9.
    assert attack_bounds(table, protected, 10, knows_labels=True)[1] == (1.0, 9.0)


# --------------------------------------------------------------------------- differencing
def differencing_accuracy(rule: disclosure.Rule, targets: int, seed: int) -> float:
    """An attacker sees a count with a target person, or without; and the count minus them.

    Half the targets are in the cell (the two counts cover different sets of
    people) and half are not (the two counts cover the same people). The
    attacker sees both released values and guesses "there" when they differ,
    which is the best guess: without the target the two are always equal.
    Cell sizes come from breakdowns of a synthetic population by area, age
    band and dataset combination (a person lands in a cell in proportion to
    its size, as a random target does).
    """
    rng = random.Random(seed)
    project_key = rng.randbytes(32)
    people = entities(rng, 12_000, 8, 5)
    for i, person in enumerate(people):
        people[i] = queries.Entity(
            person.datasets, person.attributes, disclosure.record_key(project_key, f"e{i}")
        )
    table = queries.count(people, queries.CountQuery(by=("area", "age_band", "datasets")), ORGS)
    members: dict[tuple[str | None, ...], list[int]] = {}
    for i, person in enumerate(people):
        coords = tuple(queries.coordinate(person, d, ORGS) for d in table.dimensions)
        members.setdefault(coords, []).append(i)
    correct = 0
    for _ in range(targets):
        target = rng.randrange(len(people))
        person = people[target]
        coords = tuple(queries.coordinate(person, d, ORGS) for d in table.dimensions)
        others = [people[i].record_key for i in members[coords] if i != target]
        without = protect([ExactCell(len(others), disclosure.cell_key(others))], rule)[0]
        there = rng.random() < 0.5
        if there:
            keys = [*others, person.record_key]
            shown = protect([ExactCell(len(keys), disclosure.cell_key(keys))], rule)[0]
        else:
            shown = without
        guess = shown != without
        correct += guess == there
    return correct / targets


@pytest.mark.parametrize("rule", [HES, STRICT])
def test_an_attacker_differencing_one_person_is_right_at_most_six_times_in_ten(
    rule: disclosure.Rule,
) -> None:
    # 0.6 is also the floor for any rule that publishes multiples of 5 and is
    # right on average (see coordinator.core.disclosure), so the measured
    # accuracy sits at it: allow three standard errors of sampling, no more.
    targets = 10_000
    accuracy = differencing_accuracy(rule, targets, seed=11)
    assert 0.5 <= accuracy <= 0.6 + 3 * (0.25 / targets) ** 0.5


def test_the_differencing_attack_wins_against_unrounded_counts() -> None:
    # The same attacker against exact counts: the test would catch a rule that leaks.
    assert differencing_accuracy(UNROUNDED, 2_000, seed=11) > 0.75
