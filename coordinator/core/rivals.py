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


def _factors(
    q: np.ndarray, member: np.ndarray, total: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Where each record whose candidates hold more than one match (``total``, by record
    number ``member`` of each pair, whose probability is ``q``) scales its runners-up: the
    positions (into ``q``) of the pairs that can change, and their factors. None: no record
    is over. One function for ``scale`` and ``moved``, so EM and scoring apply one rule."""
    over = total > 1.0
    if not over.any():  # no record's candidates hold more than one match: nothing moves
        return None
    # Only the pairs of records whose candidates hold more than one match can change;
    # they stay in record order, so each record's pairs are still one run.
    at = np.flatnonzero(over[member])
    member, q = member[at], q[at]
    first = np.ones(len(member), dtype=bool)
    first[1:] = member[1:] != member[:-1]
    run = np.cumsum(first) - 1
    top = np.maximum.reduceat(q, np.flatnonzero(first))[run]
    rest = total[member] - top
    room = np.where(rest > 0, (1.0 - top) / np.maximum(rest, 1e-300), 1.0)
    factor = np.where(q < top, np.clip(room, 0.0, 1.0), 1.0)
    return at, factor


def scale(p: np.ndarray, ends: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The factor ``field_model.one_to_one`` scales each pair's match probability ``p`` by:
    only pairs whose record end has another candidate can be scaled (EM's steps use
    ``moved``, with the groups worked out once)."""
    out = np.ones(len(p))
    for group in Rivals.of(ends).groups:
        if not len(group.pairs):
            continue
        q = p[group.pairs]
        found = _factors(q, group.member, np.bincount(group.member, weights=q))
        if found is not None:
            pairs = group.pairs[found[0]]
            out[pairs] = np.minimum(out[pairs], found[1])
    return out


def moved(p_rows: np.ndarray, rivals: Rivals, weights: np.ndarray | None = None) -> np.ndarray:
    """Per distinct row of levels, the match mass the one-to-one rule moves to the relative
    class on one EM step: sum over the row's pairs of p * (1 - ``scale``), each pair
    weighed by ``weights`` (a bootstrap's), from the rows' match probabilities ``p_rows``.

    The same sums as spreading ``p_rows`` to every pair, scaling and summing back per row,
    but a step then costs what the records with rivals cost, not every pair: the pairs'
    probabilities are read from the few thousand rows (``Rivals.rows``), and only the
    pairs of records over one match are scaled and summed back (on the default path
    most records' candidates hold far less than one match: salted floors keep ~40
    candidates a record, nearly all strangers)."""
    if rivals.rows is None:
        raise ValueError("moved needs rivals worked out with each pair's row")
    factor = np.ones(len(rivals.rows))
    at = []
    for group in rivals.groups:
        if group.rows is None or not len(group.pairs):
            continue
        q = p_rows[group.rows]
        found = _factors(q, group.member, np.bincount(group.member, weights=q))
        if found is not None:
            changed = found[1] < 1.0
            pairs = group.pairs[found[0][changed]]
            # A pair scaled at both ends keeps the smaller factor, as in ``scale``.
            factor[pairs] = np.minimum(factor[pairs], found[1][changed])
            at.append(pairs)
    if not at:
        return np.zeros(len(p_rows))
    pairs = np.concatenate(at)
    if len(at) > 1:  # each pair once: scattered into its row's sum just once
        seen = np.zeros(len(factor), dtype=bool)
        seen[at[0]] = True
        pairs = np.concatenate([at[0], *(a[~seen[a]] for a in at[1:])])
    factor = factor[pairs]
    rows = rivals.rows[pairs]
    shift = p_rows[rows] * (1.0 - factor)
    if weights is not None:
        shift = shift * weights[pairs]
    out: np.ndarray = np.bincount(rows, weights=shift, minlength=len(p_rows))
    return out


@dataclass(frozen=True)
class RivalGroup:
    """One end's records with two or more candidates: their pairs in record order (a
    record's pairs in their own order), each pair's record number among them, where
    each record's run of pairs starts, and (when known) each pair's distinct row."""

    pairs: np.ndarray
    member: np.ndarray
    starts: np.ndarray
    rows: np.ndarray | None = None


@dataclass(frozen=True)
class Rivals:
    """The groups ``one_to_one`` weighs pairs within, worked out once per fit.

    A record end with one candidate keeps its pair's probability whatever it is (its best
    is itself and nothing else shares its 1), so only ends with rivals are kept; sums run
    in the pairs' own order, as over all of them. ``rows`` (each pair's distinct row of
    levels, for ``moved``) is kept when given."""

    groups: tuple[RivalGroup, ...]
    rows: np.ndarray | None = None

    @classmethod
    def of(cls, ends: tuple[np.ndarray, np.ndarray], rows: np.ndarray | None = None) -> Rivals:
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
            groups.append(
                RivalGroup(
                    pairs,
                    np.cumsum(first) - 1,
                    np.flatnonzero(first),
                    None if rows is None else rows[pairs],
                )
            )
        return cls(tuple(groups), rows)
