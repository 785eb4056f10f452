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

import base64
import hashlib
import hmac
import secrets

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
    message = entity_id if organisation is None else f"{entity_id}\x1f{organisation}"
    mac = hmac.new(project_key, message.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().lower()[:26]
