"""Normalising identifiers and hashing them into keyed Bloom-filter encodings with clkhash.

This is the last place raw identifiers exist: what leaves ``encode`` is a
random token and bits. Values are normalised before clkhash sees them, both so
that the same child written two ways hashes alike, and because clkhash
0.18.3's own date handling raises on impossible calendar dates.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hublink.spec import LinkageSpec
from node import normalise
from node.derived import DERIVATIONS, derive_values
from node.hardening import Balancer, permutation_key
from node.source import SourceRow

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from clkhash import clk
    from clkhash.schema import from_json_dict

#: How each linkage field is normalised; the output is the string clkhash hashes.
Normaliser = Callable[[str], str | None]


def _date_text(value: date | None) -> str | None:
    return None if value is None else value.strftime("%d%m%Y")


class RowError(ValueError):
    """A value present in a row that cannot be normalised; names the field and why."""

    def __init__(self, row: int, field: str, reason: str) -> None:
        self.row = row
        self.field = field
        self.reason = reason
        super().__init__(f"row {row}, field {field}: {reason}")


@dataclass(frozen=True)
class EncodedRecord:
    """What leaves the node for one record: a fresh random token and its encodings."""

    token: str
    local_id: str
    encodings: tuple[bytes, ...]
    attributes: tuple[tuple[str, str], ...] = ()
    """Coarse attributes the project releases (node.attributes), sent beside the encodings."""


def normalisers(date_formats: Sequence[str] = ()) -> dict[str, Normaliser]:
    """The normaliser for each field of the default early-years schema."""
    formats = list(date_formats) or None

    def dob(raw: str) -> str | None:
        return _date_text(normalise.date_of_birth(raw, formats=formats))

    return {
        "given_name": normalise.given_name,
        "family_name": normalise.family_name,
        "date_of_birth": dob,
        "sex": normalise.sex,
        "postcode": normalise.postcode,
        "nhs_number": normalise.nhs_number,
    }


def normalise_row(
    row: SourceRow, fields: Sequence[str], rules: Mapping[str, Normaliser]
) -> tuple[str, ...]:
    """The row's values in schema order, normalised; a missing value becomes ''.

    Features the schema derives from others (``node.derived``, e.g. the
    canonical given name) are computed from the normalised values, never read.
    """
    out = []
    for name in fields:
        if name in DERIVATIONS:
            out.append("")
            continue
        raw = row.values.get(name, "")
        rule = rules.get(name)
        try:
            value = rule(raw) if rule else (raw.strip() or None)
        except normalise.NormalisationError as exc:
            raise RowError(row.row, name, str(exc)) from None
        out.append(value or "")
    return derive_values(tuple(fields), tuple(out))


class Encoder:
    """Hashes normalised values with the project's secret into the spec's encodings."""

    def __init__(self, spec: LinkageSpec, secret: bytes) -> None:
        if not secret:
            raise ValueError("the linkage secret is empty")
        self.spec = spec
        self._schema: Any = from_json_dict(dict(spec.schema))
        self._secret = secret
        self._fields = spec.all_fields
        self._derived = frozenset(i for i, f in enumerate(self._fields) if f in DERIVATIONS)
        self._balancer = (
            Balancer(permutation_key(secret, spec.sha256), spec.clk_bits)
            if spec.hardening == "balance"
            else None
        )

    def _complete(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """Values for every schema feature, derived ones (node.derived) computed here.

        Accepts the values of every feature, or of the features read from a
        file only (derived ones left out), so callers need not know which
        features a schema derives.
        """
        fields = self._fields
        if len(values) == len(fields) - len(self._derived):
            given = iter(values)
            values = tuple("" if i in self._derived else next(given) for i in range(len(fields)))
        elif len(values) != len(fields):
            raise ValueError(f"expected {len(fields)} values in schema order, not {len(values)}")
        return derive_values(fields, values)

    def encode(self, values: Sequence[tuple[str, ...]]) -> list[bytes]:
        """One record-level encoding per row of normalised values, as packed bytes.

        The CLK clkhash makes is balanced and permuted when the spec asks for
        it (the default), so what leaves is always what the spec's layout says.
        """
        if not values:
            return []
        rows = [self._complete(v) for v in values]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clks = clk.generate_clks(rows, self._schema, self._secret)
        packed = [bits.tobytes() for bits in clks]
        return self._balancer.harden(packed) if self._balancer else packed


@dataclass(frozen=True)
class PreparedRecord:
    """A row after normalisation, before hashing: still identifying, never leaves the node."""

    local_id: str
    values: tuple[str, ...]
    extra: Mapping[str, str] = field(default_factory=dict)
    """Raw cells of the columns released attributes are derived from (node.attributes)."""


def prepare_rows(
    rows: Iterable[SourceRow], fields: Sequence[str], rules: Mapping[str, Normaliser]
) -> list[PreparedRecord]:
    """Normalise every row (raising RowError at the first bad one) without hashing anything.

    Kept apart from encoding so that bad input is reported before the node
    contacts the coordinator, and nothing is hashed before the project's
    encoding hash has been checked.
    """
    return [PreparedRecord(row.local_id, normalise_row(row, fields, rules)) for row in rows]


def encode_records(
    prepared: Sequence[PreparedRecord],
    encoder: Encoder,
    *,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> list[EncodedRecord]:
    """Hash prepared records in batches, giving each a fresh random token."""
    out: list[EncodedRecord] = []
    for start in range(0, len(prepared), batch):
        part = prepared[start : start + batch]
        bits = encoder.encode([p.values for p in part])
        out.extend(
            EncodedRecord(new_token(), p.local_id, (b,)) for p, b in zip(part, bits, strict=True)
        )
        if progress:
            progress(len(part))
    return out


def new_token() -> str:
    """A fresh random record token: 16 random bytes, URL-safe base64 (22 characters)."""
    return secrets.token_urlsafe(16)
