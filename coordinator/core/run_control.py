"""Matching runs from the outside: start, watch, cancel, settle at shutdown, read the report.

A run is started by the project's admin once at least two organisations
have committed uploads under one secret epoch (the one organisation, in a
project of one, which deduplicates its own records); its stages
(coordinator.core.runs) run in a background thread, and this module keeps
what a status call shows of it while it does: its progress, its thresholds
and the event that cancels it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

from coordinator.core import candidates, quality, quality_breakdown, runs
from coordinator.core.candidates import Engine
from coordinator.core.errors import AlreadyExists, NotFound, NotReady
from coordinator.core.guard import SYSTEM, Guard, event
from coordinator.core.model import RunState
from coordinator.core.store import Store, utc_now
from hublink.identity import Identity, Role

_INTERRUPTED = "the coordinator stopped during the run"


class RunControl:
    """The runs of every project: one background thread a run, and what status calls show."""

    def __init__(self, store: Store, guard: Guard, engine: Engine) -> None:
        self.store = store
        self.guard = guard
        self.engine = engine
        self._progress: dict[str, candidates.Progress] = {}
        self._thresholds: dict[str, runs.Thresholds] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}

    def start(
        self,
        caller: Identity,
        project_id: str,
        threshold: float | None = None,
        *,
        background: bool = True,
        full: bool = False,
    ) -> RunState:
        """Start matching every committed upload of the project.

        ``threshold`` is the requested threshold (None: the project's rule decides).
        Unless ``full``, only records added or changed since the last run are
        compared (``coordinator.core.incremental``), when there is one to build on.
        """
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "run.start", project, Role.ADMIN)
        thresholds = runs.Thresholds.plan(project, threshold)
        uploads = self.store.query(
            "SELECT COUNT(*) AS n FROM uploads WHERE project_id = ? AND state = 'committed'",
            (project.id,),
        )
        needed = min(2, len(project.organisations))
        if uploads[0]["n"] < needed:
            raise NotReady(
                f"project {project.id!r} has {uploads[0]['n']} committed upload(s); "
                f"matching needs at least {'two' if needed == 2 else 'one'}"
            )
        epochs = self.store.query(
            "SELECT DISTINCT secret_epoch FROM uploads "
            "WHERE project_id = ? AND state = 'committed' ORDER BY secret_epoch",
            (project.id,),
        )
        if len(epochs) > 1:
            raise NotReady(
                f"project {project.id!r} holds uploads encoded under different linkage-secret "
                f"epochs ({', '.join(str(r[0]) for r in epochs)}); they can never be matched "
                "together"
            )
        running = self.store.query_one(
            "SELECT id FROM runs WHERE project_id = ? AND state = 'running'", (project.id,)
        )
        if running is not None and running["id"] in self._threads:
            raise AlreadyExists(f"run {running['id']} of project {project.id!r} is still running")
        run_id = f"run-{uuid.uuid4()}"
        with self.store.transaction() as tx:
            # Until the run has chosen, its row holds the fallback threshold.
            tx.execute(
                "INSERT INTO runs (id, project_id, state, threshold, started_at) "
                "VALUES (?, ?, 'running', ?, ?)",
                (run_id, project.id, thresholds.fallback, utc_now()),
            )
            tx.audit(
                event(
                    caller,
                    "run.started",
                    project.id,
                    {
                        "run_id": run_id,
                        "threshold": thresholds.fallback,
                        "auto_threshold": thresholds.auto,
                        "within_threshold": project.within_threshold,
                        "merge_threshold": project.merge_threshold,
                        "full": full,
                    },
                )
            )
        progress = self._progress[run_id] = candidates.Progress(
            ids={"run": run_id, "project": project.id}
        )
        self._thresholds[run_id] = thresholds
        cancel = self._cancel[run_id] = threading.Event()
        stages = (
            self.store,
            self.engine,
            caller,
            project,
            run_id,
            thresholds,
            progress,
            cancel,
            full,
        )
        if background:
            thread = threading.Thread(target=runs.execute, args=stages, name=run_id, daemon=True)
            self._threads[run_id] = thread
            thread.start()
        else:
            runs.execute(*stages)
        return self.state(run_id)

    def wait(self, run_id: str, timeout: float | None = None) -> None:
        """Block until a background run ends (for tests and the demo)."""
        thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)

    def settle(self, timeout: float) -> list[str]:
        """At shutdown: let runs in flight finish for up to ``timeout`` s, fail the rest.

        A run still going when time is up is recorded as failed now, as a
        restart would record it; it has written nothing (a run's results are
        written in one transaction at its end), so the previous keys stand.
        Returns the ids of the runs recorded as failed.
        """
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [run_id for run_id, thread in self._threads.items() if thread.is_alive()]
        if stuck:
            self.fail_interrupted()
        return stuck

    def fail_interrupted(self) -> None:
        """A run still 'running' at start-up died with an earlier process: record that it failed.

        Its results were never written (they are written in one transaction at
        the end of a run), so the previous run's keys stand.
        """
        for row in self.store.query("SELECT id, project_id FROM runs WHERE state = 'running'"):
            with self.store.transaction() as tx:
                tx.execute(
                    "UPDATE runs SET state = 'failed', finished_at = ?, message = ? WHERE id = ?",
                    (utc_now(), _INTERRUPTED, row["id"]),
                )
                tx.audit(
                    event(
                        SYSTEM,
                        "run.failed",
                        row["project_id"],
                        {"run_id": row["id"], "message": _INTERRUPTED},
                    )
                )

    def status(self, caller: Identity, project_id: str, run_id: str = "") -> RunState:
        """A run's state (the latest run's without ``run_id``); figures for the admin only."""
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "run.status", project, Role.ADMIN, Role.NODE)
        if not run_id:
            row = self.store.read_one(
                "SELECT id FROM runs WHERE project_id = ? ORDER BY started_at DESC, rowid DESC "
                "LIMIT 1",
                (project.id,),
            )
            if row is None:
                raise NotFound(f"project {project.id!r} has no runs yet")
            run_id = row["id"]
        state = self.state(run_id, project.id)
        if caller.role is not Role.ADMIN:
            # Entity counts of a run are overlap counts without disclosure control:
            # only the project's admin sees them; nodes get state and progress.
            state = dataclasses.replace(
                state, records=0, entities=0, linked_entities=0, quality=None
            )
        return state

    def cancel(self, caller: Identity, project_id: str, run_id: str) -> RunState:
        """Ask a running run to stop at its next stage; it is then recorded as cancelled."""
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "run.cancel", project, Role.ADMIN)
        state = self.state(run_id, project.id)
        if state.state == "running" and run_id in self._cancel:
            self._cancel[run_id].set()
        return self.state(run_id, project.id)

    def state(self, run_id: str, project_id: str | None = None) -> RunState:
        """A run's row, progress and thresholds, unchecked (callers authorise first)."""
        # Status is polled during runs: read beside the run's long final write, not after it.
        row = self.store.read_one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None or (project_id and row["project_id"] != project_id):
            raise NotFound(f"no run {run_id}")
        progress = self._progress.get(run_id)
        stage, done, total, compared, rate = "", 1, 1, 0, 0.0
        if progress is not None:
            # Loading and solving count as one step each, every comparison task as one.
            total = progress.tasks_total + 2
            done = {"loading": 0, "comparing": 1 + progress.tasks_done}.get(progress.stage, total)
            stage, compared = progress.stage, progress.comparisons
            rate = progress.comparisons_per_second
        if row["state"] == "running" and run_id not in self._threads:
            # A run left 'running' by a coordinator that stopped mid-run cannot resume.
            done, stage = 0, ""
        report = self._report(run_id)
        planned = self._thresholds.get(run_id)
        if report is not None:
            requested, fallback = report.threshold_requested, report.threshold_fixed
        elif planned is not None:
            requested, fallback = planned.requested, planned.fallback
        else:  # a run of an earlier process that never completed: its row holds the fallback
            requested, fallback = None, row["threshold"]
        return RunState(
            run_id,
            row["project_id"],
            row["state"],
            done,
            total,
            row["records"],
            row["entities"],
            row["linked_entities"],
            row["threshold"],
            row["seconds"],
            row["message"],
            report,
            stage=stage if row["state"] == "running" else "",
            comparisons=compared,
            comparisons_per_second=round(rate, 1),
            requested_threshold=requested,
            fallback_threshold=fallback,
        )

    def quality_report(
        self, caller: Identity, project_id: str, run_id: str = ""
    ) -> tuple[str, quality.RunQuality, tuple[quality.ReleasedBin, ...]]:
        """A completed run's quality report for the project's admin, histogram under disclosure.

        Returns the run id, its stored quality figures and the best-score
        histogram with bins of 1 to the project's suppression threshold minus 1
        withheld. Reading it is audited.
        """
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "quality.read", project, Role.ADMIN)
        row = self.store.query_one(
            "SELECT q.run_id, q.report FROM run_quality q JOIN runs r ON r.id = q.run_id "
            "WHERE r.project_id = ? AND (? = '' OR r.id = ?) "
            "ORDER BY r.finished_at DESC, r.rowid DESC LIMIT 1",
            (project.id, run_id, run_id),
        )
        if row is None:
            if run_id:
                raise NotFound(f"no completed run {run_id} of project {project.id!r}")
            raise NotReady(f"project {project.id!r} has no completed matching run yet")
        report = quality.RunQuality.from_json(row["report"])
        bins = quality.release_bins(report.histogram, project.disclosure.threshold)
        with self.store.transaction() as tx:
            tx.audit(
                event(
                    caller,
                    "quality.read",
                    project.id,
                    {
                        "run_id": row["run_id"],
                        "bins": len(bins),
                        "suppressed_bins": sum(1 for b in bins if b.suppressed),
                        **quality_breakdown.audit_summary(report.attributes),
                    },
                )
            )
        return str(row["run_id"]), report, bins

    def _report(self, run_id: str) -> quality.RunQuality | None:
        row = self.store.read_one("SELECT report FROM run_quality WHERE run_id = ?", (run_id,))
        return quality.RunQuality.from_json(row["report"]) if row is not None else None
