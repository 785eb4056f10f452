"""The linkage specification both sides pin: the clkhash schema and what else shapes encodings.

A clkhash v3 schema (a JSON file, data not code) says how each field is
tokenised and hashed. Two nodes only produce comparable encodings if they
also normalise the same way and lay out the same named encodings, so the hash
a project pins covers all three. The coordinator computes it from the project
file; each node computes it from its own files and refuses to encode when the
two differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

#: Version of the node's identifier normalisation. Bump it whenever a
#: normaliser's output changes: encodings made under different versions must
#: never be matched against each other.
NORMALISATION_VERSION = "hublink-normalise-1"

#: The one encoding every record carries today: a record-level CLK.
RECORD_CLK = "clk"

DEFAULT_SCHEMA_NAME = "early-years.json"

#: Post-processing of the record-level CLK at the node (see ``node.hardening``):
#: "balance" appends the CLK's complement and applies a permutation keyed by the
#: linkage secret, doubling the encoding's length; "none" sends the CLK as
#: clkhash made it, which frequency attacks read far more easily.
HARDENINGS = ("balance", "none")
DEFAULT_HARDENING = "balance"


#: A feature whose values come from the canonical-name table shipped beside the
#: schemas (node.derived); the table's digest is part of the pinned hash.
NAME_TABLE_FEATURE = "given_name_canonical"
NAME_TABLE_FILE = "given-names.csv"


def name_table_sha256() -> str:
    """SHA-256 of the shipped canonical-name table, as bytes on disk."""
    data = resources.files("hublink").joinpath("schemas", NAME_TABLE_FILE).read_bytes()
    return hashlib.sha256(data).hexdigest()


class SpecError(ValueError):
    """A linkage schema file that cannot be used."""


@dataclass(frozen=True)
class EncodingLayout:
    """A named encoding and its length in bits."""

    name: str
    bits: int

    @property
    def nbytes(self) -> int:
        return (self.bits + 7) // 8


@dataclass(frozen=True)
class LinkageSpec:
    """A clkhash schema plus the normalisation version it assumes.

    The schema is kept as canonical JSON text and parsed afresh on each use,
    because clkhash fills in defaults in the dictionaries it is given: a shared
    parsed copy would change under us, and with it the pinned hash.
    """

    json_text: str
    normalisation: str = NORMALISATION_VERSION
    hardening: str = DEFAULT_HARDENING

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        normalisation: str = NORMALISATION_VERSION,
        hardening: str = DEFAULT_HARDENING,
    ) -> LinkageSpec:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"{path}: cannot read linkage schema: {exc.strerror}") from None
        return cls.from_json(
            text, source=str(path), normalisation=normalisation, hardening=hardening
        )

    @classmethod
    def from_json(
        cls,
        text: str,
        *,
        source: str = "schema",
        normalisation: str = NORMALISATION_VERSION,
        hardening: str = DEFAULT_HARDENING,
    ) -> LinkageSpec:
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{source}: not valid JSON: {exc}") from None
        if not isinstance(schema, dict) or schema.get("version") != 3:
            raise SpecError(f"{source}: not a clkhash v3 linkage schema (version must be 3)")
        try:
            bits = int(schema["clkConfig"]["l"])
        except (KeyError, TypeError, ValueError):
            raise SpecError(f"{source}: clkConfig.l (encoding length in bits) is missing") from None
        if bits <= 0 or bits % 8:
            raise SpecError(f"{source}: clkConfig.l must be a positive multiple of 8, not {bits}")
        if schema["clkConfig"].get("xorFolds"):
            raise SpecError(f"{source}: xorFolds is not supported (clkhash 0.18.3 ignores it)")
        if hardening not in HARDENINGS:
            raise SpecError(
                f"{source}: hardening must be one of {', '.join(HARDENINGS)}, not {hardening!r}"
            )
        return cls(
            json_text=canonical_json(schema), normalisation=normalisation, hardening=hardening
        )

    @classmethod
    def default(cls) -> LinkageSpec:
        """The early-years schema hublink ships (names, DOB, sex, postcode, NHS number)."""
        text = resources.files("hublink").joinpath("schemas", DEFAULT_SCHEMA_NAME).read_text()
        return cls.from_json(text, source=DEFAULT_SCHEMA_NAME)

    @property
    def schema(self) -> dict[str, Any]:
        """A fresh parsed copy of the schema, safe to hand to clkhash."""
        parsed: dict[str, Any] = json.loads(self.json_text)
        return parsed

    @property
    def fields(self) -> tuple[str, ...]:
        """Identifiers of the schema's features that are hashed (ignored ones left out)."""
        return tuple(
            str(f["identifier"]) for f in self.schema["features"] if not f.get("ignored", False)
        )

    @property
    def all_fields(self) -> tuple[str, ...]:
        """Every feature identifier in schema order, the order clkhash expects values in."""
        return tuple(str(f["identifier"]) for f in self.schema["features"])

    @property
    def clk_bits(self) -> int:
        """Length of the CLK clkhash makes, before any hardening."""
        return int(self.schema["clkConfig"]["l"])

    @property
    def encodings(self) -> tuple[EncodingLayout, ...]:
        """What every record carries: the CLK, doubled in length when balanced."""
        factor = 2 if self.hardening == "balance" else 1
        return (EncodingLayout(RECORD_CLK, factor * self.clk_bits),)

    @property
    def record_bytes(self) -> int:
        """Bytes of all encodings of one record, concatenated in layout order."""
        return sum(e.nbytes for e in self.encodings)

    @property
    def sha256(self) -> str:
        """The hash a project pins: schema, normalisation, hardening and encoding layout."""
        pinned = {
            "clkhash_schema": self.schema,
            "normalisation": self.normalisation,
            "hardening": self.hardening,
            "encodings": [[e.name, e.bits] for e in self.encodings],
        }
        if NAME_TABLE_FEATURE in self.all_fields:
            # The canonical-name table decides that feature's values: pin it too.
            pinned["name_table_sha256"] = name_table_sha256()
        return hashlib.sha256(canonical_json(pinned).encode()).hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant white space, so equal data hashes equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class UploadDigest:
    """SHA-256 over an upload's records in chunk order, computed alike by node and coordinator.

    Each record contributes its token (length-prefixed, so token boundaries
    cannot shift), then its encodings' bytes in layout order, then its released
    attributes sorted by name (each as 0x1f, a two-byte length and
    ``name=value``), so a changed attribute changes the digest. The digest
    binds a receipt to exactly what was sent.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(
        self, token: str, encodings: Sequence[bytes], attributes: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Add one record; its released attributes (if any) follow its encodings, by name."""
        self._hash.update(_record_bytes(token, encodings, attributes))

    def add_all(
        self,
        records: Iterable[tuple[str, Sequence[bytes], Sequence[tuple[str, str]]]],
    ) -> None:
        """Add many records (token, encodings, attributes) at once: the same digest as adding
        them one by one, with one hash update instead of several a record."""
        self._hash.update(b"".join(_record_bytes(*record) for record in records))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _record_bytes(
    token: str, encodings: Sequence[bytes], attributes: Sequence[tuple[str, str]] = ()
) -> bytes:
    """What one record adds to an upload's digest (``UploadDigest``)."""
    raw = token.encode()
    parts = [len(raw).to_bytes(2, "big"), raw, *encodings]
    for name, value in sorted(attributes):
        pair = f"{name}={value}".encode()
        parts.append(b"\x1f" + len(pair).to_bytes(2, "big") + pair)
    return b"".join(parts)
