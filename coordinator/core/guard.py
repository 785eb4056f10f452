"""Who may do what: authorisation, audited refusals, and the audit events every stage writes.

Every stage module asks the guard first: ``project`` finds a project this
coordinator serves, ``authorise`` refuses (and audits the refusal) a caller
whose role may not take the action, a node whose organisation is not a
member, or any change to a closed project. ``event`` builds the audit event
each stage records with its work.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from coordinator.core.audit import AuditEvent
from coordinator.core.errors import CoordinatorError, NotAllowed, NotAMember, NotFound, NotReady
from coordinator.core.model import Project
from coordinator.core.store import Store
from hublink.identity import Identity, Role

log = logging.getLogger("hublink.coordinator")

#: The coordinator acting on its own (start-up, retention), as audit entries name it.
SYSTEM = Identity("coordinator", Role.COORDINATOR)


class Guard:
    """The projects a coordinator serves, and the checks every call passes first."""

    def __init__(self, store: Store, projects: Mapping[str, Project]) -> None:
        self.store = store
        self.projects = projects

    def project(self, project_id: str) -> Project:
        """The served project ``project_id``, or NotFound."""
        project = self.projects.get(project_id)
        if project is None:
            raise NotFound(f"project {project_id!r} is not served by this coordinator")
        return project

    def authorise(
        self, caller: Identity, action: str, project: Project | None, *roles: Role
    ) -> None:
        """Refuse (and audit the refusal) unless the caller has one of ``roles``.

        Nodes must also belong to the project: a node may only touch projects
        its organisation takes part in.
        """
        project_id = project.id if project else ""
        if caller.role not in roles:
            allowed = ", ".join(sorted(r.value for r in roles))
            raise self.refused(
                caller,
                action,
                project_id,
                NotAllowed(
                    f"the {caller.role.value} role may not {_verb(action)}; "
                    f"this needs the role {allowed}"
                ),
            )
        if (
            project
            and caller.role is Role.NODE
            and caller.organisation not in project.organisations
        ):
            raise self.refused(
                caller,
                action,
                project_id,
                NotAMember(
                    f"organisation {caller.organisation!r} does not take "
                    f"part in project {project.id!r}"
                ),
            )
        if project:
            row = self.store.query_one("SELECT state FROM projects WHERE id = ?", (project.id,))
            if row is not None and row["state"] != "open" and action != "project.read":
                raise NotReady(f"project {project.id!r} is closed")

    def record_refusal(self, caller: Identity, action: str, reason: str) -> None:
        """Audit a refusal made by the transport (a revoked certificate, a foreign CA)."""
        self.refused(caller, action, "", NotAllowed(reason))

    def refused(
        self, caller: Identity, action: str, project_id: str, error: CoordinatorError
    ) -> CoordinatorError:
        """Audit ``error`` as a refusal of ``action`` and return it, for the caller to raise."""
        with self.store.transaction() as tx:
            tx.audit(
                event(
                    caller,
                    "access.refused",
                    project_id,
                    {"attempted": action, "reason": str(error)},
                )
            )
        log.warning("refused %s to %s: %s", action, caller, error)
        return error


def event(
    caller: Identity, action: str, project_id: str, details: Mapping[str, object]
) -> AuditEvent:
    """The audit event of ``caller`` taking ``action`` in a project (figures, never records)."""
    return AuditEvent(action, caller.organisation, caller.role.value, project_id, dict(details))


def _verb(action: str) -> str:
    return {
        "upload.begin": "upload records",
        "upload.chunk": "upload records",
        "upload.commit": "upload records",
        "upload.status": "read upload status",
        "keys.read": "read linkage keys",
        "keys.withdraw": "withdraw records",
        "counts.overlap": "query counts",
        "counts.query": "query counts",
        "run.start": "start matching runs",
        "run.status": "read run status",
        "run.cancel": "cancel runs",
        "audit.read": "read the audit log",
        "audit.checkpoint": "read audit checkpoints",
        "project.read": "read project definitions",
        "project.state": "read project state",
        "secret.publish_key": "publish secret-exchange keys",
        "secret.list_keys": "list secret-exchange keys",
        "secret.put_envelopes": "start linkage-secret epochs",
        "secret.get_envelope": "fetch sealed linkage secrets",
        "project.close": "close projects",
        "quality.read": "read linkage-quality reports",
    }.get(action, action)
