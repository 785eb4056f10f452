"""Candidate floors follow the chance level of a run's own record CLKs (coordinator.core.chance)."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.core import chance, runs
from coordinator.core.part_pass import PartPass, native_block
from coordinator.core.score_model import FLOOR, SALTED_FLOOR, SALTED_PART_FLOOR

PARTS, RAW_BITS = 3, 512  # the shipped salted record CLK: three 512-bit parts, each balanced


def balanced(raw: np.ndarray, seed: int = 0) -> np.ndarray:
    """Packed rows as a node sends them: each raw part with its complement, permuted."""
    order = np.random.default_rng(seed).permutation(2 * RAW_BITS)
    parts = [
        np.concatenate([raw[:, k], 1 - raw[:, k]], axis=1)[:, order].astype(np.uint8)
        for k in range(PARTS)
    ]
    return np.packbits(np.concatenate(parts, axis=1), axis=1)


def records(n: int, fill: float, seed: int) -> np.ndarray:
    """Raw part bits (n x parts x bits) of unrelated records, each part ``fill`` full."""
    return (np.random.default_rng(seed).random((n, PARTS, RAW_BITS)) < fill).astype(np.uint8)


def with_errors(raw: np.ndarray, share: float, seed: int) -> np.ndarray:
    """The same records with ``share`` of each part's raw bits re-drawn (a typo or two)."""
    rng = np.random.default_rng(seed)
    redraw = rng.random(raw.shape) < share
    fill = raw.mean()
    return np.where(redraw, rng.random(raw.shape) < fill, raw).astype(np.uint8)


def test_half_full_parts_keep_the_shipped_floors() -> None:
    rows = balanced(records(1_200, 0.5, seed=1))
    level = chance.measure([rows[:600], rows[600:]], PARTS)
    assert level.whole == pytest.approx(0.5, abs=0.01)
    assert (level.whole_floor, level.part_floor) == (SALTED_FLOOR, SALTED_PART_FLOOR)
    assert level.caveats() == ()


def test_dense_parts_lift_the_floors_so_strangers_stop_being_candidates() -> None:
    # An added address line, town and local id fill every part: p = 0.8, chance ~0.68.
    left_raw, right_raw = records(400, 0.8, seed=2), records(400, 0.8, seed=3)
    matches = with_errors(left_raw[:100], 0.1, seed=4)
    left, right = balanced(left_raw), balanced(np.concatenate([matches, right_raw[100:]]))
    level = chance.measure([left, right], PARTS)
    assert level.whole == pytest.approx(0.68, abs=0.02)
    assert level.whole_floor > 0.7 and level.part_floor > 0.75

    def found(whole: float, part: float) -> set[tuple[int, int]]:
        _, i, j = native_block(left, right, whole, PartPass(PARTS, part))
        return set(zip(i.tolist(), j.tolist(), strict=True))

    old, new = found(SALTED_FLOOR, SALTED_PART_FLOOR), found(level.whole_floor, level.part_floor)
    true_pairs = {(k, k) for k in range(100)}
    # the fixed floors keep nearly every pair of strangers (FEBRL4 ran out of memory on them)
    assert len(old - true_pairs) > 0.9 * (400 * 400 - 100)
    assert len(new - true_pairs) < 0.001 * 400 * 400
    assert true_pairs <= new


def test_the_floor_is_the_same_however_the_records_are_split_or_ordered() -> None:
    rows = balanced(records(3_000, 0.75, seed=5))
    whole = chance.measure([rows], PARTS)
    shuffled = rows[np.random.default_rng(6).permutation(len(rows))]
    split = chance.measure([shuffled[:700], shuffled[700:2_000], shuffled[2_000:]], PARTS)
    reversed_datasets = chance.measure([shuffled[2_000:], shuffled[:2_000]], PARTS)
    assert whole == split == reversed_datasets
    assert whole.pairs == 1_500


def test_identical_rows_do_not_change_the_sample() -> None:
    # a duplicate referral sent twice: the same bytes, interchangeable in the ordering
    rows = balanced(records(500, 0.6, seed=7))
    doubled = np.concatenate([rows, rows[:10]])
    first = chance.measure([doubled[:250], doubled[250:]], PARTS)
    again = chance.measure([doubled[::-1]], PARTS)
    assert first == again


def test_a_record_clk_too_full_to_separate_anything_is_capped_and_says_so() -> None:
    rows = balanced(records(400, 0.97, seed=8))
    level = chance.measure([rows], PARTS)
    assert level.whole_floor == level.part_floor == chance.CEILING
    assert [c.code for c in level.caveats()] == ["dense_record_clk"]
    assert level.caveats()[0].untrusted


def test_too_few_records_and_the_unsalted_clk_keep_the_fixed_floors() -> None:
    rows = balanced(records(60, 0.9, seed=9))
    assert chance.measure([rows], PARTS) == chance.SHIPPED
    unsalted = chance.of_run([balanced(records(400, 0.9, seed=10))], "unsalted")
    assert unsalted.whole_floor == FLOOR and unsalted.pairs == 0
    assert runs.floor_for("unsalted", unsalted) == FLOOR


def test_floors_round_up_so_nearby_chance_levels_agree() -> None:
    a, b = chance.Chance(whole=0.6301), chance.Chance(whole=0.6309)
    assert a.whole_floor == b.whole_floor == 0.69
    assert chance.Chance(whole=0.4).whole_floor == SALTED_FLOOR  # never lowered


def sparse_third_part(n: int, seed: int) -> np.ndarray:
    """Raw part bits of unrelated records whose first two parts are dense (an address line,
    a town and a local id hashed in, as FEBRL maps them) and whose third is half full."""
    raw = records(n, 0.8, seed)
    raw[:, 2] = (np.random.default_rng(seed + 100).random((n, RAW_BITS)) < 0.5).astype(np.uint8)
    return raw


def test_each_part_gets_the_floor_of_its_own_chance_level() -> None:
    rows = balanced(sparse_third_part(1_000, seed=11))
    level = chance.measure([rows[:500], rows[500:]], PARTS)
    dense, _, sparse = level.by_part
    assert dense == pytest.approx(0.68, abs=0.02) and sparse == pytest.approx(0.5, abs=0.01)
    assert level.part == max(level.by_part)
    floors = level.part_floors
    assert floors[0] == floors[1] == level.part_floor > 0.75
    assert floors[2] == SALTED_PART_FLOOR  # at the generator's chance: the shipped floor
    passes = level.part_pass(field_scoring=True)
    assert passes is not None and passes.part_floors == floors
    figures = level.figures()
    assert figures["floor_parts"] == list(floors) and len(figures["chance_parts"]) == 3  # type: ignore[arg-type]


def test_a_pair_agreeing_only_in_its_sparse_part_is_kept_by_that_part_s_floor() -> None:
    left_raw, right_raw = sparse_third_part(400, seed=12), sparse_third_part(400, seed=13)
    # 60 true pairs: the sparse part (their names, say) agrees on about 3 bits in 4, the dense
    # parts (a moved address, a new local id) are unrelated.
    right_raw[:60, 2] = with_errors(left_raw[:60, 2:3], 0.5, seed=14)[:, 0]
    left, right = balanced(left_raw), balanced(right_raw)
    level = chance.measure([left, right], PARTS)
    true_pairs = {(k, k) for k in range(60)}

    def found(parts: PartPass | None) -> set[tuple[int, int]]:
        # the part pass alone (no whole-row Dice reaches 2): what it adds is at stake here
        _, i, j = native_block(left, right, 2.0, parts)
        return set(zip(i.tolist(), j.tolist(), strict=True))

    own = found(level.part_pass(field_scoring=True))
    shared = found(PartPass(PARTS, level.part_floor))  # one floor, the fullest part's
    assert true_pairs <= own
    assert len(true_pairs & shared) < 20  # most lost: the sparse part held to the dense floor
    assert len(own - true_pairs) < 0.002 * 400 * 400  # and strangers still stay out


def test_half_full_parts_keep_one_shipped_part_floor() -> None:
    # the generator's case: every part's floor is the shipped one, so the pass is as before
    rows = balanced(records(1_200, 0.5, seed=15))
    level = chance.measure([rows], PARTS)
    assert level.part_floors == (SALTED_PART_FLOOR,) * PARTS
    assert level.part_pass(field_scoring=True) == PartPass(PARTS, SALTED_PART_FLOOR)


def test_per_part_floors_are_the_same_however_the_records_are_split() -> None:
    rows = balanced(sparse_third_part(2_000, seed=16))
    shuffled = rows[np.random.default_rng(17).permutation(len(rows))]
    one = chance.measure([rows], PARTS)
    three = chance.measure([shuffled[:300], shuffled[300:1_100], shuffled[1_100:]], PARTS)
    assert one.part_floors == three.part_floors and len(set(one.part_floors)) == 2
