"""A project's life at the coordinator: registration, reading, closure and retention.

Projects come from their files (coordinator.projects) at start-up; each is
registered with its fingerprint and a fresh project key, and a changed
definition is audited. Closing a project erases its encodings, entities and
key for good; the retention sweep erases uploads older than the project's
retention period.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

from coordinator.core import keys, living_schema, load_cache, retention
from coordinator.core.confirmations import Confirmation, ConfirmationRefused, Confirmations
from coordinator.core.errors import InvalidRequest, NotReady
from coordinator.core.guard import SYSTEM, Guard, event
from coordinator.core.model import DatasetState, Project, ProjectState
from coordinator.core.secret_relay import current_epoch
from coordinator.core.store import Store, utc_now
from hublink.identity import Identity, Role

log = logging.getLogger("hublink.coordinator")


class Lifecycle:
    """Registering, serving, closing and expiring the projects a coordinator serves."""

    def __init__(
        self, store: Store, guard: Guard, confirmations: Confirmations | None = None
    ) -> None:
        self.store = store
        self.guard = guard
        self.confirmations = confirmations or Confirmations()

    def register(self) -> None:
        """Record each served project: created with a fresh key, or its changed definition."""
        for project in self.guard.projects.values():
            with self.store.transaction() as tx:
                row = tx.execute(
                    "SELECT definition_sha256, state FROM projects WHERE id = ?", (project.id,)
                ).fetchone()
                details = {
                    "purpose": project.purpose,
                    "organisations": list(project.organisations),
                    "definition_sha256": project.definition_sha256,
                    "encoding_sha256": project.encoding_sha256,
                    "threshold": project.threshold,
                }
                if row is None:
                    tx.execute(
                        "INSERT INTO projects VALUES (?, ?, ?, ?, 'open', ?)",
                        (
                            project.id,
                            project.definition_sha256,
                            project.encoding_sha256,
                            keys.new_project_key(),
                            utc_now(),
                        ),
                    )
                    tx.audit(event(SYSTEM, "project.created", project.id, details))
                elif row[0] != project.definition_sha256:
                    tx.execute(
                        "UPDATE projects SET definition_sha256 = ?, encoding_sha256 = ? "
                        "WHERE id = ?",
                        (project.definition_sha256, project.encoding_sha256, project.id),
                    )
                    tx.audit(event(SYSTEM, "project.changed", project.id, details))

    def project(self, caller: Identity, project_id: str) -> Project:
        """The project, for a member organisation's node or an admin, analyst or auditor it
        names."""
        project = self.guard.project(project_id)
        self.guard.authorise(
            caller, "project.read", project, Role.NODE, Role.ADMIN, Role.ANALYST, Role.AUDITOR
        )
        return dataclasses.replace(project, secret_epoch=current_epoch(self.store, project.id))

    def projects_for(self, caller: Identity) -> list[Project]:
        """The projects that name the caller in its role (a node: those it takes part in)."""
        self.guard.authorise(
            caller, "project.list", None, Role.NODE, Role.ADMIN, Role.ANALYST, Role.AUDITOR
        )
        return self.guard.named_in(caller)

    def request_close(self, caller: Identity, project_id: str, reason: str) -> Confirmation:
        """The first of the two calls that close a project: announce it, return the code.

        Nothing is erased. The request is committed to the audit log
        (``project.close_requested``) before the code is returned, so a close is
        announced before it can act; ``close`` then needs the code, from the same
        caller for the same project and reason, within the confirmation window.
        """
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "project.close", project, Role.ADMIN)
        if not reason.strip():
            raise InvalidRequest("closing a project needs a reason for the audit log")
        confirmation = self.confirmations.issue("project.close", project.id, caller, reason)
        with self.store.transaction() as tx:
            tx.audit(
                event(
                    caller,
                    "project.close_requested",
                    project.id,
                    {"reason": reason.strip(), "confirm_by": confirmation.expires_at},
                )
            )
        log.warning(
            "closing the project requested", extra={"project": project.id, "caller": str(caller)}
        )
        return confirmation

    def close(self, caller: Identity, project_id: str, reason: str, confirmation: str) -> int:
        """Close a project for good: erase its encodings, entities and key; return records erased.

        ``confirmation`` is the code ``request_close`` returned to this caller for
        this project and reason. Closing ends the retention period early, as the
        project's owner may.
        """
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "project.close", project, Role.ADMIN)
        if not reason.strip():
            raise InvalidRequest("closing a project needs a reason for the audit log")
        try:
            self.confirmations.check(confirmation, "project.close", project.id, caller, reason)
        except ConfirmationRefused as exc:
            raise self.guard.refused(
                caller, "project.close", project.id, NotReady(str(exc))
            ) from None
        with self.store.transaction() as tx:
            tx.audit(
                event(caller, "project.close_confirmed", project.id, {"reason": reason.strip()})
            )
        with self.store.transaction() as tx:
            uploads = retention.project_uploads(tx, project.id)
            erased = retention.erase_uploads(tx, uploads, "erased")
            tx.execute("DELETE FROM entities WHERE project_id = ?", (project.id,))
            living_schema.erase_project(tx, project.id)
            # The relayed key material goes too: sealed secrets are no use once closed.
            tx.execute("DELETE FROM node_keys WHERE project_id = ?", (project.id,))
            tx.execute("DELETE FROM secret_envelopes WHERE project_id = ?", (project.id,))
            tx.execute(
                "UPDATE projects SET state = 'closed', project_key = zeroblob(32) WHERE id = ?",
                (project.id,),
            )
            tx.audit(
                event(
                    caller,
                    "project.closed",
                    project.id,
                    {"reason": reason.strip(), "records_erased": erased, "uploads": len(uploads)},
                )
            )
        load_cache.forget(self.store, project.id)
        self.store.compact()
        log.info(
            "project closed: %d records erased",
            erased,
            extra={"project": project.id, "caller": caller},
        )
        return erased

    def purge_expired(self, now: datetime | None = None) -> int:
        """Erase uploads older than their project's retention period; return records erased."""
        now = now or datetime.now(UTC)
        total = 0
        for project in self.guard.projects.values():
            cutoff = (
                (now - timedelta(days=project.retention_days))
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")
            )
            with self.store.transaction() as tx:
                uploads = retention.expired_uploads(tx, project.id, cutoff)
                if not uploads:
                    continue
                erased = retention.erase_uploads(tx, uploads, "expired")
                load_cache.forget(self.store, project.id)
                tx.audit(
                    event(
                        SYSTEM,
                        "retention.deleted",
                        project.id,
                        {
                            "retention_days": project.retention_days,
                            "uploads": len(uploads),
                            "records_erased": erased,
                        },
                    )
                )
            total += erased
            log.info("retention: erased %d records", erased, extra={"project": project.id})
        if total:
            self.store.compact()
        return total

    # -------------------------------------------------------------------- admin
    def state(self, caller: Identity, project_id: str) -> ProjectState:
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "project.state", project, Role.ADMIN)
        uploads = {
            r["organisation"]: r
            for r in self.store.query(
                "SELECT id, organisation, records_received FROM uploads "
                "WHERE project_id = ? AND state = 'committed'",
                (project.id,),
            )
        }
        datasets = tuple(
            DatasetState(
                org,
                uploads[org]["id"] if org in uploads else "",
                int(uploads[org]["records_received"]) if org in uploads else 0,
            )
            for org in project.organisations
        )
        run = self.store.query_one(
            "SELECT id FROM runs WHERE project_id = ? ORDER BY started_at DESC, rowid DESC LIMIT 1",
            (project.id,),
        )
        state = self.store.query_one("SELECT state FROM projects WHERE id = ?", (project.id,))
        assert state is not None
        return ProjectState(project.id, state["state"], datasets, run["id"] if run else "")
