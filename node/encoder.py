"""Hashing normalised identifiers into keyed Bloom-filter encodings with clkhash.

This is the last place raw identifiers exist: what leaves ``encode`` is a
random token and bits. It takes the records ``node.prepare`` normalised and
does no normalising of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hublink.spec import LinkageSpec
from node.derived import DERIVATIONS, derivable, derive_values, derived_value
from node.hardening import Balancer, keyed_permutation, permutation_key
from node.prepare import PreparedRecord

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from clkhash import clk
    from clkhash.schema import from_json_dict


@dataclass(frozen=True)
class EncodedRecord:
    """What leaves the node for one record: a fresh random token and its encodings."""

    token: str
    local_id: str
    encodings: tuple[bytes, ...]
    attributes: tuple[tuple[str, str], ...] = ()
    """Coarse attributes the project releases (node.attributes), sent beside the encodings."""


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
        balance = spec.hardening == "balance"
        # An unsalted record CLK is balanced whole; a salted one part by part, each part
        # with its own key (``_record_clks``), so no part's weight depends on another's.
        self._balancer = (
            Balancer(permutation_key(secret, spec.sha256), spec.clk_bits)
            if balance and not spec.record_parts
            else None
        )
        self._flip_key = permutation_key(secret, f"{spec.sha256}/flips")
        self._salt_key = permutation_key(secret, f"{spec.sha256}/salts")
        self._noise_key = permutation_key(secret, f"{spec.sha256}/unsalted")
        self._salt_orders: dict[tuple[str, str], np.ndarray] = {}
        for part in spec.record_parts:
            missing = [f for f in part.salt if not derivable(f, self._fields)]
            if missing:
                raise ValueError(
                    f"record CLK part {part.name} is salted with {', '.join(missing)}, which "
                    "the linkage schema neither has nor can derive"
                )
        # The record CLK's parts: each its own schema, keys and balancing permutation
        # (hublink.spec.RecordPart).
        self._parts = [
            (
                from_json_dict(spec.part_schema(part)),
                part,
                Balancer(permutation_key(secret, f"{spec.sha256}/{part.name}"), part.bits)
                if balance
                else None,
            )
            for part in spec.record_parts
        ]
        for group in spec.field_groups:
            if group.salt and not derivable(group.salt, self._fields):
                raise ValueError(
                    f"field group {group.name} is salted with {group.salt}, which the linkage "
                    "schema neither has nor can derive"
                )
        # Per-field filters (project setting field_scoring): each its own schema, keys and
        # permutation, so no bit position of one is related to another's.
        self._groups = [
            (
                from_json_dict(spec.group_schema(group)),
                Balancer(permutation_key(secret, f"{spec.sha256}/{group.name}"), spec.group_bits)
                if spec.hardening == "balance"
                else None,
            )
            for group in spec.field_groups
        ]

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
        return self._record_clks([self._complete(v) for v in values])

    def _record_clks(self, rows: list[tuple[str, ...]]) -> list[bytes]:
        """The record CLK of each row: its salted parts, each hardened, concatenated.

        Each part is hashed, its bits permuted by the record's salt value
        (``_salted``), and replaced by random bits where that value is missing.
        Each part is then balanced and permuted on its own (its own key): every part
        has exactly half its bits set, so the whole row's Dice is the mean of the
        parts' and the coordinator can score a part alone (a pair whose only
        agreeing salt is one part's still shows as that part's high Dice).
        The random bits are drawn from a key and the record's values, so the same
        record always sends the same CLK (a resumed upload, or an exact duplicate
        referral, still agrees on every part) and a record differing in any value
        sends unrelated ones.
        """
        if not self._parts:
            return self._hash(rows, self._schema, self._balancer)
        pieces = []
        seeds = [self._noise_seed(row) for row in rows]
        for schema, part, balancer in self._parts:
            hashed = self._hash(rows, schema, None)
            salts = [salt_value(part.salt, self._fields, row) for row in rows]
            hashed = self._salted(hashed, part.name, salts)
            hashed = noise_where_unsalted(hashed, salts, [part.name.encode() + s for s in seeds])
            pieces.append(balancer.harden(hashed) if balancer else hashed)
        return [b"".join(parts) for parts in zip(*pieces, strict=True)]

    def _noise_seed(self, row: tuple[str, ...]) -> bytes:
        text = "\x1e".join(row)
        return hmac.new(self._noise_key, text.encode(), hashlib.sha256).digest()

    def encode_all(
        self, values: Sequence[tuple[str, ...]], tokens: Sequence[str] = ()
    ) -> list[tuple[bytes, ...]]:
        """Every encoding of the spec's layout per row: the record CLK, then each per-field
        filter (``LinkageSpec.field_groups``) in layout order.

        ``tokens`` (one per row) seed the bits flipped in per-field filters;
        without them fresh random tokens are used, so the filters cannot be
        made again.
        """
        if not values:
            return []
        rows = [self._complete(v) for v in values]
        parts = [self._record_clks(rows)]
        if self._groups:
            if not tokens:
                tokens = [new_token() for _ in rows]
            if len(tokens) != len(rows):
                raise ValueError(f"expected {len(rows)} tokens, not {len(tokens)}")
            for (schema, balancer), group in zip(self._groups, self.spec.field_groups, strict=True):
                seeds = [self._flip_seed(token, group.name) for token in tokens]
                hashed = self._hash(rows, schema, balancer)
                if group.salt:
                    salts = [derived_value(group.salt, self._fields, row) for row in rows]
                    hashed = self._salted(hashed, group.name, salts)
                    hashed = noise_where_unsalted(hashed, salts, seeds)
                flipped = flip_bits(hashed, self.spec.group_flip, seeds)
                if group.empty_when_missing:
                    flipped = empty_where_missing(flipped, group.features, self._fields, rows)
                parts.append(flipped)
        return list(zip(*parts, strict=True))

    def _salted(self, packed: list[bytes], group: str, salts: Sequence[str]) -> list[bytes]:
        """Each filter's bits permuted by a key drawn from the secret and its salt value.

        Two records' filters are comparable only when their salt values are
        equal; otherwise they look unrelated. So a given-name filter salted with
        the month of birth agrees only for the same name born in the same month, and
        near-identical filters can no longer be counted to learn how common a
        name is.
        """
        rows = np.unpackbits(
            np.frombuffer(b"".join(packed), dtype=np.uint8).reshape(len(packed), -1), axis=1
        )
        out = np.empty_like(rows)
        # Rows by salt value in one pass: comparing every row with every value costs the
        # square of a batch, and salts such as the full postcode are near-unique.
        sharing: dict[str, list[int]] = {}
        for index, value in enumerate(salts):
            sharing.setdefault(value, []).append(index)
        for value, chosen in sharing.items():
            out[chosen] = rows[chosen][:, self._salt_order(group, value, rows.shape[1])]
        return [row.tobytes() for row in np.packbits(out, axis=1)]

    def _salt_order(self, group: str, value: str, size: int) -> np.ndarray:
        """The permutation for one salt value (kept: records of one child share it, and a
        batch often holds several; forgotten in bulk beyond ``SALT_ORDERS_KEPT``, since
        near-unique salts would otherwise grow without bound over a large upload)."""
        found = self._salt_orders.get((group, value))
        if found is None:
            key = hmac.new(self._salt_key, f"{group}\x1f{value}".encode(), hashlib.sha256)
            found = keyed_permutation(key.digest(), size).astype(np.int32)
            if len(self._salt_orders) >= SALT_ORDERS_KEPT:
                self._salt_orders.clear()
            self._salt_orders[(group, value)] = found
        return found

    def _flip_seed(self, token: str, group: str) -> bytes:
        return hmac.new(self._flip_key, f"{group}\x1f{token}".encode(), hashlib.sha256).digest()

    def _hash(
        self, rows: list[tuple[str, ...]], schema: Any, balancer: Balancer | None
    ) -> list[bytes]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clks = clk.generate_clks(rows, schema, self._secret)
        packed = [bits.tobytes() for bits in clks]
        return balancer.harden(packed) if balancer else packed


#: Most salt permutations one encoder keeps (each a few kilobytes).
SALT_ORDERS_KEPT = 50_000


def salt_value(features: Sequence[str], fields: tuple[str, ...], row: tuple[str, ...]) -> str:
    """A record's salt: the values of ``features`` joined, or "" when any of them is missing
    (a salt of only the values present would put every record lacking one in one class)."""
    values = [derived_value(f, fields, row) for f in features]
    return "\x1f".join(values) if all(values) else ""


def noise_where_unsalted(
    packed: list[bytes], salts: Sequence[str], seeds: Sequence[bytes]
) -> list[bytes]:
    """A record whose salt value is missing sends random bits in place of the filter.

    Every such record would otherwise share one permutation, and near-identical
    filters among them could be counted again. Random bits (drawn from the
    record's flip seed, so a resumed upload sends the same) carry nothing, and
    score like an unrelated record: the other variant of the same comparison
    (hublink/schemas/field-groups.json) still carries the agreement.
    """
    out = list(packed)
    for i, salt in enumerate(salts):
        if not salt:
            out[i] = hashlib.shake_256(b"unsalted\x1f" + seeds[i]).digest(len(packed[i]))
    return out


def empty_where_missing(
    packed: list[bytes],
    features: Sequence[str],
    fields: tuple[str, ...],
    rows: Sequence[tuple[str, ...]],
) -> list[bytes]:
    """A record with none of the group's values sends an all-zero filter (no flips).

    For the filters of fields a project adds (an address line, a local id), which
    many records lack: the coordinator scores an all-zero filter as missing, so a
    field one organisation never records weighs neither for nor against a pair.
    Otherwise two records both lacking it would send identical filters and agree.
    """
    return [
        bits if any(derived_value(f, fields, row) for f in features) else bytes(len(bits))
        for bits, row in zip(packed, rows, strict=True)
    ]


def flip_bits(packed: list[bytes], chance: float, seeds: Sequence[bytes]) -> list[bytes]:
    """Each encoding with every bit flipped independently with probability ``chance``.

    The flips are drawn from SHAKE-256 of the record's seed (``Encoder.flip_seeds``:
    keyed by the linkage secret and the record's random token), so two records
    with the same values never send the same bits (BLIP, Schnell and Borgs
    2016: equal filters cannot be counted), while a record sent again under the
    same token, as a resumed upload does, gets the same bits and digest.
    """
    if not packed or chance <= 0:
        return packed
    rows = np.frombuffer(b"".join(packed), dtype=np.uint8).reshape(len(packed), -1)
    width = rows.shape[1] * 8
    stream = b"".join(hashlib.shake_256(seed).digest(2 * width) for seed in seeds)
    draws = np.frombuffer(stream, dtype="<u2").reshape(len(packed), width)
    mask = np.packbits(draws < round(chance * 65536), axis=1)
    return [row.tobytes() for row in rows ^ mask]


def encode_records(
    prepared: Sequence[PreparedRecord],
    encoder: Encoder,
    *,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
    tokens: Sequence[str] = (),
) -> list[EncodedRecord]:
    """Hash prepared records in batches, each under its token (``tokens``, one per record)
    or, without them, a fresh random one."""
    out: list[EncodedRecord] = []
    chosen = list(tokens) or [new_token() for _ in prepared]
    if len(chosen) != len(prepared):
        raise ValueError(f"expected {len(prepared)} tokens, not {len(chosen)}")
    for start in range(0, len(prepared), batch):
        part = prepared[start : start + batch]
        names = chosen[start : start + batch]
        encoded = encoder.encode_all([p.values for p in part], names)
        out.extend(
            EncodedRecord(t, p.local_id, e) for t, p, e in zip(names, part, encoded, strict=True)
        )
        if progress:
            progress(len(part))
    return out


def new_token() -> str:
    """A fresh random record token: 16 random bytes, URL-safe base64 (22 characters)."""
    return secrets.token_urlsafe(16)
