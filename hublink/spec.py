"""The linkage specification both sides pin: the clkhash schema and what else shapes encodings.

A clkhash v3 schema (a JSON file, data not code) says how each field is
tokenised and hashed. Two nodes only produce comparable encodings if they
also normalise the same way and lay out the same named encodings, so the hash
a project pins covers all three. The coordinator computes it from the project
file; each node computes it from its own files and refuses to encode when the
two differ.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hublink.errors import HublinkError

#: Version of the node's identifier normalisation. Bump it whenever a
#: normaliser's output changes: encodings made under different versions must
#: never be matched against each other.
NORMALISATION_VERSION = "hublink-normalise-1"

#: The one encoding every record carries: a record-level CLK (of salted parts, ``RecordPart``,
#: when the project's ``record_clk`` is "salted").
RECORD_CLK = "clk"

DEFAULT_SCHEMA_NAME = "early-years.json"

#: Per-field filter groups a project may add beside the record CLK (``field_scoring``).
FIELD_GROUPS_FILE = "field-groups.json"

#: How the record CLK is made of salted parts, for projects that choose it (``RecordPart``).
RECORD_CLK_FILE = "record-clk.json"

#: How a project's record CLK is made (its ``record_clk``): "salted", the parts of
#: ``RECORD_CLK_FILE`` (the default); "unsalted", one clkhash filter over every field, kept
#: only for projects already pinned to it (``warn_if_legacy``).
RECORD_CLKS = ("unsalted", "salted")
DEFAULT_RECORD_CLK = "salted"

#: What the legacy unsalted record CLK gives away, measured (bench/privacy.py, 3,000 Zipf
#: records; tests/security/test_attack_library.py), said whenever a project or node loads it.
UNSALTED_LEAK = (
    'record_clk = "unsalted" is legacy: block mining on what it sends names 8.27% of given '
    'names, above the 1% ceiling (the default "salted" measures 0.00%: docs/benchmarks.md)'
)


def warn_if_legacy(record_clk: str, where: str) -> None:
    """Log ``UNSALTED_LEAK`` for a configuration (named by ``where``, a file or project id)
    that still sends the unsalted record CLK; it stays loadable so pinned projects keep
    their encoding hash, but its operators should hear the cost every time."""
    if record_clk == "unsalted":
        logging.getLogger("hublink.spec").warning("%s: %s", where, UNSALTED_LEAK)


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

#: The six fields every linkage schema is built from; a schema may add others
#: (``LinkageSpec.added_fields``), each naming its normaliser.
BUILT_IN_FIELDS = ("given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number")

#: Normalisers a feature beyond the six may name with its "normaliser" key (node.fields):
#: free text (a town), a number and street (an address line), a code (a local identifier).
#: Named in the schema, so the choice is part of the hash both sides pin.
FIELD_NORMALISERS = ("free_text", "number_and_street", "code")
#: Fields whose value belongs to one person, and normalisers that make one: the coordinator's
#: field model holds every non-match class to a random pair's agreement on them
#: (``LinkageSpec.identifier_comparisons``).
IDENTIFIER_FIELDS = ("nhs_number",)
IDENTIFIER_NORMALISERS = ("code",)

#: Countries the postcode feature may name with its "country" key ("any": no national
#: format, only letters and digits); absent, a postcode is read as a UK one.
POSTCODE_COUNTRIES = ("GB", "AU", "any")
DEFAULT_POSTCODE_COUNTRY = "GB"

_ADDED_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

#: A consent rule's name, as a node's policy file may write it and the coordinator accepts it
#: in an upload's consent summary: short, lower-case, no spaces, so that a name or a date of
#: birth pasted in by mistake is refused before it reaches the permanent audit log.
CONSENT_RULE_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


def name_table_sha256() -> str:
    """SHA-256 of the shipped canonical-name table, as bytes on disk."""
    data = resources.files("hublink").joinpath("schemas", NAME_TABLE_FILE).read_bytes()
    return hashlib.sha256(data).hexdigest()


class SpecError(HublinkError, ValueError):
    """A linkage schema file that cannot be used."""


@dataclass(frozen=True)
class FieldGroup:
    """A per-field filter: a separate keyed Bloom filter over some of the schema's features."""

    name: str
    features: tuple[str, ...]
    salt: str = ""
    """A feature whose value keys a permutation of this filter's bits ("" for none)."""
    empty_when_missing: bool = False
    """A record with none of the group's values sends an all-zero filter, which the
    coordinator scores as missing, not as disagreement (the NHS number, and the groups
    of added fields)."""

    @property
    def comparison(self) -> str:
        """The comparison this filter is a variant of: ``given`` for ``given@birth``.

        Variants of one comparison carry the same fields under different salts; the
        coordinator keeps the best agreement among them, so the field counts once.
        """
        return self.name.partition("@")[0]


@dataclass(frozen=True)
class RecordPart:
    """One part of the record CLK: a keyed Bloom filter over the schema's hashed features
    except ``without``, its bits permuted by a key drawn from the record's ``salt`` value.

    Parts are data (hublink/schemas/record-clk.json): the record CLK is their
    concatenation, in file order, each part balanced on its own when the project balances.
    """

    name: str
    salt: tuple[str, ...]
    """Features whose values, joined, key the permutation of this part's bits."""
    without: tuple[str, ...]
    """Features this part does not hash (its salt, and what is derived from the salt)."""
    bits: int


def _shipped(name: str) -> dict[str, Any]:
    """A JSON file hublink ships in hublink/schemas, parsed."""
    data: dict[str, Any] = json.loads(
        resources.files("hublink").joinpath("schemas", name).read_text("utf-8")
    )
    return data


def shipped_record_parts() -> tuple[RecordPart, ...]:
    """The parts of the record CLK hublink ships (hublink/schemas/record-clk.json)."""
    return tuple(
        RecordPart(name, tuple(part["salt"]), tuple(part["without"]), int(part["bits"]))
        for name, part in _shipped(RECORD_CLK_FILE)["parts"].items()
    )


def shipped_field_groups() -> tuple[tuple[FieldGroup, ...], int, float]:
    """The field groups hublink ships (hublink/schemas/field-groups.json), their CLK length
    and the chance each of their bits is flipped at random before it leaves the node."""
    data = _shipped(FIELD_GROUPS_FILE)
    salts = data.get("salts", {})
    empty = set(data.get("empty_when_missing", {}).get("groups", ()))
    groups = tuple(
        FieldGroup(name, tuple(features), str(salts.get(name, "")), name in empty)
        for name, features in data["groups"].items()
    )
    return groups, int(data["bits"]), float(data["flip"])


def salt_checks() -> dict[str, str]:
    """Variant name -> the comparison whose exact agreement shows two records' salt values
    agree (``salt_checks`` in hublink/schemas/field-groups.json): ``birth`` -> ``birth``,
    ``home`` -> ``place``, ``family`` -> ``family``."""
    checks: dict[str, str] = _shipped(FIELD_GROUPS_FILE)["salt_checks"]["checks"]
    return dict(checks)


def added_field_groups(fields: Sequence[str]) -> tuple[FieldGroup, ...]:
    """The per-field filters of fields a schema adds beyond the six, from the shipped template
    (``added_fields`` in hublink/schemas/field-groups.json): for each field, one variant per
    salt the template names, ``field@variant``, each with only that field's values."""
    salts: dict[str, str] = _shipped(FIELD_GROUPS_FILE)["added_fields"]["salts"]
    return tuple(
        FieldGroup(f"{name}@{variant}", (name,), salt, empty_when_missing=True)
        for name in fields
        for variant, salt in salts.items()
    )


def _added_fields(schema: Mapping[str, Any], source: str) -> dict[str, str]:
    """Feature -> normaliser for the features beyond the six that name one; checks the
    names, and the postcode feature's country."""
    out: dict[str, str] = {}
    for feature in schema.get("features", []):
        if not isinstance(feature, dict):
            continue
        identifier = str(feature.get("identifier", ""))
        country = feature.get("country")
        if country is not None and (identifier != "postcode" or country not in POSTCODE_COUNTRIES):
            raise SpecError(
                f"{source}: feature {identifier!r}: 'country' belongs on the postcode feature "
                f"and must be one of {', '.join(POSTCODE_COUNTRIES)}, not {country!r}"
            )
        name = feature.get("normaliser")
        if name is None:
            continue
        if identifier in BUILT_IN_FIELDS or not _ADDED_FIELD.fullmatch(identifier):
            raise SpecError(
                f"{source}: feature {identifier!r} names a normaliser, which only a field "
                "beyond the six may (identifier: lower-case letters, digits and _)"
            )
        if name not in FIELD_NORMALISERS:
            raise SpecError(
                f"{source}: feature {identifier!r}: normaliser must be one of "
                f"{', '.join(FIELD_NORMALISERS)}, not {name!r}"
            )
        if feature.get("ignored", False):
            raise SpecError(f"{source}: feature {identifier!r} names a normaliser but is ignored")
        out[identifier] = str(name)
    return out


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
    field_groups: tuple[FieldGroup, ...] = ()
    """Per-field filters sent beside the record CLK; empty unless the project asks for them."""
    group_bits: int = 0
    """Length of each per-field filter as clkhash makes it (before balancing)."""
    group_flip: float = 0.0
    """Chance each bit of a per-field filter is flipped at random, afresh for every record."""
    record_parts: tuple[RecordPart, ...] = ()
    """The salted parts the record CLK is made of (``RecordPart``, ``record_clk = "salted"``,
    the default); empty for the legacy unsalted filter over every field."""

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        normalisation: str = NORMALISATION_VERSION,
        hardening: str = DEFAULT_HARDENING,
        field_scoring: bool = False,
        record_clk: str = DEFAULT_RECORD_CLK,
    ) -> LinkageSpec:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"{path}: cannot read linkage schema: {exc.strerror}") from None
        return cls.from_json(
            text,
            source=str(path),
            normalisation=normalisation,
            hardening=hardening,
            field_scoring=field_scoring,
            record_clk=record_clk,
        )

    @classmethod
    def from_json(
        cls,
        text: str,
        *,
        source: str = "schema",
        normalisation: str = NORMALISATION_VERSION,
        hardening: str = DEFAULT_HARDENING,
        field_scoring: bool = False,
        record_clk: str = DEFAULT_RECORD_CLK,
    ) -> LinkageSpec:
        """Parse and check a clkhash v3 schema; ``field_scoring`` adds the shipped field groups,
        ``record_clk = "salted"`` makes the record CLK of the shipped salted parts."""
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
        if record_clk not in RECORD_CLKS:
            raise SpecError(
                f"{source}: record_clk must be one of {', '.join(RECORD_CLKS)}, not {record_clk!r}"
            )
        added = _added_fields(schema, source)
        groups: tuple[FieldGroup, ...] = ()
        group_bits = 0
        group_flip = 0.0
        if field_scoring:
            groups, group_bits, group_flip = shipped_field_groups()
            groups += added_field_groups(list(added))
            hashed = {
                str(f.get("identifier"))
                for f in schema.get("features", [])
                if isinstance(f, dict) and not f.get("ignored", False)
            }
            for group in groups:
                missing = sorted(set(group.features) - hashed)
                if missing:
                    raise SpecError(
                        f"{source}: field_scoring needs the feature(s) {', '.join(missing)} "
                        f"(field group {group.name}) hashed in the schema"
                    )
        parts = shipped_record_parts() if record_clk == "salted" else ()
        hashed_features = {
            str(f.get("identifier"))
            for f in schema.get("features", [])
            if isinstance(f, dict) and not f.get("ignored", False)
        }
        for part in parts:
            if not hashed_features - set(part.without):
                raise SpecError(f"{source}: record CLK part {part.name} would hash no feature")
        return cls(
            json_text=canonical_json(schema),
            normalisation=normalisation,
            hardening=hardening,
            field_groups=groups,
            group_bits=group_bits,
            group_flip=group_flip,
            record_parts=parts,
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
    def added_fields(self) -> dict[str, str]:
        """Each feature beyond the six that names a normaliser, and the normaliser's name
        (``FIELD_NORMALISERS``; node.fields implements them)."""
        return _added_fields(self.schema, "schema")

    @property
    def identifier_comparisons(self) -> tuple[str, ...]:
        """Comparisons (``FieldGroup.comparison``) made only of identifiers: fields no two
        people share, the NHS number and any added field read as a ``code`` (a local id)."""
        own = set(IDENTIFIER_FIELDS) | {
            name for name, rule in self.added_fields.items() if rule in IDENTIFIER_NORMALISERS
        }
        return tuple(sorted({g.comparison for g in self.field_groups if set(g.features) <= own}))

    @property
    def postcode_country(self) -> str:
        """The country postcodes are read for (the postcode feature's "country"; "GB" unset)."""
        for feature in self.schema["features"]:
            if feature.get("identifier") == "postcode":
                return str(feature.get("country", DEFAULT_POSTCODE_COUNTRY))
        return DEFAULT_POSTCODE_COUNTRY

    @property
    def all_fields(self) -> tuple[str, ...]:
        """Every feature identifier in schema order, the order clkhash expects values in."""
        return tuple(str(f["identifier"]) for f in self.schema["features"])

    def with_field_groups(self, groups: Sequence[FieldGroup]) -> LinkageSpec:
        """This spec with other per-field filters: for measuring designs (bench/privacy.py, the
        attack tests), never a project's, whose filters are the shipped field groups."""
        return replace(self, field_groups=tuple(groups))

    def with_record_parts(self, parts: Sequence[RecordPart]) -> LinkageSpec:
        """This spec with the record CLK made of other parts (none: one unsalted filter).

        For measuring designs (bench/privacy.py, the attack tests); a project's record CLK
        is one unsalted filter or the shipped parts (its ``record_clk``).
        """
        return replace(self, record_parts=tuple(parts))

    def with_salts(self, salts: Mapping[str, str]) -> LinkageSpec:
        """This spec with the named field groups salted by other features ("" for none).

        For measuring what a salt costs or protects (bench/dedup.py --salt, the attack
        tests); a project's salts come from the shipped field groups.
        """
        unknown = set(salts) - {g.name for g in self.field_groups}
        if unknown:
            raise SpecError(f"no field group named {', '.join(sorted(unknown))}")
        groups = tuple(replace(g, salt=salts.get(g.name, g.salt)) for g in self.field_groups)
        return replace(self, field_groups=groups)

    @property
    def field_scoring(self) -> bool:
        """Whether records carry per-field filters for the coordinator to weigh field by field."""
        return bool(self.field_groups)

    @property
    def record_clk(self) -> str:
        """How the record CLK is made: "salted" (of ``record_parts``) or "unsalted"."""
        return "salted" if self.record_parts else "unsalted"

    @property
    def clk_bits(self) -> int:
        """Length of the record CLK before any hardening: its parts' lengths added up, or the
        schema's ``clkConfig.l`` for one unsalted filter."""
        if self.record_parts:
            return sum(p.bits for p in self.record_parts)
        return int(self.schema["clkConfig"]["l"])

    @property
    def encodings(self) -> tuple[EncodingLayout, ...]:
        """What every record carries: the CLK, then any per-field filters, each doubled in
        length when balanced."""
        factor = 2 if self.hardening == "balance" else 1
        record = EncodingLayout(RECORD_CLK, factor * self.clk_bits)
        groups = (EncodingLayout(g.name, factor * self.group_bits) for g in self.field_groups)
        return (record, *groups)

    def part_schema(self, part: RecordPart) -> dict[str, Any]:
        """The clkhash schema of one record-CLK part: the project's schema without the part's
        ``without`` features, the part's length, and its name as HKDF info (so its keys are
        unrelated to other parts' and to the field groups')."""
        return self._sub_schema(
            part.bits,
            f"hublink record part {part.name}",
            lambda identifier: identifier not in part.without,
        )

    def group_schema(self, group: FieldGroup) -> dict[str, Any]:
        """The clkhash schema of one per-field filter: the project's schema with every other
        feature ignored, its own length, and the group's name as HKDF info so that its keys
        (and so its bit positions) are unrelated to the record CLK's and other groups'."""
        return self._sub_schema(
            self.group_bits,
            f"hublink field group {group.name}",
            lambda identifier: identifier in group.features,
        )

    def _sub_schema(self, bits: int, info: str, keep: Callable[[str], bool]) -> dict[str, Any]:
        """The project's schema at ``bits`` long, with ``info`` as HKDF info, and every
        feature not kept ignored."""
        schema = self.schema
        schema["clkConfig"]["l"] = bits
        kdf = schema["clkConfig"].setdefault("kdf", {"type": "HKDF", "hash": "SHA256"})
        kdf["info"] = base64.b64encode(info.encode()).decode()
        for feature in schema["features"]:
            if not keep(feature["identifier"]):
                identifier = feature["identifier"]
                feature.clear()
                feature.update({"identifier": identifier, "ignored": True})
        return schema

    @property
    def record_bytes(self) -> int:
        """Bytes of all encodings of one record, concatenated in layout order."""
        return sum(e.nbytes for e in self.encodings)

    @property
    def sha256(self) -> str:
        """The hash a project pins: schema, normalisation, hardening and encoding layout."""
        pinned: dict[str, Any] = {
            "clkhash_schema": self.schema,
            "normalisation": self.normalisation,
            "hardening": self.hardening,
            "encodings": [[e.name, e.bits] for e in self.encodings],
        }
        if self.record_parts:
            pinned["record_parts"] = [
                [p.name, list(p.salt), list(p.without), p.bits] for p in self.record_parts
            ]
            if self.hardening == "balance":
                # Each part balanced and permuted on its own (node.encoder): not comparable
                # with the record CLKs balanced as one row before it, so pinned apart.
                pinned["record_balance"] = "per-part"
        if self.field_groups:
            pinned["field_groups"] = [
                [g.name, list(g.features), g.salt, *(["empty"] if g.empty_when_missing else [])]
                for g in self.field_groups
            ]
            pinned["field_group_flip"] = self.group_flip
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
