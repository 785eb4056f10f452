"""The link stage with per-field filters: read them, score every candidate pair with the
field model (``field_scoring``) and decide which pairs the solver gets.

Kept apart from ``runs`` because it is the one stage that reads more than the record
CLKs: the per-field filters of the records in a candidate pair and of a random sample.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence

import numpy as np

from coordinator.core import (
    candidates,
    field_estimate,
    field_scoring,
    hidden_cells,
    matching,
    one_organisation,
)
from coordinator.core.model import Project
from coordinator.core.part_pass import PartPass
from coordinator.core.store import Store

#: Record ids per query when reading per-field filters (below SQLite's variable limit).
_IDS_AT_ONCE = 900
#: Candidate pairs whose part Dice are read at once (64 Ki pairs of 384-byte rows: 48 MB).
_PAIRS_AT_ONCE = 1 << 16


def _never() -> None:
    """No cancellation check (tests, direct calls)."""


def weigh_fields(
    store: Store,
    project: Project,
    found: candidates.Found,
    record_ids: Sequence[array[int]],
    threshold: float,
    check: Callable[[], None] = _never,
) -> field_scoring.Decision:
    """Every candidate pair scored by the field model (coordinator.core.field_scoring), and
    the pairs it links.

    Reads the per-field filters of the records in a candidate pair and of a
    random sample (``field_scoring.RANDOM_RECORDS``) for the chance agreement.
    The random pairs are drawn from a fixed seed, so a run repeated on the same
    uploads links the same pairs.
    """
    everyone = np.concatenate(
        [np.frombuffer(ids, dtype=np.int64) for ids in record_ids] or [np.zeros(0, dtype=np.int64)]
    )
    within = found.within
    if not project.within_threshold:
        within = matching.select(within, np.zeros(len(within[0]), dtype=bool))
    # One organisation: no cross links to learn one child's two records from, so the model
    # takes the organisation's own mutual-best pairs at the stricter threshold instead.
    sure_within = (
        one_organisation.sure_pairs(within, project, threshold) if len(record_ids) == 1 else None
    )
    scored = field_scoring.score(
        found.across,
        within,
        [len(ids) for ids in record_ids],
        lambda rows: _group_filters(store, project, everyone[rows], check),
        flip=project.field_flip,
        seed=0,
        sure_within=sure_within,
        identifiers=project.field_identifiers,
    )
    check()
    return field_scoring.decide(found.across, within, scored)


def prepare_estimate(
    project: Project,
    decision: field_scoring.Decision,
    record_ids: Sequence[array[int]],
    store: Store | None = None,
    parts: PartPass | None = None,
    check: Callable[[], None] = _never,
) -> field_estimate.Prepared | None:
    """The field model's refits for its own figures on the run's groups (``field_estimate``);
    the salted record CLK's parts say which matches the floor may hide: which parts each
    candidate's salts broke, and (with ``store`` and the run's part pass ``parts``) which
    parts reached their floors (``hidden_cells``)."""
    if decision.scored is None:
        return None
    checks = field_estimate.PART_CHECKS if project.record_clk == "salted" else {}
    clear = None
    inputs = decision.scored.inputs
    if checks and store is not None and parts is not None and inputs is not None:
        clear = _clear_parts(store, project, record_ids, inputs.candidate_pairs, parts, check)
    return field_estimate.prepare(
        decision.scored, [len(ids) for ids in record_ids], seed=0, checks=checks, clear=clear
    )


def _clear_parts(
    store: Store,
    project: Project,
    record_ids: Sequence[array[int]],
    pairs: tuple[np.ndarray, np.ndarray],
    parts: PartPass,
    check: Callable[[], None] = _never,
) -> np.ndarray:
    """Each candidate's record-CLK parts at or above their floors, as bits; the record CLKs
    read back from the store for the records in a candidate pair only."""
    everyone = np.concatenate(
        [np.frombuffer(ids, dtype=np.int64) for ids in record_ids] or [np.zeros(0, dtype=np.int64)]
    )
    left, right = pairs
    rows, at = np.unique(np.concatenate([left, right]), return_inverse=True)
    clks = _read(store, everyone[rows], 0, project.encodings[0].nbytes, check)
    a, b = at[: len(left)], at[len(left) :]
    out = np.zeros(len(left), dtype=np.int64)
    for first in range(0, len(left), _PAIRS_AT_ONCE):  # both rows of each pair gathered
        check()
        step = slice(first, first + _PAIRS_AT_ONCE)
        dice = hidden_cells.part_dice(clks[a[step]], clks[b[step]], parts.count)
        out[step] = hidden_cells.clear_bits(dice, parts.part_floors)
    return out


def _read(
    store: Store, ids: np.ndarray, start: int, width: int, check: Callable[[], None] = _never
) -> np.ndarray:
    """``width`` bytes from ``start`` of the records' stored encodings, rows in the order
    of ``ids``."""
    order = np.argsort(ids, kind="stable")
    ascending = ids[order]
    packed = np.zeros((len(ids), width), dtype=np.uint8)
    for first in range(0, len(ids), _IDS_AT_ONCE):
        check()
        part = ids[first : first + _IDS_AT_ONCE]
        marks = ",".join("?" * len(part))
        for rid, blob in store.query(
            f"SELECT id, substr(encodings, ?, ?) FROM records WHERE id IN ({marks})",
            (start + 1, width, *(int(i) for i in part)),
        ):
            packed[order[np.searchsorted(ascending, rid)]] = np.frombuffer(blob, np.uint8)
    return packed


def _group_filters(
    store: Store, project: Project, ids: np.ndarray, check: Callable[[], None] = _never
) -> dict[str, np.ndarray]:
    """The per-field filters of the records ``ids``, one packed array a group, rows in
    the order of ``ids``."""
    start = project.encodings[0].nbytes
    width = sum(g.nbytes for g in project.field_groups)
    packed = _read(store, ids, start, width, check)
    out = {}
    at = 0
    for group in project.field_groups:
        out[group.name] = packed[:, at : at + group.nbytes]
        at += group.nbytes
    return out
