"""One match a record per organisation: pairs the groups leave apart that cannot be matches.

The field model weighs one pair at a time, so a twin's pair, or a near namesake's, gets
the probability it would have alone even when both records are already grouped with their
own partners. Counted as missed matches, such pairs read recall low where none were
missed (``bench/estimate_misses.py``, ``bench/estimate_replay.py``). ``field_estimate``
sets them to no match across organisations (``spoken_for``) and, inside one, to the chance
that another register holds the child twice too (``spoken_for_within``, ``spoken_odds``),
and gives what they lose of their pattern's matches to the pattern's other pairs
(``moved_from_spoken``); the run's links are left as the solver made them.
"""

from __future__ import annotations

import numpy as np


def spoken_for(
    left: np.ndarray, right: np.ndarray, group: np.ndarray, dataset: np.ndarray
) -> np.ndarray:
    """Which cross pairs the groups leave apart although each record is grouped with
    another record of the other's organisation: both are spoken for there.

    A record has one match in another organisation unless that organisation holds the
    child twice, so such a pair is a match only if both records' own links are wrong or
    both organisations hold an unmerged duplicate. The model weighs one pair at a time and
    gives it the probability it would have alone (a twin's record, a near namesake): summed
    as missed matches that read 0-16 pairs where none were (bench/estimate_misses.py), up
    to a point of recall at 90% overlap. A pair with one end free stays counted: missed
    duplicates are among those.
    """
    grouped = group >= 0
    if not len(left) or not grouped.any():
        return np.zeros(len(left), dtype=bool)
    width = int(dataset.max()) + 1
    cells = np.unique(group[grouped].astype(np.int64) * width + dataset[grouped])

    def has(rows: np.ndarray, other: np.ndarray) -> np.ndarray:
        code = group[rows].astype(np.int64) * width + dataset[other]
        at = np.minimum(np.searchsorted(cells, code), max(len(cells) - 1, 0))
        found: np.ndarray = (group[rows] >= 0) & (len(cells) > 0) & (cells[at] == code)
        return found

    apart = (group[left] < 0) | (group[left] != group[right])
    taken: np.ndarray = apart & has(left, right) & has(right, left)
    return taken


def moved_from_spoken(
    chance: np.ndarray,
    pattern: np.ndarray,
    spoken: np.ndarray,
    odds: np.ndarray | None = None,
) -> np.ndarray:
    """Probabilities with the pairs ``spoken_for`` at 0 and what they held of their pattern's
    matches shared among the pattern's other pairs, held by the groups or left apart
    (``pattern``: a label per pair, equal where the model saw the same levels), none above 1.
    ``odds``: instead of 0, a spoken-for pair keeps its odds times this (``twice_elsewhere``).

    The model fits how many matches show each pattern of levels from the run as a whole
    (its m and its match share); which pairs of a pattern are not matches does not change
    that count, so the matches a spoken-for pair cannot be are among the others. Twins'
    pattern (given name differs, the rest exact) is the case: at doubled errors the model
    put 0.11 on each of 66 such pairs, 56 of them twins each linked to their own partner,
    and the 10 left apart with no partner were all matches (bench/estimate_misses.py).
    The pattern's pairs the groups hold are among the others too: sharing only among those
    left apart kept held pairs of the twins' pattern at the model's 0.8 where 71 of 71 were
    matches (2,000 a side, bench/estimate_replay.py), and across precision read 0.5-2 points
    low wherever twins were many.
    """
    kept = np.zeros(len(chance))
    if odds is not None:
        # A sure pair (chance 1) with odds 0 has no odds to scale: it keeps 0, as without odds.
        weight = chance * odds
        total = weight + 1.0 - chance
        kept = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
    out = np.where(spoken, kept, chance)
    if not spoken.any():
        return out
    _, label = np.unique(pattern, return_inverse=True)
    free = ~spoken
    mass = np.bincount(label, weights=chance - np.where(spoken, kept, 0.0))
    room = np.bincount(label, weights=free.astype(np.float64))
    share = np.divide(mass, room, out=np.zeros_like(mass), where=room > 0)
    out[free] = np.minimum(np.maximum(share[label[free]], chance[free]), 1.0)
    return out


def _others_per_dataset(rows: np.ndarray, group: np.ndarray, dataset: np.ndarray) -> np.ndarray:
    """[row, dataset]: how many records of each dataset ``rows``' groups hold besides the
    row itself (0 where a row is alone)."""
    width = int(dataset.max()) + 1
    grouped = group >= 0
    code = group[grouped].astype(np.int64) * width + dataset[grouped]
    cells, counts = np.unique(code, return_counts=True)
    out = np.zeros((len(rows), width), dtype=np.int64)
    mine = group[rows] >= 0
    if not len(cells):
        return out
    for d in range(width):
        want = group[rows].astype(np.int64) * width + d
        at = np.minimum(np.searchsorted(cells, want), len(cells) - 1)
        out[:, d] = np.where(mine & (cells[at] == want), counts[at], 0)
    out[np.arange(len(rows)), dataset[rows]] -= mine
    return out


def spoken_for_within(
    left: np.ndarray, right: np.ndarray, group: np.ndarray, dataset: np.ndarray
) -> np.ndarray:
    """Which pairs inside one organisation the groups leave apart although both records'
    groups hold, besides them, a record of one and the same organisation.

    Were the two records one child, that organisation would hold the child twice too, one
    record in each group, or its links would be wrong. It is the cross rule
    (``spoken_for``) for a pair whose own organisation is one: a twin's records in one
    register, each linked to its own record elsewhere. On generated data (2,000 a side,
    three organisations, 18 settings) such pairs held 57 expected matches where 2 were,
    and at 90% overlap, doubled errors, they read within recall 4-5 points low. With five
    organisations a third of them were matches (children held twice in two registers, split
    by the solver into two groups), so they keep that chance (``spoken_odds``).
    """
    if not len(left):
        return np.zeros(0, dtype=bool)
    apart = (group[left] < 0) | (group[left] != group[right])
    both = ((_others_per_dataset(left, group, dataset) > 0)
            & (_others_per_dataset(right, group, dataset) > 0)).any(axis=1)  # fmt: skip
    taken: np.ndarray = apart & both
    return taken


def twice_elsewhere(group: np.ndarray, dataset: np.ndarray) -> float:
    """How often a group that holds a child twice in one organisation holds it twice in
    another organisation it holds too: over such groups and other organisations, the share
    with two or more records there (half a case added each way).

    A pair inside one organisation spoken for (``spoken_for_within``) is a match only if
    the organisation both groups share holds the child twice as well: the solver, one match
    a record, then splits the child into two groups of one record each. How often
    duplicates come together is a fact of the registers, not of the generator, so it is
    read from the groups: 0.3-5% on generated data, where with five organisations a third
    of the pairs spoken for were matches (bench/estimate_replay.py)."""
    grouped = group >= 0
    if not grouped.any():
        return 0.0
    width = int(dataset.max()) + 1
    counts = np.zeros((int(group[grouped].max()) + 1, width), dtype=np.int64)
    np.add.at(counts, (group[grouped], dataset[grouped]), 1)
    twice = counts[(counts >= 2).any(axis=1)]
    present = (twice >= 1).sum(axis=1)
    doubled = (twice >= 2).sum(axis=1)
    # Per group: each organisation held twice, against every other organisation held.
    cases = (doubled * (present - 1)).sum()
    both = (doubled * (doubled - 1)).sum()
    return float((both + 0.5) / (cases + 1.0))


def spoken_odds(
    left: np.ndarray, right: np.ndarray, group: np.ndarray, dataset: np.ndarray
) -> np.ndarray:
    """For each pair inside one organisation, what its odds of a match are multiplied by
    where it is spoken for: the chance that, were its records one child, at least one of
    the organisations both groups hold would hold that child twice (``twice_elsewhere``
    for each)."""
    if not len(left):
        return np.zeros(0)
    shared = (
        (_others_per_dataset(left, group, dataset) > 0)
        & (_others_per_dataset(right, group, dataset) > 0)
    ).sum(axis=1)
    found: np.ndarray = 1.0 - (1.0 - twice_elsewhere(group, dataset)) ** shared
    return found
