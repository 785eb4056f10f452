"""Pattern mining: find the positions of each q-gram, name them, and read names off.

Our own implementation in the spirit of Vidanage, Ranbaduge, Christen and Schnell
(pattern-mining based cryptanalysis of Bloom filter encodings, ICDE 2019). The
positions one q-gram hashes to are set in every record whose value holds it,
so they form a frequent itemset of bit positions whose support is the q-gram's
frequency. In a filter where each position carries many q-grams no two columns
are identical, so itemsets are mined by growing them, not by grouping columns:

1. **Mining** (``mine_atoms``): start from the records that set the position
   with the most set bits not yet explained by a mined q-gram; add, Apriori
   fashion, the position those records share most beyond its share among all
   records (raw support, in a dense filter, drifts to the commonest q-grams'
   positions), narrowing to the
   records that hold it too, until enough positions are set in all of them.
   Close the itemset over all records (every position all its holders set;
   every record that sets all those positions), then mark those bits of those
   records explained, and go on. Conditional mining on the unexplained bits is
   what reaches the rarer q-grams after the frequent ones that share their
   positions.
2. **Naming** (``name_atoms``): frequency alone (support against the public
   q-gram shares) names only the commonest two or three, as the population's
   frequencies are not the public list's. Which q-grams occur together in
   names is steadier, so the graph of the mined itemsets ("atoms") and their
   co-occurrence is matched to that of the public q-grams
   (``graph.match_nodes``), with frequency as a prior.
3. **Decoding** (``decode``): each encoding's atoms, as q-grams, matched by
   Dice similarity to the q-gram sets of the public list, with the length read
   from its bits set.

Itemsets are kept only when shared by more distinct rows than the filter's
density allows by chance and when near the typical size (one q-gram each).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hublink.privacy.bits import Bits, qgrams
from hublink.privacy.graph import match_nodes
from hublink.privacy.names import NameList
from hublink.privacy.unbalance import as_unbalanced

Floats = npt.NDArray[np.float64]
Dense = npt.NDArray[np.float32]
"""Rows x positions as 0.0 / 1.0, for weighted counts by matrix products."""
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Atoms:
    """Itemsets of positions mined from the rows, each one q-gram's positions, probably."""

    members: list[npt.NDArray[np.int64]]
    """Positions of each atom."""
    present: Bits
    """Rows x atoms: whether the row sets (nearly) all the atom's positions."""


def _shared(rows: Dense, weights: Floats, holders: Mask) -> tuple[Floats, float]:
    """Each position's support among ``holders`` (weighted), and their total weight."""
    chosen = np.flatnonzero(holders)
    return weights[chosen] @ rows[chosen], float(weights[chosen].sum())


def _holding(rows: Dense, positions: Mask, share: float) -> Mask:
    """The rows that set at least ``share`` of ``positions``."""
    chosen = np.flatnonzero(positions)
    return np.asarray(rows[:, chosen].sum(axis=1) >= share * len(chosen) - 1e-9)


def _close(
    rows: Dense, weights: Floats, holders: Mask, *, min_positions: int, tolerance: float
) -> tuple[Mask, Mask] | None:
    """The itemset the ``holders`` share, and every row that holds it (to a fixed point).

    A closed itemset can be one q-gram's positions plus some of a q-gram that
    often comes with it (names ending "en" all end "n"); ``_core`` drops those.
    """
    for _ in range(8):
        if not holders.any():
            return None
        support, total = _shared(rows, weights, holders)
        positions = support >= (1.0 - tolerance) * total - 1e-9
        if positions.sum() >= min_positions:
            positions = _core(rows, weights, positions, tolerance=tolerance)
        if positions.sum() < min_positions:
            return None
        again = _holding(rows, positions, 1.0 - tolerance)
        if np.array_equal(again, holders):
            break
        holders = again
    return positions, holders


def _core(
    rows: Dense, weights: Floats, positions: Mask, *, tolerance: float, share: float = 0.7
) -> Mask:
    """The positions set in (all but ``tolerance`` of) every row that sets most (``share``)
    of ``positions``.

    Drops the extra positions a closed itemset picks up from a q-gram that often
    comes with its own: rows that hold the q-gram without its companion set
    most of the itemset but not those. Where bits are flipped no position is set in
    every holder, hence the tolerance.
    """
    for _ in range(6):
        support, total = _shared(rows, weights, _holding(rows, positions, share))
        again = positions & (support >= (1.0 - tolerance) * total - 1e-9)
        if np.array_equal(again, positions):
            break
        positions = again
    return positions


def _grow(
    rows: Dense,
    weights: Floats,
    holders: Mask,
    *,
    min_support: float,
    min_rows: int,
    min_positions: int,
    tolerance: float,
    base: Floats,
) -> tuple[Mask, Mask] | None:
    """Apriori-style growth from ``holders``: add the position they share most beyond its
    share among all rows (``base``) until ``min_positions`` are set in (nearly) all of
    them, then close the itemset.

    Beyond, not most: in a dense filter (a third of bits set) any large set of rows
    shares the commonest q-grams' positions, so raw support drifts every growth to
    those and the seed's rarer q-grams are never reached; the excess over the base
    rate follows the q-grams the holders have in common.
    """
    while True:
        support, total = _shared(rows, weights, holders)
        full = support >= (1.0 - tolerance) * total - 1e-9
        if full.sum() >= min_positions:
            break
        excess = support - total * base
        excess[full] = -np.inf
        j = int(np.argmax(excess))
        narrowed = holders & (rows[:, j] > 0)
        if support[j] < min_support or narrowed.sum() < min_rows:
            return None
        holders = narrowed
    return _close(rows, weights, holders, min_positions=min_positions, tolerance=tolerance)


def mine_atoms(
    rows: Bits,
    weights: Floats | None = None,
    *,
    min_support: float = 4.0,
    min_positions: int = 10,
    tolerance: float = 0.0,
    max_atoms: int = 3000,
    patience: int = 256,
) -> Atoms:
    """Frequent itemsets of positions, mined by conditional growth on the unexplained bits.

    ``weights`` says how many records each row stands for; an itemset needs the
    support of ``min_support`` records and ``min_positions`` positions (fewer
    than a q-gram's hash count, which collisions reduce). ``tolerance`` is the
    share of an atom's positions a holder may lack (flipped bits). Seeds are tried
    best-supported first; mining stops after ``patience`` seeds in a row gave no new
    itemset (each costs a few passes over the rows, and where the first hundreds fail,
    as on a salted filter, the less supported rest fare no better).
    """
    bits = rows.astype(bool)
    count, width = bits.shape
    if not count or not width:
        return Atoms([], np.zeros((count, 0), dtype=np.uint8))
    dense = bits.astype(np.float32)
    w = np.ones(count) if weights is None else np.asarray(weights, dtype=np.float64)
    # Distinct rows share a position by chance at the filter's density: enough rows that
    # fewer than one position is shared by all of them by chance.
    density = float(np.clip(bits.mean(), 1e-3, 0.9))
    min_rows = int(np.ceil(np.log(width) / -np.log(density))) + 1
    explained = np.zeros_like(bits)
    base = (w @ dense) / float(w.sum())
    unexplained_support = w @ dense
    dead = np.zeros(width, dtype=bool)
    found: dict[bytes, tuple[Mask, Mask]] = {}
    failed = 0
    while len(found) < max_atoms and failed < patience:
        support = np.where(dead, 0.0, unexplained_support)
        seed = int(np.argmax(support))
        if support[seed] < min_support:
            break
        seeds = bits[:, seed] & ~explained[:, seed]
        grown = _grow(
            dense,
            w,
            seeds,
            min_support=min_support,
            min_rows=min_rows,
            min_positions=min_positions,
            tolerance=tolerance,
            base=base,
        )
        key = b"" if grown is None else np.packbits(grown[0]).tobytes()
        if grown is None or not grown[0][seed] or not (grown[1] & seeds).any() or key in found:
            dead[seed] = True
            failed += 1
            continue
        failed = 0
        positions, holders = grown
        found[key] = (positions, holders)
        block = np.ix_(holders, positions)
        newly = bits[block] & ~explained[block]
        unexplained_support[positions] -= w[holders] @ newly
        explained[block] = True
    if not found:
        return Atoms([], np.zeros((count, 0), dtype=np.uint8))
    members = [np.nonzero(p)[0].astype(np.int64) for p, _ in found.values()]
    present = np.stack([h for _, h in found.values()], axis=1).astype(np.uint8)
    return Atoms(members, present)


def typical_size(atoms: Atoms, weights: Floats, top: int = 30) -> float:
    """The hash count the attacker reads off: the median size of the best-supported atoms,
    which are single frequent q-grams (support ranks them; size would favour merges)."""
    if not atoms.members:
        return 0.0
    support = weights @ atoms.present
    best = np.argsort(-support, kind="stable")[:top]
    return float(np.median([len(atoms.members[i]) for i in best]))


def single_grams(atoms: Atoms, weights: Floats, *, low: float = 0.7, high: float = 1.4) -> Atoms:
    """The atoms whose size is near the typical one (one q-gram each), each holder set once.

    Smaller itemsets are chance coincidences of rows that share several q-grams;
    larger ones are q-grams that always occur together, or whole values.
    """
    size = typical_size(atoms, weights)
    keep: list[int] = []
    seen: set[bytes] = set()
    for i, m in enumerate(atoms.members):
        key = np.packbits(atoms.present[:, i]).tobytes()
        if low * size <= len(m) <= high * size and key not in seen:
            seen.add(key)
            keep.append(i)
    return Atoms([atoms.members[i] for i in keep], atoms.present[:, keep])


@dataclass(frozen=True)
class _Public:
    """The attacker's public list as q-gram sets."""

    names: list[str]
    freq: Floats
    holds: Floats
    """Names x q-grams."""
    share: Floats
    """Each q-gram's share of the population, from the public frequencies."""


def _public(public: NameList, q: int, kept: int) -> _Public:
    order = np.argsort(-np.asarray(public.frequencies), kind="stable")[:kept]
    names = [public.names[i] for i in order]
    freq = np.asarray(public.frequencies, dtype=np.float64)[order]
    freq = freq / freq.sum()
    vocabulary: dict[str, int] = {}
    for n in names:
        for g in sorted(qgrams(n, q)):
            vocabulary.setdefault(g, len(vocabulary))
    holds = np.zeros((len(names), len(vocabulary)))
    for i, n in enumerate(names):
        holds[i, [vocabulary[g] for g in qgrams(n, q)]] = 1.0
    return _Public(names, freq, holds, freq @ holds)


def _decode_rows(
    present: Floats, grams: npt.NDArray[np.int64], pub: _Public, lengths: Floats
) -> tuple[npt.NDArray[np.int64], Floats]:
    """Each row's best public name under the atoms' q-grams ``grams``, and its Dice fit."""
    mapped = np.zeros(pub.holds.shape[1])
    mapped[grams[grams >= 0]] = 1.0
    seen = pub.holds * mapped  # names' q-grams that some atom stands for
    decoded = np.zeros((present.shape[0], pub.holds.shape[1]))
    held = np.nonzero(grams >= 0)[0]
    decoded[:, grams[held]] = present[:, held]
    shared = decoded @ seen.T
    dice = 2 * shared / np.maximum(decoded.sum(axis=1)[:, None] + seen.sum(axis=1)[None, :], 1.0)
    misfit = np.abs(lengths[:, None] - pub.holds.sum(axis=1)[None, :])
    score = dice - 0.02 * misfit + 0.005 * np.log(pub.freq)[None, :]
    guess = score.argmax(axis=1)
    return guess, dice[np.arange(len(guess)), guess]


def _ochiai(co: Floats, share: Floats) -> Floats:
    """Co-occurrence shares over the geometric mean of the two shares."""
    return np.asarray(co / np.sqrt(np.maximum(np.outer(share, share), 1e-12)))


def name_atoms(atoms: Atoms, weights: Floats, pub: _Public) -> npt.NDArray[np.int64]:
    """Each atom's q-gram (an index into the public vocabulary, -1: none), by matching the
    graph of the atoms' co-occurrence to that of the public q-grams.

    Frequency alone puts only the two or three commonest q-grams right (the
    population's frequencies are not the public list's); which q-grams occur
    together in names (" c" with "ch", "ie" with "e ") pins the rest down.
    """
    present = atoms.present.astype(np.float64)
    total = max(float(weights.sum()), 1e-9)
    support = (weights @ present) / total
    together = (present * weights[:, None]).T @ present / total
    public_together = (pub.holds * pub.freq[:, None]).T @ pub.holds
    prior = -np.abs(np.log(support[:, None] + 1e-4) - np.log(pub.share[None, :] + 1e-4))
    return match_nodes(
        _ochiai(together, support),
        np.round(support * 1e6).astype(np.int64),
        _ochiai(public_together, pub.share),
        prior,
    )


def decode(
    rows: Bits,
    weights: Floats,
    atoms: Atoms,
    public: NameList,
    *,
    q: int = 2,
    names_kept: int = 5000,
) -> tuple[list[str | None], Floats]:
    """The public name of each row, and how well its atoms' q-grams fit that name."""
    if len(atoms.members) < 3:
        return [None] * len(rows), np.zeros(len(rows))
    pub = _public(public, q, names_kept)
    # The row's q-gram count, from its bits set and the hash count (collisions undone).
    width, k = rows.shape[1], typical_size(atoms, weights)
    filled = np.clip(rows.sum(axis=1) / width, 0.0, 0.999)
    lengths = -width * np.log1p(-filled) / max(k, 1.0)
    grams = name_atoms(atoms, weights, pub)
    guess, fit = _decode_rows(atoms.present.astype(np.float64), grams, pub, lengths)
    return [pub.names[g] for g in guess], fit


def pattern_attacks(
    bits: Bits, publics: Sequence[NameList], *, q: int = 2, tolerance: float = 0.0
) -> list[list[str | None]]:
    """Name each record from one filter against each public list (mined once): mine the
    distinct rows, keep the single-q-gram atoms, name them and decode. ``tolerance`` is
    the share of an itemset's positions a record may lack, for encodings that flip bits."""
    rows = as_unbalanced(bits)
    if rows.shape[1] == 0:  # balanced, but no complement pairs found: take it as it is
        rows = bits
    distinct, labels, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    weights = counts.astype(np.float64)
    atoms = single_grams(mine_atoms(distinct, weights, tolerance=tolerance), weights)
    index = np.asarray(labels).reshape(-1)
    out = []
    for public in publics:
        names, _ = decode(distinct, weights, atoms, public, q=q)
        out.append([names[i] for i in index])
    return out


def pattern_attack(
    bits: Bits, public: NameList, *, q: int = 2, tolerance: float = 0.0
) -> list[str | None]:
    """Name each record from one filter against one public list."""
    return pattern_attacks(bits, [public], q=q, tolerance=tolerance)[0]
