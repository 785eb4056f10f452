"""Candidate search for a run: all pairs or blocked, on whatever engine runs the tasks.

``find`` is the one entry point a run uses. It cuts the work into tasks
(``coordinator.core.comparison``), decides whether to block
(``coordinator.core.blocking``), hands the tasks to an :class:`Engine` and
merges what comes back. Results are the same whichever engine runs them; the
engine only decides where: this process (:class:`InlineEngine`), worker
processes on every core, or a Dask cluster (``coordinator.parallel``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from coordinator.core import blocking, comparison, pinned_blocking, quality, score_sample
from coordinator.core.comparison import Candidates, Outcome, Task
from coordinator.core.errors import Cancelled, OverBudget
from coordinator.core.part_pass import PartPass

log = logging.getLogger("hublink.coordinator.matching")

#: With blocking, cross-dataset pairs are kept from this far below the design threshold.
BLOCKED_MARGIN = pinned_blocking.MARGIN

#: Pairs found by blocked tasks held before they are merged into one unique set.
FOLD_EVERY = 2_000_000

#: Seconds between progress lines on the coordinator's log during a long comparison.
LOG_EVERY = 10.0

#: Records drawn at random (over all datasets) whose exact best scores feed the threshold
#: estimate when blocking is on: blocking finds chance pairs below the threshold only now
#: and then, so the blocked candidates would paint non-matches too well.
DEFAULT_ESTIMATE_SAMPLE = 1000

#: Records of the other dataset a sample task compares the sample with.
SAMPLE_SLICE = 100_000


class Session(Protocol):
    """One run's use of an engine: arrays it can share, and tasks run over them."""

    def array(self, shape: tuple[int, ...]) -> np.ndarray:
        """A zeroed uint8 array the engine's workers can read without a copy."""

    def run(
        self,
        tasks: Sequence[Task],
        datasets: Sequence[np.ndarray],
        on_done: Callable[[int, Outcome], None],
        cancelled: Callable[[], bool],
    ) -> None:
        """Run every task over ``datasets``, calling ``on_done(index, result)`` as each ends.

        Returns early, with tasks left undone, once ``cancelled()`` is true.
        """


class Engine(Protocol):
    """Where comparison tasks run."""

    name: str
    workers: int

    def session(self) -> AbstractContextManager[Session]: ...


class _InlineSession:
    def array(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.uint8)

    def run(
        self,
        tasks: Sequence[Task],
        datasets: Sequence[np.ndarray],
        on_done: Callable[[int, Outcome], None],
        cancelled: Callable[[], bool],
    ) -> None:
        for index, task in enumerate(tasks):
            if cancelled():
                return
            on_done(index, comparison.perform(task, datasets))


class InlineEngine:
    """Every task in the calling thread, one after another: tests, small runs."""

    name = "inline"
    workers = 1

    @contextmanager
    def session(self) -> Iterator[Session]:
        yield _InlineSession()


@dataclass
class Progress:
    """How far the comparison stage of a run has gone, for status calls and the log."""

    ids: dict[str, str] = field(default_factory=dict)
    """The run's ids, for the log lines' fields (``hublink.logformat``)."""
    stage: str = "loading"
    tasks_done: int = 0
    tasks_total: int = 0
    comparisons: int = 0
    started: float = field(default_factory=time.monotonic)
    logged: float = field(default_factory=time.monotonic)

    def tick(self, comparisons: int) -> None:
        """One more task done; a line on the log every ``LOG_EVERY`` seconds."""
        self.tasks_done += 1
        self.comparisons += comparisons
        now = time.monotonic()
        if now - self.logged >= LOG_EVERY or self.tasks_done == self.tasks_total:
            self.logged = now
            log.info(
                "compared %d of %d chunks, %.3g comparisons/s",
                self.tasks_done,
                self.tasks_total,
                self.comparisons_per_second,
                extra=self.ids,
            )

    @property
    def comparisons_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.comparisons / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class Found:
    """What a run's candidate search found and how."""

    across: Candidates
    """Cross-dataset pairs at or above the search's low threshold."""
    within: Candidates
    """Pairs inside one dataset at or above the within threshold (empty when not asked)."""
    scores: np.ndarray
    """Each record's best cross-dataset score per other dataset (for the threshold estimate)."""
    blocked: bool
    comparisons: int
    """Pairs whose similarity was computed (all-pairs: every pair)."""
    all_pairs: int
    """Pairs all-pairs matching would compare."""
    bits: int = 0
    bands: int = 0
    promised_completeness: float = 1.0
    """Chance blocking finds a pair exactly at the design threshold (1 without blocking)."""
    sampled: int = 0
    """Records whose scores were computed exactly for the estimate (0: all of them)."""
    kept_from: float = 0.0
    """The lowest cross-dataset score the search kept (``low``, or blocking's margin below its
    design threshold): matches below it are never scored."""
    sample_pairs: Candidates | None = None
    """With blocking: the sampled records' exact cross-dataset pairs from ``low``, in the
    run's own dataset and row numbers, to measure what blocking missed
    (``output_recall.blocking_miss``)."""
    pinned: pinned_blocking.Pinned | None = None
    """With blocking: the band plans the run used (kept for the next run: ``pinned_blocking``)."""
    sample: score_sample.SamplePairs | None = None
    """With blocking: the estimate sample and its exact pairs (kept for the next run)."""
    stages: dict[str, float] = field(default_factory=dict)
    """Wall seconds of each stage: "plan" (bit frequencies, band plans, tasks), "compare"
    (every task, on the engine) and "merge" (folding and ordering what they found)."""

    @property
    def scored(self) -> Candidates:
        """The cross pairs at or above ``kept_from``: what the record-score estimate reads.

        A salted record CLK's part pass (``coordinator.core.part_pass``) adds pairs whose
        whole score is lower; the field model weighs them with the rest, but the score
        mixture, its runner-ups and its recall keep the meaning they had at the floor."""
        return at_least(self.across, self.kept_from)


def at_least(candidates: Candidates, low: float) -> Candidates:
    """The candidates whose score reaches ``low``, still most similar first."""
    sims = np.frombuffer(candidates[0], dtype=np.float64)
    keep = sims >= low
    if keep.all():
        return candidates
    fields = [
        np.frombuffer(candidates[k][j], dtype=np.uint32)[keep]
        for k, j in ((1, 0), (1, 1), (2, 0), (2, 1))
    ]
    return comparison.from_arrays(sims[keep], *fields)


def all_pairs_count(sizes: Sequence[int]) -> int:
    return sum(a * b for n, a in enumerate(sizes) for b in sizes[n + 1 :])


def find(
    session: Session,
    rows: Sequence[np.ndarray],
    *,
    low: float,
    design: float,
    within_threshold: float = 0.0,
    blocking_mode: str = "auto",
    completeness: float = blocking.DEFAULT_COMPLETENESS,
    estimate_sample: int = DEFAULT_ESTIMATE_SAMPLE,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    seed: int | None = None,
    max_candidates: int | None = None,
    pinned: pinned_blocking.Pinned | None = None,
    sample_ids: Sequence[np.ndarray] | None = None,
    sample_seed: int = 0,
    plan_from: float | None = None,
    band_budget: int = blocking.DEFAULT_BAND_BUDGET,
    auto_limit: int = blocking.AUTO_MIN_COMPARISONS,
    parts: PartPass | None = None,
) -> Found:
    """Candidate pairs of a run's datasets (``rows``: one packed encoding per row each).

    Cross-dataset pairs are kept from ``low`` (the threshold estimate needs the
    scores of non-matches too); blocking, when on, is planned to find pairs at
    ``design`` with chance ``completeness``. Within-dataset pairs are searched
    at ``within_threshold`` when it is set.

    With ``plan_from`` (a salted record CLK's floor), cross-dataset blocking is
    planned at the lowest threshold from there up to ``design`` that needs at most
    ``band_budget`` bands (``blocking.lowest_plan``), and pairs are kept from the
    margin below that.

    With ``parts`` (a salted record CLK), all-pairs chunks, across and within, also keep
    the pairs whose best part reaches the part floor (``coordinator.core.part_pass``).
    Blocked search then draws its bands inside each part, planned as low from the part
    floor as ``band_budget`` bands a part allow (``blocking.part_plans``), keeps what the
    part pass keeps (``part_keep``) and keeps cross pairs from ``low`` as all pairs does;
    the estimate sample stays on the whole row.

    With ``max_candidates``, the pairs held are counted as each task ends and
    the search stops with :class:`OverBudget` once they pass it, so a run at
    too low a threshold fails in seconds instead of filling the machine's memory.

    With blocking, ``pinned`` plans are used as they are (else plans are drawn from
    ``seed``, random when None), and with ``sample_ids`` (each dataset's record ids)
    the estimate sample is the bottom-k of their hash under ``sample_seed``
    (``pinned_blocking``): then the same data always gives the same pairs and scores.
    """
    progress = progress or Progress()
    planning = time.perf_counter()
    sizes = [len(r) for r in rows]
    everything = all_pairs_count(sizes)
    blocked = blocking.should_block(blocking_mode, sizes, auto_limit)
    results: dict[int, Candidates] = {}
    tasks: list[Task]
    plans: list[blocking.BandPlan] = []
    sample_tasks: list[Task] = []
    sample_rows: list[np.ndarray] = []
    picked: list[np.ndarray] = []
    datasets: list[np.ndarray] = list(rows)
    kept_from = low
    if not blocked:
        tasks = list(comparison.plan_pair_chunks(sizes, low, within_threshold, parts=parts))
    else:
        # Blocking finds pairs far below its design threshold only by chance; keeping them
        # would cost memory for nothing (the estimate takes its scores from the sample).
        if pinned is None:
            pinned = pinned_blocking.make(
                rows, design, within_threshold, completeness, seed, plan_from, band_budget, parts
            )
        kept_from = pinned.kept_from(low)
        tasks = []
        for a, b, plan in pinned.plans:
            if a != b:
                plans.append(plan)
            at = kept_from if a != b else within_threshold
            tasks += blocking.chunks(plan, a, b, at, parts=pinned.parts_for(a, b))
        picked = (
            pinned_blocking.sample_picks(sample_ids, estimate_sample, sample_seed)
            if sample_ids is not None
            else _sample_picks(rows, estimate_sample, seed)
        )
        sample_rows = [np.ascontiguousarray(r[p]) for r, p in zip(rows, picked, strict=True)]
        first_sample = len(datasets)
        datasets += sample_rows
        for s, sample in enumerate(sample_rows):
            for b, size in enumerate(sizes):
                if b == s or not len(sample):
                    continue
                # In slices of the other dataset: a task holds one slice as anonlink's
                # bitarrays, never a whole dataset of a million.
                for start in range(0, size, SAMPLE_SLICE):
                    stop = min(size, start + SAMPLE_SLICE)
                    sample_tasks.append(
                        comparison.PairChunk(
                            first_sample + s, (0, len(sample)), b, (start, stop), low
                        )
                    )
    everything_tasks = [*tasks, *sample_tasks]
    progress.stage = "comparing"
    progress.tasks_total = len(everything_tasks)
    progress.started = time.monotonic()

    # Blocked tasks each find most close pairs again: fold them in as they come, so a run
    # holds one copy of each pair and a bounded backlog, not every task's results at once.
    folded: list[Candidates] = []
    backlog = 0
    finished = 0
    sampled_pairs = 0

    def on_done(index: int, outcome: Outcome) -> None:
        nonlocal backlog, finished, sampled_pairs
        finished += 1
        progress.tick(outcome.compared)
        if index >= len(tasks):
            results[index] = outcome.candidates
            sampled_pairs += len(outcome.candidates[0])
        else:
            found = outcome.candidates
            folded.append(found)
            backlog += len(found[0])
            if blocked and backlog > FOLD_EVERY and len(folded) > 1:
                folded[:] = [_fold(folded, len(rows), max(sizes))]
                backlog = 0
        if max_candidates is None:
            return
        held = sampled_pairs + sum(len(f[0]) for f in folded)
        if held > max_candidates and blocked and backlog and len(folded) > 1:
            folded[:] = [_fold(folded, len(rows), max(sizes))]  # repeats do not count
            backlog = 0
            held = sampled_pairs + len(folded[0][0])
        if held > max_candidates:
            folded.clear()
            results.clear()
            raise OverBudget(
                f"the run stopped itself: it held {held:,} candidate pairs after "
                f"{finished} of {len(everything_tasks)} comparison tasks, more than the "
                f"project's max_candidates ({max_candidates:,}); start it at a higher "
                "threshold, or raise max_candidates if the coordinator has the memory"
            )

    comparing = time.perf_counter()
    session.run(everything_tasks, datasets, on_done, cancelled)
    if cancelled() or finished < len(everything_tasks):
        raise Cancelled("the run was cancelled")
    merging = time.perf_counter()
    if blocked and folded:
        merged = _most_similar_first(_fold(folded, len(rows), max(sizes)))
    else:
        merged = comparison.merge(folded, unique=blocked)
    folded.clear()
    across, within = _split(merged)
    if blocked:
        measured = score_sample.from_tasks(
            [results[len(tasks) + i] for i in range(len(sample_tasks))], picked, len(rows)
        )
        scores = measured.scores()
        sample_pairs: Candidates | None = measured.in_run_rows()
    else:
        scores = quality.best_scores(at_least(across, low))
        sample_pairs = None
        measured = None
    return Found(
        across=across,
        within=within,
        scores=scores,
        blocked=blocked,
        comparisons=progress.comparisons,
        all_pairs=everything,
        bits=plans[0].bits if plans else 0,
        bands=sum(len(p.bands) for p in plans),
        promised_completeness=min((p.completeness for p in plans), default=1.0),
        sampled=sum(len(s) for s in sample_rows),
        kept_from=kept_from,
        sample_pairs=sample_pairs,
        pinned=pinned if blocked else None,
        sample=measured,
        stages={
            "plan": comparing - planning,
            "compare": merging - comparing,
            "merge": time.perf_counter() - merging,
        },
    )


def _sample_picks(rows: Sequence[np.ndarray], total: int, seed: int | None) -> list[np.ndarray]:
    """Row numbers of a random sample of each dataset, ``total`` records in all, shared out
    evenly."""
    rng = np.random.default_rng(seed)
    each = max(1, math.ceil(total / max(1, len(rows))))
    out = []
    for r in rows:
        take = min(len(r), each)
        picked: np.ndarray = np.sort(rng.choice(len(r), size=take, replace=False))
        out.append(picked)
    return out


def _fold(parts: Sequence[Candidates], ndata: int, largest: int) -> Candidates:
    """Several tasks' candidates as one, each pair once, ordered by (datasets, rows).

    Cheaper than ``comparison.merge`` in time and memory: a pair is packed
    into one integer (datasets and rows in mixed radix) part by part, and one
    sort of those integers finds the repeats; the fields are unpacked again
    only for the pairs kept.
    """
    if ndata * ndata * largest * largest >= 2**63:
        return comparison.merge(parts, unique=True)
    sims = np.concatenate([np.frombuffer(p[0], dtype=np.float64) for p in parts])
    key = np.concatenate([_pair_keys(p, ndata, largest) for p in parts])
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, sims = key[first], sims[order[first]]
    del order, first
    r1 = key % largest
    key //= largest
    r0 = key % largest
    key //= largest
    return comparison.from_arrays(sims, key // ndata, key % ndata, r0, r1)


def _pair_keys(part: Candidates, ndata: int, largest: int) -> np.ndarray:
    """One task's pairs, each as one integer: ((d0 * ndata + d1) * largest + r0) * largest + r1."""
    d0, d1 = (np.frombuffer(part[1][k], dtype=np.uint32).astype(np.int64) for k in (0, 1))
    key = d0 * ndata + d1
    for k in (0, 1):
        key *= largest
        key += np.frombuffer(part[2][k], dtype=np.uint32)
    return key


def _most_similar_first(candidates: Candidates) -> Candidates:
    """Folded candidates in anonlink's order: similarity descending, then (datasets, rows)."""
    sims = np.frombuffer(candidates[0], dtype=np.float64)
    # The fold left them ordered by (datasets, rows), so a stable sort keeps that among ties.
    order = np.argsort(-sims, kind="stable")
    fields = [
        np.frombuffer(candidates[k][j], dtype=np.uint32)
        for k, j in ((1, 0), (1, 1), (2, 0), (2, 1))
    ]
    return comparison.from_arrays(sims[order], *(f[order] for f in fields))


def _split(candidates: Candidates) -> tuple[Candidates, Candidates]:
    """Cross-dataset and within-dataset candidates, each still most similar first."""
    sims = np.frombuffer(candidates[0], dtype=np.float64)
    d0, d1 = (np.frombuffer(candidates[1][k], dtype=np.uint32) for k in (0, 1))
    r0, r1 = (np.frombuffer(candidates[2][k], dtype=np.uint32) for k in (0, 1))
    cross = d0 != d1
    return (
        comparison.from_arrays(sims[cross], d0[cross], d1[cross], r0[cross], r1[cross]),
        comparison.from_arrays(sims[~cross], d0[~cross], d1[~cross], r0[~cross], r1[~cross]),
    )
