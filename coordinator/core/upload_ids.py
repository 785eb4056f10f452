"""Upload ids belong to the organisation that chose them: each organisation has its own.

A node chooses its upload's id (a UUID) so that a retried ``BeginUpload`` finds
the same upload. Ids are stored in one table, though, so a node could ask for
an id another organisation already holds. Answering differently then (an
error, or a fresh id) would tell it that the id exists. Instead the second
organisation's upload is stored under ``<id>~<organisation>``, and every call
it makes with ``<id>`` finds that upload: whatever another organisation holds,
a node gets back the id it asked for and sees only its own uploads. ``~`` is
not allowed in an id a node chooses, so a stored id of this form can never be
asked for, and the part before it is the id the node knows (the one every
answer, error and audit entry names: an audit entry's organisation tells two
organisations' uploads of one id apart).
"""

from __future__ import annotations

import re
import sqlite3

from coordinator.core.store import Store
from hublink.identity import Identity

#: An id a node may choose: 8 to 64 letters, digits or hyphens.
UPLOAD_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")

#: Between a node's id and its organisation, in an id stored for a second organisation.
SEPARATOR = "~"


def qualified(upload_id: str, organisation: str) -> str:
    """The id an upload is stored under when another organisation holds ``upload_id``."""
    return f"{upload_id}{SEPARATOR}{organisation}"


def public(stored_id: str) -> str:
    """The id the organisation chose, as every answer and audit entry names it."""
    return stored_id.split(SEPARATOR, 1)[0]


def own_row(store: Store, caller: Identity, upload_id: str) -> sqlite3.Row | None:
    """The caller's upload named ``upload_id`` (its ``uploads`` row), or None.

    Another organisation's upload of that id is never returned: to the caller it
    does not exist.
    """
    for stored in (upload_id, qualified(upload_id, caller.organisation)):
        row = store.query_one("SELECT * FROM uploads WHERE id = ?", (stored,))
        if row is not None and row["organisation"] == caller.organisation:
            return row
    return None


def id_for_new(store: Store, caller: Identity, upload_id: str) -> str:
    """The id to store a new upload of the caller's under, ``upload_id`` if it is free."""
    row = store.query_one("SELECT organisation FROM uploads WHERE id = ?", (upload_id,))
    if row is None or row["organisation"] == caller.organisation:
        return upload_id
    return qualified(upload_id, caller.organisation)
