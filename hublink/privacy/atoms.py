"""Q-gram atoms: the positions one q-gram hashes to, found from blocks of records.

A block (``hublink.privacy.blocks``) fixes the positions of the value its
records share: the union of the positions of that value's q-grams. The
positions of q-gram g are therefore fixed by every block whose value holds
g (and, in a dense encoding, by others too: each position holds many
q-grams). An atom is g's positions, found as a biclique of blocks x
positions; once found, it tells which of ALL records hold g, not only those
in blocks. Naming atoms (which q-gram is which) is the step still missing:
graph matching atoms' co-occurrence against the public list's bigrams named
5 of 33 clean atoms on a Zipf population.

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
    min_blocks: int = 3,
    min_positions: int = 6,
    max_positions: int = 80,
) -> Atoms:
    """Atoms of polarised ``bits`` as bicliques of the blocks x columns matrix.

    In a dense encoding every column holds many q-grams, so no two columns
    share their exact set of blocks; but the columns of q-gram g are all set
    in every block whose value holds g. So: seed with the two columns that
    share the most blocks beyond chance, then alternate (the columns set in
    nearly all those blocks; the blocks holding nearly all those columns)
    until it settles, as ``blocks.grow_blocks`` does with records. q-grams
    that always occur together in the blocks' values come out as one atom.
    """
    matrix = block_matrix(bits, blocks).astype(np.float32)
    count, width = matrix.shape
    degree = matrix.sum(axis=0)
    excess = matrix.T @ matrix - np.outer(degree, degree) / max(count, 1)
    np.fill_diagonal(excess, -np.inf)
    taken = np.zeros(width, dtype=bool)
    members: list[npt.NDArray[np.int64]] = []
    holders: list[npt.NDArray[np.bool_]] = []
    for i in np.argsort(-excess.max(axis=1)):
        if taken[i]:
            continue
        j = int(np.argmax(np.where(taken, -np.inf, excess[i])))
        if excess[i, j] < 3:
            continue
        chosen = (matrix[:, i] * matrix[:, j]) > 0
        columns: npt.NDArray[np.bool_] | None = None
        for round_ in range(6):
            if chosen.sum() < min_blocks:
                break
            # A first round at 75%: the seed pair also shares some blocks by chance.
            found = matrix[chosen].mean(axis=0) >= (0.75 if round_ == 0 else 0.95)
            if found.sum() < min_positions:
                columns = None
                break
            again = matrix[:, found].mean(axis=1) >= 0.9
            settled = columns is not None and np.array_equal(found, columns)
            columns, chosen = found, again
            if settled:
                break
        if columns is None or chosen.sum() < min_blocks or columns.sum() > max_positions:
            taken[i] = True
            continue
        members.append(np.nonzero(columns)[0])
        holders.append(chosen)
        taken[columns] = True
    if not members:
        empty = np.zeros((len(bits), 0), dtype=np.uint8)
        return Atoms([], np.zeros((len(blocks), 0), dtype=np.uint8), empty)
    in_record = np.stack([bits[:, g].mean(axis=1) >= 1.0 for g in members], axis=1)
    return Atoms(members, np.stack(holders, axis=1).astype(np.uint8), in_record.astype(np.uint8))
