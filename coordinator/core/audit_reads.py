"""Reading the audit log: an auditor's own projects' entries, signed checkpoints and proofs.

The log itself (coordinator.core.auditstore) is written by every stage with
its work; this module only reads it, under the same authorisation as every
other call.

The log is one Merkle tree for the whole coordinator, but an auditor sees only
the entries of the projects that name it (``auditors`` in the project file):
entries of other projects, and the coordinator's own entries that belong to
no project, are never listed to it, nor is an inclusion proof of one given.
What it can check is what it needs for its projects: the signed checkpoints
cover the whole tree (a size and a root, nothing of any entry), every entry
it is shown comes with an inclusion proof into a signed checkpoint, and
consistency proofs show the tree only grew between checkpoints it kept. What
it cannot see is the other projects' entries, so only the holder of the whole
log (the coordinator's operator, ``hublink audit verify --database``) can
rebuild the tree from every leaf.
"""

from __future__ import annotations

from coordinator.core.audit import AuditEntry
from coordinator.core.auditstore import SignedCheckpoint
from coordinator.core.errors import InvalidRequest, NotAMember, NotFound
from coordinator.core.guard import Guard
from coordinator.core.store import Store
from hublink.identity import Identity, Role


class AuditReads:
    """The audit log as auditors, nodes, admins and analysts may read it."""

    def __init__(self, store: Store, guard: Guard) -> None:
        self.store = store
        self.guard = guard

    def entries(
        self,
        caller: Identity,
        project_id: str = "",
        organisation: str = "",
        action: str = "",
        since: str = "",
        until: str = "",
    ) -> list[AuditEntry]:
        """Audit entries matching the filters, of the projects that name the auditor."""
        visible = self._visible(caller, project_id)
        return [
            e
            for e in self.store.audit_entries()
            if e.event.project_id in visible
            and (not organisation or e.event.actor_organisation == organisation)
            and (not action or e.event.action.startswith(action))
            and (not since or e.time >= since)
            and (not until or e.time[: len(until)] <= until)
        ]

    def _visible(self, caller: Identity, project_id: str) -> frozenset[str]:
        """The projects whose entries ``caller`` may read (just ``project_id``, if given)."""
        if project_id:
            project = self.guard.project(project_id)
            self.guard.authorise(caller, "audit.read", project, Role.AUDITOR)
            return frozenset({project.id})
        self.guard.authorise(caller, "audit.read", None, Role.AUDITOR)
        return frozenset(p.id for p in self.guard.named_in(caller))

    def checkpoint(self, caller: Identity) -> SignedCheckpoint:
        """The latest signed checkpoint, signed now if the log grew since the last one.

        Every role may fetch it: it holds a size and a hash, and parties who
        compare the checkpoints they were shown are what catches a coordinator
        showing different logs to different parties.
        """
        self.guard.authorise(
            caller, "audit.checkpoint", None, Role.AUDITOR, Role.NODE, Role.ADMIN, Role.ANALYST
        )
        return self.store.audit_checkpoint()

    def checkpoints(
        self, caller: Identity, first_size: int = 0, last_size: int = 0
    ) -> list[SignedCheckpoint]:
        """Every checkpoint signed over ``first_size`` to ``last_size`` entries (0: no bound).

        For auditors, so that an export holds a checkpoint after every entry
        and verification can name exactly the first entry that was changed.
        """
        self.guard.authorise(caller, "audit.read", None, Role.AUDITOR)
        return [
            c
            for c in self.store.audit_checkpoints()
            if c.size >= first_size and (not last_size or c.size <= last_size)
        ]

    def inclusion_proof(
        self, caller: Identity, index: int, size: int = 0
    ) -> tuple[AuditEntry, SignedCheckpoint, list[bytes]]:
        """An entry of a project that names the auditor, a checkpoint of ``size`` entries
        (0: the latest) and the entry's proof."""
        visible = self._visible(caller, "")
        checkpoint = self._checkpoint_of_size(size)
        if not 0 <= index < checkpoint.size:
            raise InvalidRequest(f"entry {index} is not in the log of {checkpoint.size} entries")
        [entry] = self.store.audit_entries(index, index)
        if entry.event.project_id not in visible:
            raise self.guard.refused(
                caller,
                "audit.read",
                "",
                NotAMember(f"entry {index} is not an entry of a project that names you"),
            )
        return entry, checkpoint, self.store.audit_inclusion_proof(index, checkpoint.size)

    def consistency_proof(
        self, caller: Identity, old_size: int, new_size: int = 0
    ) -> tuple[SignedCheckpoint, SignedCheckpoint | None, list[bytes]]:
        """Proof that the log of ``old_size`` entries is a prefix of a signed later log.

        Returns the newer checkpoint (``new_size``, 0: the latest), the older
        one if the coordinator signed one of that size, and the proof.
        """
        self.guard.authorise(
            caller, "audit.checkpoint", None, Role.AUDITOR, Role.NODE, Role.ADMIN, Role.ANALYST
        )
        newer = self._checkpoint_of_size(new_size)
        if not 0 <= old_size <= newer.size:
            raise InvalidRequest(
                f"the log of {newer.size} entries cannot extend one of {old_size} entries"
            )
        proof = self.store.audit_consistency_proof(old_size, newer.size)
        return newer, self.store.audit_checkpoint_at(old_size), proof

    def _checkpoint_of_size(self, size: int) -> SignedCheckpoint:
        if size <= 0:
            return self.store.audit_checkpoint()
        checkpoint = self.store.audit_checkpoint_at(size)
        if checkpoint is None:
            raise NotFound(f"the coordinator signed no checkpoint of {size} entries")
        return checkpoint
