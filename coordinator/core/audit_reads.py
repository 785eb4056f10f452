"""Reading the audit log: entries for auditors, signed checkpoints and proofs for everyone.

The log itself (coordinator.core.auditstore) is written by every stage with
its work; this module only reads it, under the same authorisation as every
other call.
"""

from __future__ import annotations

from coordinator.core.audit import AuditEntry
from coordinator.core.auditstore import SignedCheckpoint
from coordinator.core.errors import InvalidRequest, NotFound
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
        """Audit entries matching the filters, for auditors."""
        self.guard.authorise(caller, "audit.read", None, Role.AUDITOR)
        return [
            e
            for e in self.store.audit_entries()
            if (not project_id or e.event.project_id == project_id)
            and (not organisation or e.event.actor_organisation == organisation)
            and (not action or e.event.action.startswith(action))
            and (not since or e.time >= since)
            and (not until or e.time[: len(until)] <= until)
        ]

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
        """An entry, a checkpoint of ``size`` entries (0: the latest) and the entry's proof."""
        self.guard.authorise(caller, "audit.read", None, Role.AUDITOR)
        checkpoint = self._checkpoint_of_size(size)
        if not 0 <= index < checkpoint.size:
            raise InvalidRequest(f"entry {index} is not in the log of {checkpoint.size} entries")
        [entry] = self.store.audit_entries(index, index)
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
