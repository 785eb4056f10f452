"""The part pass: a salted record CLK's pairs whose best part reaches the part floor become
candidates too, scored by their whole-row Dice (coordinator.core.part_pass)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from coordinator.core import comparison, kernel
from coordinator.core.candidates import at_least
from coordinator.core.comparison import PairChunk, compare_pairs, plan_pair_chunks
from coordinator.core.part_pass import PartPass, whole_dice
from coordinator.core.score_model import SALTED_FLOOR, SALTED_PART_FLOOR, part_pass_for
from hublink.spec import LinkageSpec
from node.encoder import Encoder

PARTS = PartPass(3, SALTED_PART_FLOOR)
BITS = 512  # each part before balancing
rng = np.random.default_rng(20)


def balanced(parts: list[np.ndarray]) -> np.ndarray:
    """One packed row: each 512-bit part followed by its complement (per-part balancing)."""
    return np.packbits(np.concatenate([np.concatenate([p, 1 - p]) for p in parts]))


def pair(agreements: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Two rows whose parts agree on the given shares of positions (their part Dices)."""
    first = [rng.integers(0, 2, BITS, dtype=np.uint8) for _ in agreements]
    second = []
    for part, share in zip(first, agreements, strict=True):
        other = part.copy()
        flips = rng.choice(BITS, round((1 - share) * BITS), replace=False)
        other[flips] ^= 1
        second.append(other)
    return balanced(first), balanced(second)


def strangers(n: int) -> np.ndarray:
    return np.stack([balanced([rng.integers(0, 2, BITS, dtype=np.uint8) for _ in range(3)])
                     for _ in range(n)])  # fmt: skip


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(whole_dice(a[None], b[None], np.array([0]), np.array([0]))[0])


@pytest.fixture(params=["native", "anonlink"])
def kernel_in_use(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "native" and not kernel.native():
        pytest.skip("the native kernel is not built")
    if request.param == "anonlink":
        monkeypatch.setenv(kernel.KERNEL_ENV, "anonlink")
    return str(request.param)


def found_pairs(chunk: PairChunk, datasets: list[np.ndarray]) -> dict[tuple[int, int], float]:
    sims, _, (i, j) = compare_pairs(chunk, datasets)
    return {(int(a), int(b)): float(s) for s, a, b in zip(sims, i, j, strict=True)}


def test_a_pair_with_one_salt_agreeing_becomes_a_candidate(kernel_in_use: str) -> None:
    # One part agrees as a true pair's does (0.75), the two whose salts differ read chance.
    one_salt = pair((0.75, 0.5, 0.5))
    close = pair((0.95, 0.95, 0.6))  # whole 0.83: found by the whole row as before
    middling = pair((0.62, 0.62, 0.62))  # whole 0.62, no part at 0.65: whole row only
    left = np.concatenate([strangers(20), np.stack([one_salt[0], close[0], middling[0]])])
    right = np.concatenate([np.stack([one_salt[1], close[1], middling[1]]), strangers(20)])
    datasets = [left, right]
    whole_only = found_pairs(PairChunk(0, (0, 23), 1, (0, 23), SALTED_FLOOR), datasets)
    with_parts = found_pairs(PairChunk(0, (0, 23), 1, (0, 23), SALTED_FLOOR, PARTS), datasets)

    assert dice(*one_salt) < SALTED_FLOOR
    assert (20, 0) not in whole_only and (20, 0) in with_parts
    # Its score stays the whole row's Dice: the mean of its parts'.
    assert with_parts[(20, 0)] == pytest.approx(dice(*one_salt))
    assert with_parts[(20, 0)] == pytest.approx((0.75 + 0.5 + 0.5) / 3, abs=0.005)
    # Pairs the whole row finds are still found, with the same scores.
    assert {(21, 1), (22, 2)} <= set(whole_only)
    assert all(with_parts[p] == s for p, s in whole_only.items())
    # Strangers stay out: chance parts sit near 0.5, far below the part floor.
    assert set(with_parts) == {(20, 0), (21, 1), (22, 2)}


def test_both_kernels_find_the_same_pairs_with_the_same_scores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not kernel.native():
        pytest.skip("the native kernel is not built")
    rows = np.concatenate([strangers(30), *(np.stack(pair((0.8, 0.5, 0.5))) for _ in range(5))])
    chunk = PairChunk(0, (0, len(rows)), 0, (0, len(rows)), SALTED_FLOOR, PARTS)
    native = found_pairs(chunk, [rows])
    monkeypatch.setenv(kernel.KERNEL_ENV, "anonlink")
    assert found_pairs(chunk, [rows]) == native
    # Inside one dataset each unordered pair once, and no record with itself.
    assert set(native) == {(30 + 2 * k, 31 + 2 * k) for k in range(5)}


def test_every_all_pairs_chunk_carries_the_part_pass_across_and_within() -> None:
    chunks = plan_pair_chunks([300, 200], 0.6, 0.6, chunk_comparisons=10_000, parts=PARTS)
    assert {c.left == c.right for c in chunks} == {True, False}
    assert all(c.parts == PARTS for c in chunks)
    assert all(c.parts is None for c in plan_pair_chunks([300, 200], 0.6, 0.6))
    across_only = dataclasses.replace(PARTS, within=False)
    chunks = plan_pair_chunks([300, 200], 0.6, 0.6, chunk_comparisons=10_000, parts=across_only)
    assert all((c.parts is None) == (c.left == c.right) for c in chunks)


def test_salted_projects_get_three_equal_parts_at_the_part_floor() -> None:
    assert part_pass_for("salted", field_scoring=True) == PartPass(3, SALTED_PART_FLOOR)
    assert part_pass_for("salted", field_scoring=False) is None
    assert part_pass_for("unsalted", field_scoring=True) is None
    assert PARTS.bounds(384) == [(0, 128), (128, 256), (256, 384)]
    with pytest.raises(ValueError, match="equal parts"):
        PARTS.bounds(100)


def test_encoded_pairs_with_one_salt_agreeing_are_found_by_their_part() -> None:
    """On what a node sends: a move and a date slip leave only the name part agreeing."""
    encoder = Encoder(LinkageSpec.default(), b"a-secret-of-16+chars")
    left = encoder.encode([("amelia", "pryce", "15042021", "F", "CF10 1AA", "")])
    right = encoder.encode(
        [
            ("amelia", "pryce", "15042022", "F", "SA1 1DP", ""),
            ("oliver", "jenkins", "02022020", "M", "LL11 2AB", ""),
        ]
    )
    rows = [np.frombuffer(b"".join(r), np.uint8).reshape(len(r), -1) for r in (left, right)]
    whole = found_pairs(PairChunk(0, (0, 1), 1, (0, 2), SALTED_FLOOR), rows)
    parts = found_pairs(
        PairChunk(0, (0, 1), 1, (0, 2), SALTED_FLOOR, part_pass_for("salted", field_scoring=True)),
        rows,
    )
    assert whole == {}
    assert list(parts) == [(0, 0)] and parts[(0, 0)] < SALTED_FLOOR


def test_the_record_score_estimate_reads_only_pairs_at_the_floor() -> None:
    pairs = comparison.from_arrays(
        np.array([0.9, 0.61, 0.58]), np.zeros(3), np.ones(3), np.arange(3), np.arange(3)
    )
    kept = at_least(pairs, SALTED_FLOOR)
    assert list(kept[0]) == [0.9, 0.61]
    assert at_least(kept, SALTED_FLOOR) is kept
