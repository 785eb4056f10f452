"""Linkage keys: what organisations receive instead of anything about other records.

A key is derived from an entity's stable internal id with the project's own
key (HMAC-SHA256), held by the coordinator alone. So the same child gets
unrelated keys in two projects, keeps its key when the data is matched again,
and a key reveals nothing about the entity id behind it.

A project chooses the keys' scope: ``project`` — one key per entity across the
project, so approved analysts can join organisations' pseudonymised extracts
in a trusted research environment; ``organisation`` — a different key per
organisation for the same entity, so only the coordinator's counts cross
organisations.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence

import numpy as np

PROJECT_KEY_BYTES = 32
KEY_SCOPES = ("project", "organisation")


def new_project_key() -> bytes:
    """A fresh random key for a project."""
    return secrets.token_bytes(PROJECT_KEY_BYTES)


def linkage_key(project_key: bytes, entity_id: str, organisation: str | None = None) -> str:
    """The opaque key of an entity: 26 base32 characters (130 bits of an HMAC-SHA256).

    With ``organisation`` (a project of organisation scope) each organisation
    gets a different, unrelated key for the same entity, so no two
    organisations can join their extracts without the coordinator.
    """
    return linkage_keys(project_key, [entity_id], organisation)[0]


def linkage_keys(
    project_key: bytes, entity_ids: Sequence[str], organisation: str | None = None
) -> list[str]:
    """``linkage_key`` of many entities at once, for the key stream of a large run.

    The base32 step is done for the whole batch with numpy: the standard
    library's base32 is pure Python and costs more than the HMAC itself.
    """
    if not entity_ids:
        return []
    suffix = "" if organisation is None else f"\x1f{organisation}"
    macs = b"".join(
        hmac.digest(project_key, f"{e}{suffix}".encode(), "sha256")[:17] for e in entity_ids
    )
    bits = np.unpackbits(np.frombuffer(macs, dtype=np.uint8).reshape(len(entity_ids), 17), axis=1)
    groups = bits[:, :130].reshape(len(entity_ids), 26, 5).astype(np.uint8)
    symbols = groups @ np.array([16, 8, 4, 2, 1], dtype=np.uint8)
    text = _BASE32[symbols].tobytes().decode("ascii")
    return [text[26 * n : 26 * n + 26] for n in range(len(entity_ids))]


_BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)
