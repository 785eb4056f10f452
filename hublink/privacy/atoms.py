"""Q-gram atoms: the positions one q-gram hashes to, found from blocks of records.

A block (``hublink.privacy.blocks``) fixes the positions of the value its
records share: the union of the positions of that value's q-grams. A
position belonging to q-gram g is therefore fixed by exactly the blocks whose
values contain g, so positions with the same pattern of blocks are one
q-gram's positions: an atom. Positions two q-grams collide on show the union
of two patterns and fall out as strays.

Unbalancing keeps the sparser of each complement pair, which is the
complement for positions set in most records; blocks fix such a column at 0.
Each column's polarity is taken from the blocks (the value they fix it at,
by majority), so afterwards an atom is set in a record exactly when the
record holds its q-gram.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hublink.privacy.bits import Bits
from hublink.privacy.blocks import Block


@dataclass(frozen=True)
class Atoms:
    """Groups of positions, each probably one q-gram's, and where they occur."""

    members: list[npt.NDArray[np.int64]]
    """Positions of each atom."""
    blocks: Bits
    """Blocks x atoms: whether the block's value holds the atom."""
    records: Bits
    """Records x atoms: whether the record holds the atom (nearly all its positions set)."""


def polarised(bits: Bits, blocks: Sequence[Block]) -> Bits:
    """``bits`` with each column turned so that blocks fix it at 1 (majority of blocks)."""
    votes = np.zeros(bits.shape[1])
    for b in blocks:
        votes[b.positions] += 2.0 * b.values - 1.0
    return np.where(votes < 0, 1 - bits, bits).astype(np.uint8)


def block_matrix(
    bits: Bits, blocks: Sequence[Block], *, fixed: float = 0.9, chance: float = 0.01
) -> Bits:
    """Blocks x columns of (polarised) ``bits``: set where the block's records nearly all
    have the column set, and that is unlikely by chance (rate ** records < ``chance``):
    in a dense encoding a small block fixes many columns by chance alone."""
    rate = np.clip(bits.mean(axis=0), 1e-6, 1 - 1e-6)
    out = np.zeros((len(blocks), bits.shape[1]), dtype=np.uint8)
    for k, b in enumerate(blocks):
        unlikely = len(b.records) * fixed * np.log(rate) < np.log(chance)
        out[k] = (bits[b.records].mean(axis=0) >= fixed) & unlikely
    return out


def find_atoms(
    bits: Bits,
    blocks: Sequence[Block],
    *,
    alike: float = 0.7,
    min_positions: int = 5,
    common: float = 0.25,
    held: float = 0.85,
) -> Atoms:
    """Atoms of polarised ``bits``: columns grouped by the blocks that fix them.

    Columns fixed by more than ``common`` of blocks (q-grams every value has,
    or columns set in most records) are left out; columns whose block sets
    reach Jaccard ``alike`` with an atom's first column join it.
    """
    matrix = block_matrix(bits, blocks).astype(np.float32)
    degree = matrix.sum(axis=0)
    usable = (degree >= 2) & (degree <= common * max(len(blocks), 1))
    columns = np.nonzero(usable)[0]
    m = matrix[:, columns]
    shared = m.T @ m
    union = degree[columns][:, None] + degree[columns][None, :] - shared
    jaccard = shared / np.maximum(union, 1)
    free = np.ones(len(columns), dtype=bool)
    members: list[npt.NDArray[np.int64]] = []
    for i in np.argsort(-degree[columns], kind="stable"):
        if not free[i]:
            continue
        group = np.nonzero(free & (jaccard[i] >= alike))[0]
        free[group] = False
        if len(group) >= min_positions:
            members.append(columns[group])
    if not members:
        empty = np.zeros((len(bits), 0), dtype=np.uint8)
        return Atoms([], np.zeros((len(blocks), 0), dtype=np.uint8), empty)
    in_block = np.stack([matrix[:, g].mean(axis=1) >= 0.5 for g in members], axis=1)
    in_record = np.stack([bits[:, g].mean(axis=1) >= held for g in members], axis=1)
    return Atoms(members, in_block.astype(np.uint8), in_record.astype(np.uint8))
