"""Which candidate pairs compete for one record's single match in another organisation:
the one-to-one rule of the field model (``field_model.one_to_one``), worked out once a fit.

A record has at most one match in another organisation, so where its candidates there
add up to more than one match, its best keeps its share and the others share what is left.
EM applies the rule on every step over every pair; the groups of pairs it weighs against
each other do not change between steps, so they are sorted out here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def scale(
    p: np.ndarray, ends: tuple[np.ndarray, np.ndarray], rivals: Rivals | None = None
) -> np.ndarray:
    """The factor ``field_model.one_to_one`` scales each pair's match probability ``p`` by.

    ``rivals`` (``Rivals.of(ends)``) saves working out the records' groups again on each
    EM step: only pairs whose record end has another candidate can be scaled."""
    out = np.ones(len(p))
    for group in (rivals or Rivals.of(ends)).groups:
        if not len(group.pairs):
            continue
        q = p[group.pairs]
        total = np.bincount(group.member, weights=q)
        over = total > 1.0
        if not over.any():  # no record's candidates hold more than one match: nothing moves
            continue
        # Only the pairs of records whose candidates hold more than one match can change;
        # they stay in record order, so each record's pairs are still one run.
        mine = over[group.member]
        member, q, pairs = group.member[mine], q[mine], group.pairs[mine]
        first = np.ones(len(member), dtype=bool)
        first[1:] = member[1:] != member[:-1]
        run = np.cumsum(first) - 1
        top = np.maximum.reduceat(q, np.flatnonzero(first))[run]
        rest = total[member] - top
        room = np.where(rest > 0, (1.0 - top) / np.maximum(rest, 1e-300), 1.0)
        factor = np.where(q < top, np.clip(room, 0.0, 1.0), 1.0)
        out[pairs] = np.minimum(out[pairs], factor)
    return out


@dataclass(frozen=True)
class RivalGroup:
    """One end's records with two or more candidates: their pairs in record order (a
    record's pairs in their own order), each pair's record number among them, and where
    each record's run of pairs starts."""

    pairs: np.ndarray
    member: np.ndarray
    starts: np.ndarray


@dataclass(frozen=True)
class Rivals:
    """The groups ``one_to_one`` weighs pairs within, worked out once per fit.

    A record end with one candidate keeps its pair's probability whatever it is (its best
    is itself and nothing else shares its 1), so only ends with rivals are kept; sums run
    in the pairs' own order, as over all of them."""

    groups: tuple[RivalGroup, ...]

    @classmethod
    def of(cls, ends: tuple[np.ndarray, np.ndarray]) -> Rivals:
        groups = []
        for end in ends:
            bound = np.flatnonzero(end >= 0)
            at = end[bound]
            counts = np.bincount(at) if len(at) else np.zeros(0, dtype=np.int64)
            bound = bound[counts[at] > 1] if len(at) else bound
            order = np.argsort(end[bound], kind="stable")
            pairs = bound[order]
            keys = end[pairs]
            first = np.ones(len(keys), dtype=bool)
            first[1:] = keys[1:] != keys[:-1]
            groups.append(RivalGroup(pairs, np.cumsum(first) - 1, np.flatnonzero(first)))
        return cls(tuple(groups))
