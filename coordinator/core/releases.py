"""Releases: linkage keys to member nodes, withdrawals, and protected counts to analysts.

Keys go only to the organisation whose records they key, for every record it
holds (so it learns nothing about which of them others hold), and only once
the latest run covers its upload. Counts go only to analysts the project
lists, after the project's disclosure control. Every release is audited
before anything leaves.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence

from coordinator.core import counts, keys, lineage, queries, releases_history
from coordinator.core.attributes import entity_facts
from coordinator.core.errors import InvalidRequest, NotFound, NotReady
from coordinator.core.guard import Guard, event
from coordinator.core.model import KeyBatch, Project, Withdrawal
from coordinator.core.record_checks import TOKEN
from coordinator.core.refreshes import pending_removed
from coordinator.core.store import Store
from coordinator.core.upload_ids import public
from hublink.identity import Identity, Role

log = logging.getLogger("hublink.coordinator")

_MAX_WITHDRAW = 100_000


def project_key(store: Store, project_id: str) -> bytes:
    """The project's secret key, from which linkage keys and record keys are derived."""
    row = store.query_one("SELECT project_key FROM projects WHERE id = ?", (project_id,))
    assert row is not None
    return bytes(row["project_key"])


class Releases:
    """What leaves the coordinator: keys, withdrawals' effects, and count tables."""

    def __init__(self, store: Store, guard: Guard) -> None:
        self.store = store
        self.guard = guard

    def linkage_keys(
        self, caller: Identity, project_id: str, batch_size: int = 5000
    ) -> Iterator[KeyBatch]:
        """The key of every record the caller's organisation uploaded, in batches.

        Every committed record has an entity (linked or alone), so the caller
        learns nothing about which of its records other services hold. The
        checks run when this is called, not when the batches are first read.
        """
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "keys.read", project, Role.NODE)
        upload = self._committed_upload(caller, project)
        run = self.store.query_one(
            "SELECT id FROM runs WHERE project_id = ? AND state = 'completed' "
            "ORDER BY finished_at DESC, rowid DESC LIMIT 1",
            (project.id,),
        )
        if run is None:
            raise NotReady(f"project {project.id!r} has no completed matching run yet")
        covered = self.store.query_one(
            "SELECT COUNT(*) AS n FROM records r JOIN entities e ON e.record_id = r.id "
            "WHERE r.upload_id = ?",
            (upload["id"],),
        )
        held = self.store.query_one(
            "SELECT COUNT(*) AS n FROM records WHERE upload_id = ?", (upload["id"],)
        )
        assert covered is not None and held is not None
        # Records still held, not records received: withdrawn ones are deleted.
        total = int(held["n"])
        if covered["n"] != total:
            raise NotReady(
                f"upload {public(upload['id'])} is newer than project {project.id!r}'s latest "
                "run; ask the project's admin for a new run"
            )
        # Recorded before the first key leaves, so a release cut short is still on record.
        with self.store.transaction() as tx:
            tx.audit(
                event(
                    caller,
                    "keys.released",
                    project.id,
                    {"run_id": run["id"], "keys": total, "upload_id": public(upload["id"])},
                )
            )
        return self._key_batches(
            project.id,
            caller.organisation if project.key_scope == "organisation" else None,
            str(upload["id"]),
            str(run["id"]),
            total,
            max(1, min(batch_size or 5000, 20000)),
        )

    def withdraw(self, caller: Identity, project_id: str, tokens: Sequence[str]) -> Withdrawal:
        """Delete the encodings (and entity assignments) of the caller's own withdrawn records.

        Only records of the caller's organisation's committed upload can be
        found: another organisation's token counts as not found, and nothing
        of it is touched. The records leave keys and counts at once (their
        entity rows go with them) and stay out of every later run. The audit
        records counts only, never the tokens.
        """
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "keys.withdraw", project, Role.NODE)
        if len(tokens) > _MAX_WITHDRAW:
            raise InvalidRequest(f"at most {_MAX_WITHDRAW} tokens can be withdrawn in one call")
        for position, token in enumerate(tokens):
            if not TOKEN.fullmatch(token):
                raise InvalidRequest(f"token {position}: must be 8 to 64 URL-safe characters")
        wanted = sorted(set(tokens))
        upload = self._committed_upload(caller, project)
        with self.store.transaction() as tx:
            found: list[int] = []
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                found.extend(
                    int(row[0])
                    for row in tx.execute(
                        f"SELECT id FROM records WHERE upload_id = ? AND token IN ({marks})",
                        (upload["id"], *part),
                    ).fetchall()
                )
            lineage.removed(tx, project.id, found, lineage.WITHDRAWN)
            pending_removed(tx, project.id, found)
            tx.executemany("DELETE FROM entities WHERE record_id = ?", ((i,) for i in found))
            tx.executemany("DELETE FROM records WHERE id = ?", ((i,) for i in found))
            tx.audit(
                event(
                    caller,
                    "records.withdrawn",
                    project.id,
                    {
                        "upload_id": public(upload["id"]),
                        "requested": len(wanted),
                        "withdrawn": len(found),
                        "not_found": len(wanted) - len(found),
                    },
                )
            )
        log.info(
            "withdrew %d records (%d not found)",
            len(found),
            len(wanted) - len(found),
            extra={"caller": caller, "project": project.id},
        )
        return Withdrawal(len(found), len(wanted) - len(found))

    def _committed_upload(self, caller: Identity, project: Project) -> sqlite3.Row:
        """The caller's organisation's committed upload in the project, or NotReady."""
        upload = self.store.query_one(
            "SELECT id, records_received FROM uploads WHERE project_id = ? AND organisation = ? "
            "AND state = 'committed'",
            (project.id, caller.organisation),
        )
        if upload is None:
            raise NotReady(
                f"organisation {caller.organisation!r} has no committed upload in "
                f"project {project.id!r}"
            )
        return upload

    def _key_batches(
        self,
        project_id: str,
        scope: str | None,
        upload_id: str,
        run_id: str,
        total: int,
        batch_size: int,
    ) -> Iterator[KeyBatch]:
        secret = project_key(self.store, project_id)
        tokens: list[str] = []
        entities: list[str] = []
        for token, entity_id in self.store.iterate(
            "SELECT r.token, e.entity_id FROM records r JOIN entities e ON e.record_id = r.id "
            "WHERE r.upload_id = ? ORDER BY r.id",
            (upload_id,),
        ):
            tokens.append(token)
            entities.append(entity_id)
            if len(tokens) >= batch_size:
                made = keys.linkage_keys(secret, entities, scope)
                yield KeyBatch(run_id, tuple(zip(tokens, made, strict=True)), total)
                tokens, entities = [], []
        if tokens:
            made = keys.linkage_keys(secret, entities, scope)
            yield KeyBatch(run_id, tuple(zip(tokens, made, strict=True)), total)

    # ------------------------------------------------------------------- counts
    def overlap(
        self, caller: Identity, project_id: str, release: str = ""
    ) -> tuple[str, counts.CountTable]:
        """Entities in every combination of the project's datasets, under disclosure control
        (as of the release of run ``release``; empty: the latest run)."""
        query = queries.CountQuery(by=(queries.DATASETS,), margins=False)
        run_id, table = self.counts(
            caller, project_id, query, action="counts.overlap", release=release
        )
        return run_id, counts.CountTable(
            tuple(
                counts.CountCell(tuple((c.coordinates[0] or "").split("+")), c.value, c.suppressed)
                for c in table.cells
            ),
            table.rule,
        )

    def counts(
        self,
        caller: Identity,
        project_id: str,
        query: queries.CountQuery,
        *,
        action: str = "counts.query",
        release: str = "",
    ) -> tuple[str, queries.ReleasedTable]:
        """A count table over the latest run's entities (or those of the release of run
        ``release``, ``coordinator.core.releases_history``), after disclosure control.

        Only analysts of organisations the project lists may ask. The query,
        and every cell released or withheld, go to the audit log before the
        table is returned.
        """
        project = self.guard.project(project_id)
        # The guard refuses analysts the project does not list in ``analysts``.
        self.guard.authorise(caller, action, project, Role.ANALYST)
        try:
            queries.check(query, project.organisations, project.released_attributes)
        except queries.QueryError as exc:
            raise self.guard.refused(caller, action, project.id, InvalidRequest(str(exc))) from None
        if release:
            run = self.store.query_one(
                "SELECT id FROM runs WHERE project_id = ? AND id = ? AND state = 'completed'",
                (project.id, release),
            )
            if run is None or release not in dict(
                releases_history.releases(self.store, project.id)
            ):
                raise NotFound(f"project {project.id!r} has no release from run {release!r}")
            people = list(
                releases_history.entities(
                    self.store, release, project_key(self.store, project.id)
                ).values()
            )
        else:
            run = self.store.query_one(
                "SELECT id FROM runs WHERE project_id = ? AND state = 'completed' "
                "ORDER BY finished_at DESC, rowid DESC LIMIT 1",
                (project.id,),
            )
            if run is None:
                raise NotReady(f"project {project.id!r} has no completed matching run yet")
            people = entity_facts(
                self.store,
                project.id,
                project.organisations,
                project.attribute_precedence,
                project_key(self.store, project.id),
            )
        exact = queries.count(people, query, project.organisations)
        table = queries.release(exact, project.disclosure, query)
        with self.store.transaction() as tx:
            tx.audit(
                event(
                    caller,
                    "counts.released",
                    project.id,
                    {
                        "run_id": run["id"],
                        "as_of_release": bool(release),
                        "query": "overlap" if action == "counts.overlap" else query.describe(),
                        "by": list(query.by),
                        "datasets_in": list(query.datasets_in),
                        "datasets_out": list(query.datasets_out),
                        "rule": table.rule,
                        "cells": len(table.cells),
                        "suppressed": sum(1 for c in table.cells if c.suppressed),
                        "released": {c.label: c.value for c in table.cells if not c.suppressed},
                        "withheld": [c.label for c in table.cells if c.suppressed],
                    },
                )
            )
        return str(run["id"]), table
