"""Groups of records that share one value, found in an encoding without the key.

Every position a value's q-grams hash to is set in every record holding the
value, so the records that share a given name form a block in the record x
position matrix: the same bits (set, or clear after unbalancing chose the
complement column) on the hundred-odd positions of that name, and unrelated
bits elsewhere. A block is found by growing it from a seed pair of similar
records, alternating two steps until they settle:

1. the positions on which (nearly) all of the block's records agree;
2. the records that agree with the seed on (nearly) all of those positions.

Random positions agree across ten records with chance 2**-9, so after a
round or two only the shared value's positions are left, and then exactly the
records holding it agree on them. Blocks form for every value common enough
to have a few records: given names, family names, postcodes alike; telling
them apart is left to the q-gram atoms (``hublink.privacy.atoms``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hublink.privacy.bits import Bits

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Block:
    """Records believed to share a value and the positions that value fixes."""

    records: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int64]
    values: Bits
    """The bit the block's records hold at each position (0 for a complement column)."""


def _standardised(bits: Bits) -> npt.NDArray[np.float32]:
    x = bits.astype(np.float32)
    std = x.std(axis=0)
    keep = std > 0.2  # near-constant columns say nothing about who shares what
    return np.asarray((x[:, keep] - x[:, keep].mean(axis=0)) / std[keep], dtype=np.float32)


def grow_blocks(
    bits: Bits,
    seeds: npt.NDArray[np.int64],
    partners: npt.NDArray[np.int64],
    *,
    agree: float = 0.9,
    member: float = 0.97,
    rounds: int = 5,
    min_records: int = 3,
    max_positions: int = 400,
) -> list[Block | None]:
    """The block holding each pair (``seeds[k]``, ``partners[k]``), grown by alternating
    positions and records (module docstring); ``None`` where it does not settle.

    Positions are kept where ``agree`` of the records agree with the seed; records
    where they agree with the seed on ``member`` of the positions (after a first
    round at ``agree``, while chance positions are still in).

    All pairs are grown at once as matrix products, which is what makes trying
    thousands of seeds affordable.
    """
    signs = 2 * bits.astype(np.float32) - 1
    rows = signs[seeds]  # pairs x positions
    mask = (rows == signs[partners]).astype(np.float32)
    alive = np.ones(len(seeds), dtype=bool)
    members = np.zeros((len(bits), len(seeds)), dtype=np.float32)
    for round_ in range(rounds):
        score = 0.5 + 0.5 * (signs @ (rows * mask).T) / np.maximum(mask.sum(axis=1), 1)
        if round_ == 0:
            # The pair's agreeing positions are half chance: take the clear outliers.
            centre = np.median(score, axis=0)
            spread = 1.4826 * np.median(np.abs(score - centre), axis=0)
            members = (score >= centre + 5 * np.maximum(spread, 1e-3)).astype(np.float32)
        else:
            # A record holding the value agrees on every one of its positions; a
            # record that does not agrees on about half, so ``member`` can be strict.
            members = (score >= (agree if round_ == 1 else member)).astype(np.float32)
        count = members.sum(axis=0)
        alive &= count >= min_records
        mean = (members.T @ signs) / np.maximum(count, 1)[:, None]
        mask = (0.5 + 0.5 * mean * rows >= agree).astype(np.float32)
        alive &= mask.sum(axis=1) > 0
    out: list[Block | None] = []
    for k in range(len(seeds)):
        positions = np.nonzero(mask[k])[0]
        records = np.nonzero(members[:, k])[0]
        if not alive[k] or len(positions) > max_positions or len(records) < min_records:
            out.append(None)
        else:
            out.append(Block(records, positions, bits[seeds[k], positions].copy()))
    return out


def find_blocks(
    bits: Bits,
    *,
    agree: float = 0.9,
    member: float = 0.97,
    min_records: int = 3,
    min_positions: int = 30,
    max_seeds: int = 3000,
    covered_limit: int = 2,
    batch: int = 256,
    seed: int = 0,
) -> list[Block]:
    """Blocks grown from records paired with their most similar record, batch by batch,
    until every record is in ``covered_limit`` blocks or ``max_seeds`` seeds were tried.

    A record usually belongs to two blocks (its given name's and its family
    name's), so a record stays a candidate seed until it is in that many; each
    seed is paired with its two most similar records.
    """
    z = _standardised(bits)
    covered = np.zeros(len(bits), dtype=np.int64)
    blocks: list[Block] = []
    seen: set[bytes] = set()
    order = np.random.default_rng(seed).permutation(len(bits))
    tried = 0
    while tried < max_seeds:
        chosen = [int(r) for r in order if covered[r] < covered_limit][: batch // 2]
        if not chosen:
            break
        order = np.array([r for r in order if r not in set(chosen)], dtype=np.int64)
        tried += len(chosen)
        sim = z[chosen] @ z.T
        sim[np.arange(len(chosen)), chosen] = -np.inf
        top = np.argpartition(-sim, 2, axis=1)[:, :2]
        seeds = np.repeat(np.array(chosen), 2)
        grown = grow_blocks(
            bits, seeds, top.reshape(-1), agree=agree, member=member, min_records=min_records
        )
        for r, block in zip(seeds, grown, strict=True):
            if block is None or len(block.positions) < min_positions:
                continue
            covered[r] = max(covered[r], 1)
            key = np.packbits(np.isin(np.arange(len(bits)), block.records)).tobytes()
            if key in seen:
                continue
            seen.add(key)
            blocks.append(block)
            covered[block.records] += 1
        covered[chosen] = np.maximum(covered[chosen], covered_limit)
    return blocks


def block_labels(count: int, blocks: Sequence[Block], min_records: int = 3) -> list[int]:
    """Each record's largest block of ``min_records`` or more (-1: none), as block indices."""
    label = [-1] * count
    for k in sorted(range(len(blocks)), key=lambda k: len(blocks[k].records)):
        if len(blocks[k].records) >= min_records:
            for r in blocks[k].records:
                label[int(r)] = k
    return label


def block_frequency_attack(
    bits: Bits, frequencies: Mapping[str, float], *, max_seeds: int = 1500
) -> list[str | None]:
    """Name records from a record-level encoding alone: find blocks, give each record its
    largest block, and line blocks' sizes up with the public names' frequencies.

    Blocks of family names (or postcodes) compete with given names for ranks, so
    only the largest blocks are named right; that is enough to pass a 1% ceiling
    when one name is common.
    """
    from hublink.privacy.unbalance import as_unbalanced, estimated_flip

    agree, member = thresholds(estimated_flip(bits))
    blocks = find_blocks(as_unbalanced(bits), max_seeds=max_seeds, agree=agree, member=member)
    return name_by_size(len(bits), blocks, frequencies)


def thresholds(flip: float) -> tuple[float, float]:
    """``agree`` and ``member`` for bits flipped at rate ``flip``: an attacker who sees
    the flip rate (``unbalance.estimated_flip``) loosens the block search to match."""
    return min(0.9, 1.0 - 4.0 * flip), min(0.97, 1.0 - 3.0 * flip)


def name_by_size(
    count: int, blocks: Sequence[Block], frequencies: Mapping[str, float], min_records: int = 3
) -> list[str | None]:
    """Each record named after its largest block, blocks named by size rank against the
    names' frequency rank (a frequency attack on blocks instead of equal encodings)."""
    labels = block_labels(count, blocks, min_records)
    ranked = sorted(frequencies.items(), key=lambda kv: (-kv[1], kv[0]))
    used = sorted({k for k in labels if k >= 0}, key=lambda k: -len(blocks[k].records))
    name = {k: n for k, (n, _) in zip(used, ranked, strict=False)}
    return [name.get(k) for k in labels]
