"""Typed configuration, loaded once per process from TOML.

Every hublink process (coordinator, node, analyst or admin client) reads one
TOML file into one frozen dataclass. Unknown keys are refused and every error
names the file and the key, because a misspelt key that is silently ignored
is how a node ends up hashing the wrong column. Relative paths are resolved
against the directory of the file that names them, so a folder of configs
can be moved as a whole.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class TlsSection:
    """Certificate files for mutual TLS: the trusted CA, this party's certificate and key."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class ProjectConfig:
    """A linkage project, defined by a TOML file the coordinator serves.

    A project has one purpose, a fixed set of member organisations and one
    linkage schema; everything the nodes encode is pinned by the hash of that
    schema plus the normalisation it assumes.
    """

    id: str
    purpose: str
    organisations: tuple[str, ...]
    schema: Path
    # Tuned for balanced (hardened) 2048-bit encodings, whose Dice similarity is the share
    # of CLK positions two records agree on: bench/hardening_tuning.py. Unhardened CLKs
    # were best near threshold 0.8 / within 0.88.
    threshold: float = 0.83
    auto_threshold: bool = True
    """Estimate each run's cross-organisation threshold from its similarity scores
    (coordinator.core.quality); ``threshold`` is then the fallback when the scores allow no
    estimate. false: always use ``threshold``, with the estimate reported beside it.
    Measured in bench/threshold.py."""
    within_threshold: float = 0.9
    merge_threshold: float = 0.9
    blocking: str = "auto"
    """How a run avoids comparing every pair: "lsh" (locality-sensitive bands computed from
    the encodings at the coordinator), "none" (all pairs), or "auto" (lsh once all-pairs would
    exceed 2e9 comparisons, about 45,000 records a side). See coordinator.core.blocking."""
    blocking_completeness: float = 0.998
    """With blocking: the chance that a pair exactly at the fallback threshold is compared."""
    estimate_sample: int = 1000
    """With blocking: records whose exact best scores feed the threshold estimate."""
    suppression_threshold: int = 0
    """Counts from 1 to this minus 1 are withheld; 0 takes the disclosure preset's."""
    max_chunk_records: int = 2000
    max_records: int = 5_000_000
    released_attributes: tuple[str, ...] = ()
    disclosure: str = "hospital-statistics"
    """Preset: "hospital-statistics", "strict" or "unrounded" (see coordinator.core.disclosure)."""
    rounding_base: int = 0
    """Round released counts to multiples of this; 0 takes the preset's, 1 means unrounded."""
    analysts: tuple[str, ...] = ()
    """Organisations whose analysts may query counts; empty means no analyst may."""
    attribute_precedence: tuple[str, ...] = ()
    """Whose attribute value counts when organisations disagree; empty: the most common value."""
    reference_date: str = ""
    """Date (YYYY-MM-DD) at which nodes compute age bands; empty: the day of upload."""
    key_scope: str = "project"
    retention_days: int = 365
    normalisation: str = ""
    encoding_sha256: str = ""
    hardening: str = "balance"
    """Post-processing of each CLK at the node ("balance" or "none"); part of the pinned hash."""
    field_scoring: bool = False
    """Nodes also send per-field filters (given name; family name; date of birth with sex;
    postcode with NHS number; hublink/schemas/field-groups.json) and the coordinator weighs
    them Fellegi-Sunter style to tell duplicate referrals from twins and siblings. Discloses
    more than the record CLK alone (README, "Duplicate referrals, field by field"); part of
    the pinned hash."""
    node_keys: Mapping[str, str] = field(default_factory=dict)
    """Organisation -> fingerprint ("sha256:<hex>") of its node's secret-exchange key, as each
    organisation confirmed it; served to nodes so they can cross-check their own copy."""


@dataclass(frozen=True)
class CoordinatorConfig:
    """The coordinator process: where it listens, stores and which projects it serves."""

    tls: TlsSection
    listen: str = "127.0.0.1:50051"
    database: Path = Path("coordinator.db")
    audit_key: Path | None = None
    """Ed25519 key that signs the audit log's checkpoints (PEM, mode 0600), created on first
    start; default: beside the database, <database stem>.audit-key.pem."""
    projects: tuple[Path, ...] = ()
    max_workers: int = 16
    revocation_list: Path | None = None
    organisation_cas: Mapping[str, Path] = field(default_factory=dict)
    ops_listen: str = "127.0.0.1:9100"
    """Plain-HTTP address of /healthz, /readyz and /metrics (no client certificate, no data);
    empty: not served."""
    log_format: str = "text"
    """"text" (human-readable lines) or "json" (one JSON object per line)."""
    shutdown_grace_seconds: float = 30.0
    """On SIGTERM, how long requests and matching runs in flight may take to finish; a run
    still going after it is recorded as failed."""
    matching_workers: int = 0
    """Worker processes that compare records during a run; 0: one per core."""
    dask_scheduler: str = ""
    """Address of a Dask scheduler ("tls://host:8786") to run comparisons on instead of local
    workers; empty: local. Needs dask_ca, dask_cert and dask_key (Dask's TLS)."""
    dask_ca: Path | None = None
    """CA certificate the Dask scheduler's and workers' certificates are checked against."""
    dask_cert: Path | None = None
    """The coordinator's client certificate for the Dask cluster."""
    dask_key: Path | None = None
    """Its private key."""


@dataclass(frozen=True)
class InputSection:
    """Where a node's records come from and how its columns map to linkage fields."""

    path: Path
    id_column: str
    columns: Mapping[str, str] = field(default_factory=dict)
    encoding: str = "auto"
    date_formats: tuple[str, ...] = ()
    format: str = "auto"
    delimiter: str = ""
    sheet: str = ""


@dataclass(frozen=True)
class AttributeSection:
    """A coarse attribute a node derives from one of its columns and sends with each record.

    ``derive`` says how: "age_band" turns a date of birth into a whole-year
    band at the project's reference date ("0-1" … "4-5", "5+"); "code" sends
    the column's value as it is (a local-authority or ward code); "flag" sends
    "yes" or "no" (yes for Y, YES, TRUE, 1). Only attributes the project lists
    in ``released_attributes`` may be configured.
    """

    column: str
    derive: str = "code"


@dataclass(frozen=True)
class NodeConfig:
    """One organisation's node for one project."""

    coordinator: str
    project: str
    schema: Path
    input: InputSection
    tls: TlsSection
    state_dir: Path = Path("node-state")
    output: Path = Path("linked.csv")
    secret_file: Path | None = None
    secret_env: str = ""
    server_name: str = ""
    chunk_records: int = 1000
    timeout_seconds: float = 60.0
    """Deadline of each call to the coordinator."""
    retry_attempts: int = 5
    """Tries per call when the coordinator is unreachable, slow or busy (1: never retry)."""
    retry_initial_seconds: float = 0.5
    """First wait before a retry; each later wait doubles, with jitter."""
    retry_max_seconds: float = 15.0
    """Longest wait between two tries."""
    coordinator_key: Path | None = None
    """The coordinator's audit public key (the coordinator.pub line) that receipts must be
    signed with. Without it the node trusts the key of its first receipt and keeps it in
    state_dir/coordinator.pub, refusing any other key afterwards."""
    consent_policy: Path | None = None
    """TOML consent policy (node.policy_file); without one every readable record is included."""
    max_bad_share: float = 0.05
    """Share of unreadable rows above which a run stops (the column mapping is probably wrong)."""
    rejects_file: Path | None = None
    """Where bad rows are listed (row, field, reason); default state_dir/rejects.csv."""
    hardening: str = "balance"
    """Must match the project's hardening; it is part of the encoding hash both sides pin."""
    field_scoring: bool = False
    """Must match the project's field_scoring; it is part of the encoding hash both sides pin."""
    secret_exchange: bool = False
    """Take the linkage secret from the exchange through the coordinator (``hublink node
    secret …``) instead of secret_file / secret_env."""
    peer_ca: Path | None = None
    """CA bundle, not run by the coordinator's operator, that other nodes' certificates must
    chain to for their secret-exchange keys to be trusted."""
    node_keys: Mapping[str, str] = field(default_factory=dict)
    """Organisation -> confirmed fingerprint of its secret-exchange key (the project file's
    [node_keys], as this organisation confirmed it). Used when peer_ca is not set."""
    attributes: Mapping[str, AttributeSection] = field(default_factory=dict)
    """Released attribute name -> how it is derived from a column ([attributes.age_band])."""


@dataclass(frozen=True)
class ClientConfig:
    """An analyst's, auditor's or admin's connection to the coordinator."""

    coordinator: str
    tls: TlsSection
    server_name: str = ""
    timeout_seconds: float = 60.0


def load(path: Path, kind: type[T]) -> T:
    """Read ``path`` as TOML into dataclass ``kind``; ConfigError names the file and key."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_mapping(data, kind, source=path, base=path.parent)


def from_mapping(data: Mapping[str, Any], kind: type[T], *, source: Path, base: Path) -> T:
    """Build dataclass ``kind`` from plain data, checking keys and types."""
    return typing.cast(T, _build(data, kind, source=source, base=base, prefix=""))


def _build(data: Any, kind: type[Any], *, source: Path, base: Path, prefix: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: [{where}] must be a table")
    hints = typing.get_type_hints(kind)
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {prefix}{unknown[0]!s}; "
            f"expected one of: {', '.join(sorted(fields))}"
        )
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        key = f"{prefix}{name}"
        if name not in data:
            has_default = (
                spec.default is not dataclasses.MISSING
                or spec.default_factory is not dataclasses.MISSING
            )
            if not has_default:
                raise ConfigError(f"{source}: missing required key {key}")
            continue
        values[name] = _convert(data[name], hints[name], source=source, base=base, key=key)
    return kind(**values)


def _convert(value: Any, hint: Any, *, source: Path, base: Path, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        return _convert(value, options[0], source=source, base=base, key=key)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(value, hint, source=source, base=base, prefix=f"{key}.")
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{source}: {key} must be a path (a non-empty string)")
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list")
        return tuple(
            _convert(item, args[0], source=source, base=base, key=f"{key}[{i}]")
            for i, item in enumerate(value)
        )
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {key} must be a table")
        return {
            str(k): _convert(v, args[1], source=source, base=base, key=f"{key}.{k}")
            for k, v in value.items()
        }
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: {key} must be a number")
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{source}: {key} must be {_describe(hint)}")
        return value
    raise ConfigError(f"{source}: {key} has an unsupported type")  # pragma: no cover


def _describe(hint: type[Any]) -> str:
    return {int: "a whole number", str: "a string", bool: "true or false"}.get(hint, str(hint))
