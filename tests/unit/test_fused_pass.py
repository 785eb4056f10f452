"""The fused part pass (``kernel.dice_block_parts``) must keep exactly the pairs, with exactly
the scores, that the whole-row pass followed by a pass on each part's slice keeps.

Each test computes the same block three ways: fused (with and without its early exit),
the two-step way the anonlink fallback still takes (``part_pass.with_parts`` over
``kernel.dice_block``, which test_kernel.py holds to anonlink), and by brute force in
numpy. Rows are random (balanced part by part, unbalanced, empty, full, part widths that
are and are not a whole step of four words) and real salted encodings of synthetic people.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from coordinator.core import kernel, part_keep, part_pass
from coordinator.core.part_pass import PartPass
from coordinator.core.score_model import SALTED_FLOOR, SALTED_PART_FLOOR
from hublink.spec import LinkageSpec
from node.encoder import Encoder

pytestmark = pytest.mark.skipif(not kernel.native(), reason="native kernel not built")

Pairs = dict[tuple[int, int], float]


def as_dict(found: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Pairs:
    sims, i, j = found
    return dict(zip(zip(i.tolist(), j.tolist(), strict=True), sims.tolist(), strict=True))


def brute_force(
    left: np.ndarray, right: np.ndarray, threshold: float, parts: int, floor: float, diagonal: bool
) -> Pairs:
    """Every pair's whole and part Dice in numpy, computed as anonlink computes Dice."""
    a = left.reshape(len(left), 1, parts, -1)
    b = right.reshape(1, len(right), parts, -1)
    both = np.bitwise_count(a & b).sum(axis=3, dtype=np.int64)
    ones = np.bitwise_count(a).sum(axis=3, dtype=np.int64) + np.bitwise_count(b).sum(
        axis=3, dtype=np.int64
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        whole = np.where(ones.sum(2) > 0, 2.0 * both.sum(2) / ones.sum(2), 0.0)
        part = np.where(ones > 0, 2.0 * both / ones, 0.0)
    keep = (whole >= threshold) | (part >= floor).any(axis=2)
    if diagonal:
        keep &= np.triu(np.ones_like(keep), k=1)
    return {(int(i), int(j)): float(whole[i, j]) for i, j in zip(*np.nonzero(keep), strict=True)}


def assert_all_ways_agree(
    left: np.ndarray,
    right: np.ndarray,
    threshold: float,
    parts: int,
    floor: float,
    *,
    diagonal: bool = False,
) -> Pairs:
    """Fused (with and without the early exit) == two-step == brute force; returns them."""
    two_step = as_dict(
        part_pass.with_parts(
            left,
            right,
            kernel.dice_block(left, right, threshold, diagonal=diagonal),
            PartPass(parts, floor),
            diagonal=diagonal,
        )
    )
    for early_exit in (True, False):
        fused = kernel.dice_block_parts(
            left, right, threshold, parts, floor, diagonal=diagonal, early_exit=early_exit
        )
        assert as_dict(fused) == two_step
    assert two_step == brute_force(left, right, threshold, parts, floor, diagonal)
    return two_step


def balanced_rows(n: int, parts: int, part_bytes: int, seed: int) -> np.ndarray:
    """Rows whose every part is half ones (its first half, then its complement)."""
    rng = np.random.default_rng(seed)
    half = rng.integers(0, 256, (n, parts, part_bytes // 2), dtype=np.uint8)
    return np.concatenate([half, ~half], axis=2).reshape(n, -1)


def planted(parts: int, part_bytes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced rows with planted neighbours: 40 whole-row near copies, 40 sharing one
    close part, and an exact copy."""
    rng = np.random.default_rng(seed)
    left = balanced_rows(150, parts, part_bytes, seed)
    right = balanced_rows(170, parts, part_bytes, seed + 1)
    noise = np.packbits(rng.random((80, parts * part_bytes * 4)) < 0.12, axis=1)
    halves = left.reshape(150, parts, 2, -1)[:, :, 0]
    copies = halves[:80] ^ noise.reshape(80, parts, -1)
    for k in range(80):
        shared = range(parts) if k < 40 else [k % parts]  # whole rows, then one part
        for p in shared:
            right.reshape(170, parts, 2, -1)[k, p, 0] = copies[k, p]
            right.reshape(170, parts, 2, -1)[k, p, 1] = ~copies[k, p]
    right[100] = left[120]
    return left, right


@pytest.mark.parametrize(
    ("parts", "part_bytes"),
    [(3, 128), (3, 64), (3, 40), (1, 128), (4, 96), (2, 8)],
    ids=["shipped-16-words", "8-words", "5-words", "one-part", "12-words", "1-word"],
)
@pytest.mark.parametrize(
    ("threshold", "floor"),
    [
        (SALTED_FLOOR, SALTED_PART_FLOOR),
        (0.0, 1.0),
        (1.0, 0.0),
        (1.0, 1.0),
        (0.55, 0.52),
        (2.0, 0.7),
    ],
)
def test_balanced_rows_fused_as_in_two_steps(
    parts: int, part_bytes: int, threshold: float, floor: float
) -> None:
    left, right = planted(parts, part_bytes, seed=parts * part_bytes)
    found = assert_all_ways_agree(left, right, threshold, parts, floor)
    if (threshold, floor) == (SALTED_FLOOR, SALTED_PART_FLOOR) and part_bytes >= 40:
        # A real test: the planted pairs are kept, the strangers are not.
        assert {(k, k) for k in range(80)} <= set(found) and len(found) < 200
    assert_all_ways_agree(left, left, threshold, parts, floor, diagonal=True)


@pytest.mark.parametrize("density", [0.1, 0.5, 0.8])
def test_unbalanced_empty_and_full_rows(density: float) -> None:
    rng = np.random.default_rng(int(density * 10))
    left = np.packbits(rng.random((120, 384 * 8)) < density, axis=1)
    right = np.packbits(rng.random((130, 384 * 8)) < density, axis=1)
    right[:30] = left[:30] ^ np.packbits(rng.random((30, 384 * 8)) < 0.05, axis=1)
    right[30:60, :128] = left[30:60, :128]  # one part the same, the rest unrelated
    left[-1], right[-1], left[-2], right[-2] = 0, 0, 255, 255
    left[-3, :128] = 0  # an empty part beside full ones
    for threshold, floor in [(0.6, 0.68), (0.0, 0.0), (0.9, 0.99), (1.0, 1.0)]:
        assert_all_ways_agree(left, right, threshold, 3, floor)
        assert_all_ways_agree(right, right, threshold, 3, floor, diagonal=True)


def people(n: int) -> list[tuple[str, ...]]:
    """Synthetic people who share names, dates of birth and postcodes in every combination:
    many pairs agree on one salt only (their part shows it), some on two or three."""
    given = ["amelia", "oliver", "isla", "cai", "freya", "osian"]
    family = ["pryce", "price", "jenkins", "morgan", "hughes"]
    dates = ["03042021", "15112020", "22072022", "09012023"]
    places = ["CF10 1AA", "SA1 1DP", "NP20 4AB", "LL57 2PW"]
    combos = itertools.product(given, family, dates, places)
    return [
        (g, f, d, "F" if k % 2 else "M", p, "")
        for k, (g, f, d, p) in zip(range(n), combos, strict=False)
    ]


@pytest.fixture(scope="module")
def salted() -> np.ndarray:
    encoder = Encoder(LinkageSpec.default(), b"a-secret-of-16+chars")
    sample = people(320)
    rows = np.frombuffer(b"".join(encoder.encode(sample)), dtype=np.uint8)
    return rows.reshape(len(sample), -1)


def test_real_salted_encodings_fused_as_in_two_steps(salted: np.ndarray) -> None:
    assert salted.shape[1] == 3 * 128  # the shipped layout: three parts of 16 words
    left, right = salted[:150], salted[150:]
    found = assert_all_ways_agree(left, right, SALTED_FLOOR, 3, SALTED_PART_FLOOR)
    whole = as_dict(kernel.dice_block(left, right, SALTED_FLOOR))
    assert set(whole) < set(found)  # pairs sharing one salt are added
    assert min(found.values()) < SALTED_FLOOR <= min(whole.values())
    assert_all_ways_agree(salted, salted, SALTED_FLOOR, 3, SALTED_PART_FLOOR, diagonal=True)


def test_thresholds_exactly_at_a_pairs_score_keep_it(salted: np.ndarray) -> None:
    """A pair whose whole (or part) Dice equals the threshold (or floor) to the last bit."""
    left, right = salted[:150], salted[150:]
    everything = brute_force(left, right, 0.0, 3, 0.0, diagonal=False)
    scores = np.array(sorted(set(everything.values())))
    at_whole = float(scores[np.searchsorted(scores, 0.62)])
    a, b = left.reshape(150, 1, 3, -1), right.reshape(1, 170, 3, -1)
    both = np.bitwise_count(a & b).sum(axis=3)
    ones = np.bitwise_count(a).sum(axis=3) + np.bitwise_count(b).sum(axis=3)
    part_scores = np.unique(2.0 * both / ones)
    at_part = float(part_scores[np.searchsorted(part_scores, 0.7)])
    for threshold, floor in [(at_whole, 2.0), (2.0, at_part), (at_whole, at_part)]:
        found = assert_all_ways_agree(left, right, threshold, 3, floor)
        if threshold == at_whole:
            assert at_whole in found.values()
        if floor == at_part:
            i, j, _ = (int(x[0]) for x in np.nonzero(2.0 * both / ones == at_part))
            assert (i, j) in found
        # Just above the edge, the pair at it goes (unless another reason keeps it).
        above = np.nextafter(threshold, 3.0) if threshold < 2.0 else threshold
        assert_all_ways_agree(left, right, above, 3, floor)


def test_the_output_is_handed_back_in_slices_without_losing_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kernel, "_OUT_PAIRS", 1)  # the smallest the kernel takes: one block
    left, right = balanced_rows(40, 3, 16, seed=3), balanced_rows(3000, 3, 16, seed=4)
    found = assert_all_ways_agree(left, right, 0.55, 3, 0.6)
    assert len(found) > 3 * 1024  # several hand-backs


def test_rows_without_whole_word_parts_take_the_two_step_way() -> None:
    left, right = planted(2, 12, seed=5)  # 24-byte rows: two parts of a word and a half
    assert kernel.usable(left) and not kernel.fusable(left, 2)
    with pytest.raises(ValueError, match="word parts"):
        kernel.dice_block_parts(left, right, 0.6, 2, 0.68)
    expected = brute_force(left, right, 0.6, 2, 0.68, diagonal=False)
    got = as_dict(part_pass.native_block(left, right, 0.6, PartPass(2, 0.68)))
    assert got == expected and len(expected) >= 40
    # The shipped layout takes the fused way, with the same answer.
    left, right = planted(3, 128, seed=6)
    assert kernel.fusable(left, 3)
    got = as_dict(part_pass.native_block(left, right, 0.6, PartPass(3, 0.68)))
    assert got == brute_force(left, right, 0.6, 3, 0.68, diagonal=False)


@pytest.mark.parametrize(
    ("parts", "part_bytes", "floors"),
    [
        (3, 128, (0.775, 0.72, 0.695)),  # FEBRL4's floors, each part by its own chance level
        (3, 128, (0.52, 1.0, 0.7)),
        (3, 64, (2.0, 2.0, 0.6)),  # one part searched, the others never
        (4, 96, (0.7, 0.6, 0.65, 0.55)),
    ],
)
def test_a_floor_a_part_is_kept_alike_fused_two_step_numpy_and_by_brute_force(
    parts: int, part_bytes: int, floors: tuple[float, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    left, right = planted(parts, part_bytes, seed=parts + part_bytes)
    passes = PartPass(parts, max(floors), floors=floors)
    for threshold in (SALTED_FLOOR, 2.0):
        expected = brute_force(left, right, threshold, parts, np.array(floors), False)  # type: ignore[arg-type]
        found = kernel.dice_block(left, right, threshold)
        assert as_dict(part_pass.with_parts(left, right, found, passes)) == expected
        for early_exit in (True, False):
            fused = kernel.dice_block_parts(
                left, right, threshold, parts, floors, early_exit=early_exit
            )
            assert as_dict(fused) == expected
        assert as_dict(part_pass.native_block(left, right, threshold, passes)) == expected
        # what a blocked or incremental run keeps of the pairs it screened (numpy)
        i, j = (x.ravel() for x in np.meshgrid(range(len(left)), range(len(right)), indexing="ij"))
        sims, kept = part_keep.score(left, right, i, j, threshold, passes)
        assert (
            dict(
                zip(
                    zip(i[kept].tolist(), j[kept].tolist(), strict=True), sims.tolist(), strict=True
                )
            )
            == expected
        )
        diagonal = brute_force(left, left, threshold, parts, np.array(floors), True)  # type: ignore[arg-type]
        assert (
            as_dict(part_pass.native_block(left, left, threshold, passes, diagonal=True))
            == diagonal
        )
    # anonlink's kernel where the native one is switched off: the same pairs again
    monkeypatch.setenv(kernel.KERNEL_ENV, "anonlink")
    fallback = part_pass.with_parts(left, right, kernel_free_whole(left, right), passes)
    assert as_dict(fallback) == brute_force(left, right, 2.0, parts, np.array(floors), False)  # type: ignore[arg-type]


def kernel_free_whole(
    left: np.ndarray, right: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """No whole-row pairs: the part slices alone decide (on anonlink's kernel when off)."""
    return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def test_the_lowest_part_floor_alone_does_not_keep_pairs_in_other_parts() -> None:
    """One shared floor, the lowest, would keep pairs of a dense part that its own floor
    does not: each part is held to its own."""
    left, right = planted(3, 128, seed=21)
    own = as_dict(kernel.dice_block_parts(left, right, 2.0, 3, (1.0, 1.0, 0.6)))
    shared = as_dict(kernel.dice_block_parts(left, right, 2.0, 3, 0.6))
    by_part = brute_force(left, right, 2.0, 3, 0.6, False)
    assert shared == by_part and set(own) < set(shared)
    with pytest.raises(ValueError):
        PartPass(3, 0.6, floors=(0.6, 0.7))
