"""Matches no candidate held, counted from which record-CLK parts caught the ones it did.

The candidate pass keeps a pair when its whole-row Dice reaches the floor or any one part's
Dice reaches that part's floor (``part_pass``, ``part_keep``). Each part is then one
"list" that catches a match, and a match no list caught is never a candidate: the
unseen cell of a multiple-systems (capture-recapture) table. Every candidate falls in
one cell by which parts reached their floors (``clear_bits``); the cells of the lists'
overlaps say how the parts catch matches together, with whatever dependence they have
(each part carries the other parts' salt fields, so they are far from independent).
``unseen`` fits the standard hierarchical log-linear models to the observed cells
(main effects, plus any set of two-part interactions), picks one by AIC and reads the
unseen cell off it.

What such a table cannot see is a match that no part could ever catch: one whose every
part's salt differs, so every part reads chance and the match has no overlap with any
list. ``field_hidden.all_broken_unseen`` counts those from how often each salt breaks.
Why not from the salts alone, as before: the count hidden was the difference of two large
numbers (matches expected with two salts broken, less those found), and a 10-20% miss in
the independence of the salts' breaks made it two to three times the truth
(docs/benchmarks.md, 2026-12-07, "hidden matches from the parts").
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

#: Draws of the unseen cell for the interval (each a refit on cells drawn around the
#: expected counts); tiled up to however many outcomes the caller asks for.
CELL_DRAWS = 200
_ITERATIONS = 60


def part_dice(left: np.ndarray, right: np.ndarray, parts: int) -> np.ndarray:
    """[pair, part]: Dice of each of ``parts`` equal parts of paired rows (uint8, same shape)."""
    shape = (len(left), parts, -1)
    both = np.bitwise_count(left & right).reshape(shape).sum(axis=2, dtype=np.int64)
    ones = np.bitwise_count(left).reshape(shape).sum(axis=2, dtype=np.int64) + np.bitwise_count(
        right
    ).reshape(shape).sum(axis=2, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(ones > 0, 2.0 * both / ones, 0.0)
    return out


def clear_bits(dice: np.ndarray, floors: Sequence[float]) -> np.ndarray:
    """Bit i set where part i's Dice reaches part i's floor: the parts that caught the pair."""
    reached = dice >= np.asarray(floors, dtype=np.float64)
    out: np.ndarray = (reached * (1 << np.arange(dice.shape[1]))).sum(axis=1).astype(np.int64)
    return out


def cells(chance: np.ndarray, clear: np.ndarray, parts: int) -> np.ndarray:
    """Expected matches in each cell (index: the bits of the parts that caught them)."""
    out: np.ndarray = np.bincount(clear, weights=chance, minlength=1 << parts).astype(np.float64)
    return out


def _terms(parts: int) -> list[list[tuple[int, ...]]]:
    """The hierarchical models: every part's main effect, plus each set of pair terms."""
    main = [(i,) for i in range(parts)]
    pairs = list(itertools.combinations(range(parts), 2))
    return [
        main + list(chosen)
        for r in range(len(pairs) + 1)
        for chosen in itertools.combinations(pairs, r)
    ]


def _design(parts: int, terms: Sequence[tuple[int, ...]]) -> np.ndarray:
    """[cell, term]: the intercept and each term's indicator, for the observed cells."""
    bits = np.array([[c >> i & 1 for i in range(parts)] for c in range(1 << parts)])
    columns = [np.ones(1 << parts)] + [bits[:, list(t)].prod(axis=1) for t in terms]
    return np.stack(columns, axis=1)[1:].astype(np.float64)


def _fit(counts: np.ndarray, design: np.ndarray) -> tuple[float, float]:
    """A Poisson log-linear fit to the observed cells (iteratively reweighted least squares):
    the unseen cell (exp of the intercept) and the deviance."""
    beta = np.zeros(design.shape[1])
    beta[0] = np.log(max(float(counts.mean()), 1e-9))
    ridge = 1e-9 * np.eye(design.shape[1])
    for _ in range(_ITERATIONS):
        eta = np.clip(design @ beta, -30.0, 30.0)
        mu = np.exp(eta)
        z = eta + (counts - mu) / mu
        beta = np.linalg.solve(design.T @ (mu[:, None] * design) + ridge, design.T @ (mu * z))
    mu = np.exp(np.clip(design @ beta, -30.0, 30.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(counts > 0, counts * np.log(counts / mu), 0.0)
    deviance = float(2.0 * (ratio - (counts - mu)).sum())
    return float(np.exp(np.clip(beta[0], -30.0, 30.0))), deviance


def choose(counts: np.ndarray, parts: int) -> np.ndarray:
    """The design of the model AIC prefers on these cells (ties: the simpler)."""
    best: tuple[float, np.ndarray] | None = None
    for terms in _terms(parts):
        design = _design(parts, terms)
        _, deviance = _fit(counts[1:], design)
        aic = deviance + 2.0 * design.shape[1]
        if best is None or aic < best[0] - 1e-9:
            best = (aic, design)
    assert best is not None
    return best[1]


def unseen(counts: np.ndarray, parts: int) -> float:
    """Matches in the cell no part caught, by the AIC-chosen log-linear model, less the
    ones the candidates hold there (caught by the whole row alone). Nothing when no part
    caught any match on its own, where the table says nothing."""
    singles = sum(float(counts[1 << i]) for i in range(parts))
    if parts < 2 or singles <= 0:
        return 0.0
    empty, _ = _fit(counts[1:], choose(counts, parts))
    return max(empty - float(counts[0]), 0.0)


def unseen_draws(
    counts: np.ndarray, parts: int, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` draws of ``unseen``: cells drawn Gamma(expected + 1/2) around the expected
    counts, refitted on the chosen model, then a Poisson count around each fit."""
    singles = sum(float(counts[1 << i]) for i in range(parts))
    if parts < 2 or singles <= 0:
        return np.zeros(count)
    design = choose(counts, parts)
    fits = np.array(
        [
            max(_fit(rng.gamma(counts[1:] + 0.5, 1.0), design)[0] - float(counts[0]), 0.0)
            for _ in range(min(CELL_DRAWS, count))
        ]
    )
    drawn: np.ndarray = rng.poisson(rng.choice(fits, count)).astype(np.float64)
    return drawn
