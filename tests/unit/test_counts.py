"""coordinator.core.counts: exact overlap counts, then small-number suppression."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator.core.counts import CountCell, overlap, suppress_small

DATASETS = ("health-visiting", "childcare", "family-support")
HV, CC, FS = DATASETS


def entity(*datasets: str) -> frozenset[str]:
    return frozenset(datasets)


def test_overlap_counts_every_exact_combination_in_dataset_order() -> None:
    entities = (
        [entity(HV)] * 5
        + [entity(CC)] * 3
        + [entity(HV, CC)] * 4
        + [entity(FS, HV)] * 2  # listed out of order on purpose
        + [entity(HV, CC, FS)] * 1
    )

    table = overlap(entities, DATASETS)

    assert list(table.items()) == [
        ((HV,), 5),
        ((CC,), 3),
        ((FS,), 0),
        ((HV, CC), 4),
        ((HV, FS), 2),
        ((CC, FS), 0),
        ((HV, CC, FS), 1),
    ]


def test_overlap_of_nothing_is_all_zeros() -> None:
    table = overlap([], DATASETS)
    assert len(table) == 7
    assert set(table.values()) == {0}


def test_an_entity_in_no_dataset_is_not_counted() -> None:
    assert sum(overlap([entity(), entity(HV)], DATASETS).values()) == 1


def test_overlap_counts_each_entity_once() -> None:
    entities = [entity(HV, CC)] * 6 + [entity(CC)] * 2
    table = overlap(entities, DATASETS)
    assert sum(table.values()) == len(entities)


def test_suppression_hides_1_to_threshold_minus_1_and_releases_the_rest() -> None:
    counts = {(HV,): 0, (CC,): 1, (FS,): 9, (HV, CC): 10, (HV, FS): 11, (CC, FS): 250}

    table = suppress_small(counts, 10)

    assert table.cells == (
        CountCell((HV,), 0, False),
        CountCell((CC,), None, True),
        CountCell((FS,), None, True),
        CountCell((HV, CC), 10, False),
        CountCell((HV, FS), 11, False),
        CountCell((CC, FS), 250, False),
    )
    assert table.withheld == 2
    assert table.rule == "counts from 1 to 9 are suppressed"


def test_threshold_of_one_suppresses_nothing() -> None:
    table = suppress_small({(HV,): 1, (CC,): 0}, 1)
    assert [c.value for c in table.cells] == [1, 0]
    assert table.withheld == 0
    assert table.rule == "no suppression"


@pytest.mark.parametrize("threshold", [2, 5, 10, 20])
def test_each_value_below_threshold_is_withheld(threshold: int) -> None:
    counts = {(f"d{v}",): v for v in range(threshold + 3)}
    table = suppress_small(counts, threshold)
    for cell in table.cells:
        (name,) = cell.datasets
        value = counts[(name,)]
        assert cell.suppressed is (0 < value < threshold)
        assert cell.value == (None if cell.suppressed else value)


# --- property: what a suppressed cell held never leaves -------------------------------------

COMBOS = [c for n in (1, 2, 3) for c in itertools.combinations(DATASETS, n)]


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[tuple[str, ...], int], int]:
    threshold = draw(st.integers(1, 30))
    values = draw(
        st.lists(
            st.integers(0, 3 * threshold) | st.integers(0, 10_000),
            min_size=len(COMBOS),
            max_size=len(COMBOS),
        )
    )
    return dict(zip(COMBOS, values, strict=True)), threshold


@given(tables(), st.data())
def test_a_suppressed_value_never_appears_in_the_table(
    table_and_threshold: tuple[dict[tuple[str, ...], int], int], data: st.DataObject
) -> None:
    counts, threshold = table_and_threshold

    table = suppress_small(counts, threshold)

    released = [c.value for c in table.cells if not c.suppressed]
    for cell in table.cells:
        if cell.suppressed:
            assert cell.value is None
            assert counts[cell.datasets] not in released
    # Stronger: the table is the same whatever the suppressed cells held, so nothing about
    # their exact values can be read from it.
    replaced = {
        combo: data.draw(st.integers(1, threshold - 1)) if 0 < value < threshold else value
        for combo, value in counts.items()
    }
    assert suppress_small(replaced, threshold) == table
