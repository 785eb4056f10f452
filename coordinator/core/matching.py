"""Matching: encodings in, groups of records out. Plain functions around anonlink.

As in anonlink itself, similarity, candidate generation and solving are
separate steps: ``candidate_pairs`` finds the pairs whose Dice similarity
reaches a threshold (across datasets, and optionally within one to find
duplicate referrals), ``solve`` turns candidates into groups with anonlink's
greedy solvers (``coordinator.core.entities`` then gives every record, grouped
or alone, a stable entity id), and ``completing`` gives the solver the pairs
that two links imply, so a duplicate is not left out of its group.
Nothing here knows about gRPC, SQLite or organisations.
"""

from __future__ import annotations

import warnings
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from bitarray import bitarray
from numpy.typing import NDArray

with warnings.catch_warnings():
    # anonlink 0.15.3 imports pkg_resources, which warns on current setuptools.
    warnings.simplefilter("ignore")
    import anonlink

#: A record's place: (dataset index, row index within the dataset).
RecordRef = tuple[int, int]
#: anonlink's candidate-pair structure (similarities, dataset indices, record indices).
Candidates = Any
#: Dataset or row numbers of candidate pairs, as ``arrays`` gives them.
Indices = NDArray[np.uint32]
#: The same, widened to compute keys from them.
Numbers = NDArray[np.int64]


def unpack(packed: Iterable[bytes]) -> list[bitarray]:
    """Turn stored encodings (bytes, most significant bit first) into anonlink's bitarrays."""
    out = []
    for raw in packed:
        bits = bitarray(endian="big")
        bits.frombytes(raw)
        out.append(bits)
    return out


def candidate_pairs(
    datasets: Sequence[Sequence[bitarray]], threshold: float, within_threshold: float = 0.0
) -> Candidates:
    """Pairs of records whose Dice similarity reaches a threshold, most similar first.

    Pairs across datasets need ``threshold``. When ``within_threshold`` is set,
    pairs inside one dataset reaching it are added too, so a child referred
    twice to the same organisation can be found; it is set higher than the
    cross-dataset threshold because siblings and twins inside one family share
    surname, postcode and often birth date.
    """
    _check_threshold(threshold)
    across = anonlink.candidate_generation.find_candidate_pairs(
        list(datasets), anonlink.similarities.dice_coefficient_accelerated, threshold
    )
    if not within_threshold:
        return across
    return _merge([across, within_pairs(datasets, within_threshold)])


def within_pairs(datasets: Sequence[Sequence[bitarray]], within_threshold: float) -> Candidates:
    """Pairs inside each dataset (left row before right) whose Dice reaches ``within_threshold``."""
    _check_threshold(within_threshold)
    parts = []
    for index, dataset in enumerate(datasets):
        sims, _, (left, right) = anonlink.candidate_generation.find_candidate_pairs(
            [dataset, dataset],
            anonlink.similarities.dice_coefficient_accelerated,
            within_threshold,
        )
        keep = [i for i in range(len(sims)) if left[i] < right[i]]
        parts.append(
            (
                array("d", (sims[i] for i in keep)),
                (array("I", [index] * len(keep)), array("I", [index] * len(keep))),
                (array("I", (left[i] for i in keep)), array("I", (right[i] for i in keep))),
            )
        )
    return _merge(parts)


def above(candidates: Candidates, threshold: float) -> Candidates:
    """The candidates whose similarity reaches ``threshold``, in the same order."""
    return select(candidates, np.frombuffer(candidates[0], dtype=np.float64) >= threshold)


def select(candidates: Candidates, keep: np.ndarray) -> Candidates:
    """The candidates where ``keep`` (a boolean mask in candidate order) is set, in order."""
    sims = np.frombuffer(candidates[0], dtype=np.float64)
    return (
        array("d", sims[keep].tobytes()),
        tuple(array("I", np.frombuffer(a, dtype=np.uint32)[keep].tobytes()) for a in candidates[1]),
        tuple(array("I", np.frombuffer(a, dtype=np.uint32)[keep].tobytes()) for a in candidates[2]),
    )


def rescored(candidates: Candidates, similarity: np.ndarray) -> Candidates:
    """The same pairs, in the same order, with ``similarity`` in place of their Dice scores
    (say a model's match weight); ``combine`` puts them back in anonlink's order."""
    values = np.asarray(similarity, dtype=np.float64)
    if len(values) != len(candidates[0]):
        raise ValueError("one similarity per candidate pair is needed")
    return (array("d", values.tobytes()), candidates[1], candidates[2])


def combine(*parts: Candidates) -> Candidates:
    """One candidate structure from several (say cross- and within-dataset), most similar first."""
    return _merge(parts)


def arrays(
    candidates: Candidates,
) -> tuple[NDArray[np.float64], Indices, Indices, Indices, Indices]:
    """anonlink's candidate structure as numpy views: similarities, datasets (2), rows (2)."""
    sims = np.frombuffer(candidates[0], dtype=np.float64)
    d0, d1 = (np.frombuffer(candidates[1][k], dtype=np.uint32) for k in (0, 1))
    r0, r1 = (np.frombuffer(candidates[2][k], dtype=np.uint32) for k in (0, 1))
    return sims, d0, d1, r0, r1


def completing(
    across: Candidates, within: Candidates, threshold: float, *, through_links: bool = False
) -> Candidates:
    """Cross-dataset candidates below ``threshold`` that close a triangle of two links.

    When a record is linked to its duplicate in its own dataset (a pair of
    ``within``) and to a record of another dataset (a pair of ``across`` at or
    above ``threshold``), the duplicate and that other record are one child too
    if both links hold. The probabilistic solver merges a record into a group
    only if most of its pairs with the group's records are candidates, so a
    duplicate whose surname changed, close to its own organisation's record but
    below the threshold to the other organisation's, would be left out of the
    group it belongs to. These pairs, taken from ``across`` (so still similar
    enough to be candidates), count as evidence for that merge. Nothing is added
    that the two links do not both imply, and the solver still decides.

    ``through_links`` closes triangles of two cross links as well (``chained``): a
    record linked to records of two other datasets makes those two one child too.
    """
    sims, *index = arrays(across)
    d0, d1, r0, r1 = (a.astype(np.int64) for a in index)
    _, *inside = arrays(within)
    w0, _, v0, v1 = (a.astype(np.int64) for a in inside)
    linked = sims >= threshold
    if not (len(w0) or through_links) or not linked.any():
        return select(across, np.zeros(len(sims), dtype=bool))
    width = int(max(r0.max(), r1.max(), v0.max(initial=0), v1.max(initial=0))) + 1
    size = int(max(d0.max(), d1.max(), w0.max(initial=0)) + 1) * width
    # Each record's linked partners in other datasets, sorted by the record.
    _, own_set, own_row, other_set, other_row = linked_both_ways(across, threshold)
    own, partner = own_set * width + own_row, other_set * width + other_row
    order = np.argsort(own, kind="stable")
    own, partner = own[order], partner[order]
    a, b = w0 * width + v0, w0 * width + v1
    if through_links:
        a, b = chained(a, b, own, partner)
    wanted = np.unique(
        np.concatenate(
            [_through(own, partner, via, other, size) for via, other in ((a, b), (b, a))]
        )
    )
    left, right = d0 * width + r0, d1 * width + r1
    keys = np.minimum(left, right) * size + np.maximum(left, right)
    return select(across, ~linked & (find_sorted(wanted, keys) >= 0))


def chained(
    a: np.ndarray, b: np.ndarray, own: np.ndarray, partner: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The record pairs (``a``, ``b``) a triangle may close through, with every cross link
    (``own``, ``partner``) added.

    Why: with three or more organisations one child's records form a chain, A-B and
    B-C linked and A-C scored just under the cut (a surname changed between A and C,
    each close to B). The probabilistic solver merges {A, B} with {C} only if nearly
    all their pairs are linked (``merge_threshold``), so C was left out of the group
    whose two links both hold: the commonest miss that the model had scored as a
    match (bench/cross_misses.py). A-C is still a candidate, so it is similar enough
    to have been scored; nothing is added that two links do not both imply.
    """
    return np.concatenate([a, own]), np.concatenate([b, partner])


def linked_both_ways(
    across: Candidates, threshold: float
) -> tuple[NDArray[np.float64], Numbers, Numbers, Numbers, Numbers]:
    """The cross-dataset pairs at or above ``threshold``, each listed from both ends.

    Returns similarity, then the record's dataset and row, then its partner's
    dataset and row: what "each record's links in other datasets" needs.
    """
    sims, *index = arrays(across)
    d0, d1, r0, r1 = (a.astype(np.int64) for a in index)
    keep = sims >= threshold
    s, d0, d1, r0, r1 = sims[keep], d0[keep], d1[keep], r0[keep], r1[keep]
    both = np.concatenate
    return both([s, s]), both([d0, d1]), both([r0, r1]), both([d1, d0]), both([r1, r0])


def find_sorted(known: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each of ``wanted`` sits in the sorted ``known``, -1 where it is absent.

    A binary search per wanted key: np.isin would sort both arrays, which costs
    more when ``known`` is small and ``wanted`` is every candidate pair.
    """
    if not len(known):
        return np.full(len(wanted), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(known, wanted), len(known) - 1)
    found: np.ndarray = np.where(known[at] == wanted, at, -1)
    return found


def _through(
    own: np.ndarray, partner: np.ndarray, via: np.ndarray, other: np.ndarray, size: int
) -> np.ndarray:
    """Pair keys (lower * size + higher) of ``other`` with each linked partner of ``via``."""
    start = np.searchsorted(own, via, side="left")
    many = np.searchsorted(own, via, side="right") - start
    first = np.repeat(np.cumsum(many) - many, many)
    at = np.repeat(start, many) + np.arange(int(many.sum())) - first
    one, two = np.repeat(other, many), partner[at]
    keys: np.ndarray = np.minimum(one, two) * size + np.maximum(one, two)
    return keys


def _merge(parts: Sequence[Candidates]) -> Candidates:
    """One candidate structure from several, in anonlink's order (similarity descending)."""
    sims = np.concatenate([np.frombuffer(p[0], dtype=np.float64) for p in parts])
    d0, d1, r0, r1 = (
        np.concatenate([np.frombuffer(p[k][j], dtype=np.uint32) for p in parts])
        for k, j in ((1, 0), (1, 1), (2, 0), (2, 1))
    )
    order = np.lexsort((r1, r0, d1, d0, -sims))
    return (
        array("d", sims[order].tobytes()),
        (array("I", d0[order].tobytes()), array("I", d1[order].tobytes())),
        (array("I", r0[order].tobytes()), array("I", r1[order].tobytes())),
    )


def _check_threshold(threshold: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")


def solve(
    candidates: Candidates, *, merge_threshold: float | None = None
) -> list[tuple[RecordRef, ...]]:
    """Groups of linked records from candidates, taken greedily from the most similar.

    Without ``merge_threshold``: anonlink's greedy solver, at most one record
    per dataset in a group. With it: anonlink's probabilistic greedy solver
    allowing several records of one dataset (duplicates), where two groups
    merge only if at least that share of their record pairs are candidates —
    which stops a chain of pairwise links pulling dissimilar records together.
    """
    if merge_threshold is None:
        groups = anonlink.solving.greedy_solve(candidates)
    else:
        groups = anonlink.solving.probabilistic_greedy_solve(
            candidates, merge_threshold=merge_threshold, deduplicated=False
        )
    return [tuple((int(d), int(r)) for d, r in group) for group in groups]


def count_candidates(candidates: Candidates) -> int:
    """How many candidate pairs anonlink found."""
    return len(candidates[0])
