"""The plain data the coordinator's core takes and returns.

Nothing here touches the store or the transport: the stage modules (uploads,
runs, releases, lifecycle, audit_reads) pass these values in and out, and the
rpc layer converts them to and from protobuf.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from coordinator.core import disclosure, quality
from coordinator.core.audit import AuditEntry
from hublink.config import ProjectConfig, default_of
from hublink.spec import EncodingLayout


def _default(name: str) -> Any:
    """The project file's default for ``name``: the one place a project default is written."""
    return default_of(ProjectConfig, name)


def _default_rule() -> disclosure.Rule:
    """The disclosure rule of a project file that sets none of its keys."""
    return disclosure.rule_for(
        _default("disclosure"), _default("suppression_threshold"), _default("rounding_base")
    )


@dataclass(frozen=True)
class Project:
    """A project as the core sees it: its project file (``hublink.config.ProjectConfig``),
    resolved.

    Settings named as in the project file hold its values and take its defaults
    (``coordinator.projects.load_project`` copies them by name); this class
    writes no default of its own. The rest is what the file resolves to: the
    schema's text, hash and encodings, the disclosure rule and the definition's
    fingerprint.
    """

    id: str
    purpose: str
    organisations: tuple[str, ...]
    schema_json: str
    encoding_sha256: str
    encodings: tuple[EncodingLayout, ...]
    definition_sha256: str
    threshold: float = _default("threshold")
    """The project's threshold: the fallback of runs whose admin requested none."""
    auto_threshold: bool = _default("auto_threshold")
    """Choose each run's threshold from its scores (coordinator.core.quality)."""
    within_threshold: float = _default("within_threshold")
    merge_threshold: float = _default("merge_threshold")
    blocking: str = _default("blocking")
    """"auto", "lsh" or "none": see coordinator.core.blocking."""
    blocking_completeness: float = _default("blocking_completeness")
    estimate_sample: int = _default("estimate_sample")
    max_chunk_records: int = _default("max_chunk_records")
    max_records: int = _default("max_records")
    record_clk: str = _default("record_clk")
    """How nodes make the record CLK ("unsalted" or "salted"): sets the candidate floors."""
    min_threshold: float = _default("min_threshold")
    """Lowest threshold a run may link at; also the floor candidates are kept from."""
    max_candidates: int = _default("max_candidates")
    """Most candidate pairs a run may hold before it stops itself (coordinator.core.candidates)."""
    max_open_uploads: int = _default("max_open_uploads")
    """Most uncommitted uploads an organisation may hold in the project at once."""
    open_upload_hours: float = _default("open_upload_hours")
    """Hours after which an uncommitted upload expires."""
    released_attributes: tuple[str, ...] = _default("released_attributes")
    disclosure: disclosure.Rule = field(default_factory=_default_rule)
    """How counts are protected before analysts see them (coordinator.core.disclosure)."""
    admins: tuple[str, ...] = _default("admins")
    """Organisations whose admins administer the project; empty: none may."""
    auditors: tuple[str, ...] = _default("auditors")
    """Organisations whose auditors read the project's audit entries; empty: none may."""
    analysts: tuple[str, ...] = _default("analysts")
    """Organisations whose analysts may query counts; empty: none may."""
    pinned_certificates: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _default("pinned_certificates")
    )
    """"role:organisation" -> the only certificate fingerprints (hex) accepted in that role."""
    attribute_precedence: tuple[str, ...] = _default("attribute_precedence")
    """Whose attribute value counts when organisations disagree; empty: the most common."""
    reference_date: str = _default("reference_date")
    """Date at which nodes compute age bands (YYYY-MM-DD), sent to them with the project."""
    key_scope: str = _default("key_scope")
    retention_days: int = _default("retention_days")
    node_keys: Mapping[str, str] = field(default_factory=lambda: _default("node_keys"))
    """Confirmed fingerprints of member nodes' secret-exchange keys, from the project file."""
    secret_epoch: int = 0
    """Epoch of the linkage secret now in force (0: no exchanged secret); filled per request."""
    field_flip: float = 0.0
    """Chance nodes flipped each bit of a per-field filter (``LinkageSpec.group_flip``)."""
    field_identifiers: tuple[str, ...] = ()
    """Comparisons no two people share (``LinkageSpec.identifier_comparisons``)."""

    def names(self, role: str, organisation: str) -> bool:
        """Whether the project lets ``organisation`` act in ``role`` (its member list for nodes,
        its admins, auditors or analysts otherwise)."""
        members = {
            "node": self.organisations,
            "admin": self.admins,
            "auditor": self.auditors,
            "analyst": self.analysts,
        }.get(role, ())
        return organisation in members

    @property
    def suppression_threshold(self) -> int:
        """Counts from 1 to this minus 1 are withheld (the disclosure rule's threshold)."""
        return self.disclosure.threshold

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
    chosen_threshold: float
    """The threshold the run links at: the fallback until a completed run has chosen."""
    seconds: float
    message: str
    quality: quality.RunQuality | None = None
    """A completed run's quality estimate; only the project's admin is shown it."""
    stage: str = ""
    """What a running run is doing: "loading", "comparing", "solving" or "storing"."""
    comparisons: int = 0
    """Pairs compared so far (a blocked run: an estimate from its bands)."""
    comparisons_per_second: float = 0.0
    requested_threshold: float | None = None
    """The threshold the admin asked for with the run (None: none; known while the run is
    in this process's memory or from its quality report)."""
    fallback_threshold: float = 0.0
    """The requested threshold, else the project's: what the run links at when it may not,
    or cannot, choose one from its scores."""

    @property
    def threshold(self) -> float:
        """The chosen threshold, under the name the wire (``RunStatus.threshold``) uses."""
        return self.chosen_threshold


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
