"""A matching run as a chain of stages, each a function from plain data to plain data.

    load → candidates → threshold → link → solve → assign → report → store

``load_datasets`` reads each committed upload's record CLKs into one packed
array; ``find_candidates`` compares them (with blocking when it pays);
``choose_threshold`` picks the record-level threshold; ``link`` chooses the
pairs the solver sees: with per-field filters, every candidate scored by the
field model and linked at its own cut-offs, else the pairs at the threshold,
the within pairs and the pairs two links imply; ``resolve`` groups records
into entities (after a refresh, only those it can have changed); ``assign``
gives the groups entity ids that stay stable across runs; ``report`` gathers
the run's quality figures; ``store_results`` writes entities, figures and the
audit entry in one transaction. ``execute`` chains them, as anonlink chains
similarities → candidate pairs → solve, and records how the run ended: a run
writes nothing until its last stage, so a failed or cancelled run leaves the previous keys.

A run's thresholds are named for what they are (``Thresholds``): the
*requested* one (given with the run, if any), the *fallback* (the requested
one, else the project's) and the *chosen* one, the run links at. A project of one
organisation has one dataset and no cross-organisation pair: ``one_organisation``
stands in where the stages would need them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core import (
    after_run,
    blocking,
    candidates,
    chance,
    entities,
    field_estimate,
    field_scoring,
    field_weighing,
    incremental,
    load_cache,
    matching,
    one_organisation,
    partial_solve,
    pinned_blocking,
    quality,
    quality_breakdown,
    resolve,
    spread_carry,
)
from coordinator.core.candidates import Engine
from coordinator.core.errors import Cancelled, InvalidRequest, OverBudget
from coordinator.core.guard import event
from coordinator.core.loading import Datasets, load_datasets
from coordinator.core.model import Project
from coordinator.core.part_pass import PartPass
from coordinator.core.peaks import peaks_for
from coordinator.core.releases import project_key
from coordinator.core.score_model import FLOOR
from coordinator.core.store import Store, utc_now
from hublink.identity import Identity

log = logging.getLogger("hublink.coordinator")

#: Rows written between checks of a run's cancel event while its results are stored.
_STORE_CHECK_EVERY = 20_000


def _never() -> None:
    """A stage's cancellation check when nothing can cancel it (tests, direct calls)."""


@dataclass(frozen=True)
class Thresholds:
    """The thresholds a run starts with; the chosen one is known after ``choose_threshold``."""

    requested: float | None
    """The threshold the admin asked for with the run; None: none."""
    fallback: float
    """The requested threshold, else the project's: the run links at it when it may not, or
    cannot, choose one from its scores. Blocking is planned for it."""
    auto: bool
    """Whether the run may choose the estimated threshold: the project's rule, when no
    threshold was requested."""

    @classmethod
    def plan(cls, project: Project, requested: float | None) -> Thresholds:
        """A run's thresholds; the one place a requested threshold is checked (the project's
        was checked when its file was loaded)."""
        if requested is not None and not 0.0 < requested <= 1.0:
            raise InvalidRequest(f"threshold must be between 0 and 1, not {requested}")
        if requested is not None and requested < project.min_threshold:
            raise InvalidRequest(
                f"threshold {requested} is below project {project.id!r}'s min_threshold "
                f"{project.min_threshold}: so low a threshold makes almost every pair a candidate "
                "and could exhaust the coordinator's memory"
            )
        if requested is None:
            return cls(None, project.threshold, project.auto_threshold)
        return cls(requested, requested, False)


@dataclass(frozen=True)
class Links:
    """The pairs a run passes to the solver, and what the field model made of them (field
    scoring; None on the record-level path)."""

    linking: matching.Candidates
    duplicates: quality.DuplicateEstimate | None
    estimate: field_estimate.Prepared | None = None
    """The field model's refits, for its own figures on the run's groups (field scoring)."""


@dataclass(frozen=True)
class Assigned:
    """Every record of the run (ids in load order) and the entity each now belongs to."""

    everyone: np.ndarray
    assignment: entities.Entities
    previous: entities.Previous | None = None
    """The entity rows the run started from (read once, for ids and for lineage)."""


@dataclass(frozen=True)
class Outcome:
    """What a completed run stores: figures, its quality report and how it compared."""

    chosen_threshold: float
    records: int
    entities: int
    linked_entities: int
    candidate_pairs: int
    seconds: float
    report: quality.RunQuality
    matching: dict[str, object]


# ------------------------------------------------------------------------------- stages
def find_candidates(
    session: candidates.Session,
    datasets: Datasets,
    project: Project,
    thresholds: Thresholds,
    progress: candidates.Progress,
    cancelled: Callable[[], bool],
    pinned: pinned_blocking.Pinned | None = None,
    level: chance.Chance = chance.SHIPPED,
) -> candidates.Found:
    """Cross-dataset candidates down to the quality floor (the non-matches the threshold
    estimate needs; the run links only those at its threshold) and within-dataset ones.

    With blocking, the project's ``pinned`` plans when they still fit (else plans drawn
    from the project's seed) and its sample (``pinned_blocking``): a run on the same
    data finds the same pairs, whichever run it is. Floors follow the data's chance ``level``."""
    encodings = datasets.encodings
    return candidates.find(
        session,
        encodings,
        low=_score_floor(project, thresholds, level),
        max_candidates=project.max_candidates,
        design=thresholds.fallback,  # blocking is planned for the fallback threshold,
        plan_from=level.whole_floor if project.record_clk == "salted" else None,  # or lower
        auto_limit=blocking.auto_limit(project.record_clk),
        parts=level.part_pass(bool(project.field_groups)),
        within_threshold=_within_search(project, level),
        blocking_mode=project.blocking,
        completeness=project.blocking_completeness,
        estimate_sample=project.estimate_sample,
        progress=progress,
        cancelled=cancelled,
        seed=pinned_blocking.project_seed(project.id, "bands"),
        pinned=pinned,
        sample_ids=[np.frombuffer(ids, dtype=np.int64) for ids in datasets.record_ids],
        sample_seed=pinned_blocking.project_seed(project.id, "sample"),
    )


def choose_threshold(
    found: candidates.Found,
    thresholds: Thresholds,
    datasets: int = 2,
    floor: float = quality.FLOOR,
    carry: spread_carry.Carry | None = None,
    peaks: int = 1,
) -> tuple[float, quality.Estimate]:
    """The chosen threshold (the estimate when the run may and can use it, else the fallback)
    and the estimate it was chosen from (none with one dataset: ``one_organisation``);
    ``floor`` is the record CLK's score floor (``floor_for``), ``peaks`` how many humps its
    true pairs' scores form (``peaks_for``). With ``carry`` the estimate draws no bootstrap
    and carries the last one's spreads (``spread_carry``)."""
    if datasets < 2:
        return thresholds.fallback, one_organisation.estimate()
    threshold, estimate = quality.choose(
        found.scores,
        thresholds.fallback,
        thresholds.auto,
        found.scored,
        completeness=found.promised_completeness if found.blocked else 1.0,
        floor=floor,
        bootstrap=0 if carry else quality.BOOTSTRAP,
        peaks=peaks,
    )
    return threshold, carry.apply(estimate) if carry else estimate


def link(
    store: Store,
    project: Project,
    found: candidates.Found,
    record_ids: Sequence[array[int]],
    chosen: float,
    progress: candidates.Progress,
    check: Callable[[], None] = _never,
    parts: PartPass | None = None,
) -> Links:
    """The pairs the solver gets.

    With per-field filters, every candidate (across organisations and, when the
    project deduplicates, inside one) is scored by the field model and linked at
    its own cut-offs (``weigh_fields``). Without them: the cross pairs at the
    chosen threshold, the within pairs at the project's within threshold, and the
    pairs both imply.
    """
    if project.field_groups:
        progress.stage = "weighing fields"
        decision = field_weighing.weigh_fields(store, project, found, record_ids, chosen, check)
        prepared = field_weighing.prepare_estimate(
            project, decision, record_ids, store, parts, check
        )
        return Links(decision.linking, decision.duplicates, prepared)
    linking = matching.above(found.across, chosen)
    if project.within_threshold:
        within = found.within
        # Cross pairs below the threshold that a within link and a cross link both
        # imply, so the solver can put a changed-surname duplicate in its group.
        linking = matching.combine(
            linking, within, matching.completing(found.across, within, chosen)
        )
    return Links(linking, None)


def assign(
    store: Store,
    project: Project,
    grouping: entities.Grouping,
    everyone: np.ndarray,
    previous: entities.Previous | None = None,
) -> Assigned:
    """Entity ids for the groups, inherited from the project's previous run where they can be."""
    if previous is None:
        previous = resolve.read_previous(store, project)
    return Assigned(everyone, entities.assign(grouping, everyone, previous), previous)


def report(
    store: Store,
    project: Project,
    found: candidates.Found,
    thresholds: Thresholds,
    chosen: tuple[float, quality.Estimate],
    grouping: entities.Grouping,
    assigned: Assigned,
    duplicates: quality.DuplicateEstimate | None,
    sizes: Sequence[int],
    names: Sequence[str],
    carried: tuple[float, float, int] | None = None,
    prepared: field_estimate.Prepared | None = None,
) -> quality.RunQuality:
    """The run's quality report: the estimate, per-dataset rates and the protected breakdown
    (``sizes`` and ``names``: each dataset's records and organisation, in load order;
    ``carried``: an incremental run's carried recall interval, ``spread_carry``; ``prepared``:
    the field model's refits, whose figures on the groups replace the record-level ones)."""
    threshold, estimate = chosen
    linked, duplicated = grouping.status()
    figures = quality.report(
        across=found.scored,
        scores=found.scores,
        found=estimate,
        auto=thresholds.auto,
        threshold_used=threshold,
        threshold_fixed=thresholds.fallback,
        threshold_requested=thresholds.requested,
        datasets=quality.dataset_rates(grouping.dataset, linked, duplicated, sizes, names),
        output=quality.Output(
            grouping.group, tuple(sizes), found.kept_from, found.sample_pairs, carried
        ),
        floor=floor_for(project.record_clk),
    )
    if prepared is not None and duplicates is not None:
        own = field_estimate.on_output(prepared, grouping.group, grouping.dataset)
        figures, duplicates = field_estimate.reported(figures, duplicates, own)
    return dataclasses.replace(
        figures,
        duplicates=duplicates,
        attributes=quality_breakdown.for_run(
            store,
            project.id,
            status=quality_breakdown.RecordStatus(
                assigned.everyone, grouping.dataset, linked, duplicated, assigned.assignment
            ),
            names=[d.organisation for d in figures.datasets],
            released=project.released_attributes,
            rule=project.disclosure,
            project_key=project_key(store, project.id),
        ),
    )


def store_results(
    store: Store,
    caller: Identity,
    project: Project,
    run_id: str,
    assigned: Assigned,
    outcome: Outcome,
    check: Callable[[], None] = _never,
) -> None:
    """Write the entities that changed, complete the run and audit it, in one transaction.

    ``check`` is called before writing: a cancellation raised from it rolls the whole
    transaction back, so the previous run's keys stand.
    """
    with store.transaction() as tx:
        check()
        # The entity rows that changed, key lineage and the dated release (.after_run).
        after_run.record(
            tx, caller, project, run_id, assigned.everyone, assigned.assignment, assigned.previous
        )
        tx.execute(
            "UPDATE runs SET state = 'completed', finished_at = ?, seconds = ?, "
            "records = ?, entities = ?, linked_entities = ?, candidates = ?, "
            "threshold = ? WHERE id = ?",
            (
                utc_now(),
                outcome.seconds,
                outcome.records,
                outcome.entities,
                outcome.linked_entities,
                outcome.candidate_pairs,
                outcome.chosen_threshold,
                run_id,
            ),
        )
        tx.execute("INSERT INTO run_quality VALUES (?, ?)", (run_id, outcome.report.to_json()))
        tx.audit(
            event(
                caller,
                "run.completed",
                project.id,
                {
                    "run_id": run_id,
                    "threshold": outcome.chosen_threshold,
                    "records": outcome.records,
                    "entities": outcome.entities,
                    "linked_entities": outcome.linked_entities,
                    "candidate_pairs": outcome.candidate_pairs,
                    "seconds": round(outcome.seconds, 3),
                    "matching": outcome.matching,
                    "quality": outcome.report.summary(),
                },
            )
        )


# ------------------------------------------------------------------------------ the chain
def execute(
    store: Store,
    engine: Engine,
    caller: Identity,
    project: Project,
    run_id: str,
    thresholds: Thresholds,
    progress: candidates.Progress,
    cancel: threading.Event,
    full: bool = True,
) -> None:
    """Run every stage in turn; the run always ends in a recorded state.

    Unless ``full``, the candidates build on the last run's (``.incremental``):
    only records added or changed since are compared.

    Each stage's inputs are dropped once the next no longer needs them, so a
    run of millions of records holds one stage's arrays at a time.
    """
    started = time.monotonic()
    ids = {"run": run_id, "project": project.id, "caller": str(caller)}  # log fields

    def check() -> None:
        if cancel.is_set():
            raise Cancelled(f"run {run_id} was cancelled")

    try:
        mark = incremental.pending_mark(store, project.id)
        with engine.session() as session:
            datasets = load_datasets(store, project, session, check)
            level = chance.of_run(datasets.encodings, project.record_clk)
            search = incremental.Search(
                low=_score_floor(project, thresholds, level),
                within=_within_search(project, level),
                design=thresholds.fallback,
                completeness=project.blocking_completeness,
                blocking_mode=project.blocking,
                estimate_sample=project.estimate_sample,
                sample_seed=pinned_blocking.project_seed(project.id, "sample"),
                auto_limit=blocking.auto_limit(project.record_clk),
                parts=level.part_pass(bool(project.field_groups)),
            )
            check()
            delta = None
            if not full:
                delta = incremental.find(
                    store,
                    project.id,
                    session,
                    datasets.encodings,
                    datasets.record_ids,
                    search=search,
                    progress=progress,
                    cancelled=cancel.is_set,
                    mark=mark,
                )
            found = (
                delta.found
                if delta
                else find_candidates(
                    session,
                    datasets,
                    project,
                    thresholds,
                    progress,
                    cancel.is_set,
                    incremental.pinned_plans(store, project.id, search, datasets.encodings),
                    level,
                )
            )
            record_ids, names, loaded_on = datasets.record_ids, datasets.names, datasets.basis
            del datasets
        check()
        sizes = [len(ids) for ids in record_ids]
        carry = (
            spread_carry.carried(store, project.id, len(delta.seeds), sum(sizes)) if delta else None
        )
        everyone = np.concatenate(
            [np.frombuffer(ids, dtype=np.int64) for ids in record_ids]
            or [np.zeros(0, dtype=np.int64)]
        )
        previous_read = resolve.read_beside(store, project, everyone)
        clk, n = project.record_clk, len(record_ids)
        chosen = choose_threshold(found, thresholds, n, level.whole_floor, carry, peaks_for(clk))
        chosen = chosen[0], level.caveated(chosen[1])
        links = link(store, project, found, record_ids, chosen[0], progress, check, search.parts)
        progress.stage = "solving"
        check()
        candidate_pairs = matching.count_candidates(links.linking)
        del record_ids
        previous = previous_read()
        settings = partial_solve.Settings(
            chosen[0], project.within_threshold, project.merge_threshold
        )
        linked_ids = partial_solve.by_id(links.linking, sizes, everyone)
        grouping, solved = resolve.solve_changed(
            project, links.linking, sizes, everyone, previous, delta, settings, linked_ids
        )
        check()
        duplicates, prepared = links.duplicates, links.estimate
        del links
        progress.stage = "storing"
        check()
        assigned = assign(store, project, grouping, everyone, previous)
        linked_entities = grouping.linked_entities()
        figures = report(
            store,
            project,
            found,
            thresholds,
            chosen,
            grouping,
            assigned,
            duplicates,
            sizes,
            names,
            carry.output if carry else None,
            prepared,
        )
        del grouping
        outcome = Outcome(
            chosen_threshold=chosen[0],
            records=len(everyone),
            entities=assigned.assignment.count,
            linked_entities=linked_entities,
            candidate_pairs=candidate_pairs,
            seconds=time.monotonic() - started,
            report=figures,
            matching={
                **_matching_details(found, engine),
                **level.figures(),
                "incremental": delta is not None,
                "compared_afresh": len(delta.touched) if delta else len(everyone),
                "solved_afresh": solved,
            },
        )
        check()
        store_results(store, caller, project, run_id, assigned, outcome, check)
        incremental.keep(
            store,
            project.id,
            run_id,
            found,
            everyone,
            sizes,
            search=search,
            delta=delta,
            mark=mark,
            settings=settings,
            links=linked_ids,
        )
        load_cache.confirm(store, project.id, run_id, loaded_on)
        progress.stage = "completed"
        log.info(
            "run completed: %d records, %d entities (%d linked) in %.1f s",
            outcome.records,
            outcome.entities,
            outcome.linked_entities,
            outcome.seconds,
            extra=ids,
        )
    except Cancelled:
        finish(store, caller, project, run_id, "cancelled", "cancelled on request", started)
    except OverBudget as exc:
        log.warning("run stopped itself: over its candidate budget", extra=ids)
        finish(store, caller, project, run_id, "failed", str(exc), started)
    except Exception as exc:  # a run must always end in a recorded state
        log.exception("run failed", extra=ids)
        message = f"matching failed: {type(exc).__name__}"
        finish(store, caller, project, run_id, "failed", message, started)


def finish(
    store: Store,
    caller: Identity,
    project: Project,
    run_id: str,
    state: str,
    message: str,
    started: float,
) -> None:
    """Record a run that ended without results ("cancelled" or "failed"), and why."""
    with store.transaction() as tx:
        tx.execute(
            "UPDATE runs SET state = ?, finished_at = ?, seconds = ?, message = ? WHERE id = ?",
            (state, utc_now(), time.monotonic() - started, message, run_id),
        )
        tx.audit(event(caller, f"run.{state}", project.id, {"run_id": run_id, "message": message}))


def _within_search(project: Project, level: chance.Chance = chance.SHIPPED) -> float:
    """The record-level Dice within-dataset candidates are searched down to.

    With per-field filters the field model decides, so the search goes down to its
    floor (lifted to the data's chance ``level``); else the project's within threshold.
    """
    if project.within_threshold and project.field_groups:
        floor = level.floor(field_scoring.within_floor(project.record_clk))
        return min(project.within_threshold, floor)
    return project.within_threshold


def floor_for(record_clk: str, level: chance.Chance = chance.SHIPPED) -> float:
    """The cross-dataset score floor for a record CLK ("salted" scores lower: score_model),
    for a salted one lifted to the data's chance ``level`` (``coordinator.core.chance``)."""
    return level.whole_floor if record_clk == "salted" else FLOOR


def _score_floor(project: Project, thresholds: Thresholds, level: chance.Chance) -> float:
    """The Dice cross-dataset candidates are kept from: the record CLK's floor at the
    data's chance ``level`` (``floor_for``), lower when the run links lower, never below
    the project's ``min_threshold``."""
    return max(project.min_threshold, min(level.whole_floor, thresholds.fallback))


def _matching_details(found: candidates.Found, engine: Engine) -> dict[str, object]:
    """How a run compared its records, for the audit log (figures only)."""
    return {
        "engine": engine.name,
        "workers": engine.workers,
        "blocked": found.blocked,
        "comparisons": found.comparisons,
        "all_pairs": found.all_pairs,
        "bands": found.bands,
        "band_bits": found.bits,
        "promised_completeness": round(found.promised_completeness, 6),
        "estimate_sample": found.sampled,
    }
