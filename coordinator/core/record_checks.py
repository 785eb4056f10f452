"""Checks on a chunk's records that name the first bad one: its place, never its content.

``coordinator.core.uploads`` checks a whole chunk at once in the common case;
when that fails, these walk it record by record to say which record is wrong
and how, in a sentence that quotes no token or encoding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from coordinator.core.errors import InvalidRequest
from coordinator.core.model import IncomingRecord, Project

#: A record token: what a node sends in place of its local id.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
#: A released attribute's value: a coarse code.
ATTRIBUTE_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,31}$")


def name_bad_token(chunk_index: int, tokens: Sequence[str]) -> None:
    """Raise for the chunk's first bad or repeated token, naming its place."""
    seen: set[str] = set()
    for position, token in enumerate(tokens):
        where = f"chunk {chunk_index}, record {position}"
        if not TOKEN.fullmatch(token):
            raise InvalidRequest(f"{where}: token must be 8 to 64 URL-safe characters")
        if token in seen:
            raise InvalidRequest(f"{where}: token repeated within the chunk")
        seen.add(token)


def name_bad_layout(project: Project, where: str, encodings: Sequence[tuple[str, bytes]]) -> None:
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


def checked_attributes(
    project: Project, released: set[str], where: str, record: IncomingRecord
) -> tuple[tuple[str, str], ...]:
    """A record's released attributes, sorted by name, once each is known to be allowed."""
    for name, value in record.attributes:
        if name not in released:
            raise InvalidRequest(
                f"{where}: attribute {name!r} is not released by project {project.id!r}"
            )
        if not ATTRIBUTE_VALUE.fullmatch(value):
            raise InvalidRequest(
                f"{where}: attribute {name!r} must be a coarse code of 1 to 32 letters, "
                "digits, spaces or . _ + -"
            )
    if len({name for name, _ in record.attributes}) != len(record.attributes):
        raise InvalidRequest(f"{where}: an attribute is repeated")
    return tuple(sorted(record.attributes))
