"""Linkage keys: what organisations receive instead of anything about other records.

A key is derived from an entity's stable internal id with the project's own
key (HMAC-SHA256), held by the coordinator alone. So the same child gets
unrelated keys in two projects, keeps its key when the data is matched again,
and a key reveals nothing about the entity id behind it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PROJECT_KEY_BYTES = 32


def new_project_key() -> bytes:
    """A fresh random key for a project."""
    return secrets.token_bytes(PROJECT_KEY_BYTES)


def linkage_key(project_key: bytes, entity_id: str) -> str:
    """The opaque key of an entity: 26 base32 characters (130 bits of an HMAC-SHA256)."""
    mac = hmac.new(project_key, entity_id.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().lower()[:26]
