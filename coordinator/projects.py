"""Loading project definitions (TOML) into the core's ``Project``.

A project file names its purpose, members, match threshold and the clkhash
schema file its nodes encode with. The coordinator computes the encoding hash
from that schema itself; if the file also pins ``encoding_sha256``, the two
must agree, so an edited schema cannot slip in unnoticed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import date
from pathlib import Path
from typing import Any

from coordinator.core import disclosure
from coordinator.core.blocking import BLOCKING_MODES
from coordinator.core.keys import KEY_SCOPES
from coordinator.core.model import Project
from hublink import config
from hublink.spec import (
    NORMALISATION_VERSION,
    LinkageSpec,
    SpecError,
    canonical_json,
    warn_if_legacy,
)

_PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{64}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def load_project(path: Path) -> Project:
    """Read and check one project file; errors name the file and key."""
    definition = config.load(path, config.ProjectConfig)
    if not _PROJECT_ID.fullmatch(definition.id):
        raise config.ConfigError(f"{path}: id must be lower-case letters, digits and hyphens")
    if not definition.organisations:
        raise config.ConfigError(
            f"{path}: organisations must list at least one organisation (one deduplicates "
            "its own records; two or more link theirs)"
        )
    if len(set(definition.organisations)) != len(definition.organisations):
        raise config.ConfigError(f"{path}: organisations lists an organisation twice")
    if len(definition.organisations) == 1 and not definition.within_threshold:
        raise config.ConfigError(
            f"{path}: a project of one organisation deduplicates its records: within_threshold "
            "must be above 0"
        )
    if not 0.0 < definition.threshold <= 1.0:
        raise config.ConfigError(f"{path}: threshold must be between 0 and 1")
    for key in ("within_threshold", "merge_threshold"):
        value = getattr(definition, key)
        if not 0.0 <= value <= 1.0:
            raise config.ConfigError(f"{path}: {key} must be between 0 and 1 (0 turns it off)")
    _check_bounds(path, definition)
    if definition.blocking not in BLOCKING_MODES:
        raise config.ConfigError(
            f"{path}: blocking must be one of {', '.join(BLOCKING_MODES)}, "
            f"not {definition.blocking!r}"
        )
    if not 0.5 <= definition.blocking_completeness < 1.0:
        raise config.ConfigError(f"{path}: blocking_completeness must be from 0.5 to below 1")
    if definition.estimate_sample < 100:
        raise config.ConfigError(f"{path}: estimate_sample must be at least 100")
    if definition.key_scope not in KEY_SCOPES:
        raise config.ConfigError(
            f"{path}: key_scope must be one of {', '.join(KEY_SCOPES)}, "
            f"not {definition.key_scope!r}"
        )
    if definition.retention_days < 1:
        raise config.ConfigError(f"{path}: retention_days must be at least 1")
    rule = _disclosure_rule(path, definition)
    if not 1 <= definition.max_chunk_records <= 20000:
        raise config.ConfigError(f"{path}: max_chunk_records must be from 1 to 20000")
    try:
        spec = LinkageSpec.from_file(
            definition.schema,
            normalisation=definition.normalisation or NORMALISATION_VERSION,
            hardening=definition.hardening,
            field_scoring=definition.field_scoring,
            record_clk=definition.record_clk,
        )
    except SpecError as exc:
        raise config.ConfigError(f"{path}: schema: {exc}") from None
    warn_if_legacy(definition.record_clk, str(path))
    if definition.encoding_sha256 and definition.encoding_sha256 != spec.sha256:
        raise config.ConfigError(
            f"{path}: encoding_sha256 pins {definition.encoding_sha256[:12]}… but schema "
            f"{definition.schema.name} gives {spec.sha256[:12]}…"
        )
    for organisation, pinned in definition.node_keys.items():
        if organisation not in definition.organisations:
            raise config.ConfigError(
                f"{path}: node_keys.{organisation} names an organisation not in the project"
            )
        if not _FINGERPRINT.fullmatch(pinned):
            raise config.ConfigError(
                f"{path}: node_keys.{organisation} must be sha256:<64 hex digits>"
            )
    resolved: dict[str, Any] = {
        "pinned_certificates": _role_members(path, definition),
        "schema_json": spec.json_text,
        "encoding_sha256": spec.sha256,
        "encodings": spec.encodings,
        "field_flip": spec.group_flip,
        "field_identifiers": spec.identifier_comparisons,
        "definition_sha256": definition_sha256(definition, spec.sha256, rule),
        "disclosure": rule,
    }
    return Project(**resolved, **_as_written(definition, besides=resolved))


def _check_bounds(path: Path, definition: config.ProjectConfig) -> None:
    """The keys that bound what one run or one organisation may cost the coordinator."""
    if not 0.0 < definition.min_threshold <= 1.0:
        raise config.ConfigError(f"{path}: min_threshold must be between 0 and 1")
    for key in ("threshold", "within_threshold"):
        value = getattr(definition, key)
        if value and value < definition.min_threshold:
            raise config.ConfigError(
                f"{path}: {key} {value} is below min_threshold {definition.min_threshold}"
            )
    if definition.max_candidates < 1:
        raise config.ConfigError(f"{path}: max_candidates must be at least 1")
    if definition.max_open_uploads < 1:
        raise config.ConfigError(f"{path}: max_open_uploads must be at least 1")
    if not definition.open_upload_hours > 0:
        raise config.ConfigError(f"{path}: open_upload_hours must be above 0")


def definition_sha256(
    definition: config.ProjectConfig, encoding_sha256: str, rule: disclosure.Rule
) -> str:
    """The project's fingerprint: a hash of the keys that define it and what they resolve to.

    Every key ``hublink.config`` marks with ``defines`` goes in, as written (keys that share
    an entry, as one list in field order); so do the schema's hash (which covers the
    schema, normalisation, hardening and field scoring) and the disclosure rule the
    disclosure keys resolve to. Limits on chunk and upload size do not define a project.
    """
    settings = dataclasses.asdict(definition)
    fingerprint: dict[str, object] = {}
    for f in dataclasses.fields(config.ProjectConfig):
        entry = f.metadata.get("fingerprint")
        if entry is True:
            fingerprint[f.name] = settings[f.name]
        elif isinstance(entry, str):
            grouped = fingerprint.setdefault(entry, [])
            assert isinstance(grouped, list)
            grouped.append(settings[f.name])
    fingerprint["encoding_sha256"] = encoding_sha256
    fingerprint["disclosure"] = list(dataclasses.astuple(rule))
    return hashlib.sha256(canonical_json(fingerprint).encode()).hexdigest()


def _as_written(definition: config.ProjectConfig, *, besides: dict[str, Any]) -> dict[str, Any]:
    """The project file's settings the core ``Project`` holds as written, under the same
    name (all but those it holds ``besides``, resolved: the schema's hash, the rule)."""
    held = {f.name for f in dataclasses.fields(Project)} - set(besides)
    return {
        f.name: getattr(definition, f.name)
        for f in dataclasses.fields(config.ProjectConfig)
        if f.name in held
    }


def _role_members(path: Path, definition: config.ProjectConfig) -> dict[str, tuple[str, ...]]:
    """Check who the project names in each role; return its certificate pins as bare hex.

    Every organisation named must be a valid slug (what a certificate can carry),
    and a pin must name a role and organisation the project lets act, so that a
    pin can never widen who may act, only narrow it to particular certificates.
    """
    for key in ("admins", "auditors", "analysts"):
        named = getattr(definition, key)
        if len(set(named)) != len(named):
            raise config.ConfigError(f"{path}: {key} lists an organisation twice")
        for organisation in named:
            if not _SLUG.fullmatch(organisation):
                raise config.ConfigError(
                    f"{path}: {key}: {organisation!r} is not an organisation slug "
                    "(lower-case letters, digits and hyphens)"
                )
    members = {
        "node": definition.organisations,
        "admin": definition.admins,
        "auditor": definition.auditors,
        "analyst": definition.analysts,
    }
    pins: dict[str, tuple[str, ...]] = {}
    for name, fingerprints in definition.pinned_certificates.items():
        role, _, organisation = name.partition(":")
        if organisation not in members.get(role, ()):
            raise config.ConfigError(
                f"{path}: pinned_certificates.{name} must be <role>:<organisation> for a role "
                "and organisation the project names (in organisations, admins, auditors or "
                "analysts)"
            )
        if not fingerprints or not all(_FINGERPRINT.fullmatch(f) for f in fingerprints):
            raise config.ConfigError(
                f"{path}: pinned_certificates.{name} must list sha256:<64 hex digits> fingerprints"
            )
        pins[name] = tuple(f.removeprefix("sha256:") for f in fingerprints)
    return pins


def _disclosure_rule(path: Path, definition: config.ProjectConfig) -> disclosure.Rule:
    """The project's disclosure rule, and checks of the keys that shape what analysts see."""
    if definition.suppression_threshold < 0 or definition.rounding_base < 0:
        raise config.ConfigError(
            f"{path}: suppression_threshold and rounding_base must be at least 1 "
            "(or 0 for the preset's)"
        )
    try:
        rule = disclosure.rule_for(
            definition.disclosure, definition.suppression_threshold, definition.rounding_base
        )
    except ValueError as exc:
        raise config.ConfigError(f"{path}: disclosure: {exc}") from None
    for name in definition.released_attributes:
        if not _ATTRIBUTE.fullmatch(name) or name == "datasets":
            raise config.ConfigError(
                f"{path}: released_attributes: {name!r} must be lower-case letters, digits "
                "and underscores (and not 'datasets')"
            )
    for organisation in definition.attribute_precedence:
        if organisation not in definition.organisations:
            raise config.ConfigError(
                f"{path}: attribute_precedence names {organisation!r}, which is not in the project"
            )
    if definition.reference_date:
        try:
            date.fromisoformat(definition.reference_date)
        except ValueError:
            raise config.ConfigError(f"{path}: reference_date must be YYYY-MM-DD") from None
    return rule
