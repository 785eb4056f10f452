"""Graph matching: name groups of encodings by the shape of their similarity graph.

After Vidanage, Christen et al. (graph matching attack on privacy-preserving
record linkage, 2020) and Chen, Schnell et al. (2022). Near-identical
encodings are clustered (one cluster per value, or per value and salt); the
clusters' similarities to each other form a graph whose shape follows the
similarity graph of the values' q-gram sets. The attacker builds the latter
from a public name list and matches the two graphs:

1. a few anchors from node features: frequency rank (cluster size against
   public frequency) and length (bits set against q-grams in the name);
2. then, round by round, every cluster's similarities to the anchors (its
   fingerprint) are correlated with every name's similarities to the anchors'
   names, the best one-to-one assignment is taken, and the assignments that
   win most clearly become the next rounds' anchors.

The seeding is the fragile step: started from the wrong anchors the
refinement names almost nothing (12% against 99.9% on one population), so
several seed sizes are tried and the most self-consistent naming kept. The
bridge across salts is in ``hublink.privacy.bridge``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hublink.privacy.bits import Bits, dice_matrix, qgram_dice, qgrams
from hublink.privacy.frequency import near_duplicate_clusters
from hublink.privacy.names import NameList
from hublink.privacy.unbalance import as_unbalanced

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Groups:
    """Clusters of records believed to share a value, each described by a bit signature."""

    labels: npt.NDArray[np.int64]
    """Each record's group (-1: none)."""
    signatures: Bits
    """Per group, the positions (nearly) all its records have set."""

    @property
    def sizes(self) -> npt.NDArray[np.int64]:
        return np.bincount(self.labels[self.labels >= 0], minlength=len(self.signatures))


def _assign(score: Floats) -> npt.NDArray[np.int64]:
    """Best one-to-one assignment of rows to columns maximising the total score (-1 if none)."""
    from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

    rows, cols = linear_sum_assignment(-score)
    out = np.full(score.shape[0], -1, dtype=np.int64)
    out[rows] = cols
    return out


def _zrows(x: Floats) -> Floats:
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norm, 1e-9))


def _standard(x: Floats) -> Floats:
    """Off-diagonal entries centred and scaled, the diagonal zero: similarities on one scale."""
    off = ~np.eye(len(x), dtype=bool)
    values = x[off]
    out = (x - values.mean()) / max(float(values.std()), 1e-9)
    np.fill_diagonal(out, 0.0)
    return np.asarray(out)


def _faq(a: Floats, b: Floats, linear: Floats, *, iterations: int = 30) -> npt.NDArray[np.int64]:
    """Partial assignment of ``a``'s nodes to ``b``'s maximising tr(A P B P^T) + tr(L^T P).

    Frank-Wolfe on the relaxation (as the FAQ algorithm of Vogelstein et al.),
    rounded to a one-to-one assignment at the end; started from the linear
    term's own assignment and from the flat matrix, keeping the better.
    """
    a, b = _standard(a), _standard(b)
    k, m = linear.shape
    weight = 0.5 * k
    best: tuple[float, npt.NDArray[np.int64]] | None = None
    starts = [np.full((k, m), 1.0 / m)]
    first = _assign(linear)
    start = np.zeros((k, m))
    start[np.arange(k)[first >= 0], first[first >= 0]] = 1.0
    starts.append(start)
    for p in starts:
        for _ in range(iterations):
            gradient = 2 * a @ p @ b + weight * linear
            target = np.zeros_like(p)
            chosen = _assign(gradient)
            target[np.arange(k)[chosen >= 0], chosen[chosen >= 0]] = 1.0
            d = target - p
            # Exact line search on the quadratic along d.
            quad = float(np.sum((a @ d @ b) * d))
            slope = float(np.sum(gradient * d))
            step = 1.0 if quad >= 0 else min(1.0, max(0.0, -slope / (2 * quad)))
            if slope <= 1e-9:
                break
            p = p + step * d
        final = _assign(p)
        q = np.zeros((k, m))
        q[np.arange(k)[final >= 0], final[final >= 0]] = 1.0
        value = float(np.sum((a @ q @ b) * q)) + weight * float(np.sum(linear * q))
        if best is None or value > best[0]:
            best = (value, final)
    assert best is not None
    return best[1]


def match_graph(
    similarity: Floats,
    sizes: npt.NDArray[np.int64],
    lengths: Floats,
    public: NameList,
    *,
    q: int = 2,
    names_kept: int = 3000,
    seeds: int = 80,
    rounds: int = 6,
) -> list[str | None]:
    """The name of each encoding node (cluster or group), by graph matching.

    ``similarity`` is Dice between nodes, ``sizes`` their record counts,
    ``lengths`` their bits set (any scale: only compared after a fitted factor).
    """
    count = len(sizes)
    if count == 0:
        return []
    order = np.argsort(-np.asarray(public.frequencies), kind="stable")[:names_kept]
    names = [public.names[i] for i in order]
    freq = np.asarray(public.frequencies)[order]
    freq = freq / freq.sum()
    name_sim = qgram_dice(names, q).astype(np.float64)
    name_len = np.array([len(qgrams(n, q)) for n in names], dtype=np.float64)
    share = sizes / max(sizes.sum(), 1)
    # Bits per q-gram, fitted from the medians: lengths become q-gram counts.
    scale = np.median(lengths) / max(np.average(name_len, weights=freq), 1.0)
    node_len = lengths / max(scale, 1e-9)
    prior = -0.15 * np.abs(node_len[:, None] - name_len[None, :]) - 0.1 * np.abs(
        np.log(share[:, None] + 1e-6) - np.log(freq[None, :] + 1e-6)
    )
    # The seeding is fragile (one bad start names almost nothing), so several seed
    # sizes are tried on the largest nodes, and the one whose fingerprints agree best
    # is run on all of them.
    large = np.argsort(-sizes, kind="stable")[: min(count, 400)]
    best: tuple[float, int] | None = None
    for size in sorted({min(n, len(large)) for n in (seeds // 2, seeds, 2 * seeds)}):
        fit, _ = _refine(
            similarity[np.ix_(large, large)], sizes[large], name_sim, prior[large], size, rounds
        )
        if best is None or fit > best[0]:
            best = (fit, size)
    assert best is not None
    _, assigned = _refine(similarity, sizes, name_sim, prior, min(best[1], count), rounds)
    return [names[a] if a >= 0 else None for a in assigned]


def match_nodes(
    similarity: Floats,
    sizes: npt.NDArray[np.int64],
    reference: Floats,
    prior: Floats,
    *,
    seeds: tuple[int, ...] = (20, 40, 80),
    rounds: int = 8,
) -> npt.NDArray[np.int64]:
    """Each node's match among the reference nodes (-1: none), by graph matching: seeded
    several ways, keeping the most self-consistent. For any two graphs on one scale, e.g.
    mined q-gram atoms' co-occurrence against the public q-grams' (``patterns``)."""
    count = len(sizes)
    best: tuple[float, npt.NDArray[np.int64]] | None = None
    for size in sorted({min(s, count) for s in seeds}):
        fit, assigned = _refine(similarity, sizes, reference, prior, size, rounds)
        if best is None or fit > best[0]:
            best = (fit, assigned)
    assert best is not None
    return best[1]


def _refine(
    similarity: Floats,
    sizes: npt.NDArray[np.int64],
    name_sim: Floats,
    prior: Floats,
    seeds: int,
    rounds: int,
) -> tuple[float, npt.NDArray[np.int64]]:
    """Seed with the ``seeds`` largest nodes matched as graphs, then refine by anchors;
    returns how well the final fingerprints agree (mean score of the top half) and the
    assignment."""
    count = len(sizes)
    # Seeds: the largest nodes against the most frequent names, matched as graphs.
    top = np.argsort(-sizes, kind="stable")[:seeds]
    common = np.arange(min(4 * len(top), name_sim.shape[0]))
    seeded = _faq(
        similarity[np.ix_(top, top)], name_sim[np.ix_(common, common)], prior[np.ix_(top, common)]
    )
    anchors_enc = top[seeded >= 0]
    anchors_name = common[seeded[seeded >= 0]]
    assigned = np.full(count, -1, dtype=np.int64)
    for _ in range(rounds):
        fingerprint = _zrows(similarity[:, anchors_enc])
        reference = _zrows(name_sim[:, anchors_name])
        score = fingerprint @ reference.T + 0.2 * prior
        # One-to-one while nodes are few; beyond, a salted filter's clusters hold each
        # name several times anyway, and the assignment would take minutes.
        assigned = _assign(score) if count <= 1500 else np.asarray(score.argmax(axis=1))
        best = np.where(assigned >= 0, score[np.arange(count), np.maximum(assigned, 0)], -np.inf)
        second = np.partition(score, -2, axis=1)[:, -2] if score.shape[1] > 1 else best
        margin = np.where(assigned >= 0, best - second, -np.inf)
        keep = min(count, 2 * len(anchors_enc) + 10)
        # Anchors weighted to big nodes: their fingerprints are the least noisy.
        chosen = np.argsort(-(margin + 0.02 * np.log1p(sizes)))[:keep]
        chosen = chosen[assigned[chosen] >= 0]
        anchors_enc, anchors_name = chosen, assigned[chosen]
    score_at = score[np.arange(count), np.maximum(assigned, 0)]
    half = np.sort(score_at[assigned >= 0])[::-1][: max(1, count // 2)]
    return float(half.mean()), assigned


def cluster_groups(bits: Bits, alike: float, share: float = 0.9, min_size: int = 1) -> Groups:
    """Near-identical encodings clustered; each cluster's signature: positions set in at
    least ``share`` of its records."""
    roots = np.asarray(near_duplicate_clusters(bits, alike))
    _, labels = np.unique(roots, return_inverse=True)
    counts = np.bincount(labels)
    keep = counts >= min_size
    renumber = np.full(len(counts), -1, dtype=np.int64)
    renumber[keep] = np.arange(keep.sum())
    labels = renumber[labels]
    sums = np.zeros((int(keep.sum()), bits.shape[1]), dtype=np.float64)
    np.add.at(sums, labels[labels >= 0], bits[labels >= 0])
    sig = (sums / np.maximum(counts[keep], 1)[:, None] >= share).astype(np.uint8)
    return Groups(labels, sig)


def prepared(bits: Bits) -> Bits:
    """A filter as the attacker works on it: unbalanced when it looks balanced."""
    return as_unbalanced(bits)


def filter_attack(bits: Bits, public: NameList, *, alike: float = 0.9) -> list[str | None]:
    """Graph matching on one (unsalted) field filter: cluster, match, name every record."""
    bits = prepared(bits)
    groups = cluster_groups(bits, alike)
    names = match_graph(
        dice_matrix(groups.signatures, groups.signatures).astype(np.float64),
        groups.sizes,
        groups.signatures.sum(axis=1).astype(np.float64),
        public,
    )
    return [names[g] if g >= 0 else None for g in groups.labels]
