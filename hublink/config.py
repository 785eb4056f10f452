"""Typed configuration, loaded once per process from TOML.

Every hublink process (coordinator, node, analyst or admin client) reads one
TOML file into one frozen dataclass. Unknown keys are refused and every error
names the file and the key, because a misspelt key that is silently ignored
is how a node ends up hashing the wrong column. Relative paths are resolved
against the directory of the file that names them, so a folder of configs
can be moved as a whole. The reading itself is ``hublink.config_loader``; its
names are re-exported here, where callers have always found them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hublink.config_loader import (
    ConfigError,
    about,
    default_of,
    defines,
    from_mapping,
    load,
)

__all__ = [
    "AttributeSection",
    "ClientConfig",
    "ConfigError",
    "CoordinatorConfig",
    "InputSection",
    "NodeConfig",
    "ProjectConfig",
    "TlsSection",
    "about",
    "default_of",
    "defines",
    "from_mapping",
    "load",
]


@dataclass(frozen=True)
class TlsSection:
    """Certificate files for mutual TLS: the trusted CA, this party's certificate and key."""

    ca: Path = field(
        metadata=about(
            "PEM file of the certificate authority every peer's certificate must chain to."
        )
    )
    cert: Path = field(
        metadata=about("PEM certificate of this party (its organisation and role are in it).")
    )
    key: Path = field(
        metadata=about(
            "PEM private key of that certificate; readable only by the account that runs hublink."
        )
    )


@dataclass(frozen=True)
class ProjectConfig:
    """A linkage project, defined by a TOML file the coordinator serves.

    A project has one purpose, a fixed set of member organisations and one
    linkage schema; everything the nodes encode is pinned by the hash of that
    schema plus the normalisation it assumes. This is the one definition of a
    project's settings and their defaults: the coordinator core's ``Project``
    is built from it (coordinator.projects) and its fingerprint is derived from
    the keys marked ``fingerprint``.
    """

    id: str = field(
        metadata=defines("Project identifier the nodes name in their config (`project`).")
    )
    purpose: str = field(
        metadata=defines("The single purpose the organisations agreed; recorded in the audit log.")
    )
    organisations: tuple[str, ...] = field(
        metadata=defines(
            "Organisation slugs (from their certificates) that take part; one alone "
            "deduplicates its own records (a project of one organisation)."
        )
    )
    schema: Path = field(
        metadata=about(
            "The clkhash linkage schema (JSON); its hash is pinned by every node. Besides the "
            'six fields it may add others, each naming a "normaliser" (free_text, '
            'number_and_street or code), and give the postcode feature a "country" (GB, AU '
            "or any; GB if unset): see docs/design.md."
        )
    )
    # Record-level Dice thresholds decide alone only with field_scoring = false; salted record
    # CLKs score true pairs ~0.95, 0.8 or 0.65 (0, 1, 2 salt fields differ): docs/benchmarks.md.
    threshold: float = field(
        default=0.83,
        metadata=defines(
            """Dice similarity at or above which two records of different organisations match
            when no estimate can be made; blocking is planned for it. Record-only salted
            projects link best near 0.66-0.7 (``auto_threshold = false``): docs/benchmarks.md."""
        ),
    )
    auto_threshold: bool = field(
        default=True,
        metadata=defines(
            """Estimate each run's cross-organisation threshold from its similarity scores
            (coordinator.core.quality); ``threshold`` is then the fallback when the scores allow
            no estimate. false: always use ``threshold``, with the estimate reported beside it.
            Measured in bench/threshold.py."""
        ),
    )
    within_threshold: float = field(
        default=0.9,
        metadata=defines(
            "Similarity at which two records of the same organisation are the same person "
            "without field scoring (about 0.74 for the salted record CLK: docs/benchmarks.md)."
        ),
    )
    merge_threshold: float = field(
        default=0.9,
        metadata=defines(
            "Similarity at which groups are merged when within-organisation duplicates are linked."
        ),
    )
    blocking: str = field(
        default="auto",
        metadata=defines(
            """How a run avoids comparing every pair: "lsh" (locality-sensitive bands computed
            from the encodings at the coordinator), "none" (all pairs), or "auto" (lsh above
            2e9 comparisons, ~45,000 records a side; salted record CLK: 2e10, ~140,000).""",
            entry="blocking",
        ),
    )
    blocking_completeness: float = field(
        default=0.998,
        metadata=defines(
            "With blocking: the chance that a pair exactly at the fallback threshold is compared.",
            entry="blocking",
        ),
    )
    estimate_sample: int = field(
        default=1000,
        metadata=defines(
            "With blocking: records whose exact best scores feed the threshold estimate.",
            entry="blocking",
        ),
    )
    suppression_threshold: int = field(
        default=0,
        metadata=defines(
            "Counts from 1 to this minus 1 are withheld; 0 takes the disclosure preset's."
        ),
    )
    max_chunk_records: int = field(
        default=2000, metadata=about("Most records a node may send in one chunk.")
    )
    max_records: int = field(default=5_000_000, metadata=about("Most records one upload may hold."))
    min_threshold: float = field(
        default=0.6,
        metadata=about(
            """Lowest threshold a run may be started with (and the project's ``threshold`` may
            be); lower is refused with INVALID_ARGUMENT. Also the lowest similarity a run keeps
            candidate pairs from: random pairs of salted record CLKs score 0.5 give or take
            0.01, so below about 0.55 almost every pair is a candidate and a run's memory grows
            with the square of the records. Legacy unsalted projects keep candidates from 0.7
            unless a run asks for a lower threshold: set 0.7 for their old bound."""
        ),
    )
    max_candidates: int = field(
        default=50_000_000,
        metadata=about(
            """Most candidate pairs one run may hold (about 24 bytes each in memory, twice that
            while they are merged: 50 million is about 2.4 GB). Counted while candidates are
            gathered; a run that finds more stops itself and is recorded as failed, with the
            reason in its status and the audit log."""
        ),
    )
    max_open_uploads: int = field(
        default=4,
        metadata=about(
            """Most uploads one organisation may have begun and not yet committed in the
            project; BeginUpload beyond it is refused (RESOURCE_EXHAUSTED) until one is
            committed, abandoned or expires."""
        ),
    )
    open_upload_hours: float = field(
        default=48.0,
        metadata=about(
            """Hours after which an upload begun and not committed expires: its chunks are
            erased and it no longer counts against ``max_open_uploads``; committing it is
            then refused."""
        ),
    )
    released_attributes: tuple[str, ...] = field(
        default=(),
        metadata=defines(
            "Coarse attributes (age_band, area, …) nodes may send beside the encodings."
        ),
    )
    disclosure: str = field(
        default="hospital-statistics",
        metadata=about(
            'Preset: "hospital-statistics", "strict" or "unrounded" (see '
            "coordinator.core.disclosure)."
        ),
    )
    rounding_base: int = field(
        default=0,
        metadata=about(
            "Round released counts to multiples of this; 0 takes the preset's, 1 means unrounded."
        ),
    )
    admins: tuple[str, ...] = field(
        default=(),
        metadata=defines(
            """Organisations whose admin certificates administer this project (read its state
            and quality report, start and cancel runs, close it); empty: no admin may. An admin
            certificate of any other organisation is refused, and the refusal audited."""
        ),
    )
    auditors: tuple[str, ...] = field(
        default=(),
        metadata=defines(
            """Organisations whose auditor certificates may read this project's audit entries
            and their inclusion proofs (never another project's); empty: no auditor may."""
        ),
    )
    analysts: tuple[str, ...] = field(
        default=(),
        metadata=defines(
            "Organisations whose analysts may read the project and query its counts; empty "
            "means no analyst may."
        ),
    )
    pinned_certificates: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict,
        metadata=defines(
            """"<role>:<organisation>" -> the certificate fingerprints ("sha256:<hex>", printed
            by `hublink pki issue`) that alone may act in that role for this project, e.g.
            "admin:linkage-unit" = ["sha256:…"]; a role and organisation not listed here are
            trusted by the certificate's organisation alone."""
        ),
    )
    attribute_precedence: tuple[str, ...] = field(
        default=(),
        metadata=defines(
            "Whose attribute value counts when organisations disagree; empty: the most common "
            "value."
        ),
    )
    reference_date: str = field(
        default="",
        metadata=defines(
            "Date (YYYY-MM-DD) at which nodes compute age bands; empty: the day of upload."
        ),
    )
    key_scope: str = field(
        default="project",
        metadata=defines(
            '"project": one linkage key per person across the project; "organisation": a '
            "different key per organisation for the same person."
        ),
    )
    retention_days: int = field(
        default=365,
        metadata=defines("Days after which uploads are erased by the retention sweep."),
    )
    normalisation: str = field(
        default="",
        metadata=about(
            "Version of the normalisation the encodings assume (empty: this hublink's); part "
            "of the pinned hash."
        ),
    )
    encoding_sha256: str = field(
        default="",
        metadata=about(
            "Encoding hash to pin; loading fails if the schema hashes otherwise (empty: not "
            "pinned)."
        ),
    )
    hardening: str = field(
        default="balance",
        metadata=about(
            'Post-processing of each CLK at the node ("balance" or "none"); part of the '
            "pinned hash."
        ),
    )
    field_scoring: bool = field(
        default=True,
        metadata=about(
            """Nodes also send per-field filters, salted per record (hublink/schemas/
            field-groups.json), and one field model decides every candidate pair (docs/design.md,
            "Duplicate referrals, field by field"). false: the record CLK alone decides; it
            costs accuracy, which quality.html shows. Part of the pinned hash."""
        ),
    )
    record_clk: str = field(
        default="salted",
        metadata=about(
            """"salted": three parts salted by birth date, postcode and name (hublink/schemas/
            record-clk.json); no attack measured names over 1%. "unsalted" (legacy, for projects
            pinned to it; warned on load): one filter over every field, whose blocks name 8.27%
            of given names (docs/benchmarks.md). Part of the pinned hash."""
        ),
    )
    node_keys: Mapping[str, str] = field(
        default_factory=dict,
        metadata=defines(
            """Organisation -> fingerprint ("sha256:<hex>") of its node's secret-exchange key,
            as each organisation confirmed it; served to nodes so they can cross-check their own
            copy."""
        ),
    )


@dataclass(frozen=True)
class CoordinatorConfig:
    """The coordinator process: where it listens, stores and which projects it serves."""

    tls: TlsSection = field(metadata=about("The coordinator's certificate files ([tls] table)."))
    listen: str = field(
        default="127.0.0.1:50051",
        metadata=about("host:port of the gRPC server (mutual TLS only)."),
    )
    database: Path = field(
        default=Path("coordinator.db"),
        metadata=about(
            "SQLite file holding uploads, runs, keys and the audit log; keep it on local disk."
        ),
    )
    audit_key: Path | None = field(
        default=None,
        metadata=about(
            """Ed25519 key that signs the audit log's checkpoints (PEM, mode 0600), created on
            first start; default: beside the database, <database stem>.audit-key.pem."""
        ),
    )
    projects: tuple[Path, ...] = field(
        default=(), metadata=about("Project definition files (TOML) this coordinator serves.")
    )
    max_workers: int = field(default=16, metadata=about("Threads serving gRPC calls."))
    revocation_list: Path | None = field(
        default=None,
        metadata=about(
            "File of revoked certificate fingerprints or `serial:<hex>` lines, read again when "
            "it changes; calls are refused while a configured file is missing."
        ),
    )
    organisation_cas: Mapping[str, Path] = field(
        default_factory=dict,
        metadata=about(
            "Organisation -> CA file its certificates must chain to, for organisations that "
            "run their own CA."
        ),
    )
    ops_listen: str = field(
        default="127.0.0.1:9100",
        metadata=about(
            """Plain-HTTP address of /healthz, /readyz and /metrics (no client certificate, no
            data); empty: not served."""
        ),
    )
    log_format: str = field(
        default="text",
        metadata=about('"text" (human-readable lines) or "json" (one JSON object per line).'),
    )
    shutdown_grace_seconds: float = field(
        default=30.0,
        metadata=about(
            """On SIGTERM, how long requests and matching runs in flight may take to finish; a
            run still going after it is recorded as failed."""
        ),
    )
    matching_workers: int = field(
        default=0,
        metadata=about("Worker processes that compare records during a run; 0: one per core."),
    )
    dask_scheduler: str = field(
        default="",
        metadata=about(
            """Address of a Dask scheduler ("tls://host:8786") to run comparisons on instead of
            local workers; empty: local. Needs dask_ca, dask_cert and dask_key (Dask's TLS)."""
        ),
    )
    dask_ca: Path | None = field(
        default=None,
        metadata=about(
            "CA certificate the Dask scheduler's and workers' certificates are checked against."
        ),
    )
    dask_cert: Path | None = field(
        default=None, metadata=about("The coordinator's client certificate for the Dask cluster.")
    )
    dask_key: Path | None = field(default=None, metadata=about("Its private key."))


@dataclass(frozen=True)
class InputSection:
    """Where a node's records come from and how its columns map to linkage fields."""

    path: Path = field(
        metadata=about("The extract to read: CSV, XLSX or FHIR NDJSON (see format).")
    )
    id_column: str = field(
        metadata=about('Column holding the local record id (never sent); "id" for FHIR.')
    )
    columns: Mapping[str, str] = field(
        default_factory=dict,
        metadata=about(
            "Linkage field -> column (given_name, family_name, date_of_birth, sex, postcode, "
            "nhs_number, any field the schema adds such as address_line, or full_name for a "
            "column of whole names; empty for FHIR: its standard mapping)."
        ),
    )
    encoding: str = field(
        default="auto",
        metadata=about(
            'Text encoding of a CSV file; "auto" detects UTF-8 (with or without BOM), UTF-16 '
            "and Windows-1252/Latin-1, and stops naming the encoding to set when it cannot tell."
        ),
    )
    date_formats: tuple[str, ...] = field(
        default=(),
        metadata=about("strptime formats tried for dates, in order (empty: the built-in list)."),
    )
    format: str = field(
        default="auto",
        metadata=about(
            '"csv", "xlsx", "fhir-ndjson" (FHIR R4 Bulk Data Patient resources), or "auto" '
            "(from the file's first bytes, then its suffix)."
        ),
    )
    delimiter: str = field(
        default="", metadata=about("CSV delimiter; empty detects comma, semicolon, tab or pipe.")
    )
    sheet: str = field(default="", metadata=about("XLSX sheet to read; empty for the first."))


@dataclass(frozen=True)
class AttributeSection:
    """A coarse attribute a node derives from one of its columns and sends with each record.

    ``derive`` says how: "age_band" turns a date of birth into a whole-year
    band at the project's reference date ("0-1" … "4-5", "5+"); "code" sends
    the column's value as it is (a local-authority or ward code); "flag" sends
    "yes" or "no" (yes for Y, YES, TRUE, 1). Only attributes the project lists
    in ``released_attributes`` may be configured.
    """

    column: str = field(metadata=about("CSV column the attribute is derived from."))
    derive: str = field(
        default="code",
        metadata=about('"age_band", "code" or "flag" (see the section\'s description).'),
    )


@dataclass(frozen=True)
class NodeConfig:
    """One organisation's node for one project."""

    coordinator: str = field(metadata=about("host:port of the coordinator."))
    project: str = field(metadata=about("Project identifier to upload into."))
    schema: Path = field(
        metadata=about("The project's linkage schema (JSON), as the coordinator serves it.")
    )
    input: InputSection = field(metadata=about("Where the records come from ([input] table)."))
    tls: TlsSection = field(metadata=about("The node's certificate files ([tls] table)."))
    state_dir: Path = field(
        default=Path("node-state"),
        metadata=about("Token store, receipts and the node's log; keep it and back it up."),
    )
    output: Path = field(
        default=Path("linked.csv"),
        metadata=about("Where `hublink node keys` writes local id -> linkage key."),
    )
    secret_file: Path | None = field(
        default=None, metadata=about("File holding the project's linkage secret.")
    )
    secret_env: str = field(
        default="", metadata=about("Environment variable holding the linkage secret instead.")
    )
    server_name: str = field(
        default="", metadata=about("Coordinator certificate's expected name, if not its host.")
    )
    chunk_records: int = field(
        default=1000,
        metadata=about("Records per chunk sent (capped by the project's max_chunk_records)."),
    )
    encode_workers: int = field(
        default=0,
        metadata=about("Processes normalising and encoding; 0: one a core (1 below 5,000 records)"),
    )
    timeout_seconds: float = field(
        default=60.0, metadata=about("Deadline of each call to the coordinator.")
    )
    retry_attempts: int = field(
        default=5,
        metadata=about(
            "Tries per call when the coordinator is unreachable, slow or busy (1: never retry)."
        ),
    )
    retry_initial_seconds: float = field(
        default=0.5,
        metadata=about("First wait before a retry; each later wait doubles, with jitter."),
    )
    retry_max_seconds: float = field(
        default=15.0, metadata=about("Longest wait between two tries.")
    )
    coordinator_key: Path | None = field(
        default=None,
        metadata=about(
            """The coordinator's audit public key (the coordinator.pub line) that receipts must
            be signed with. Without it the node trusts the key of its first receipt and keeps it
            in state_dir/coordinator.pub, refusing any other key afterwards."""
        ),
    )
    consent_policy: Path | None = field(
        default=None,
        metadata=about(
            "TOML consent policy (node.policy_file); without one every readable record is included."
        ),
    )
    max_bad_share: float = field(
        default=0.05,
        metadata=about(
            "Share of unreadable rows above which a run stops (the mapping is probably wrong)."
        ),
    )
    rejects_file: Path | None = field(
        default=None,
        metadata=about(
            "Where bad rows are listed (row, field, reason); default state_dir/rejects.csv."
        ),
    )
    hardening: str = field(
        default="balance",
        metadata=about(
            "Must match the project's hardening; it is part of the encoding hash both sides pin."
        ),
    )
    field_scoring: bool = field(
        default=True,
        metadata=about(
            "Must match the project's field_scoring; it is part of the encoding hash both "
            "sides pin."
        ),
    )
    record_clk: str = field(
        default="salted", metadata=about("Must match the project's record_clk (pinned hash).")
    )
    secret_exchange: bool = field(
        default=False,
        metadata=about(
            """Take the linkage secret from the exchange through the coordinator (``hublink node
            secret …``) instead of secret_file / secret_env."""
        ),
    )
    peer_ca: Path | None = field(
        default=None,
        metadata=about(
            """CA bundle, not run by the coordinator's operator, that other nodes' certificates
            must chain to for their secret-exchange keys to be trusted."""
        ),
    )
    node_keys: Mapping[str, str] = field(
        default_factory=dict,
        metadata=about(
            """Organisation -> confirmed fingerprint of its secret-exchange key (the project
            file's [node_keys], as this organisation confirmed it). Used when peer_ca is not
            set."""
        ),
    )
    attributes: Mapping[str, AttributeSection] = field(
        default_factory=dict,
        metadata=about(
            "Released attribute name -> how it is derived from a column ([attributes.age_band])."
        ),
    )


@dataclass(frozen=True)
class ClientConfig:
    """An analyst's, auditor's or admin's connection to the coordinator."""

    coordinator: str = field(metadata=about("host:port of the coordinator."))
    tls: TlsSection = field(metadata=about("The client's certificate files ([tls] table)."))
    server_name: str = field(
        default="", metadata=about("Coordinator certificate's expected name, if not its host.")
    )
    timeout_seconds: float = field(
        default=60.0, metadata=about("Deadline of each call to the coordinator.")
    )
    display_names: Mapping[str, str] = field(
        default_factory=dict,
        metadata=about("Organisations' names for people, by slug ([display_names] table)."),
    )
