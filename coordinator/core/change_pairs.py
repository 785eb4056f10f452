"""The pairs of the records a refresh added or changed, with every record held: the
comparing step of an incremental run (``incremental``).

Without blocking every pair is compared, in tasks on the run's engine; with it,
exactly the pairs a full run with the project's plans finds
(``pinned_blocking``): screened on the sketch, scored, and kept if they
collide in one of the plan's bands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core import comparison, pinned_blocking, sketch_screen
from coordinator.core.candidates import Progress, Session
from coordinator.core.comparison import Candidates, PairChunk
from coordinator.core.errors import Cancelled
from coordinator.core.part_pass import PartPass
from coordinator.core.record_index import RecordIndex


@dataclass(frozen=True)
class Thresholds:
    """Where a search keeps pairs: across datasets from ``low`` (all pairs) or ``kept_from``
    (blocked), inside one from ``within`` (0: not at all); all pairs also by ``parts``."""

    low: float
    within: float
    kept_from: float
    blocked: bool
    parts: PartPass | None = None
    """A salted record CLK's part pass, as a full all-pairs run keeps it."""


#: Rows of a dataset one task compares the changed records with.
_SLICE = 50_000


def compare(
    session: Session,
    encodings: Sequence[np.ndarray],
    index: RecordIndex,
    touched: np.ndarray,
    search: Thresholds,
    pinned: pinned_blocking.Pinned | None,
    progress: Progress,
    cancelled: Callable[[], bool],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (record ids, similarity) of the touched records with every record, found at
    the thresholds a full run searches at (``low`` across datasets, ``within`` inside one).

    Without blocking every pair is compared, in tasks on the run's engine; with it, every
    pair is screened on its sketch as a blocked run screens the pairs its bands find
    (``coordinator.core.sketch_screen``), which keeps at least what a blocked run would.
    """
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if not len(touched):
        return empty
    d, r = index.place(touched)
    parts = (
        _screened(encodings, d, r, search, pinned, progress, cancelled)
        if search.blocked and pinned
        else _all_pairs(session, encodings, d, r, search, progress, cancelled)
    )
    if not parts:
        return empty
    left_dataset, left_row, right_dataset, right_row, sims = (
        np.concatenate(x) for x in zip(*parts, strict=True)
    )
    left_id = index.ids(left_dataset, left_row)
    right_id = index.ids(right_dataset, right_row)
    keep = left_id != right_id
    left_id, right_id, sims = left_id[keep], right_id[keep], sims[keep]
    # Each pair once, in the orientation a full run gives it: (dataset, row) ascending.
    ld, lr = index.place(left_id)
    rd, rr = index.place(right_id)
    swap = (ld > rd) | ((ld == rd) & (lr > rr))
    a = np.where(swap, right_id, left_id)
    b = np.where(swap, left_id, right_id)
    key = np.unique(np.stack([a, b], axis=1), axis=0, return_index=True)[1]
    return a[key], b[key], sims[key]


#: Pairs found for the touched records of one dataset: (left dataset, left row, right
#: dataset, right row, similarity), rows being dataset rows.
_Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _all_pairs(
    session: Session,
    encodings: Sequence[np.ndarray],
    d: np.ndarray,
    r: np.ndarray,
    search: Thresholds,
    progress: Progress,
    cancelled: Callable[[], bool],
) -> list[_Part]:
    """Every pair of a touched record (dataset ``d``, row ``r``) with every record, as
    all-pairs chunks on the engine: the touched rows of each dataset are one more dataset."""
    datasets = list(encodings)
    tasks: list[PairChunk] = []
    touched_rows: dict[int, tuple[int, np.ndarray]] = {}
    for a in range(len(encodings)):
        rows = np.sort(r[d == a])
        if not len(rows):
            continue
        slot = len(datasets)
        datasets.append(np.ascontiguousarray(encodings[a][rows]))
        touched_rows[slot] = (a, rows)
        for b, size in enumerate(len(e) for e in encodings):
            threshold = search.low if b != a else search.within
            if not threshold:
                continue
            for start in range(0, size, _SLICE):
                tasks.append(
                    PairChunk(
                        slot,
                        (0, len(rows)),
                        b,
                        (start, min(size, start + _SLICE)),
                        threshold,
                        search.parts.for_pair(a == b) if search.parts else None,
                    )
                )
    progress.tasks_total = len(tasks)
    found: list[Candidates] = []

    def on_done(_: int, outcome: comparison.Outcome) -> None:
        progress.tick(outcome.compared)
        found.append(outcome.candidates)

    session.run(tasks, datasets, on_done, cancelled)
    if cancelled() or len(found) < len(tasks):
        raise Cancelled("the run was cancelled")
    parts: list[_Part] = []
    for candidates in found:
        sims = np.frombuffer(candidates[0], dtype=np.float64)
        if not len(sims):
            continue
        slots, other = (np.frombuffer(candidates[1][k], np.uint32).astype(np.int64) for k in (0, 1))
        i, j = (np.frombuffer(candidates[2][k], np.uint32).astype(np.int64) for k in (0, 1))
        a, rows = touched_rows[int(slots[0])]  # a task's pairs all start in its own slot
        parts.append((np.full(len(i), a, np.int64), rows[i], other, j, sims))
    return parts


def _screened(
    encodings: Sequence[np.ndarray],
    d: np.ndarray,
    r: np.ndarray,
    search: Thresholds,
    pinned: pinned_blocking.Pinned,
    progress: Progress,
    cancelled: Callable[[], bool],
) -> list[_Part]:
    """The touched records' pairs in a blocked project, exactly those a full run with the
    project's plans finds: every pair screened on its sketch with the plan's limit,
    scored exactly (``sketch_screen``), and kept if it collides in one of the plan's
    bands (``pinned_blocking.colliding``)."""
    sizes = [len(e) for e in encodings]
    words: dict[tuple[int, tuple[int, ...]], list[np.ndarray]] = {}
    progress.tasks_total = len(encodings) * len(encodings)
    parts: list[_Part] = []
    for a in range(len(encodings)):
        rows = np.sort(r[d == a])
        left = np.ascontiguousarray(encodings[a][rows])
        for b in range(len(encodings)):
            if cancelled():
                raise Cancelled("the run was cancelled")
            inside = a == b
            pair = (min(a, b), max(a, b))
            # One plan, or one per part (a salted record CLK's part pass): a pair is found
            # if some plan finds it, as in a full run.
            for plan in pinned.plans_for(*pair) if len(rows) else []:
                if (b, plan.sketch) not in words:
                    words[b, plan.sketch] = comparison.sketch_words(encodings[b], plan.sketch)
                i, j, sims = sketch_screen.screen(
                    left,
                    encodings[b],
                    words[b, plan.sketch],
                    limit=plan.sketch_limit,
                    threshold=search.within if inside else search.kept_from,
                    columns=plan.sketch,
                    parts=pinned.parts_for(*pair),
                )
                # The plan's bands read the lower dataset as left: collisions are symmetric.
                hit = pinned_blocking.colliding(plan, left, encodings[b], i, j)
                i, j, sims = i[hit], j[hit], sims[hit]
                parts.append(
                    (np.full(len(i), a, np.int64), rows[i], np.full(len(i), b, np.int64), j, sims)
                )
            progress.tick(len(rows) * sizes[b])
    return parts
