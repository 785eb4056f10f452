"""The coordinator's core as one object: a thin facade over one component a stage.

Each method takes the caller's ``Identity`` (organisation and role, which the
transport took from the verified client certificate) and plain values, and
hands them to the component that owns the stage, as Splink's ``Linker`` hands
work to its components:

====================  ============================================================
``guard``             who may do what, audited refusals (coordinator.core.guard)
``lifecycle``         registration, reading, closure, retention (.lifecycle)
``uploads``           begin, chunks, commit, validation, digests (.uploads)
``runs``              start, status, cancel, quality report (.run_control); the
                      run's stages themselves are coordinator.core.runs
``releases``          keys, withdrawal, overlap and count tables (.releases)
``audit``             audit entries, checkpoints and proofs (.audit_reads)
====================  ============================================================

Every component checks the caller first, does the work in one store
transaction with its audit entry, and returns plain dataclasses
(coordinator.core.model). Refusals raise the exceptions in
``coordinator.core.errors`` and are themselves audited.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from coordinator.core import counts, lineage, quality, queries
from coordinator.core.audit import AuditEntry
from coordinator.core.audit_reads import AuditReads
from coordinator.core.auditstore import SignedCheckpoint
from coordinator.core.candidates import Engine, InlineEngine
from coordinator.core.confirmations import Confirmation
from coordinator.core.guard import Guard, event
from coordinator.core.lifecycle import Lifecycle
from coordinator.core.lineage import KeyChange
from coordinator.core.model import (
    ChunkReceipt,
    ConsentSummary,
    IncomingRecord,
    KeyBatch,
    Project,
    ProjectState,
    RunState,
    UploadReceipt,
    UploadState,
    Withdrawal,
)
from coordinator.core.refreshes import RefreshCounts, Refreshes
from coordinator.core.releases import Releases
from coordinator.core.run_control import RunControl
from coordinator.core.series_access import Series
from coordinator.core.store import Store
from coordinator.core.time_series import ReleasePoint
from coordinator.core.uploads import Uploads
from hublink.identity import Identity, Role


class Coordinator:
    """The coordinator's core: projects, uploads, runs, keys, counts and their audit."""

    def __init__(
        self, store: Store, projects: Sequence[Project], engine: Engine | None = None
    ) -> None:
        self.store = store
        self._projects = {p.id: p for p in projects}
        self.guard = Guard(store, self._projects)
        self.lifecycle = Lifecycle(store, self.guard)
        self.uploads = Uploads(store, self.guard)
        self.refreshes = Refreshes(store, self.uploads)
        self.series = Series(store, self.guard)
        self.runs = RunControl(store, self.guard, engine or InlineEngine())
        self.releases = Releases(store, self.guard)
        self.audit = AuditReads(store, self.guard)
        self.lifecycle.register()
        self.runs.fail_interrupted()

    @property
    def engine(self) -> Engine:
        """What compares records in runs (inline, local worker processes or Dask)."""
        return self.runs.engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        self.runs.engine = engine

    # ------------------------------------------------------------------- projects
    def project(self, caller: Identity, project_id: str) -> Project:
        """The project, for a member organisation's node or an admin, analyst or auditor it
        names."""
        return self.lifecycle.project(caller, project_id)

    def projects_for(self, caller: Identity) -> list[Project]:
        """The projects that name the caller in its role (a node: those it takes part in)."""
        return self.lifecycle.projects_for(caller)

    def project_state(self, caller: Identity, project_id: str) -> ProjectState:
        """Each member's committed upload and the latest run, for the project's admin."""
        return self.lifecycle.state(caller, project_id)

    def request_close(self, caller: Identity, project_id: str, reason: str) -> Confirmation:
        """Announce closing a project in the audit log; the code ``close_project`` needs."""
        return self.lifecycle.request_close(caller, project_id, reason)

    def close_project(
        self, caller: Identity, project_id: str, reason: str, confirmation: str
    ) -> int:
        """Close a project for good, erasing its encodings, entities and key; records erased.

        ``confirmation`` is the code ``request_close`` gave this caller for this project
        and reason, within its window."""
        return self.lifecycle.close(caller, project_id, reason, confirmation)

    def purge_expired(self, now: datetime | None = None) -> int:
        """Erase uploads older than their project's retention period; return records erased."""
        return self.lifecycle.purge_expired(now)

    def record_refusal(self, caller: Identity, action: str, reason: str) -> None:
        """Audit a refusal made by the transport (a revoked certificate, a foreign CA)."""
        self.guard.record_refusal(caller, action, reason)

    def record_unidentified(self, certificate_sha256: str, action: str, reason: str) -> None:
        """Audit the refusal of a certificate naming no valid identity, by its fingerprint."""
        self.guard.record_unidentified(certificate_sha256, action, reason)

    # -------------------------------------------------------------------- uploads
    def begin_upload(
        self,
        caller: Identity,
        project_id: str,
        upload_id: str,
        encoding_sha256: str,
        expected_records: int,
        consent: ConsentSummary,
        secret_epoch: int = 0,
        refresh: bool = False,
    ) -> UploadState:
        """Open an upload (or a refresh of the committed one, ``.refreshes``); a retried call
        with the same id returns the same upload."""
        begin = self.refreshes.begin if refresh else self.uploads.begin
        return begin(
            caller, project_id, upload_id, encoding_sha256, expected_records, consent, secret_epoch
        )

    def upload_status(self, caller: Identity, upload_id: str) -> UploadState:
        """What the coordinator holds of an upload, so a node can resume it."""
        return self.uploads.status(caller, upload_id)

    def put_chunk(
        self, caller: Identity, upload_id: str, chunk_index: int, records: Sequence[IncomingRecord]
    ) -> ChunkReceipt:
        """Store one chunk; a repeat with the same content is acknowledged, not stored twice."""
        return self.uploads.put_chunk(caller, upload_id, chunk_index, records)

    def commit_upload(
        self,
        caller: Identity,
        upload_id: str,
        chunk_count: int,
        record_count: int,
        digest_sha256: str,
        removed_tokens: Sequence[str] = (),
    ) -> UploadReceipt:
        """Close an upload after checking it is whole; a bad one is rejected and erased.
        A refresh is merged into the committed upload, whole or not at all."""
        stored = self.uploads.stored_id(caller, upload_id)
        if stored is not None and self.refreshes.is_refresh(stored):
            return self.refreshes.commit(
                caller, upload_id, chunk_count, record_count, digest_sha256, removed_tokens
            )
        return self.uploads.commit(caller, upload_id, chunk_count, record_count, digest_sha256)

    def refresh_counts(self, caller: Identity, upload_id: str) -> RefreshCounts | None:
        """What the caller's committed refresh did (None: not a refresh)."""
        stored = self.uploads.stored_id(caller, upload_id)
        return None if stored is None else self.refreshes.counts(stored)

    # ----------------------------------------------------------------------- runs
    def start_run(
        self,
        caller: Identity,
        project_id: str,
        threshold: float | None = None,
        *,
        background: bool = True,
        full: bool = False,
    ) -> RunState:
        """Start matching every committed upload; ``threshold`` is the requested threshold
        (None: the project's rule decides); ``full``: compare everything again."""
        return self.runs.start(caller, project_id, threshold, background=background, full=full)

    def wait_for_run(self, run_id: str, timeout: float | None = None) -> None:
        """Block until a background run ends (for tests and the demo)."""
        self.runs.wait(run_id, timeout)

    def settle_runs(self, timeout: float) -> list[str]:
        """At shutdown: let runs in flight finish for up to ``timeout`` s, fail the rest."""
        return self.runs.settle(timeout)

    def run_status(self, caller: Identity, project_id: str, run_id: str = "") -> RunState:
        """A run's state (the latest run's without ``run_id``)."""
        return self.runs.status(caller, project_id, run_id)

    def cancel_run(self, caller: Identity, project_id: str, run_id: str) -> RunState:
        """Ask a running run to stop; it is recorded as cancelled."""
        return self.runs.cancel(caller, project_id, run_id)

    def quality_report(
        self, caller: Identity, project_id: str, run_id: str = ""
    ) -> tuple[str, quality.RunQuality, tuple[quality.ReleasedBin, ...]]:
        """A completed run's quality report for the project's admin, histogram under disclosure."""
        return self.runs.quality_report(caller, project_id, run_id)

    # ------------------------------------------------------------------- releases
    def linkage_keys(
        self, caller: Identity, project_id: str, batch_size: int = 5000
    ) -> Iterator[KeyBatch]:
        """The key of every record the caller's organisation uploaded, in batches."""
        return self.releases.linkage_keys(caller, project_id, batch_size)

    def key_changes(
        self, caller: Identity, project_id: str, since: int
    ) -> tuple[list[KeyChange], int]:
        """The caller's own records' key changes after ``since``, and the sequence they reach."""
        project = self.guard.project(project_id)
        self.guard.authorise(caller, "keys.read", project, Role.NODE)
        scope = caller.organisation if project.key_scope == "organisation" else None
        changes, head = lineage.changes_since(
            self.store, project.id, caller.organisation, since, scope
        )
        with self.store.transaction() as tx:
            tx.audit(
                event(
                    caller,
                    "keys.released",
                    project.id,
                    {"keys": len(changes), "changes_since": since, "head": head},
                )
            )
        return changes, head

    def withdraw(self, caller: Identity, project_id: str, tokens: Sequence[str]) -> Withdrawal:
        """Delete the encodings (and entity assignments) of the caller's own withdrawn records."""
        return self.releases.withdraw(caller, project_id, tokens)

    def overlap(
        self, caller: Identity, project_id: str, release: str = ""
    ) -> tuple[str, counts.CountTable]:
        """Entities in every combination of the project's datasets, under disclosure control
        (as of the release of run ``release``; empty: the latest)."""
        return self.releases.overlap(caller, project_id, release)

    def time_series(self, caller: Identity, project_id: str) -> list[ReleasePoint]:
        """Every release's counts per combination of datasets, new and left, protected."""
        return self.series.series(caller, project_id)

    def counts(
        self,
        caller: Identity,
        project_id: str,
        query: queries.CountQuery,
        *,
        action: str = "counts.query",
        release: str = "",
    ) -> tuple[str, queries.ReleasedTable]:
        """A count table over the latest run's entities (or a release's), after disclosure
        control."""
        return self.releases.counts(caller, project_id, query, action=action, release=release)

    # ---------------------------------------------------------------------- audit
    def audit_entries(
        self,
        caller: Identity,
        project_id: str = "",
        organisation: str = "",
        action: str = "",
        since: str = "",
        until: str = "",
    ) -> list[AuditEntry]:
        """Audit entries matching the filters, of the projects that name the auditor."""
        return self.audit.entries(caller, project_id, organisation, action, since, until)

    def audit_checkpoint(self, caller: Identity) -> SignedCheckpoint:
        """The latest signed checkpoint, signed now if the log grew since the last one."""
        return self.audit.checkpoint(caller)

    def audit_checkpoints(
        self, caller: Identity, first_size: int = 0, last_size: int = 0
    ) -> list[SignedCheckpoint]:
        """The signed checkpoints between two sizes, for auditors."""
        return self.audit.checkpoints(caller, first_size, last_size)

    def audit_inclusion_proof(
        self, caller: Identity, index: int, size: int = 0
    ) -> tuple[AuditEntry, SignedCheckpoint, list[bytes]]:
        """An entry, a checkpoint of ``size`` entries (0: the latest) and the entry's proof."""
        return self.audit.inclusion_proof(caller, index, size)

    def audit_consistency_proof(
        self, caller: Identity, old_size: int, new_size: int = 0
    ) -> tuple[SignedCheckpoint, SignedCheckpoint | None, list[bytes]]:
        """Proof that the log of ``old_size`` entries is a prefix of a signed later log."""
        return self.audit.consistency_proof(caller, old_size, new_size)
