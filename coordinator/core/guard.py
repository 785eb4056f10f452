"""Who may do what: authorisation, audited refusals, and the audit events every stage writes.

Every stage module asks the guard first: ``project`` finds a project this
coordinator serves, ``authorise`` refuses (and audits the refusal) a caller
whose role may not take the action, one the project does not name in that
role (a node's organisation not a member; an admin, auditor or analyst not in
the project's ``admins``, ``auditors`` or ``analysts``; a certificate other
than those the project pins), or any change to a closed project. ``event`` builds the audit event
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

#: How audit entries name a caller whose certificate names no valid identity (not a slug,
#: so no organisation can share it).
UNIDENTIFIED = "(unidentified)"

#: Actions still allowed on a closed project (reading what it was).
READ_AFTER_CLOSE = frozenset({"project.read", "audit.read"})


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
        """Refuse (and audit the refusal) unless the caller has one of ``roles`` and the
        project names it in that role.

        A node must belong to the project, an admin, auditor or analyst must be one the
        project names (``admins``, ``auditors``, ``analysts``), and a role and organisation
        the project pins to certificates must present one of them. A call about no one
        project (``project`` None) needs the caller named so in at least one served project.
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
        if caller.role is not Role.COORDINATOR:
            reason = self._membership(caller, action, project)
            if reason is not None:
                raise self.refused(caller, action, project_id, NotAMember(reason))
        if project:
            # Read beside the writer: a run's results are written in one long transaction,
            # and a status read must not wait for it to end (issue #25).
            row = self.store.read_one("SELECT state FROM projects WHERE id = ?", (project.id,))
            if row is not None and row["state"] != "open" and action not in READ_AFTER_CLOSE:
                raise NotReady(f"project {project.id!r} is closed")

    def named_in(self, caller: Identity) -> list[Project]:
        """The served projects that let the caller act in its role (with this certificate)."""
        return [
            p
            for p in self.projects.values()
            if p.names(caller.role.value, caller.organisation) and _pin_allows(p, caller)
        ]

    def _membership(self, caller: Identity, action: str, project: Project | None) -> str | None:
        """Why the caller's organisation (or certificate) may not act here, or None."""
        role, organisation = caller.role.value, caller.organisation
        if project is None:
            if self.named_in(caller):
                return None
            return (
                f"no project this coordinator serves names {organisation!r} as {_article(role)}"
                f", so it may not {_verb(action)}"
            )
        if not project.names(role, organisation):
            if caller.role is Role.NODE:
                return f"organisation {organisation!r} does not take part in project {project.id!r}"
            return (
                f"project {project.id!r} does not name {organisation!r} among its {role}s, "
                f"so it may not {_verb(action)}"
            )
        if not _pin_allows(project, caller):
            return (
                f"project {project.id!r} pins the {role} certificates of {organisation!r}, and "
                "this certificate is not one of them"
            )
        return None

    def record_refusal(self, caller: Identity, action: str, reason: str) -> None:
        """Audit a refusal made by the transport (a revoked certificate, a foreign CA)."""
        self.refused(caller, action, "", NotAllowed(reason))

    def record_unidentified(self, certificate_sha256: str, action: str, reason: str) -> None:
        """Audit a refused certificate that names no valid hublink identity.

        The caller is recorded by its certificate's fingerprint alone: nothing the
        certificate says about itself goes into the permanent log.
        """
        with self.store.transaction() as tx:
            tx.audit(
                AuditEvent(
                    "access.refused",
                    UNIDENTIFIED,
                    "none",
                    "",
                    {
                        "attempted": action,
                        "reason": reason,
                        "certificate_sha256": certificate_sha256,
                    },
                )
            )
        log.warning(
            "refused %s: the certificate names no hublink identity",
            action,
            extra={"certificate": certificate_sha256},
        )

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
        # The sentence names ids (project, organisation, upload): they go in fields, and the
        # audit entry keeps the sentence.
        log.warning(
            "refused %s: %s",
            action,
            type(error).__name__,
            extra={"caller": str(caller), "project": project_id},
        )
        return error


def event(
    caller: Identity, action: str, project_id: str, details: Mapping[str, object]
) -> AuditEvent:
    """The audit event of ``caller`` taking ``action`` in a project (figures, never records)."""
    return AuditEvent(action, caller.organisation, caller.role.value, project_id, dict(details))


def _pin_allows(project: Project, caller: Identity) -> bool:
    pins = project.pinned_certificates.get(f"{caller.role.value}:{caller.organisation}")
    return not pins or caller.certificate_sha256 in pins


def _article(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


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
        "project.list": "list projects",
        "quality.read": "read linkage-quality reports",
    }.get(action, action)
