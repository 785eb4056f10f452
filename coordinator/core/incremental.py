"""Incremental matching: compare only the records added or changed since the last run.

A full run compares every record with every other; after a refresh of 1%,
99.99% of those comparisons give what they gave last month. So each run
keeps the candidate pairs it found (``run_pairs``, by record id, with their
similarity), and the next run:

1. takes last run's pairs, less any that involve a record changed or removed
   since (``pending_changes``, written by refreshes and withdrawals);
2. compares the records added or changed against every record held and
   against each other, at the same thresholds a full run searches at;
3. hands the union to the rest of the chain (threshold, link, solve, assign)
   exactly as a full run's candidates.

Without blocking, the union *is* the set a full run finds — same pairs, same
similarities, put in anonlink's order — so threshold choice, solving and
entity ids follow as they would (``hublink admin run --full`` checks it, and
``tests/unit/test_incremental_runs.py`` over three refresh sequences).

With blocking (large projects), equality with "a full run" is not a property
any run has: a blocked full run draws its bands and its estimate sample
afresh, so two of them on the same data differ at the margin. What this run
promises instead: the kept pairs are the basis run's blocked pairs, and the
changed records are screened against *every* record on the sketch with the
limit a full run's plan sets, then scored exactly (``sketch_screen``), which
finds at least what a blocked run would find for them; the threshold is
estimated from the basis run's sample, with its promised completeness.
``bench/incremental.py`` measures the difference from a full re-link beside
blocking's own spread between two re-links. Keying every band instead would
cost a pass over every record per band, most of a full run whatever changed.

Cost: the comparison is (changed records) x (records held), on the run's
engine (all pairs) or as one native pass over the held sketches (blocked);
solving covers only the part of the linking graph the changes reach
(``partial_solve``); the threshold estimate is reused when its inputs are the
same; the release is stored as changes; the encodings are the last run's,
patched with the changed rows (``load_cache``). Numpy passes over every record
(the sketch screen, entity ids, lineage) stay linear in the project.
When there is nothing to build on (no earlier run, its pairs not kept, other
search thresholds, blocking switched on or off) ``find`` returns None and the
run is a full one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from coordinator.core import (
    blocking,
    change_pairs,
    comparison,
    kept_rows,
    partial_solve,
    pinned_blocking,
    quality,
    score_sample,
)
from coordinator.core.candidates import BLOCKED_MARGIN, Found, Progress, Session, at_least
from coordinator.core.comparison import Candidates
from coordinator.core.part_pass import PartPass
from coordinator.core.record_index import RecordIndex
from coordinator.core.store import Store

log = logging.getLogger("hublink.coordinator.matching")


def _meta_key(project_id: str) -> str:
    return f"pairs:{project_id}"


PAIRS = ("<i8", "<i8", "<f8")
"""A kept pair table's columns: record id a, record id b, similarity (``kept_rows``)."""
IDS = ("<i8",)


def _kept_sample(store: Store, project_id: str) -> tuple[score_sample.Kept, kept_rows.Kept] | None:
    """Last run's estimate sample by record id, and its pairs as kept (None: not kept)."""
    ids = kept_rows.read(store.query, project_id, "sample-ids", IDS)
    pairs = kept_rows.read(store.query, project_id, "sample", PAIRS)
    if ids is None or pairs is None:
        return None
    return score_sample.Kept(ids.columns[0], *pairs.columns), pairs


@dataclass(frozen=True)
class Basis:
    """What the kept pairs were found with, so a run knows whether it may build on them."""

    run_id: str
    low: float
    within: float
    blocked: bool
    scores: tuple[float, ...] = ()
    """A blocked run's sampled best scores (the threshold estimate's input)."""
    design: float = 0.0
    """A blocked run's design threshold (its cross pairs are kept from a margin below it)."""
    completeness: float = 1.0
    """What a blocked run's plan promised: the estimate's recall allows for it."""
    solved: tuple[float, ...] = ()
    """The run's (threshold, within, merge) thresholds: ``partial_solve.Settings``."""
    pinned: str = ""
    """A blocked run's band plans (``pinned_blocking.Pinned``, JSON): the next run's too."""
    sample: bool = False
    """Whether a blocked run kept its estimate sample (``score_sample.Kept``, in
    ``kept_rows`` as 'sample' and 'sample-ids')."""


@dataclass(frozen=True)
class Search:
    """What a run searches for: the same for the kept pairs and the fresh ones, or no build."""

    low: float
    """Cross-dataset pairs are kept from here (all-pairs)."""
    within: float
    """Within-dataset pairs are searched at this (0: not at all)."""
    design: float
    """The threshold blocking is planned for (the project's fallback threshold)."""
    completeness: float = blocking.DEFAULT_COMPLETENESS
    blocking_mode: str = "auto"
    blocked: bool = False
    estimate_sample: int = 0
    """Records in a blocked run's estimate sample (``candidates.find``)."""
    sample_seed: int = 0
    """The project's seed for that sample (``pinned_blocking.project_seed``)."""
    auto_limit: int = blocking.AUTO_MIN_COMPARISONS
    """All-pairs comparisons above which "auto" blocks (``blocking.auto_limit``)."""
    parts: PartPass | None = None
    """A salted record CLK's part pass (``part_pass``), as ``candidates.find`` runs it."""

    @property
    def kept_from(self) -> float:
        """Where cross pairs are kept from: blocked runs keep them from a margin below the
        design threshold, as ``candidates.find`` does."""
        return max(self.low, self.design - BLOCKED_MARGIN) if self.blocked else self.low

    def matches(self, basis: Basis, sizes: Sequence[int]) -> bool:
        """Whether pairs kept under ``basis`` were searched the way this run searches (with
        blocking: with plans still fit for datasets of ``sizes``, and a kept sample)."""
        same = (basis.low, basis.within, basis.blocked) == (self.low, self.within, self.blocked)
        if not same or not self.blocked:
            return same
        if basis.design != self.design or not basis.pinned or not basis.sample:
            return False
        pinned = pinned_blocking.Pinned.from_json(basis.pinned)
        return pinned.fits(sizes, self.design, self.within, self.completeness, self.parts)


@dataclass(frozen=True)
class Delta:
    """An incremental run's candidates and what it compared to find them."""

    found: Found
    touched: np.ndarray
    """Record ids compared afresh (added or changed since the last run)."""
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray]
    """(record id a, record id b, similarity) of every pair: kept and found afresh."""
    fresh: int
    """Pairs found afresh."""
    seeds: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    """Record ids whose pairs may differ from last run's: the touched, and the partners of
    records changed or removed since (``partial_solve`` starts from them)."""
    settings: partial_solve.Settings | None = None
    """How the kept pairs were linked and solved last run (None: not known)."""
    links: partial_solve.Links | None = None
    """The pairs last run passed to the solver, by record id (None: not kept)."""
    kept: tuple[kept_rows.Kept, kept_rows.Change] | None = None
    """The pair table as read, and this run's change to it (``keep`` writes only that)."""
    kept_sample: tuple[kept_rows.Kept, kept_rows.Change] | None = None
    """The same for the estimate sample's pairs (blocked runs)."""


def pending_mark(store: Store, project_id: str) -> int:
    """The latest pending change now: a run settles those up to here, not later ones."""
    row = store.query_one(
        "SELECT COALESCE(MAX(rowid), 0) AS n FROM pending_changes WHERE project_id = ?",
        (project_id,),
    )
    return 0 if row is None else int(row["n"])


def find(
    store: Store,
    project_id: str,
    session: Session,
    encodings: Sequence[np.ndarray],
    record_ids: Sequence[array[int]],
    *,
    search: Search,
    progress: Progress,
    cancelled: Callable[[], bool],
    mark: int,
) -> Delta | None:
    """The run's candidates from the kept pairs and the changed records, or None if the
    run must be a full one."""
    basis = load_basis(store, project_id)
    last = store.query_one(
        "SELECT id FROM runs WHERE project_id = ? AND state = 'completed' "
        "ORDER BY finished_at DESC, rowid DESC LIMIT 1",
        (project_id,),
    )
    sizes = [len(e) for e in encodings]
    blocked = blocking.should_block(search.blocking_mode, sizes, search.auto_limit)
    search = dataclasses.replace(search, blocked=blocked)
    if (
        basis is None
        or last is None
        or basis.run_id != last["id"]
        or not search.matches(basis, sizes)
    ):
        return None
    index = RecordIndex(record_ids)
    changed = np.array(
        [
            int(r[0])
            for r in store.query(
                "SELECT record_id FROM pending_changes WHERE project_id = ? AND rowid <= ? "
                "AND change != 'removed'",
                (project_id, mark),
            )
        ],
        dtype=np.int64,
    )
    touched = changed[index.holds(changed)]
    removed = np.array(
        [
            int(r[0])
            for r in store.query(
                "SELECT record_id FROM pending_changes WHERE project_id = ? AND rowid <= ?",
                (project_id, mark),
            )
        ],
        dtype=np.int64,
    )
    # Last run's pairs, less those of records changed or removed since.
    kept = kept_rows.read(store.query, project_id, "pairs", PAIRS)
    sampled = _kept_sample(store, project_id) if blocked else None
    if kept is None or kept.run_id != basis.run_id or (blocked and sampled is None):
        return None
    a, b, sims = kept.columns
    where_a, where_b = index.where(a), index.where(b)
    pending = index.marks(removed)
    stale = (where_a < 0) | (where_b < 0)
    stale |= pending[np.maximum(where_a, 0)] | pending[np.maximum(where_b, 0)]
    seeds = np.union1d(touched, np.concatenate([a[stale], b[stale]]))
    a, b, sims = a[~stale], b[~stale], sims[~stale]
    progress.stage = "comparing changes"
    pinned = pinned_blocking.Pinned.from_json(basis.pinned) if blocked else None
    kept_from = pinned.kept_from(search.low) if pinned else search.kept_from
    at = change_pairs.Thresholds(search.low, search.within, kept_from, search.blocked, search.parts)
    # The estimate sample is refreshed beside the comparison (both are numpy and native
    # passes that let go of the interpreter lock): it reads nothing the comparison writes.
    with ThreadPoolExecutor(1) as beside:
        sampling = (
            beside.submit(
                score_sample.refresh,
                encodings,
                pinned_blocking.sample_picks(
                    [np.frombuffer(r, dtype=np.int64) for r in record_ids],
                    search.estimate_sample,
                    search.sample_seed,
                ),
                sampled[0],
                index=index,
                pending=removed,
                touched=touched,
                low=search.low,
            )
            if sampled is not None
            else None
        )
        fresh = change_pairs.compare(
            session, encodings, index, touched, at, pinned, progress, cancelled
        )
        everything_a = np.concatenate([a, fresh[0]])
        everything_b = np.concatenate([b, fresh[1]])
        everything_s = np.concatenate([sims, fresh[2]])
        d0, r0 = index.place(everything_a)
        d1, r1 = index.place(everything_b)
        across, within_pairs = _split(everything_s, d0, d1, r0, r1)
        refreshed = sampling.result() if sampling else None
    sample = refreshed.sample if refreshed else None
    scores = sample.scores() if sample else quality.best_scores(at_least(across, kept_from))
    cross_plans = [p for a, b, p in pinned.plans if a != b] if pinned else []
    comparisons = len(touched) * int(sum(sizes))
    log.info(
        "incremental run: %d records compared afresh against %d (%d pairs kept, %d new)",
        len(touched),
        sum(sizes),
        len(a),
        len(fresh[0]),
        extra={"project": project_id},
    )
    return Delta(
        Found(
            across=across,
            within=within_pairs,
            scores=scores,
            blocked=blocked,
            comparisons=comparisons,
            all_pairs=sum(x * y for n, x in enumerate(sizes) for y in sizes[n + 1 :]),
            bits=cross_plans[0].bits if cross_plans else 0,
            bands=sum(len(p.bands) for p in cross_plans),
            promised_completeness=basis.completeness if blocked else 1.0,
            sampled=sample.sampled if sample else 0,
            kept_from=kept_from,
            sample_pairs=sample.in_run_rows() if sample else None,
            pinned=pinned,
            sample=sample,
        ),
        touched,
        (everything_a, everything_b, everything_s),
        len(fresh[0]),
        seeds,
        partial_solve.Settings(*basis.solved) if len(basis.solved) == 3 else None,
        _kept_links(store, project_id),
        (kept, kept_rows.Change(np.flatnonzero(stale), fresh)),
        (sampled[1], kept_rows.Change(refreshed.dropped, refreshed.added))
        if sampled and refreshed
        else None,
    )


def keep(
    store: Store,
    project_id: str,
    run_id: str,
    found: Found,
    everyone: np.ndarray,
    sizes: Sequence[int],
    *,
    search: Search,
    delta: Delta | None,
    mark: int,
    settings: partial_solve.Settings | None = None,
    links: partial_solve.Links | None = None,
) -> None:
    """After a completed run: keep its pairs for the next one and settle the changes it saw.

    The pairs (and a blocked run's sample) are kept by record id as packed arrays
    (``kept_rows``): written whole after a full run, as this run's change after an
    incremental one, so a month's run writes what the month changed.
    """
    offsets = np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))])

    def whole_pairs() -> kept_rows.Columns:
        if delta is not None:
            return delta.pairs
        across = _pairs_by_id(found.across, offsets, everyone)
        within_pairs = _pairs_by_id(found.within, offsets, everyone)
        return tuple(np.concatenate([x, y]) for x, y in zip(across, within_pairs, strict=True))

    def ids_at(d: np.ndarray, r: np.ndarray) -> np.ndarray:
        return np.asarray(everyone[offsets[d] + r])

    on, change = delta.kept if delta and delta.kept else (None, None)
    with store.transaction() as tx:
        kept_rows.write(tx, project_id, "pairs", run_id, PAIRS, whole_pairs, on=on, change=change)
        basis = Basis(
            run_id,
            search.low,
            search.within,
            found.blocked,
            tuple(float(x) for x in found.scores) if found.blocked else (),
            search.design if found.blocked else 0.0,
            found.promised_completeness,
            dataclasses.astuple(settings) if settings else (),
            found.pinned.to_json() if found.pinned else "",
            found.sample is not None,
        )
        if found.sample is not None:
            sample = found.sample
            on, change = delta.kept_sample if delta and delta.kept_sample else (None, None)
            kept_rows.write(
                tx,
                project_id,
                "sample-ids",
                run_id,
                IDS,
                lambda: (score_sample.sampled_ids(sample, ids_at),),
            )
            kept_rows.write(
                tx,
                project_id,
                "sample",
                run_id,
                PAIRS,
                lambda: score_sample.pairs_by_id(sample, ids_at),
                on=on,
                change=change,
            )
        tx.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            (_meta_key(project_id), json.dumps(basis.__dict__)),
        )
        if links is not None:
            tx.execute(
                "INSERT OR REPLACE INTO run_links VALUES (?, ?, ?, ?)",
                (project_id, *(np.ascontiguousarray(x).tobytes() for x in links)),
            )
        tx.execute(
            "DELETE FROM pending_changes WHERE project_id = ? AND rowid <= ?", (project_id, mark)
        )


def pinned_plans(
    store: Store, project_id: str, search: Search, encodings: Sequence[np.ndarray]
) -> pinned_blocking.Pinned | None:
    """The project's kept band plans if a full run searching so over ``encodings`` may use
    them (``pinned_blocking``), else None (the run plans afresh, from the project's seed)."""
    basis = load_basis(store, project_id)
    if basis is None or not basis.pinned:
        return None
    pinned = pinned_blocking.Pinned.from_json(basis.pinned)
    sizes = [len(e) for e in encodings]
    fits = pinned.fits(sizes, search.design, search.within, search.completeness, search.parts)
    return pinned if fits else None


def load_basis(store: Store, project_id: str) -> Basis | None:
    row = store.query_one("SELECT value FROM meta WHERE key = ?", (_meta_key(project_id),))
    if row is None:
        return None
    data = json.loads(row["value"])
    data["scores"] = tuple(data.get("scores", ()))
    data["solved"] = tuple(data.get("solved", ()))
    return Basis(**data)


def _kept_links(store: Store, project_id: str) -> partial_solve.Links | None:
    row = store.query_one("SELECT a, b, score FROM run_links WHERE project_id = ?", (project_id,))
    if row is None:
        return None
    return (
        np.frombuffer(row["a"], dtype=np.int64),
        np.frombuffer(row["b"], dtype=np.int64),
        np.frombuffer(row["score"], dtype=np.float64),
    )


def _pairs_by_id(
    candidates: Candidates, offsets: np.ndarray, everyone: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sims = np.frombuffer(candidates[0], dtype=np.float64)
    d0, d1, r0, r1 = (
        np.frombuffer(candidates[k][j], dtype=np.uint32).astype(np.int64)
        for k, j in ((1, 0), (1, 1), (2, 0), (2, 1))
    )
    return everyone[offsets[d0] + r0], everyone[offsets[d1] + r1], sims


def _split(
    sims: np.ndarray, d0: np.ndarray, d1: np.ndarray, r0: np.ndarray, r1: np.ndarray
) -> tuple[Candidates, Candidates]:
    """The pairs across datasets and within them, each in anonlink's order (as
    ``comparison.merge`` of them all, then split, gives them)."""
    order = comparison.descending_order(sims, d0, d1, r0, r1)
    sims, d0, d1, r0, r1 = sims[order], d0[order], d1[order], r0[order], r1[order]
    cross = d0 != d1
    return (
        comparison.from_arrays(sims[cross], d0[cross], d1[cross], r0[cross], r1[cross]),
        comparison.from_arrays(sims[~cross], d0[~cross], d1[~cross], r0[~cross], r1[~cross]),
    )
