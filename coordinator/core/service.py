"""The coordinator's domain service: every call a caller can make, as plain Python.

Each method takes the caller's ``Identity`` (organisation and role, which the
transport took from the verified client certificate) and plain values, checks
that the caller may act, does the work in one store transaction with its
audit entry, and returns plain dataclasses. Refusals raise the exceptions in
``coordinator.core.errors`` and are themselves audited.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import sqlite3
import threading
import time
import uuid
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from coordinator.core import (
    candidates,
    counts,
    disclosure,
    entities,
    field_scoring,
    keys,
    matching,
    quality,
    quality_breakdown,
    queries,
    retention,
)
from coordinator.core.attributes import (
    ATTRIBUTES_OF_RECORD,
    entity_facts,
    parse_attributes,
    store_attributes,
)
from coordinator.core.audit import AuditEntry, AuditEvent
from coordinator.core.auditstore import SignedCheckpoint
from coordinator.core.blocking import DEFAULT_COMPLETENESS
from coordinator.core.candidates import Engine
from coordinator.core.errors import (
    AlreadyExists,
    Cancelled,
    CoordinatorError,
    InvalidRequest,
    NotAllowed,
    NotAMember,
    NotFound,
    NotReady,
    SchemaMismatch,
)
from coordinator.core.secret_relay import current_epoch
from coordinator.core.store import Store, utc_now
from hublink.identity import Identity, Role
from hublink.spec import EncodingLayout, UploadDigest, canonical_json

log = logging.getLogger("hublink.coordinator")

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
#: A chunk's tokens joined by newlines, all good (checked in one match).
_TOKENS = re.compile(r"[A-Za-z0-9_-]{8,64}(?:\n[A-Za-z0-9_-]{8,64})*")
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
_ATTRIBUTE_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,31}$")
_MAX_WITHDRAW = 100_000


@dataclass(frozen=True)
class Project:
    """A project as the core sees it: who takes part, what they encode, how results are released."""

    id: str
    purpose: str
    organisations: tuple[str, ...]
    schema_json: str
    encoding_sha256: str
    encodings: tuple[EncodingLayout, ...]
    definition_sha256: str
    threshold: float = 0.83
    auto_threshold: bool = False
    """Use the threshold estimated from each run's scores (coordinator.core.quality);
    project files default to true (hublink.config.ProjectConfig)."""
    within_threshold: float = 0.9
    merge_threshold: float = 0.9
    blocking: str = "auto"
    """"auto", "lsh" or "none": see coordinator.core.blocking."""
    blocking_completeness: float = DEFAULT_COMPLETENESS
    estimate_sample: int = candidates.DEFAULT_ESTIMATE_SAMPLE
    suppression_threshold: int = 10
    max_chunk_records: int = 2000
    max_records: int = 5_000_000
    released_attributes: tuple[str, ...] = ()
    disclosure: disclosure.Rule = field(
        default_factory=lambda: disclosure.rule_for(disclosure.DEFAULT_PRESET)
    )
    """How counts are protected before analysts see them (coordinator.core.disclosure)."""
    analysts: tuple[str, ...] = ()
    """Organisations whose analysts may query counts; empty: none may."""
    attribute_precedence: tuple[str, ...] = ()
    """Whose attribute value counts when organisations disagree; empty: the most common."""
    reference_date: str = ""
    """Date at which nodes compute age bands (YYYY-MM-DD), sent to them with the project."""
    key_scope: str = "project"
    retention_days: int = 365
    node_keys: Mapping[str, str] = field(default_factory=dict)
    """Confirmed fingerprints of member nodes' secret-exchange keys, from the project file."""
    secret_epoch: int = 0
    """Epoch of the linkage secret now in force (0: no exchanged secret); filled per request."""
    field_flip: float = 0.0
    """Chance nodes flipped each bit of a per-field filter (``LinkageSpec.group_flip``)."""

    @property
    def record_bytes(self) -> int:
        return sum(e.nbytes for e in self.encodings)

    @property
    def field_groups(self) -> tuple[EncodingLayout, ...]:
        """The per-field filters records carry after the record CLK (``field_scoring``)."""
        return self.encodings[1:]


@dataclass(frozen=True)
class IncomingRecord:
    """A record as a node sent it: a token and its named encodings (and released attributes)."""

    token: str
    encodings: Sequence[tuple[str, bytes]]
    attributes: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class ConsentSummary:
    """Counts per consent rule and the hash of the policy that decided them (counts only)."""

    policy_sha256: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UploadState:
    upload_id: str
    project_id: str
    state: str
    received_chunks: tuple[int, ...]
    records_received: int


@dataclass(frozen=True)
class ChunkReceipt:
    upload_id: str
    chunk_index: int
    duplicate: bool
    records_received: int


@dataclass(frozen=True)
class UploadReceipt:
    upload_id: str
    project_id: str
    organisation: str
    record_count: int
    digest_sha256: str
    audit_index: int
    entry: AuditEntry
    """The upload.committed entry at ``audit_index``."""
    inclusion_proof: tuple[bytes, ...]
    """Proof that ``entry`` is in the log ``checkpoint`` signs."""
    checkpoint: str
    """The signed checkpoint note made when the upload was committed."""
    public_key: str = ""
    """The coordinator's verifier key line, for a node that trusts it on first use."""


@dataclass(frozen=True)
class RunState:
    run_id: str
    project_id: str
    state: str
    done: int
    total: int
    records: int
    entities: int
    linked_entities: int
    threshold: float
    seconds: float
    message: str
    quality: quality.RunQuality | None = None
    """A completed run's quality estimate; only the project's admin is shown it."""
    stage: str = ""
    """What a running run is doing: "loading", "comparing", "solving" or "storing"."""
    comparisons: int = 0
    """Pairs compared so far (a blocked run: an estimate from its bands)."""
    comparisons_per_second: float = 0.0


@dataclass(frozen=True)
class KeyBatch:
    run_id: str
    keys: tuple[tuple[str, str], ...]
    total: int


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal did: tokens found and deleted, and tokens not among the caller's."""

    withdrawn: int
    not_found: int


@dataclass(frozen=True)
class DatasetState:
    organisation: str
    upload_id: str
    records: int


@dataclass(frozen=True)
class ProjectState:
    project_id: str
    state: str
    datasets: tuple[DatasetState, ...]
    latest_run_id: str


class Coordinator:
    """The coordinator's core: projects, uploads, runs, keys, counts and their audit."""

    def __init__(
        self, store: Store, projects: Sequence[Project], engine: Engine | None = None
    ) -> None:
        self.store = store
        self._projects = {p.id: p for p in projects}
        self._progress: dict[str, candidates.Progress] = {}
        self.engine: Engine = engine or candidates.InlineEngine()
        # Digests of open uploads whose chunks came in order, so a commit need not re-read them.
        self._running: dict[str, _RunningDigest] = {}
        self._running_lock = threading.Lock()
        self._cancel: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._register_projects()
        self._fail_interrupted_runs()

    # ----------------------------------------------------------------- projects
    def _register_projects(self) -> None:
        system = Identity("coordinator", Role.COORDINATOR)
        for project in self._projects.values():
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
                    tx.audit(_event(system, "project.created", project.id, details))
                elif row[0] != project.definition_sha256:
                    tx.execute(
                        "UPDATE projects SET definition_sha256 = ?, encoding_sha256 = ? "
                        "WHERE id = ?",
                        (project.definition_sha256, project.encoding_sha256, project.id),
                    )
                    tx.audit(_event(system, "project.changed", project.id, details))

    def _fail_interrupted_runs(self) -> None:
        """A run still 'running' at start-up died with an earlier process: record that it failed.

        Its results were never written (they are written in one transaction at
        the end of a run), so the previous run's keys stand.
        """
        system = Identity("coordinator", Role.COORDINATOR)
        for row in self.store.query("SELECT id, project_id FROM runs WHERE state = 'running'"):
            with self.store.transaction() as tx:
                tx.execute(
                    "UPDATE runs SET state = 'failed', finished_at = ?, message = ? WHERE id = ?",
                    (utc_now(), "the coordinator stopped during the run", row["id"]),
                )
                tx.audit(
                    _event(
                        system,
                        "run.failed",
                        row["project_id"],
                        {"run_id": row["id"], "message": "the coordinator stopped during the run"},
                    )
                )

    def project(self, caller: Identity, project_id: str) -> Project:
        """The project, for a member organisation's node or any admin, analyst or auditor."""
        project = self._project(project_id)
        self._authorise(
            caller, "project.read", project, Role.NODE, Role.ADMIN, Role.ANALYST, Role.AUDITOR
        )
        return dataclasses.replace(project, secret_epoch=current_epoch(self.store, project.id))

    def projects_for(self, caller: Identity) -> list[Project]:
        """Projects the caller's organisation takes part in (every project for admins)."""
        if caller.role in (Role.ADMIN, Role.AUDITOR, Role.ANALYST):
            return list(self._projects.values())
        return [p for p in self._projects.values() if caller.organisation in p.organisations]

    def _project(self, project_id: str) -> Project:
        project = self._projects.get(project_id)
        if project is None:
            raise NotFound(f"project {project_id!r} is not served by this coordinator")
        return project

    def _authorise(
        self, caller: Identity, action: str, project: Project | None, *roles: Role
    ) -> None:
        """Refuse (and audit the refusal) unless the caller has one of ``roles``.

        Nodes must also belong to the project: a node may only touch projects
        its organisation takes part in.
        """
        project_id = project.id if project else ""
        if caller.role not in roles:
            allowed = ", ".join(sorted(r.value for r in roles))
            raise self._refused(
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
            raise self._refused(
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
        self._refused(caller, action, "", NotAllowed(reason))

    def _refused(
        self, caller: Identity, action: str, project_id: str, error: CoordinatorError
    ) -> CoordinatorError:
        with self.store.transaction() as tx:
            tx.audit(
                _event(
                    caller,
                    "access.refused",
                    project_id,
                    {"attempted": action, "reason": str(error)},
                )
            )
        log.warning("refused %s to %s: %s", action, caller, error)
        return error

    # ------------------------------------------------------------------ uploads
    def begin_upload(
        self,
        caller: Identity,
        project_id: str,
        upload_id: str,
        encoding_sha256: str,
        expected_records: int,
        consent: ConsentSummary,
        secret_epoch: int = 0,
    ) -> UploadState:
        """Open an upload; a retried call with the same id returns the same upload.

        ``secret_epoch`` is the epoch of the linkage secret the node encoded
        with (0: a secret exchanged by the organisations' own means); it must be
        the project's current epoch, so encodings of two epochs never meet.
        """
        project = self._project(project_id)
        self._authorise(caller, "upload.begin", project, Role.NODE)
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise InvalidRequest("upload id must be 8 to 64 letters, digits or hyphens")
        existing = self.store.query_one("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        if existing is not None:
            if (
                existing["organisation"] != caller.organisation
                or existing["project_id"] != project.id
            ):
                raise AlreadyExists(f"upload id {upload_id} is already in use")
            if int(existing["secret_epoch"]) != secret_epoch:
                # Resuming would mix encodings under two secrets in one upload.
                raise SchemaMismatch(
                    f"upload {upload_id} was begun under linkage-secret epoch "
                    f"{existing['secret_epoch']}, not {secret_epoch}; it cannot be resumed: "
                    "start a new upload"
                )
            return self.upload_status(caller, upload_id)
        if encoding_sha256 != project.encoding_sha256:
            raise self._rejected(
                caller,
                project.id,
                upload_id,
                SchemaMismatch(
                    f"the node's encoding specification {encoding_sha256[:12]}… differs from "
                    f"project {project.id!r}'s {project.encoding_sha256[:12]}…; fetch the "
                    "project's "
                    "schema and use the same hublink version"
                ),
            )
        epoch = current_epoch(self.store, project.id)
        if secret_epoch != epoch:
            raise self._rejected(
                caller,
                project.id,
                upload_id,
                SchemaMismatch(
                    f"the node encoded with linkage-secret epoch {secret_epoch} but project "
                    f"{project.id!r} is at epoch {epoch}; fetch the current secret "
                    "(hublink node secret fetch) and encode again"
                ),
            )
        if expected_records > project.max_records:
            raise self._rejected(
                caller,
                project.id,
                upload_id,
                InvalidRequest(
                    f"{expected_records} records exceed project {project.id!r}'s limit of "
                    f"{project.max_records}"
                ),
            )
        committed = self.store.query_one(
            "SELECT id FROM uploads WHERE project_id = ? AND organisation = ? "
            "AND state = 'committed'",
            (project.id, caller.organisation),
        )
        if committed is not None:
            raise self._rejected(
                caller,
                project.id,
                upload_id,
                AlreadyExists(
                    f"organisation {caller.organisation!r} already has a committed upload in "
                    "project "
                    f"{project.id!r}; a second upload never silently replaces the first"
                ),
            )
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO uploads (id, project_id, organisation, state, encoding_sha256, "
                "expected_records, consent_json, created_at, secret_epoch) "
                "VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?)",
                (
                    upload_id,
                    project.id,
                    caller.organisation,
                    encoding_sha256,
                    expected_records,
                    canonical_json(_consent_details(consent)),
                    utc_now(),
                    secret_epoch,
                ),
            )
            tx.audit(
                _event(
                    caller,
                    "upload.started",
                    project.id,
                    {
                        "upload_id": upload_id,
                        "expected_records": expected_records,
                        "consent": _consent_details(consent),
                    },
                )
            )
        log.info(
            "upload %s started by %s for %s (%d records expected)",
            upload_id,
            caller,
            project.id,
            expected_records,
        )
        return UploadState(upload_id, project.id, "open", (), 0)

    def _rejected(
        self, caller: Identity, project_id: str, upload_id: str, error: CoordinatorError
    ) -> CoordinatorError:
        with self.store.transaction() as tx:
            tx.audit(
                _event(
                    caller,
                    "upload.rejected",
                    project_id,
                    {"upload_id": upload_id, "reason": str(error)},
                )
            )
        log.warning("upload %s from %s rejected: %s", upload_id, caller, error)
        return error

    def _own_upload(self, caller: Identity, upload_id: str, action: str) -> tuple[Project, str]:
        row = self.store.query_one(
            "SELECT project_id, organisation, state FROM uploads WHERE id = ?", (upload_id,)
        )
        if row is None or (caller.role is Role.NODE and row["organisation"] != caller.organisation):
            raise NotFound(f"no upload {upload_id} for organisation {caller.organisation!r}")
        project = self._project(row["project_id"])
        self._authorise(caller, action, project, Role.NODE)
        return project, str(row["state"])

    def upload_status(self, caller: Identity, upload_id: str) -> UploadState:
        """What the coordinator holds of an upload, so a node can resume it."""
        project, state = self._own_upload(caller, upload_id, "upload.status")
        chunks = self.store.query(
            "SELECT chunk_index FROM chunks WHERE upload_id = ? ORDER BY chunk_index", (upload_id,)
        )
        row = self.store.query_one(
            "SELECT records_received FROM uploads WHERE id = ?", (upload_id,)
        )
        assert row is not None
        return UploadState(
            upload_id, project.id, state, tuple(c[0] for c in chunks), int(row["records_received"])
        )

    def put_chunk(
        self, caller: Identity, upload_id: str, chunk_index: int, records: Sequence[IncomingRecord]
    ) -> ChunkReceipt:
        """Store one chunk; a repeat with the same content is acknowledged, not stored twice."""
        project, state = self._own_upload(caller, upload_id, "upload.chunk")
        if state != "open":
            raise NotReady(f"upload {upload_id} is {state}; it takes no more chunks")
        self._refuse_if_superseded(caller, project, upload_id)
        if not records:
            raise InvalidRequest(f"chunk {chunk_index} of upload {upload_id} has no records")
        if len(records) > project.max_chunk_records:
            raise InvalidRequest(
                f"chunk {chunk_index} has {len(records)} records; project {project.id!r} takes "
                f"at most {project.max_chunk_records} a chunk"
            )
        attributes: dict[str, tuple[tuple[str, str], ...]] = {}
        rows, digest = self._validate_chunk(project, chunk_index, records, attributes)
        with self.store.transaction() as tx:
            previous = tx.execute(
                "SELECT digest_sha256 FROM chunks WHERE upload_id = ? AND chunk_index = ?",
                (upload_id, chunk_index),
            ).fetchone()
            received = tx.execute(
                "SELECT records_received FROM uploads WHERE id = ?", (upload_id,)
            ).fetchone()[0]
            if previous is not None:
                if previous[0] != digest:
                    raise AlreadyExists(
                        f"chunk {chunk_index} of upload {upload_id} was already received with "
                        "different content"
                    )
                return ChunkReceipt(upload_id, chunk_index, True, int(received))
            if received + len(rows) > project.max_records:
                raise InvalidRequest(
                    f"upload {upload_id} would exceed project {project.id!r}'s limit of "
                    f"{project.max_records} records"
                )
            # Ids above the largest so far are this chunk's (the transaction holds the lock).
            floor = tx.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0]
            try:
                tx.executemany(
                    "INSERT INTO records (upload_id, chunk_index, token, encodings) "
                    "VALUES (?, ?, ?, ?)",
                    [(upload_id, chunk_index, token, blob) for token, blob in rows],
                )
            except sqlite3.IntegrityError:
                raise InvalidRequest(
                    f"chunk {chunk_index} repeats a record token already received in "
                    f"upload {upload_id}"
                ) from None
            if attributes:
                store_attributes(tx, upload_id, int(floor), attributes)
            tx.execute(
                "INSERT INTO chunks VALUES (?, ?, ?, ?)",
                (upload_id, chunk_index, len(rows), digest),
            )
            tx.execute(
                "UPDATE uploads SET records_received = records_received + ? WHERE id = ?",
                (len(rows), upload_id),
            )
        self._extend_digest(upload_id, chunk_index, records)
        return ChunkReceipt(upload_id, chunk_index, False, int(received) + len(rows))

    def _extend_digest(
        self, upload_id: str, chunk_index: int, records: Sequence[IncomingRecord]
    ) -> None:
        """Carry the upload's digest on by a stored chunk, if every earlier chunk came first."""
        with self._running_lock:
            running = self._running.get(upload_id)
            if running is None and chunk_index == 0:
                running = self._running[upload_id] = _RunningDigest()
            if running is None or running.chunks != chunk_index:
                self._running.pop(upload_id, None)  # out of order: the commit re-reads
                return
            running.digest.add_all(
                (record.token, [bits for _, bits in record.encodings], record.attributes)
                for record in records
            )
            running.chunks += 1
            running.records += len(records)

    def _validate_chunk(
        self,
        project: Project,
        chunk_index: int,
        records: Sequence[IncomingRecord],
        attributes: dict[str, tuple[tuple[str, str], ...]] | None = None,
    ) -> tuple[list[tuple[str, bytes]], str]:
        """Check a chunk's records; fills ``attributes`` (token -> released attributes, for
        records that have any).

        The common case (good tokens, the project's one encoding, no attributes)
        is checked a chunk at a time; a chunk that fails is walked record by
        record to name the first bad one.
        """
        attributes = {} if attributes is None else attributes
        expected = [(e.name, e.nbytes) for e in project.encodings]
        tokens = [record.token for record in records]
        joined = "\n".join(tokens)
        # A newline inside a token would pass the match as two good tokens: count them too.
        if (
            not _TOKENS.fullmatch(joined)
            or joined.count("\n") != len(tokens) - 1
            or len(set(tokens)) != len(tokens)
        ):
            _name_bad_token(chunk_index, tokens)
        released = set(project.released_attributes)
        rows: list[tuple[str, bytes]] = []
        pieces: list[bytes] = []
        for position, record in enumerate(records):
            encodings = record.encodings
            if len(encodings) != len(expected) or any(
                name != want or len(bits) != length
                for (name, bits), (want, length) in zip(encodings, expected, strict=False)
            ):
                _name_bad_layout(project, f"chunk {chunk_index}, record {position}", encodings)
            blob = encodings[0][1] if len(encodings) == 1 else b"".join(b for _, b in encodings)
            piece = record.token.encode() + b"\0" + blob
            if record.attributes:
                pairs = _checked_attributes(
                    project, released, f"chunk {chunk_index}, record {position}", record
                )
                # Part of the chunk's digest: a changed attribute is not a repeat.
                piece += b"".join(
                    b"\0" + name.encode() + b"=" + value.encode() for name, value in pairs
                )
                attributes[record.token] = pairs
            pieces.append(piece)
            rows.append((record.token, blob))
        return rows, hashlib.sha256(b"".join(pieces)).hexdigest()

    def commit_upload(
        self,
        caller: Identity,
        upload_id: str,
        chunk_count: int,
        record_count: int,
        digest_sha256: str,
    ) -> UploadReceipt:
        """Close an upload after checking it is whole; a bad one is rejected and erased."""
        project, state = self._own_upload(caller, upload_id, "upload.commit")
        if state == "committed":
            return self._receipt(upload_id)
        if state != "open":
            raise NotReady(f"upload {upload_id} is {state}")
        self._refuse_if_superseded(caller, project, upload_id)
        chunks = [
            r[0]
            for r in self.store.query(
                "SELECT chunk_index FROM chunks WHERE upload_id = ? ORDER BY chunk_index",
                (upload_id,),
            )
        ]
        problem = ""
        if record_count == 0 or not chunks:
            problem = "the upload is empty"
        elif chunks != list(range(chunk_count)):
            missing = sorted(set(range(chunk_count)) - set(chunks))
            if missing:
                raise NotReady(
                    f"upload {upload_id} is missing chunks {missing[:10]}; send them "
                    "before committing"
                )
            problem = f"the coordinator holds chunks beyond the {chunk_count} the node declared"
        if not problem:
            with self._running_lock:
                running = self._running.pop(upload_id, None)
            if running is not None and running.chunks == chunk_count:
                received, ours = running.records, running.digest.hexdigest()
            else:  # chunks came out of order or across a restart: read them back
                received, ours = self._upload_digest(upload_id)
            if received != record_count:
                problem = f"the node declared {record_count} records but sent {received}"
            elif ours != digest_sha256:
                problem = "the records' digest differs from the node's; they changed in transit"
        if problem:
            self._erase_upload(caller, project, upload_id, problem)
            raise InvalidRequest(f"upload {upload_id} rejected: {problem}; nothing was kept")
        try:
            with self.store.transaction() as tx:
                tx.execute(
                    "UPDATE uploads SET state = 'committed', digest_sha256 = ?, "
                    "committed_at = ? WHERE id = ?",
                    (ours, utc_now(), upload_id),
                )
                entry = tx.audit(
                    _event(
                        caller,
                        "upload.committed",
                        project.id,
                        {
                            "upload_id": upload_id,
                            "records": record_count,
                            "chunks": chunk_count,
                            "digest_sha256": ours,
                        },
                    )
                )
                tx.execute(
                    "UPDATE uploads SET commit_audit_index = ? WHERE id = ?",
                    (entry.index, upload_id),
                )
        except sqlite3.IntegrityError:
            # Another upload of this organisation was committed in the meantime.
            self._refuse_if_superseded(caller, project, upload_id)
            raise
        log.info("upload %s committed by %s: %d records", upload_id, caller, record_count)
        return self._receipt(upload_id)

    def _refuse_if_superseded(self, caller: Identity, project: Project, upload_id: str) -> None:
        """Erase and refuse an open upload once its organisation has committed another.

        Only one upload per organisation is ever used; an open one left behind
        would hold encodings that can never be matched.
        """
        other = self.store.query_one(
            "SELECT id FROM uploads WHERE project_id = ? AND organisation = ? "
            "AND state = 'committed' AND id != ?",
            (project.id, caller.organisation, upload_id),
        )
        if other is None:
            return
        reason = "the organisation committed another upload to the project first"
        self._erase_upload(caller, project, upload_id, reason)
        raise AlreadyExists(
            f"upload {upload_id} refused: organisation {caller.organisation!r} already has a "
            f"committed upload in project {project.id!r}; nothing of this upload was kept"
        )

    def _upload_digest(self, upload_id: str) -> tuple[int, str]:
        digest = UploadDigest()
        layout = self._project(self._upload_project(upload_id)).encodings
        count = 0
        for token, blob, attributes in self.store.iterate(
            f"SELECT token, encodings, {ATTRIBUTES_OF_RECORD} FROM records r "
            "WHERE upload_id = ? ORDER BY chunk_index, id",
            (upload_id,),
        ):
            digest.add(token, _split(blob, layout), parse_attributes(attributes))
            count += 1
        return count, digest.hexdigest()

    def _upload_project(self, upload_id: str) -> str:
        row = self.store.query_one("SELECT project_id FROM uploads WHERE id = ?", (upload_id,))
        assert row is not None
        return str(row["project_id"])

    def _erase_upload(
        self, caller: Identity, project: Project, upload_id: str, reason: str
    ) -> None:
        with self._running_lock:
            self._running.pop(upload_id, None)
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM records WHERE upload_id = ?", (upload_id,))
            tx.execute("DELETE FROM chunks WHERE upload_id = ?", (upload_id,))
            tx.execute(
                "UPDATE uploads SET state = 'rejected', records_received = 0 WHERE id = ?",
                (upload_id,),
            )
            tx.audit(
                _event(
                    caller,
                    "upload.rejected",
                    project.id,
                    {"upload_id": upload_id, "reason": reason},
                )
            )
        log.warning("upload %s from %s rejected: %s", upload_id, caller, reason)

    def _receipt(self, upload_id: str) -> UploadReceipt:
        row = self.store.query_one("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        assert row is not None
        index = int(row["commit_audit_index"])
        [entry] = self.store.audit_entries(index, index)
        checkpoint = self.store.audit_checkpoint_at(index + 1) or self.store.audit_checkpoint()
        return UploadReceipt(
            upload_id,
            row["project_id"],
            row["organisation"],
            int(row["records_received"]),
            row["digest_sha256"],
            index,
            entry,
            tuple(self.store.audit_inclusion_proof(index, checkpoint.size)),
            checkpoint.note,
            self.store.signer.verifier.vkey(),
        )

    # --------------------------------------------------------------------- runs
    def start_run(
        self, caller: Identity, project_id: str, threshold: float = 0.0, *, background: bool = True
    ) -> RunState:
        """Start matching every committed upload of the project."""
        project = self._project(project_id)
        self._authorise(caller, "run.start", project, Role.ADMIN)
        # A threshold given with the request is the admin's choice; else the project's rule.
        auto = project.auto_threshold and not threshold
        threshold = threshold or project.threshold
        if not 0.0 < threshold <= 1.0:
            raise InvalidRequest(f"threshold must be between 0 and 1, not {threshold}")
        uploads = self.store.query(
            "SELECT COUNT(*) AS n FROM uploads WHERE project_id = ? AND state = 'committed'",
            (project.id,),
        )
        if uploads[0]["n"] < 2:
            raise NotReady(
                f"project {project.id!r} has {uploads[0]['n']} committed upload(s); "
                "matching needs at least two"
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
            tx.execute(
                "INSERT INTO runs (id, project_id, state, threshold, started_at) "
                "VALUES (?, ?, 'running', ?, ?)",
                (run_id, project.id, threshold, utc_now()),
            )
            tx.audit(
                _event(
                    caller,
                    "run.started",
                    project.id,
                    {
                        "run_id": run_id,
                        "threshold": threshold,
                        "auto_threshold": auto,
                        "within_threshold": project.within_threshold,
                        "merge_threshold": project.merge_threshold,
                    },
                )
            )
        self._progress[run_id] = candidates.Progress(label=f"run {run_id} of {project.id}")
        self._cancel[run_id] = threading.Event()
        if background:
            thread = threading.Thread(
                target=self._execute_run,
                args=(caller, project, run_id, threshold, auto),
                name=run_id,
                daemon=True,
            )
            self._threads[run_id] = thread
            thread.start()
        else:
            self._execute_run(caller, project, run_id, threshold, auto)
        return self._run_state(run_id)

    def wait_for_run(self, run_id: str, timeout: float | None = None) -> None:
        """Block until a background run ends (for tests and the demo)."""
        thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)

    def settle_runs(self, timeout: float) -> list[str]:
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
            self._fail_interrupted_runs()
        return stuck

    def _execute_run(
        self, caller: Identity, project: Project, run_id: str, threshold: float, auto: bool = False
    ) -> None:
        started = time.monotonic()
        cancel = self._cancel[run_id]
        progress = self._progress[run_id]
        try:
            with self.engine.session() as session:
                rows, record_ids = self._load_datasets(project, session)
                self._check(run_id, cancel)
                # Cross-dataset candidates down to the quality floor show the non-matches the
                # threshold estimate needs; the run links only those at its threshold.
                low = min(quality.FLOOR, threshold)
                found = candidates.find(
                    session,
                    rows,
                    low=low,
                    design=threshold,  # blocking is planned for the fallback threshold
                    within_threshold=_within_search(project),
                    blocking_mode=project.blocking,
                    completeness=project.blocking_completeness,
                    estimate_sample=project.estimate_sample,
                    progress=progress,
                    cancelled=cancel.is_set,
                )
                del rows
            across = found.across
            scores = found.scores
            fixed = threshold
            threshold, estimate = quality.choose(scores, fixed, auto, across)
            linking = matching.above(across, threshold)
            duplicates = None
            if project.within_threshold:
                within = found.within
                if project.field_groups:
                    progress.stage = "weighing fields"
                    within, duplicates = self._weigh_fields(project, found, record_ids, threshold)
                # Cross pairs below the threshold that a within link and a cross link both
                # imply, so the solver can put a changed-surname duplicate in its group.
                linking = matching.combine(
                    linking, within, matching.completing(across, within, threshold)
                )
            progress.stage = "solving"
            self._check(run_id, cancel)
            solution = matching.solve(
                linking,
                merge_threshold=project.merge_threshold if project.within_threshold else None,
            )
            sizes = [len(ids) for ids in record_ids]
            grouping = entities.Grouping.from_solution(solution, sizes)
            del solution
            progress.stage = "storing"
            self._check(run_id, cancel)
            everyone = np.concatenate(
                [np.frombuffer(ids, dtype=np.int64) for ids in record_ids]
                or [np.zeros(0, dtype=np.int64)]
            )
            del record_ids
            previous = entities.Previous.from_rows(
                self.store.iterate(
                    "SELECT record_id, entity_id FROM entities WHERE project_id = ?", (project.id,)
                )
            )
            assignment = entities.assign(grouping, everyone, previous)
            del previous
            linked_entities = grouping.linked_entities()
            linked, duplicated = grouping.status()
            report = quality.report(
                across=across,
                scores=scores,
                found=estimate,
                auto=auto,
                threshold_used=threshold,
                threshold_fixed=fixed,
                datasets=quality.dataset_rates(
                    grouping.dataset, linked, duplicated, sizes, self._dataset_names(project)
                ),
            )
            report = dataclasses.replace(
                report,
                duplicates=duplicates,
                attributes=quality_breakdown.for_run(
                    self.store,
                    project.id,
                    status=quality_breakdown.RecordStatus(
                        everyone, grouping.dataset, linked, duplicated, assignment
                    ),
                    names=[d.organisation for d in report.datasets],
                    released=project.released_attributes,
                    rule=project.disclosure,
                    project_key=self._project_key(project.id),
                ),
            )
            del grouping, linked, duplicated
            seconds = time.monotonic() - started
            with self.store.transaction() as tx:
                tx.execute("DELETE FROM entities WHERE project_id = ?", (project.id,))
                tx.executemany(
                    "INSERT INTO entities VALUES (?, ?, ?, ?)",
                    # In record order (each upload's ids ascend): pages fill one after another.
                    (
                        (rid, project.id, entity_id, run_id)
                        for rid, entity_id in assignment.rows(everyone)
                    ),
                )
                tx.execute(
                    "UPDATE runs SET state = 'completed', finished_at = ?, seconds = ?, "
                    "records = ?, entities = ?, linked_entities = ?, candidates = ?, "
                    "threshold = ? WHERE id = ?",
                    (
                        utc_now(),
                        seconds,
                        len(everyone),
                        assignment.count,
                        linked_entities,
                        matching.count_candidates(linking),
                        threshold,
                        run_id,
                    ),
                )
                tx.execute("INSERT INTO run_quality VALUES (?, ?)", (run_id, report.to_json()))
                tx.audit(
                    _event(
                        caller,
                        "run.completed",
                        project.id,
                        {
                            "run_id": run_id,
                            "threshold": threshold,
                            "records": len(everyone),
                            "entities": assignment.count,
                            "linked_entities": linked_entities,
                            "candidate_pairs": matching.count_candidates(linking),
                            "seconds": round(seconds, 3),
                            "matching": _matching_details(found, self.engine),
                            "quality": report.summary(),
                        },
                    )
                )
            progress.stage = "completed"
            log.info(
                "run %s of %s completed: %d records, %d entities (%d linked) in %.1f s",
                run_id,
                project.id,
                len(everyone),
                assignment.count,
                linked_entities,
                seconds,
            )
        except Cancelled:
            self._finish_run(caller, project, run_id, "cancelled", "cancelled on request", started)
        except Exception as exc:  # a run must always end in a recorded state
            log.exception("run %s of %s failed", run_id, project.id)
            self._finish_run(
                caller, project, run_id, "failed", f"matching failed: {type(exc).__name__}", started
            )

    def _finish_run(
        self,
        caller: Identity,
        project: Project,
        run_id: str,
        state: str,
        message: str,
        started: float,
    ) -> None:
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE runs SET state = ?, finished_at = ?, seconds = ?, message = ? WHERE id = ?",
                (state, utc_now(), time.monotonic() - started, message, run_id),
            )
            tx.audit(
                _event(caller, f"run.{state}", project.id, {"run_id": run_id, "message": message})
            )

    def _check(self, run_id: str, cancel: threading.Event) -> None:
        if cancel.is_set():
            raise Cancelled(f"run {run_id} was cancelled")

    def _load_datasets(
        self, project: Project, session: candidates.Session
    ) -> tuple[list[np.ndarray], list[array[int]]]:
        """Each committed upload as one dataset, in the project's organisation order.

        Encodings are read in batches straight into one packed array per
        dataset (``session.array``, which the engine's workers can share), so
        a dataset is never a Python list of per-record objects.
        """
        clk = project.encodings[0]
        datasets: list[np.ndarray] = []
        record_ids: list[array[int]] = []
        rows = self.store.query(
            "SELECT u.id, u.organisation, "
            "(SELECT COUNT(*) FROM records r WHERE r.upload_id = u.id) AS n FROM uploads u "
            "WHERE u.project_id = ? AND u.state = 'committed'",
            (project.id,),
        )
        order = {org: i for i, org in enumerate(project.organisations)}
        for upload in sorted(rows, key=lambda r: order.get(r["organisation"], len(order))):
            packed = session.array((int(upload["n"]), clk.nbytes))
            ids = array("q")
            batch: list[bytes] = []
            filled = 0
            for rid, blob in self.store.iterate(
                "SELECT id, substr(encodings, 1, ?) FROM records WHERE upload_id = ? ORDER BY id",
                (clk.nbytes, upload["id"]),
            ):
                ids.append(int(rid))
                batch.append(blob)
                if len(batch) == _LOAD_BATCH:
                    filled = _fill(packed, filled, batch, clk.nbytes)
            _fill(packed, filled, batch, clk.nbytes)
            datasets.append(packed)
            record_ids.append(ids)  # machine integers, not a list of Python ints
        return datasets, record_ids

    def _weigh_fields(
        self,
        project: Project,
        found: candidates.Found,
        record_ids: Sequence[array[int]],
        threshold: float,
    ) -> tuple[matching.Candidates, quality.DuplicateEstimate]:
        """Within-dataset candidates kept by the per-field model (coordinator.core.field_scoring).

        Reads the per-field filters of only the records the model needs (the
        within candidates, the cross-dataset anchors and random samples of at
        most about 60,000 records a dataset), not every record's once datasets
        are larger than that.
        """
        everyone = np.concatenate(
            [np.frombuffer(ids, dtype=np.int64) for ids in record_ids]
            or [np.zeros(0, dtype=np.int64)]
        )
        keep, estimate = field_scoring.weigh(
            found.across,
            found.within,
            threshold,
            [len(ids) for ids in record_ids],
            lambda rows: self._group_filters(project, everyone[rows]),
            flip=project.field_flip,
        )
        return matching.select(found.within, keep), estimate

    def _group_filters(self, project: Project, ids: np.ndarray) -> dict[str, np.ndarray]:
        """The per-field filters of the records ``ids``, one packed array a group, rows in
        the order of ``ids``."""
        order = np.argsort(ids, kind="stable")
        ascending = ids[order]
        start = project.encodings[0].nbytes
        width = sum(g.nbytes for g in project.field_groups)
        packed = np.zeros((len(ids), width), dtype=np.uint8)
        for first in range(0, len(ids), _IDS_AT_ONCE):
            part = ids[first : first + _IDS_AT_ONCE]
            marks = ",".join("?" * len(part))
            for rid, blob in self.store.query(
                f"SELECT id, substr(encodings, ?, ?) FROM records WHERE id IN ({marks})",
                (start + 1, width, *(int(i) for i in part)),
            ):
                packed[order[np.searchsorted(ascending, rid)]] = np.frombuffer(blob, np.uint8)
        out = {}
        at = 0
        for group in project.field_groups:
            out[group.name] = packed[:, at : at + group.nbytes]
            at += group.nbytes
        return out

    def _dataset_names(self, project: Project) -> list[str]:
        """Organisations of the committed uploads, in ``_load_datasets``' order."""
        order = {org: i for i, org in enumerate(project.organisations)}
        rows = self.store.query(
            "SELECT organisation FROM uploads WHERE project_id = ? AND state = 'committed'",
            (project.id,),
        )
        return sorted((r["organisation"] for r in rows), key=lambda o: order.get(o, len(order)))

    def run_status(self, caller: Identity, project_id: str, run_id: str = "") -> RunState:
        project = self._project(project_id)
        self._authorise(caller, "run.status", project, Role.ADMIN, Role.NODE)
        if not run_id:
            row = self.store.read_one(
                "SELECT id FROM runs WHERE project_id = ? ORDER BY started_at DESC, rowid DESC "
                "LIMIT 1",
                (project.id,),
            )
            if row is None:
                raise NotFound(f"project {project.id!r} has no runs yet")
            run_id = row["id"]
        state = self._run_state(run_id, project.id)
        if caller.role is not Role.ADMIN:
            # Entity counts of a run are overlap counts without disclosure control:
            # only the project's admin sees them; nodes get state and progress.
            state = dataclasses.replace(
                state, records=0, entities=0, linked_entities=0, quality=None
            )
        return state

    def cancel_run(self, caller: Identity, project_id: str, run_id: str) -> RunState:
        project = self._project(project_id)
        self._authorise(caller, "run.cancel", project, Role.ADMIN)
        state = self._run_state(run_id, project.id)
        if state.state == "running" and run_id in self._cancel:
            self._cancel[run_id].set()
        return self._run_state(run_id, project.id)

    def _run_state(self, run_id: str, project_id: str | None = None) -> RunState:
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
            self._run_quality(run_id),
            stage=stage if row["state"] == "running" else "",
            comparisons=compared,
            comparisons_per_second=round(rate, 1),
        )

    def _run_quality(self, run_id: str) -> quality.RunQuality | None:
        row = self.store.read_one("SELECT report FROM run_quality WHERE run_id = ?", (run_id,))
        return quality.RunQuality.from_json(row["report"]) if row is not None else None

    # --------------------------------------------------------------------- keys
    def linkage_keys(
        self, caller: Identity, project_id: str, batch_size: int = 5000
    ) -> Iterator[KeyBatch]:
        """The key of every record the caller's organisation uploaded, in batches.

        Every committed record has an entity (linked or alone), so the caller
        learns nothing about which of its records other services hold. The
        checks run when this is called, not when the batches are first read.
        """
        project = self._project(project_id)
        self._authorise(caller, "keys.read", project, Role.NODE)
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
                f"upload {upload['id']} is newer than project {project.id!r}'s latest "
                "run; ask the project's admin for a new run"
            )
        # Recorded before the first key leaves, so a release cut short is still on record.
        with self.store.transaction() as tx:
            tx.audit(
                _event(
                    caller,
                    "keys.released",
                    project.id,
                    {"run_id": run["id"], "keys": total, "upload_id": upload["id"]},
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
        project = self._project(project_id)
        self._authorise(caller, "keys.withdraw", project, Role.NODE)
        if len(tokens) > _MAX_WITHDRAW:
            raise InvalidRequest(f"at most {_MAX_WITHDRAW} tokens can be withdrawn in one call")
        for position, token in enumerate(tokens):
            if not _TOKEN.fullmatch(token):
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
            tx.executemany("DELETE FROM entities WHERE record_id = ?", ((i,) for i in found))
            tx.executemany("DELETE FROM records WHERE id = ?", ((i,) for i in found))
            tx.audit(
                _event(
                    caller,
                    "records.withdrawn",
                    project.id,
                    {
                        "upload_id": upload["id"],
                        "requested": len(wanted),
                        "withdrawn": len(found),
                        "not_found": len(wanted) - len(found),
                    },
                )
            )
        log.info(
            "%s withdrew %d records from %s (%d not found)",
            caller,
            len(found),
            project.id,
            len(wanted) - len(found),
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
        project_key = self._project_key(project_id)
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
                made = keys.linkage_keys(project_key, entities, scope)
                yield KeyBatch(run_id, tuple(zip(tokens, made, strict=True)), total)
                tokens, entities = [], []
        if tokens:
            made = keys.linkage_keys(project_key, entities, scope)
            yield KeyBatch(run_id, tuple(zip(tokens, made, strict=True)), total)

    def _project_key(self, project_id: str) -> bytes:
        row = self.store.query_one("SELECT project_key FROM projects WHERE id = ?", (project_id,))
        assert row is not None
        return bytes(row["project_key"])

    # ------------------------------------------------------------------- counts
    def overlap(self, caller: Identity, project_id: str) -> tuple[str, counts.CountTable]:
        """Entities in every combination of the project's datasets, under disclosure control."""
        query = queries.CountQuery(by=(queries.DATASETS,), margins=False)
        run_id, table = self.counts(caller, project_id, query, action="counts.overlap")
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
    ) -> tuple[str, queries.ReleasedTable]:
        """A count table over the latest run's entities, after the project's disclosure control.

        Only analysts of organisations the project lists may ask. The query,
        and every cell released or withheld, go to the audit log before the
        table is returned.
        """
        project = self._project(project_id)
        self._authorise(caller, action, project, Role.ANALYST)
        if caller.organisation not in project.analysts:
            raise self._refused(
                caller,
                action,
                project.id,
                NotAllowed(
                    f"analysts of {caller.organisation!r} may not query project {project.id!r}"
                    + ("" if project.analysts else "; it allows no analysts")
                ),
            )
        try:
            queries.check(query, project.organisations, project.released_attributes)
        except queries.QueryError as exc:
            raise self._refused(caller, action, project.id, InvalidRequest(str(exc))) from None
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
            self._project_key(project.id),
        )
        exact = queries.count(people, query, project.organisations)
        table = queries.release(exact, project.disclosure, query)
        with self.store.transaction() as tx:
            tx.audit(
                _event(
                    caller,
                    "counts.released",
                    project.id,
                    {
                        "run_id": run["id"],
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

    # ---------------------------------------------------------------- retention
    def close_project(self, caller: Identity, project_id: str, reason: str) -> int:
        """Close a project for good: erase its encodings, entities and key; return records erased.

        Closing ends the retention period early, as the project's owner may.
        """
        project = self._project(project_id)
        self._authorise(caller, "project.close", project, Role.ADMIN)
        if not reason.strip():
            raise InvalidRequest("closing a project needs a reason for the audit log")
        with self.store.transaction() as tx:
            uploads = retention.project_uploads(tx, project.id)
            erased = retention.erase_uploads(tx, uploads, "erased")
            tx.execute("DELETE FROM entities WHERE project_id = ?", (project.id,))
            # The relayed key material goes too: sealed secrets are no use once closed.
            tx.execute("DELETE FROM node_keys WHERE project_id = ?", (project.id,))
            tx.execute("DELETE FROM secret_envelopes WHERE project_id = ?", (project.id,))
            tx.execute(
                "UPDATE projects SET state = 'closed', project_key = zeroblob(32) WHERE id = ?",
                (project.id,),
            )
            tx.audit(
                _event(
                    caller,
                    "project.closed",
                    project.id,
                    {"reason": reason.strip(), "records_erased": erased, "uploads": len(uploads)},
                )
            )
        self.store.compact()
        log.info("project %s closed by %s: %d records erased", project.id, caller, erased)
        return erased

    def purge_expired(self, now: datetime | None = None) -> int:
        """Erase uploads older than their project's retention period; return records erased."""
        now = now or datetime.now(UTC)
        system = Identity("coordinator", Role.COORDINATOR)
        total = 0
        for project in self._projects.values():
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
                tx.audit(
                    _event(
                        system,
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
            log.info("retention: erased %d records of project %s", erased, project.id)
        if total:
            self.store.compact()
        return total

    # -------------------------------------------------------------------- admin
    def project_state(self, caller: Identity, project_id: str) -> ProjectState:
        project = self._project(project_id)
        self._authorise(caller, "project.state", project, Role.ADMIN)
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

    def quality_report(
        self, caller: Identity, project_id: str, run_id: str = ""
    ) -> tuple[str, quality.RunQuality, tuple[quality.ReleasedBin, ...]]:
        """A completed run's quality report for the project's admin, histogram under disclosure.

        Returns the run id, its stored quality figures and the best-score
        histogram with bins of 1 to the project's suppression threshold minus 1
        withheld. Reading it is audited.
        """
        project = self._project(project_id)
        self._authorise(caller, "quality.read", project, Role.ADMIN)
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
                _event(
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

    # -------------------------------------------------------------------- audit
    def audit_entries(
        self,
        caller: Identity,
        project_id: str = "",
        organisation: str = "",
        action: str = "",
        since: str = "",
        until: str = "",
    ) -> list[AuditEntry]:
        """Audit entries matching the filters, for auditors."""
        self._authorise(caller, "audit.read", None, Role.AUDITOR)
        return [
            e
            for e in self.store.audit_entries()
            if (not project_id or e.event.project_id == project_id)
            and (not organisation or e.event.actor_organisation == organisation)
            and (not action or e.event.action.startswith(action))
            and (not since or e.time >= since)
            and (not until or e.time[: len(until)] <= until)
        ]

    def audit_checkpoint(self, caller: Identity) -> SignedCheckpoint:
        """The latest signed checkpoint, signed now if the log grew since the last one.

        Every role may fetch it: it holds a size and a hash, and parties who
        compare the checkpoints they were shown are what catches a coordinator
        showing different logs to different parties.
        """
        self._authorise(
            caller, "audit.checkpoint", None, Role.AUDITOR, Role.NODE, Role.ADMIN, Role.ANALYST
        )
        return self.store.audit_checkpoint()

    def audit_inclusion_proof(
        self, caller: Identity, index: int, size: int = 0
    ) -> tuple[AuditEntry, SignedCheckpoint, list[bytes]]:
        """An entry, a checkpoint of ``size`` entries (0: the latest) and the entry's proof."""
        self._authorise(caller, "audit.read", None, Role.AUDITOR)
        checkpoint = self._checkpoint_of_size(size)
        if not 0 <= index < checkpoint.size:
            raise InvalidRequest(f"entry {index} is not in the log of {checkpoint.size} entries")
        [entry] = self.store.audit_entries(index, index)
        return entry, checkpoint, self.store.audit_inclusion_proof(index, checkpoint.size)

    def audit_consistency_proof(
        self, caller: Identity, old_size: int, new_size: int = 0
    ) -> tuple[SignedCheckpoint, SignedCheckpoint | None, list[bytes]]:
        """Proof that the log of ``old_size`` entries is a prefix of a signed later log.

        Returns the newer checkpoint (``new_size``, 0: the latest), the older
        one if the coordinator signed one of that size, and the proof.
        """
        self._authorise(
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


def _name_bad_token(chunk_index: int, tokens: Sequence[str]) -> None:
    """Raise for the chunk's first bad or repeated token, naming its place."""
    seen: set[str] = set()
    for position, token in enumerate(tokens):
        where = f"chunk {chunk_index}, record {position}"
        if not _TOKEN.fullmatch(token):
            raise InvalidRequest(f"{where}: token must be 8 to 64 URL-safe characters")
        if token in seen:
            raise InvalidRequest(f"{where}: token repeated within the chunk")
        seen.add(token)


def _name_bad_layout(project: Project, where: str, encodings: Sequence[tuple[str, bytes]]) -> None:
    """Raise for a record whose encodings are not the project's, saying what differs."""
    expected = [(e.name, e.nbytes) for e in project.encodings]
    names = [name for name, _ in encodings]
    want = [name for name, _ in expected]
    if names != want:
        raise InvalidRequest(f"{where}: encodings {names} do not match the project's {want}")
    name, length = next(
        (n, len(bits))
        for (n, bits), (_, w) in zip(encodings, expected, strict=True)
        if len(bits) != w
    )
    raise InvalidRequest(
        f"{where}: encoding {name!r} is {length * 8} bits; project {project.id!r} "
        f"expects {dict(expected)[name] * 8}"
    )


def _checked_attributes(
    project: Project, released: set[str], where: str, record: IncomingRecord
) -> tuple[tuple[str, str], ...]:
    """A record's released attributes, sorted by name, once each is known to be allowed."""
    for name, value in record.attributes:
        if name not in released:
            raise InvalidRequest(
                f"{where}: attribute {name!r} is not released by project {project.id!r}"
            )
        if not _ATTRIBUTE_VALUE.fullmatch(value):
            raise InvalidRequest(
                f"{where}: attribute {name!r} must be a coarse code of 1 to 32 letters, "
                "digits, spaces or . _ + -"
            )
    if len({name for name, _ in record.attributes}) != len(record.attributes):
        raise InvalidRequest(f"{where}: an attribute is repeated")
    return tuple(sorted(record.attributes))


def _split(blob: bytes, layout: Sequence[EncodingLayout]) -> list[bytes]:
    parts = []
    offset = 0
    for encoding in layout:
        parts.append(blob[offset : offset + encoding.nbytes])
        offset += encoding.nbytes
    return parts


_LOAD_BATCH = 10_000
#: Record ids per query when reading per-field filters (below SQLite's variable limit).
_IDS_AT_ONCE = 900


@dataclass
class _RunningDigest:
    """An open upload's digest so far, over its chunks 0 … ``chunks`` - 1 in order."""

    digest: UploadDigest = field(default_factory=UploadDigest)
    chunks: int = 0
    records: int = 0


def _fill(packed: np.ndarray, start: int, batch: list[bytes], nbytes: int) -> int:
    """Copy a batch of stored encodings into rows ``start``… of ``packed``; empties the batch."""
    if batch:
        block = np.frombuffer(b"".join(batch), dtype=np.uint8).reshape(len(batch), nbytes)
        packed[start : start + len(batch)] = block
        start += len(batch)
        batch.clear()
    return start


def _within_search(project: Project) -> float:
    """The record-level Dice within-dataset candidates are searched down to.

    With per-field filters the field model decides, so the search goes down
    to its floor; otherwise the project's within threshold decides alone.
    """
    if project.within_threshold and project.field_groups:
        return min(project.within_threshold, field_scoring.WITHIN_FLOOR)
    return project.within_threshold


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


def _consent_details(consent: ConsentSummary) -> dict[str, object]:
    return {"policy_sha256": consent.policy_sha256, "counts": dict(consent.counts)}


def _event(
    caller: Identity, action: str, project_id: str, details: Mapping[str, object]
) -> AuditEvent:
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
