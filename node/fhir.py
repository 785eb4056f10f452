"""Reading a FHIR R4 Bulk Data export of UK Core ``Patient`` resources as rows of named cells.

NHS systems increasingly deliver extracts as Bulk Data NDJSON: one JSON
resource a line. Each Patient becomes one row whose "columns" are the
element paths below, so the node's column mapping, consent rules and
attributes work on it as on a CSV (``input.format = "fhir-ndjson"``; with no
``[input.columns]`` the mapping is ``DEFAULT_COLUMNS``, and ``id_column`` is
usually ``"id"``). Where an element repeats, the one a person would pick is
taken: the official name (then the usual one, then any but an old one), the
home address still in use, and the identifier in the NHS number system.
A line that is not JSON, or not a Patient, is a bad row named by its line
number; its content is never repeated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from node.errors import NodeError

NHS_NUMBER_SYSTEM: Final[str] = "https://fhir.nhs.uk/Id/nhs-number"

COLUMNS: Final[tuple[str, ...]] = (
    "id",
    "name.given",
    "name.family",
    "birthDate",
    "gender",
    "address.postalCode",
    "identifier.nhs-number",
)
"""The columns a Patient resource is read into, in this order."""

DEFAULT_COLUMNS: Final[Mapping[str, str]] = {
    "given_name": "name.given",
    "family_name": "name.family",
    "date_of_birth": "birthDate",
    "sex": "gender",
    "postcode": "address.postalCode",
    "nhs_number": "identifier.nhs-number",
}
"""Linkage field -> column, used when a FHIR node config maps no columns."""


class ResourceError(NodeError, ValueError):
    """One line of the export is not a usable Patient resource; says why, never what it held."""


def _ended(element: Mapping[str, Any]) -> bool:
    period = element.get("period")
    return isinstance(period, Mapping) and bool(period.get("end"))


def _pick(elements: Any, preferred: Sequence[str]) -> Mapping[str, Any]:
    """The element whose ``use`` comes first in ``preferred`` (current ones first), else the
    first that is neither old nor ended; an empty mapping if there is none."""
    items = [e for e in elements if isinstance(e, Mapping)] if isinstance(elements, list) else []
    for use in preferred:
        for element in items:
            if element.get("use") == use and not _ended(element):
                return element
    for element in items:
        if element.get("use") != "old" and not _ended(element):
            return element
    return {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def patient_cells(resource: Mapping[str, Any]) -> list[str]:
    """The cells of one Patient resource, in ``COLUMNS`` order."""
    name = _pick(resource.get("name"), ("official", "usual"))
    given = name.get("given")
    address = _pick(resource.get("address"), ("home",))
    identifiers = resource.get("identifier")
    nhs = next(
        (
            _text(i.get("value"))
            for i in (identifiers if isinstance(identifiers, list) else [])
            if isinstance(i, Mapping) and i.get("system") == NHS_NUMBER_SYSTEM
        ),
        "",
    )
    return [
        _text(resource.get("id")),
        " ".join(g for g in given if isinstance(g, str)) if isinstance(given, list) else "",
        _text(name.get("family")),
        _text(resource.get("birthDate")),
        _text(resource.get("gender")),
        _text(address.get("postalCode")),
        nhs,
    ]


def read_line(line: bytes) -> list[str]:
    """One NDJSON line as cells; ResourceError if it is not a Patient resource."""
    try:
        resource = json.loads(line)
    except UnicodeDecodeError:
        raise ResourceError("is not UTF-8, as FHIR NDJSON must be") from None
    except json.JSONDecodeError:
        raise ResourceError("is not a JSON resource") from None
    if not isinstance(resource, dict):
        raise ResourceError("is not a JSON resource")
    kind = resource.get("resourceType")
    if kind != "Patient":
        shown = kind if isinstance(kind, str) and kind.isalpha() and len(kind) < 40 else "?"
        raise ResourceError(f"holds a {shown} resource, not a Patient")
    return patient_cells(resource)


def resource_rows(path: Path) -> Iterator[tuple[int, list[str] | ResourceError]]:
    """Yield (line number, cells or the line's error) for every non-blank line of ``path``.

    Line 1 is the first resource: an NDJSON export has no header row.
    """
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, read_line(line)
            except ResourceError as exc:
                yield number, exc
