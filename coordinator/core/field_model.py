"""One Fellegi-Sunter model for every candidate pair, learnt from the run with no labels.

Each candidate pair (across organisations or inside one) is a vector of
agreement levels, one per field group (``field_levels``). Three kinds of pair
make up the candidates, each with its own chance of every level of every group,
groups independent within a kind:

- **match**: two records of one child. Its chances (m) are learnt by EM.
- **relative**: two children who share much but are not one: twins and
  siblings (family name, address, close birth dates), or strangers born on one
  day. Learnt by EM too. Without this kind the only non-match on offer is a
  random pair, and a sibling, who agrees on family name and address far more
  often than two random records do, is then best explained as a match.
- **stranger**: a random pair of records. Its chances (u) are counted on random
  record pairs of the run, as Splink samples them, and held fixed.
- **born together**: relatives who agree like a match on everything but the
  comparison relatives differ in (twins: one family, address and birthday, two
  given names). The relative kind cannot stand for them, because its groups are
  independent: most relatives are siblings with other birthdays, so a relative
  who shares the birthday reads as rare, and twins whose given names are close
  (Renee and Rebecca) then read as a match with a slip (``born_together``).

The share of each kind (the prior) is estimated by EM as well, separately for
pairs across organisations and pairs inside one, which differ by orders of
magnitude (few children are referred twice; many are known to two services).

Guards against EM settling on the wrong classes (the "same birthday" class,
see the project notes): u never moves; m starts from pairs that are almost
surely matches, read group by group with that group left out (for each group,
the pairs that agree at the best level on every other group: Splink's training
with the blocking field left out); the relative kind starts as a half-way
house between m and u; and after EM the match kind must still be the one that
agrees most, else the fit falls back to its starting m (``guarded``).

A pair's match probability is P(match | levels). The cut-off is the
probability that maximises the model's own expected F1 (``best_cut``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core import rivals
from coordinator.core.field_levels import LEVELS, MISSING

#: Where EM starts the match, relative and stranger shares of candidates.
START = (0.5, 0.2, 0.1)
#: Pair weights of a bootstrap over records: (candidates', random pairs').
Weights = tuple[np.ndarray, np.ndarray]
#: The first three classes (near-match classes, one per group, then sharer classes, one per
#: group, follow; the born-together class is last).
MATCH, RELATIVE, STRANGER = 0, 1, 2
TWIN = -1
#: Where EM starts the born-together share of candidates.
TWIN_START = 0.02
ONE_TO_ONE = True
#: Kinds of candidate pair with a prior of their own.
ACROSS, WITHIN = 0, 1
KINDS = ("across", "within")
_ITERATIONS = 200
_TOLERANCE = 1e-6
#: EM stops once no candidate's match probability would move by more than this were it
#: run to the end (``settled``): what is linked and estimated no longer changes.
SETTLED = 1e-3
#: Pseudo-counts added to every level when counting chances, so no chance is 0.
_SMOOTHING = 0.5
#: Pairs needed in a group's left-out set before its m is read from it alone.
_MIN_ANCHORS = 30
#: The match probability to link at when there is nothing to choose a cut from.
CUT = 0.5
#: No pair is linked below this probability: where the model expects next to no matches
#: (a dataset without duplicates), the expected-F1 best would otherwise link its top pair.
MIN_CUT = 0.1


def count(levels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Chance of each level (smoothed) per group: rows of ``levels`` are groups. A pair
    ``MISSING`` in a group is not counted in it."""
    groups = levels.shape[0]
    known = levels != MISSING
    cells = (np.arange(groups)[:, None] * LEVELS + levels)[known]
    mass = None if weights is None else np.broadcast_to(weights, levels.shape)[known]
    found = np.bincount(cells, weights=mass, minlength=groups * LEVELS).reshape(groups, LEVELS)
    out: np.ndarray = (found + _SMOOTHING) / (
        found.sum(axis=1, keepdims=True) + _SMOOTHING * LEVELS
    )
    return out


def _log_likelihood(chances: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Each pair's log chance under one class; a ``MISSING`` group adds nothing (missing is
    missing: every class is as likely to lack a value, so it weighs neither way)."""
    groups = levels.shape[0]
    # One more column per group, log 1 = 0, that a MISSING level reads.
    logs = np.hstack([np.log(chances), np.zeros((groups, 1))])
    cells = np.where(levels == MISSING, LEVELS, levels) + np.arange(groups)[:, None] * (LEVELS + 1)
    total: np.ndarray = logs.ravel()[cells].sum(axis=0)
    return total


def left_out_m(
    levels: np.ndarray, sure: np.ndarray | None = None, weights: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Starting m: each group's levels among pairs at level 0 on every other group.

    ``sure`` marks the pairs that may serve (say, cross pairs each of whose
    records is the other's best candidate: a twin's pair with the other twin's
    record loses to the twin's own). Returns the chances and the smallest set
    they were read from. When a set is too small (few groups, or none
    agreeing), the group's m is read from the pairs at level 1 or better elsewhere.
    A group ``MISSING`` for a pair does not keep it out of another group's set.
    ``weights`` (a bootstrap's pair weights) weigh each pair's count.
    """
    groups = levels.shape[0]
    out = np.zeros((groups, LEVELS))
    smallest = levels.shape[1]
    if sure is None or sure.sum() < _MIN_ANCHORS:
        sure = np.ones(levels.shape[1], dtype=bool)
    # Only the sure pairs are read: a fit and each of its refits pass every candidate.
    at = np.flatnonzero(sure)
    levels, mass_at = levels[:, at], None if weights is None else weights[at]
    for g in range(groups):
        others = np.delete(levels, g, axis=0)
        for best in (0, 1, LEVELS - 1):
            chosen = (others <= best).all(axis=0) if len(others) else np.ones(len(at), bool)
            if chosen.sum() >= _MIN_ANCHORS or best == LEVELS - 1:
                break
        smallest = min(smallest, int(chosen.sum()))
        mass = None if mass_at is None else mass_at[chosen]
        out[g] = count(levels[g : g + 1, chosen], mass)[0]
    return out, smallest


@dataclass(frozen=True)
class FieldModel:
    """A fitted model: each kind of pair's chances per group and level, and the priors."""

    groups: tuple[str, ...]
    profiles: np.ndarray
    """[class, group, level] chances: ``MATCH``, ``RELATIVE``, ``STRANGER``, then one
    near-match class per group (``fit``)."""
    priors: np.ndarray
    """[kind, class]: the share of each class among candidates of each kind."""
    iterations: int
    anchors: int
    """Pairs in the smallest left-out set m was read from."""

    @property
    def match(self) -> np.ndarray:
        """m: [group, level] chances among matches."""
        found: np.ndarray = self.profiles[MATCH]
        return found

    @property
    def stranger(self) -> np.ndarray:
        """u: [group, level] chances among random pairs."""
        found: np.ndarray = self.profiles[STRANGER]
        return found

    def log_terms(self, levels: np.ndarray) -> np.ndarray:
        """Log chance of each pair's levels under each class: [class, pair]."""
        return np.vstack([_log_likelihood(p, levels) for p in self.profiles])

    def posterior(self, levels: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """P(class | levels) for each pair: [class, pair]."""
        return _posterior(self.log_terms(levels), self.priors, kinds)

    def probability(self, levels: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """Each pair's match probability, worked out once per distinct (levels, kind) row
        (``per_row``): a run's refits ask it of every candidate."""
        rows, inverse = per_row(levels, kinds)
        found: np.ndarray = self.posterior(rows[:-1], rows[-1])[MATCH][inverse]
        return found

    def log_odds(self, levels: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """Each pair's log odds of being a match (natural log; unbounded, unlike a
        probability), worked out once per distinct row as ``probability`` is."""
        rows, inverse = per_row(levels, kinds)
        z = self.log_terms(rows[:-1]) + np.log(self.priors[rows[-1]]).T
        rest = np.logaddexp.reduce(np.delete(z, MATCH, axis=0), axis=0)
        found: np.ndarray = (z[MATCH] - rest)[inverse]
        return found

    def weights(self) -> dict[str, tuple[float, ...]]:
        """log2(m / u) per group and level: how much each level counts for a match."""
        ratio = np.log2(self.match / self.stranger)
        return {g: tuple(float(x) for x in ratio[i]) for i, g in enumerate(self.groups)}


def per_row(levels: np.ndarray, kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (levels, kind) columns ([group..., kind], row) and each pair's row.

    Pairs with the same levels and kind have the same posterior, and a run's million
    candidates hold a few thousand distinct rows: the per-class sums over groups run on
    those, and the answer is spread back exactly (same arithmetic, column by column)."""
    rows, inverse = distinct_columns(np.vstack([levels, kinds[None].astype(levels.dtype)]))
    return rows.astype(np.int64), inverse


def _posterior(terms: np.ndarray, priors: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    z = terms + np.log(priors[kinds]).T
    z -= z.max(axis=0)
    p: np.ndarray = np.exp(z)
    p /= p.sum(axis=0)
    return p


def near_matches(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One profile per group g: a match's chances on every other group, a random pair's on g.

    A pair that agrees like a match everywhere but in one group is either a
    match with an error there or two people who share everything else: twins
    share family name, address and birth date but not the given name. m is read
    from pairs that are almost surely matches, so it already holds how often a
    match's group disagrees; EM gives these classes a share only for the pairs
    of that pattern beyond it. No group is named: the data say which groups
    such relatives differ in.
    """
    out = np.repeat(m[None], len(m), axis=0)
    for g in range(len(m)):
        out[g, g] = u[g]
    return out


def fit(
    groups: Sequence[str],
    levels: np.ndarray,
    kinds: np.ndarray,
    random_levels: np.ndarray,
    ends: tuple[np.ndarray, np.ndarray] | None = None,
    sure: np.ndarray | None = None,
    weights: Weights | None = None,
    start: tuple[float, float, float] = START,
    identifiers: Sequence[str] = (),
) -> FieldModel:
    """Fit the model on the candidates' levels ([group, pair]) and kinds (``ACROSS``/``WITHIN``).

    u is counted on ``random_levels`` (random record pairs, [group, pair]); m
    on the ``sure`` candidates, group by group with that group left out
    (``left_out_m``); both stay fixed. EM estimates the relatives' chances and
    every class's share per kind. ``ends`` names, for each pair, each
    record's end (``one_to_one``): -1 where a pair is free of the constraint.

    ``weights`` (candidates', random pairs') weigh each pair, as a bootstrap over records
    does; ``start`` is where EM starts the match, relative and stranger shares (refits
    from other starts show how far the answer depends on it: ``field_estimate``).
    ``identifiers`` name the groups two people never share (``apart``).
    """
    u = count(random_levels, None if weights is None else weights[1])
    m, anchors = left_out_m(levels, sure, None if weights is None else weights[0])
    near = near_matches(m, u)
    # A near-match class of a group the pairs mostly lack reads as a match wherever the group
    # is missing: it gets no share (``telling_groups``).
    telling = telling_groups(levels, kinds, np.ones(levels.shape[1]))
    own = np.array([g in identifiers for g in groups], dtype=bool)
    # A free class differs from a match in a group people can share, not in an identifier.
    differ = telling & ~own if (telling & ~own).any() else telling
    # The born-together class starts where the relative class starts to differ.
    twin = near[_differs_in((m + u) / 2, differ)]
    profiles = np.concatenate([np.stack([m, (m + u) / 2, u]), near, sharing(m, u), twin[None]])
    profiles[1:] = [apart(p, u, own) for p in profiles[1:]]
    classes = len(profiles)
    shares = np.full(classes, 0.2 / max(classes - 4, 1))
    shares[:3] = start
    shares[TWIN] = TWIN_START
    # Free classes (relatives, sharers) must each disagree somewhere (_FREE: in the group
    # they agree on least, chosen afresh each step); _FIXED: match, stranger and the
    # near-match classes, whose only freedom is their share; the born-together class
    # differs where the relatives do (``born_together``).
    differs = np.full(classes, _FREE)
    differs[: 3 + len(near)] = _FIXED
    differs[RELATIVE] = _FREE
    differs[TWIN] = _BORN_TOGETHER
    silent = np.zeros(classes, dtype=bool)
    silent[3 : 3 + len(near)] = ~telling
    shares[silent] = _NO_SHARE
    model = FieldModel(
        tuple(groups),
        profiles,
        priors=np.tile(shares / shares.sum(), (len(KINDS), 1)),
        iterations=0,
        anchors=anchors,
    )
    if levels.shape[1] == 0:
        return model
    return _em(
        model, levels, kinds, ends, differs, differ, silent,
        None if weights is None else weights[0], own,
    )  # fmt: skip


def apart(chances: np.ndarray, u: np.ndarray, identifiers: np.ndarray) -> np.ndarray:
    """A non-match class's chances ([group, level]) held, in the ``identifiers`` groups, to
    reach the close levels no more often than a random pair does.

    An identifier (the NHS number, a local id both sides hold) belongs to one person:
    twins, siblings and strangers agree on it no more often than two random records.
    A near-match class keeps m everywhere but its own group, so on FEBRL4 the given name's
    (twins) took pairs whose given name read chance, missing or swapped with the family
    name, though their local id agreed exactly. Only the close
    levels are held: under one salt two different numbers still share some tokens, which
    random pairs, mostly under different salts, seldom show.
    """
    out = chances.copy()
    for g in np.flatnonzero(identifiers):
        out[g] = _held(out[g], u[g], _CLOSE)
    return out


def sharing(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Starting chances of relatives who share one group: a match's chances on group g, a
    random pair's elsewhere (EM moves them: siblings share two groups, name-sharers one)."""
    out = np.repeat(u[None], len(u), axis=0)
    for g in range(len(u)):
        out[g, g] = m[g]
    return out


#: Levels a non-match class may not be likelier to reach than a random pair, in the group
#: it differs on.
_CLOSE = 2


def _unlike_a_match(
    chances: np.ndarray,
    m: np.ndarray,
    u: np.ndarray,
    group: int,
    telling: np.ndarray | None = None,
    close: int = _CLOSE,
) -> np.ndarray:
    """A non-match class's chances, held to differ from a match in one group.

    Left free, a relative class drifts towards the matches it sits beside and
    takes a share of the duplicates that agree on everything. So in one group
    (``group``, or where it agrees least among the ``telling`` groups when -1) it
    may reach the close levels no more often than a random pair; a near-match
    class keeps m everywhere else.
    """
    out = chances.copy()
    g = _differs_in(out, telling) if group < 0 else group
    if group >= 0:
        out = m.copy()
        out[g] = chances[g]
    out[g] = _held(out[g], u[g], close)
    return out


def _held(row: np.ndarray, limit: np.ndarray, close: int) -> np.ndarray:
    """One group's chances with the ``close`` best levels no likelier than ``limit``'s, the
    rest scaled up to make 1."""
    row = row.copy()
    row[:close] = np.minimum(row[:close], limit[:close])
    rest = row[close:].sum()
    left = 1.0 - row[:close].sum()
    row[close:] = row[close:] * (left / rest) if rest > 0 else left / (len(row) - close)
    return row


def _differs_in(chances: np.ndarray, telling: np.ndarray | None) -> int:
    """The group a free class differs from a match in: among the ``telling`` groups, the one
    where it reaches the close levels least often."""
    close = chances[:, :_CLOSE].sum(axis=1)
    if telling is not None and telling.any():
        close = np.where(telling, close, np.inf)
    return int(np.argmin(close))


#: Levels only one value reaches (as good as identical, or nearly): the born-together class
#: may reach them no more often than a random pair, in the group it differs in. Not level 2
#: (a letter out): twins named alike (Ifan and Ioan) read there as a typo does.
_TYPO = 2
#: ``differs`` codes of ``fit``/``_em``: a class whose chances stay put, one free to differ
#: where it agrees least, the born-together class.
_FIXED, _FREE, _BORN_TOGETHER = -2, -1, -3


def born_together(
    chances: np.ndarray,
    m: np.ndarray,
    u: np.ndarray,
    relative: np.ndarray,
    telling: np.ndarray,
) -> np.ndarray:
    """The born-together class's chances, from ``chances`` counted on the pairs EM gave it.

    Twins are relatives who share what siblings share and their birthday too:
    they agree like a match in every telling group but the one the relative
    class differs in (``relative``: its chances; for children, the given name).
    There their chances are learnt, because twins' names are closer than
    strangers' (Oisin and Osian), but held to reach the levels of one value
    (``_TYPO``) no more often than a random pair: a duplicate whose name reads
    as good as identical stays a match. A name a letter out is learnt too: m
    is held, so the class takes such pairs only beyond the share the matches'
    own slips explain. In groups most pairs lack (an identifier) the chances
    are learnt as well: a twin has a number of its own.
    """
    g = _differs_in(relative, telling)
    out = _unlike_a_match(chances, m, u, g, close=_TYPO)
    out[~telling] = chances[~telling]
    return out


#: Share of a kind's candidate pairs a group must be known in to tell a free class apart.
_KNOWN = 0.5
#: The share a class held out of the fit keeps (not 0, whose log would be -inf).
_NO_SHARE = 1e-12


def telling_groups(levels: np.ndarray, kinds: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Which groups a free class may take as the one it differs in: those known (not
    ``MISSING``) in at least half the candidate pairs of every kind.

    A missing group weighs neither way, so where a class's differing group is
    missing the class reads exactly like a match, and its larger prior wins.
    A class that differs in a group most pairs lack (an identifier council
    records do not carry) thereby takes the duplicates whose only difference
    would be the value nobody recorded. Its difference must be one the pairs
    show. ``levels`` are [group, row] with ``sizes`` pairs per row.
    """
    known = levels != MISSING
    out = np.ones(levels.shape[0], dtype=bool)
    for k in np.unique(kinds):
        of_kind = kinds == k
        if sizes[of_kind].sum() <= 0:
            continue
        share = (known[:, of_kind] * sizes[of_kind]).sum(axis=1) / sizes[of_kind].sum()
        out &= share >= _KNOWN
    return out if out.any() else np.ones(levels.shape[0], dtype=bool)


def one_to_one(post: np.ndarray, ends: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Posteriors with each record's match mass towards one other dataset held to at most 1.

    A record has at most one match in another organisation (a duplicate
    referral aside). Where its candidates there add up to more, its most likely
    match keeps its share and the others share what is left of 1; the mass
    taken moves to the relative class. Twins known to two organisations are
    what this is for: each twin's pair with the other's record competes with
    the twin's own match, and loses.
    """
    if ends is None or not ONE_TO_ONE:
        return post
    p = post[MATCH]
    out = post.copy()
    out[MATCH] = p * rivals.scale(p, ends)
    out[RELATIVE] += p - out[MATCH]
    return out


def distinct_columns(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(table, axis=1, return_inverse=True)`` for a table of small integers:
    each column as one integer code (its values' ranks in a fixed base, first row most
    significant, so codes order as the columns do), and one sort of the codes. numpy's own
    sorts the columns as records, ten times slower on a run's million pairs, and a fit
    and its refits ask it every time."""
    if not table.size:
        rows, inverse = np.unique(table, axis=1, return_inverse=True)
        return rows, inverse.ravel()
    low, high = int(table.min()), int(table.max())
    base = high - low + 1
    if base ** table.shape[0] >= 1 << 62:
        rows, inverse = np.unique(table, axis=1, return_inverse=True)
        return rows, inverse.ravel()
    code = np.zeros(table.shape[1], dtype=np.int64)
    for row in table:
        code = code * base + (row.astype(np.int64) - low)
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    return table[:, first], inverse.ravel()


def _em(
    model: FieldModel,
    levels: np.ndarray,
    kinds: np.ndarray,
    ends: tuple[np.ndarray, np.ndarray] | None = None,
    differs: np.ndarray | None = None,
    telling: np.ndarray | None = None,
    silent: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    identifiers: np.ndarray | None = None,
) -> FieldModel:
    """EM over the distinct (levels, kind) rows rather than the pairs.

    Pairs with the same levels and kind have the same posterior before the
    one-to-one rule, so every sum EM needs runs over a few thousand rows
    weighted by how many pairs each holds; only the match probability is
    spread back to the pairs, for ``one_to_one``, whose moved mass is summed
    back per row. The result is the same as iterating over pairs. A free class differs
    in one of the ``telling`` groups; a ``silent`` class keeps no share.
    """
    profiles, priors = model.profiles.copy(), model.priors.copy()
    if differs is None:
        differs = np.full(len(profiles), _FIXED)
        differs[RELATIVE] = _FREE
    free_at = np.flatnonzero(differs != _FIXED)
    rows, inverse = distinct_columns(np.vstack([levels, kinds[None]]))
    row_levels, row_kinds = rows[:-1], rows[-1]
    sizes = np.bincount(inverse, weights=weights, minlength=rows.shape[1]).astype(np.float64)
    per_kind = np.array([float(sizes[row_kinds == k].sum()) for k in range(len(KINDS))])
    terms = np.vstack([_log_likelihood(p, row_levels) for p in profiles])
    if telling is None:
        telling = telling_groups(row_levels, row_kinds, sizes)
    limited = ends is not None and ONE_TO_ONE
    groups = rivals.Rivals.of(ends, inverse) if limited and ends is not None else None
    done = 0
    steps: list[float] = []
    before: np.ndarray | None = None
    while done < _ITERATIONS:
        post = _posterior(terms, priors, row_kinds)
        if before is not None:
            steps.append(float(np.abs(post[MATCH] - before).max()))
            if settled(steps):
                break
        before = post[MATCH]
        done += 1
        totals = post * sizes
        if groups is not None:
            # The rows' own probabilities, not totals / sizes: ties between a record's
            # candidates at probability 1 must stay ties.
            moved = rivals.moved(post[MATCH], groups, weights)
            totals[MATCH] -= moved
            totals[RELATIVE] += moved
        updated = priors.copy()
        for k in range(len(KINDS)):
            if per_kind[k] > 0:
                updated[k] = np.maximum(totals[:, row_kinds == k].sum(axis=1) / per_kind[k], 1e-9)
        if silent is not None:
            updated[:, silent] = _NO_SHARE
        change = float(np.abs(updated - priors).max())
        for c in free_at:
            counted = count(row_levels, totals[c])
            if differs[c] == _BORN_TOGETHER:
                fresh = born_together(
                    counted, model.match, model.stranger, profiles[RELATIVE], telling
                )
            else:
                fresh = _unlike_a_match(counted, model.match, model.stranger, differs[c], telling)
            if identifiers is not None:
                fresh = apart(fresh, model.stranger, identifiers)
            change = max(change, float(np.abs(fresh - profiles[c]).max()))
            profiles[c] = fresh
            terms[c] = _log_likelihood(fresh, row_levels)
        priors = updated
        if change < _TOLERANCE:
            break
    return FieldModel(model.groups, profiles, priors, done, model.anchors)


def settled(steps: Sequence[float], tolerance: float | None = None) -> bool:
    """Whether EM may stop: the match probabilities would move by less than ``tolerance``
    (``SETTLED``) were it run to the end, judged from how far they moved on each step so
    far (``steps``: the largest move of any row's match probability).

    EM closes in on its answer geometrically, each step's move a near-constant share r of
    the one before, so what is left to move is about step * r / (1 - r). The priors of
    classes that share a pattern (sharers, near-matches) go on trading mass long after
    (a run's fit never met the old 1e-6 on them in 200 steps), but that trade moves no
    match probability and so changes nothing linked or estimated. Two steps in a row
    must agree, so a lull in an early, uneven climb does not stop it."""
    tolerance = SETTLED if tolerance is None else tolerance
    if len(steps) < 3:
        return False
    for last, step in ((steps[-3], steps[-2]), (steps[-2], steps[-1])):
        rate = step / last if last > 0 else 0.0
        if rate >= 1.0 or step * rate / (1.0 - rate) >= tolerance:
            return False
    return True


def best_cut(chance: np.ndarray) -> float:
    """The match probability to link at that maximises the model's own expected F1.

    Linking every pair at or above a cut c is expected to find sum(p) true
    pairs among them, link sum(1 - p) wrongly and miss sum(p) below it; the cut
    is the one that maximises the F1 those give (``CUT`` when there are no pairs), and
    never below ``MIN_CUT``.
    """
    if not len(chance):
        return CUT
    order = np.sort(chance)[::-1]
    found = np.cumsum(order)
    wrong = np.cumsum(1.0 - order)
    missed = found[-1] - found
    f1 = 2 * found / np.maximum(2 * found + wrong + missed, 1e-12)
    return max(float(order[int(np.argmax(f1))]), MIN_CUT)


def expected(chance: np.ndarray, keep: np.ndarray) -> tuple[float, float]:
    """The model's own precision and recall of linking the pairs ``keep`` among candidates
    with match probabilities ``chance`` (recall over the candidates only)."""
    mass = float(chance.sum())
    precision = float(chance[keep].mean()) if keep.any() else 1.0
    recall = float(chance[keep].sum()) / mass if mass > 0 else 1.0
    return precision, recall
