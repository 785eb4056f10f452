"""Matches no candidate held: how many a salted record CLK hid under the candidate floor.

A salted record CLK puts a match whose salts differ in two or three parts (a date
slip and a move, say) among strangers, under the candidate floor, so no candidate
ever holds it and the model never scores it. Recall must count it as missed all
the same. ``hidden_matches`` counts such matches from how often each part's salt
breaks among the matches the floor kept (independence, the field model's own
assumption); ``hidden_by_kind`` reads that count where most of its evidence is and
lends the ratio of hidden to found to the other kind of pair. That count is a
difference of two large numbers and reads 2-3 times the truth when the salts break
together 10-20% less often than independence says; a run that read which parts
reached their floors counts instead from those cells (``by_parts``,
``hidden_cells``), and keeps the salts' reading for the interval (``mixed``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from coordinator.core import hidden_cells
from coordinator.core.field_levels import MISSING

#: How far (sd, natural log) the matches with two or more parts broken stray from what
#: independence of the salts' breaks says, in one run: 0.97-1.17 times the truth over the
#: doubled-error settings at 50-90% overlap (bench/estimate_replay.py, 2026-12-07), beyond
#: what the counts' own noise explains. The interval draws it; the point keeps independence.
DEPENDENCE = 0.12
#: A kind's expected matches with two or more parts broken, among its candidates: its
#: own (expected, of one part broken, of none) sums.
Sums = tuple[float, list[float], float]


def broken_parts(
    levels: np.ndarray, groups: Sequence[str], checks: Mapping[str, tuple[str, ...]]
) -> np.ndarray:
    """Bit i set where part i's salt differs (a comparison checking it is below its top
    level); -1 where a checking comparison reads missing: its own salts differ, so at
    least two parts are broken. ``checks``: part -> comparisons (``PART_CHECKS``)."""
    out = np.zeros(levels.shape[1], dtype=np.int64)
    unknown = np.zeros(levels.shape[1], dtype=bool)
    for bit, names in enumerate(checks.values()):
        for name in names:
            if name not in groups:
                continue
            level = levels[list(groups).index(name)]
            unknown |= level == MISSING
            out |= np.where(level > 0, 1 << bit, 0)
    out[unknown] = -1
    return out


def hidden_matches(alone: float, one: Sequence[float], several: float) -> float:
    """Matches with two or more record-CLK parts broken that never became candidates.

    Each part's salt breaks (its salt fields differ) independently of the others with
    some rate: the field model's own assumption, fields independent given a match. Matches
    with no part broken (``alone`` of them, expected) and with only part i broken
    (``one[i]``) keep a record Dice far above the floor, so all of them are candidates;
    their ratio is part i's odds of breaking (``several_expected``). Those with two or
    more are partly under the floor: expected less the ones the candidates do hold
    (``several``).
    """
    return max(several_expected(alone, one) - several, 0.0)


def several_expected(alone: float, one: Sequence[float] | np.ndarray) -> float:
    """Matches expected with two or more parts broken: ``alone`` times, for every set S of
    two or more parts, the product of S's odds (``one[i] / alone``)."""
    if alone <= 0:
        return 0.0
    odds = np.asarray(one, dtype=np.float64) / alone
    total = 0.0
    for mask in range(1 << len(odds)):
        chosen = [i for i in range(len(odds)) if mask >> i & 1]
        if len(chosen) >= 2:
            total += alone * float(np.prod(odds[chosen]))
    return total


def part_sums(
    chance: np.ndarray, broken: np.ndarray, parts: int
) -> tuple[float, list[float], float]:
    """Expected matches among candidates with no part broken, only part i, and two or more."""
    alone = float(chance[broken == 0].sum())
    one = [float(chance[broken == 1 << i].sum()) for i in range(parts)]
    return alone, one, float(chance.sum()) - alone - sum(one)


def source_kind(sums: Mapping[int, Sums]) -> int | None:
    """The kind whose candidates hold the most expected matches with two or more parts
    broken: its hidden count rests on the most evidence (None: no kind has any)."""
    found = {k: s[2] for k, s in sums.items() if s[2] > 0}
    return max(found, key=lambda k: found[k]) if found else None


def hidden_by_kind(sums: Mapping[int, Sums]) -> dict[int, float]:
    """Each kind's matches hidden under the floor: the source kind's (``source_kind``) by
    independence (``hidden_matches``), the others at its ratio of hidden to found.

    Whether a match with two parts broken becomes a candidate depends on the floors and the
    part pass, which are the same for both kinds; how often two salts break together is
    not. Duplicates inside one organisation broke two salts far less often than
    independence says (bench/estimate_replay.py: 23-30 expected at doubled errors, 11-18
    true, 1-3 of them hidden, read as 13-15), and they are too few to show it. Their
    hidden count is therefore the share of their found several-broken matches that the
    source kind's count says a floor misses.
    """
    source = source_kind(sums)
    if source is None:
        return {k: hidden_matches(*s) for k, s in sums.items()}
    ratio = hidden_matches(*sums[source]) / sums[source][2]
    return {k: hidden_matches(*s) if k == source else s[2] * ratio for k, s in sums.items()}


def hidden_draws(sums: Sums, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` draws of the hidden count given one kind's sums: its inputs (each expected
    count read as a Poisson count, Gamma(count + 1/2): a handful of matches with one part
    broken makes a loose estimate of how many have two), how far the salts' breaks stray
    from independence (``DEPENDENCE``), then how many matches really broke two parts, a
    Poisson count around that; less those the candidates hold."""
    alone, one, several = sums
    a = rng.gamma(alone + 0.5, 1.0, count)
    o = rng.gamma(np.asarray(one)[:, None] + 0.5, 1.0, (len(one), count))
    expected = np.array([several_expected(a[i], o[:, i]) for i in range(count)])
    expected *= np.exp(rng.normal(0.0, DEPENDENCE, count))
    found: np.ndarray = np.clip(rng.poisson(expected) - several, 0.0, None)
    return found


def hidden_draws_by_kind(
    sums: Mapping[int, Sums], count: int, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """``hidden_draws`` for the source kind; for the others, a Poisson count around their
    found several-broken matches times the source's drawn ratio (``hidden_by_kind``)."""
    source = source_kind(sums)
    if source is None:
        return {k: hidden_draws(s, count, rng) for k, s in sums.items()}
    own = hidden_draws(sums[source], count, rng)
    ratio = own / sums[source][2]
    return {
        k: own if k == source else rng.poisson(s[2] * ratio).astype(np.float64)
        for k, s in sums.items()
    }


def all_broken_expected(alone: float, one: Sequence[float] | np.ndarray) -> float:
    """Matches expected with every part's salt broken: ``alone`` times the product of every
    part's odds of breaking (``one[i] / alone``), the salts breaking independently."""
    if alone <= 0:
        return 0.0
    return alone * float(np.prod(np.asarray(one, dtype=np.float64) / alone))


def by_parts(chance: np.ndarray, broken: np.ndarray, clear: np.ndarray, parts: int) -> float:
    """Matches of one kind no candidate holds: those no part caught though some could have
    (``hidden_cells.unseen``, from the cells of the parts that caught the candidates), and
    those no part could catch, every salt broken (``all_broken_expected``, less the ones
    the candidates hold). The first needs no independence of the salts; the second is a
    single cell, small beside the two-salt count the difference of which was the old
    figure (``hidden_matches``)."""
    alone, one, _ = part_sums(chance, broken, parts)
    found = float(chance[broken == (1 << parts) - 1].sum())
    every = max(all_broken_expected(alone, one) - found, 0.0)
    return hidden_cells.unseen(hidden_cells.cells(chance, clear, parts), parts) + every


def by_parts_draws(
    chance: np.ndarray,
    broken: np.ndarray,
    clear: np.ndarray,
    parts: int,
    count: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``count`` draws of ``by_parts``: the unseen cell's (``hidden_cells.unseen_draws``)
    plus the all-broken count's (its inputs as Gamma draws, ``DEPENDENCE`` on the product,
    a Poisson count around it, less those found)."""
    alone, one, _ = part_sums(chance, broken, parts)
    found = float(chance[broken == (1 << parts) - 1].sum())
    a = rng.gamma(alone + 0.5, 1.0, count)
    o = rng.gamma(np.asarray(one)[:, None] + 0.5, 1.0, (len(one), count))
    expected = a * np.prod(o / a, axis=0) * np.exp(rng.normal(0.0, DEPENDENCE, count))
    every = np.clip(rng.poisson(expected) - found, 0.0, None)
    cells = hidden_cells.cells(chance, clear, parts)
    drawn: np.ndarray = hidden_cells.unseen_draws(cells, parts, count, rng) + every
    return drawn


def read_both(
    chances: Mapping[int, np.ndarray],
    broken: Mapping[int, np.ndarray],
    clear: Mapping[int, np.ndarray],
    parts: int,
) -> dict[int, float]:
    """Each kind's hidden count as the mean of its two readings: the parts' cells
    (``by_parts``) and the salts alone (``hidden_by_kind``); the mean of what ``mixed``
    draws.

    Neither reading is checkable, since the cell no part caught is never seen, and each
    fails its own way: the parts' table sees no match that no part could catch in a way
    related to the others (its log-linear fit has no three-part term), so it reads low
    whenever such matches exist; the salts' reading is a difference of two large numbers
    and moves two to three times as far as their breaks stray from independence, either
    way. On 30 settings at 2,000 a side (docs/benchmarks.md, 2026-12-07, "hidden matches
    from the parts") the salts' summed error was +356 (absolute 542), the parts' -463
    (465), their mean's -53 (292)."""
    salts = hidden_by_kind({k: part_sums(c, broken[k], parts) for k, c in chances.items()})
    return {
        k: 0.5 * (by_parts(c, broken[k], clear[k], parts) + salts[k]) for k, c in chances.items()
    }


def mixed(parts: np.ndarray, salts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws of the hidden count half from the parts' cells (``by_parts_draws``), half from
    the salts alone (``hidden_draws_by_kind``), in random order: the interval spans both
    readings, whose mean is the point (``read_both``)."""
    half = len(parts) // 2
    out: np.ndarray = rng.permutation(np.concatenate([parts[:half], salts[half:]]))
    return out
