"""Loading project definitions (TOML) into the core's ``Project``.

A project file names its purpose, members, match threshold and the clkhash
schema file its nodes encode with. The coordinator computes the encoding hash
from that schema itself; if the file also pins ``encoding_sha256``, the two
must agree, so an edited schema cannot slip in unnoticed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from coordinator.core.service import Project
from hublink import config
from hublink.spec import NORMALISATION_VERSION, LinkageSpec, SpecError, canonical_json

_PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def load_project(path: Path) -> Project:
    """Read and check one project file; errors name the file and key."""
    definition = config.load(path, config.ProjectConfig)
    if not _PROJECT_ID.fullmatch(definition.id):
        raise config.ConfigError(f"{path}: id must be lower-case letters, digits and hyphens")
    if len(definition.organisations) < 2:
        raise config.ConfigError(f"{path}: organisations must list at least two organisations")
    if len(set(definition.organisations)) != len(definition.organisations):
        raise config.ConfigError(f"{path}: organisations lists an organisation twice")
    if not 0.0 < definition.threshold <= 1.0:
        raise config.ConfigError(f"{path}: threshold must be between 0 and 1")
    for key in ("within_threshold", "merge_threshold"):
        value = getattr(definition, key)
        if not 0.0 <= value <= 1.0:
            raise config.ConfigError(f"{path}: {key} must be between 0 and 1 (0 turns it off)")
    if definition.suppression_threshold < 1:
        raise config.ConfigError(f"{path}: suppression_threshold must be at least 1")
    if not 1 <= definition.max_chunk_records <= 20000:
        raise config.ConfigError(f"{path}: max_chunk_records must be from 1 to 20000")
    try:
        spec = LinkageSpec.from_file(
            definition.schema, normalisation=definition.normalisation or NORMALISATION_VERSION
        )
    except SpecError as exc:
        raise config.ConfigError(f"{path}: schema: {exc}") from None
    if definition.encoding_sha256 and definition.encoding_sha256 != spec.sha256:
        raise config.ConfigError(
            f"{path}: encoding_sha256 pins {definition.encoding_sha256[:12]}… but schema "
            f"{definition.schema.name} gives {spec.sha256[:12]}…"
        )
    fingerprint = {
        "id": definition.id,
        "purpose": definition.purpose,
        "organisations": list(definition.organisations),
        "encoding_sha256": spec.sha256,
        "threshold": definition.threshold,
        "within_threshold": definition.within_threshold,
        "merge_threshold": definition.merge_threshold,
        "suppression_threshold": definition.suppression_threshold,
        "released_attributes": list(definition.released_attributes),
    }
    return Project(
        id=definition.id,
        purpose=definition.purpose,
        organisations=definition.organisations,
        schema_json=spec.json_text,
        encoding_sha256=spec.sha256,
        encodings=spec.encodings,
        definition_sha256=hashlib.sha256(canonical_json(fingerprint).encode()).hexdigest(),
        threshold=definition.threshold,
        within_threshold=definition.within_threshold,
        merge_threshold=definition.merge_threshold,
        suppression_threshold=definition.suppression_threshold,
        max_chunk_records=definition.max_chunk_records,
        max_records=definition.max_records,
        released_attributes=definition.released_attributes,
    )
