"""Pattern mining: find positions set together, map them to q-grams, and read names off.

In the spirit of Christen, Vidanage et al. (pattern-mining based cryptanalysis
of Bloom filters). The positions one q-gram hashes to are set in exactly the
records whose value holds that q-gram, so across records (or across clusters
of near-identical records) their columns are identical: a frequent itemset.
Grouping identical columns finds these "atoms" without the key. Each atom is
then given a q-gram of a public name list:

1. first by frequency (the share of records an atom is set in against the
   share of the public population whose name holds the q-gram: sums over many
   names, so steadier than any one name's frequency);
2. then, round by round, every record group is decoded to the public name
   whose q-grams best match its atoms' q-grams, and each atom is re-assigned
   the q-gram that the decoded names hold most often where the atom is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hublink.privacy.bits import Bits, qgrams
from hublink.privacy.names import NameList

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Atoms:
    """Groups of positions whose columns agree over all rows: one q-gram each, probably."""

    members: list[npt.NDArray[np.int64]]
    """Positions of each atom."""
    present: Bits
    """Rows x atoms: whether the row holds the atom."""


def mine_atoms(rows: Bits, *, min_positions: int = 3, tolerance: int = 0) -> Atoms:
    """Positions grouped by identical columns over ``rows`` (with ``tolerance`` rows' slack).

    Positions shared by two q-grams (collisions) have the union of their
    columns and end up alone or in small groups, which ``min_positions`` drops.
    """
    columns = np.ascontiguousarray(rows.T)
    used = columns.sum(axis=1) > 0
    keys: dict[bytes, list[int]] = {}
    for j in np.nonzero(used)[0]:
        keys.setdefault(np.packbits(columns[j]).tobytes(), []).append(int(j))
    groups = [np.array(v) for v in keys.values() if len(v) >= min_positions]
    if tolerance:
        # Merge groups whose columns differ in at most ``tolerance`` rows.
        merged: list[npt.NDArray[np.int64]] = []
        reps: list[npt.NDArray[np.uint8]] = []
        for g in sorted(groups, key=len, reverse=True):
            col = columns[g[0]]
            for k, r in enumerate(reps):
                if int(np.sum(col != r)) <= tolerance:
                    merged[k] = np.concatenate([merged[k], g])
                    break
            else:
                merged.append(g)
                reps.append(col)
        groups = merged
    if not groups:
        return Atoms([], np.zeros((len(rows), 0), dtype=np.uint8))
    present = np.stack([rows[:, g].mean(axis=1) >= 0.5 for g in groups], axis=1).astype(np.uint8)
    return Atoms(groups, present)


def decode(
    rows: Bits,
    weights: npt.NDArray[np.float64],
    public: NameList,
    *,
    q: int = 2,
    names_kept: int = 3000,
    rounds: int = 8,
) -> tuple[list[str | None], Floats]:
    """The public name of each row (a record or a cluster's signature), and how well it fits.

    ``weights`` says how many records each row stands for.
    """
    atoms = mine_atoms(rows)
    if not atoms.members:
        return [None] * len(rows), np.zeros(len(rows))
    order = np.argsort(-np.asarray(public.frequencies), kind="stable")[:names_kept]
    names = [public.names[i] for i in order]
    freq = np.asarray(public.frequencies)[order]
    freq = freq / freq.sum()
    vocabulary: dict[str, int] = {}
    for n in names:
        for g in qgrams(n, q):
            vocabulary.setdefault(g, len(vocabulary))
    holds = np.zeros((len(names), len(vocabulary)))
    for i, n in enumerate(names):
        holds[i, [vocabulary[g] for g in qgrams(n, q)]] = 1.0
    gram_share = freq @ holds
    present = atoms.present.astype(np.float64)
    atom_share = (weights @ present) / max(weights.sum(), 1e-9)
    from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

    cost = np.abs(np.log(atom_share[:, None] + 1e-4) - np.log(gram_share[None, :] + 1e-4))
    r, c = linear_sum_assignment(cost)
    mapping = np.zeros((present.shape[1], len(vocabulary)))
    mapping[r, c] = 1.0
    guess = np.zeros(len(rows), dtype=np.int64)
    fit = np.zeros(len(rows))
    for _ in range(rounds):
        grams = present @ mapping  # rows x q-grams, as decoded
        shared = grams @ holds.T
        dice = 2 * shared / (grams.sum(axis=1)[:, None] + holds.sum(axis=1)[None, :] + 1e-9)
        score = dice + 0.01 * np.log(freq + 1e-9)[None, :]
        guess = score.argmax(axis=1)
        fit = dice[np.arange(len(rows)), guess]
        # Votes: where an atom is set, which q-grams do the decoded names hold?
        votes = (present * (weights * fit**4)[:, None]).T @ holds[guess]
        votes = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-9)
        r, c = linear_sum_assignment(-votes - 0.05 * (-cost))
        mapping = np.zeros_like(mapping)
        mapping[r, c] = 1.0
    return [names[g] for g in guess], fit


def pattern_attack(
    bits: Bits, public: NameList, *, alike: float = 0.9, q: int = 2
) -> list[str | None]:
    """Name each record from one field filter: cluster, mine atoms over clusters, decode."""
    from hublink.privacy.graph import cluster_groups, prepared

    groups = cluster_groups(prepared(bits), alike)
    names, _ = decode(groups.signatures, groups.sizes.astype(np.float64), public, q=q)
    return _per_record(groups.labels, names)


def _per_record(labels: npt.NDArray[np.int64], names: Sequence[str | None]) -> list[str | None]:
    return [names[g] if g >= 0 else None for g in labels]
