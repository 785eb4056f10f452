"""Who may read the counts over time, and the audit entry each reading leaves.

The same rules as any count table (``coordinator.core.releases``): analysts
of organisations the project lists, every answer audited with what it
released and withheld.
"""

from __future__ import annotations

from coordinator.core import time_series
from coordinator.core.errors import InvalidRequest, NotAllowed, NotReady
from coordinator.core.guard import Guard, event
from coordinator.core.releases import project_key
from coordinator.core.store import Store
from hublink.identity import Identity, Role

ACTION = "counts.query"


class Series:
    def __init__(self, store: Store, guard: Guard) -> None:
        self.store = store
        self.guard = guard

    def series(self, caller: Identity, project_id: str) -> list[time_series.ReleasePoint]:
        project = self.guard.project(project_id)
        self.guard.authorise(caller, ACTION, project, Role.ANALYST)
        if caller.organisation not in project.analysts:
            raise self.guard.refused(
                caller,
                ACTION,
                project.id,
                NotAllowed(
                    f"analysts of {caller.organisation!r} may not query project {project.id!r}"
                ),
            )
        try:
            points = time_series.series(
                self.store,
                project.id,
                project.organisations,
                project.disclosure,
                project_key(self.store, project.id),
            )
        except time_series.UnroundedSeries as exc:
            raise self.guard.refused(caller, ACTION, project.id, InvalidRequest(str(exc))) from None
        if not points:
            raise NotReady(f"project {project.id!r} has no completed matching run yet")
        with self.store.transaction() as tx:
            tx.audit(
                event(
                    caller,
                    "counts.released",
                    project.id,
                    {
                        "run_id": points[-1].run_id,
                        "query": "time series",
                        "releases": len(points),
                        "rule": project.disclosure.describe(),
                        "cells": sum(len(p.cells) for p in points),
                        "suppressed": sum(c.suppressed for p in points for c in p.cells),
                    },
                )
            )
        return points
