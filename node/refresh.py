"""Refreshing an upload: work out what changed since the extract the coordinator holds.

Councils export full snapshots, so ``hublink node upload`` run again reads
the whole extract and compares it, record by record, with what it sent
before, using only the node's own token store (``node.tokens``):

* a local id not held before is *added*: it draws a new token;
* a held local id whose normalised values (or released attributes) differ is
  *changed*: it keeps its token and is encoded afresh (the per-field filters'
  flipped bits are seeded by the token, so it is encoded exactly as a new
  record under that token would be);
* a held local id no longer included — gone from the extract, or now excluded
  by the consent policy, which is applied afresh every time — is *removed*;
* anything else is *unchanged*: nothing about it travels.

"Differ" is decided without keeping identifiers: the store keeps, per record,
an HMAC of its normalised values under a key derived from the linkage secret
(``fingerprint``). Someone who reads the token store learns nothing from it
without the secret, and the secret's holder could recompute the encodings
anyway.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass

from hublink.config import NodeConfig
from node.prepare import PreparedRecord
from node.source import InputError, ReadOptions, local_ids

Fingerprint = Callable[[PreparedRecord], str]

_FINGERPRINT_LABEL = b"hublink refresh fingerprint v1"


def fingerprinter(secret: bytes) -> Fingerprint:
    """A record's fingerprint: HMAC-SHA256 of its normalised values and kept columns."""
    key = hmac.digest(secret or b"hublink: no linkage secret", _FINGERPRINT_LABEL, "sha256")

    def fingerprint(record: PreparedRecord) -> str:
        text = "\x1e".join(
            [
                *record.values,
                *(f"{name}={value}" for name, value in sorted(record.extra.items())),
            ]
        )
        return hmac.digest(key, text.encode("utf-8"), "sha256").hex()[:32]

    return fingerprint


@dataclass(frozen=True)
class Delta:
    """What a refresh sends: records added or changed, and tokens of records removed."""

    added: frozenset[str]
    """Local ids new to the coordinator."""
    changed: Mapping[str, str]
    """Local id -> the token it keeps, for held records whose values changed."""
    removed: Mapping[str, str]
    """Local id -> token, for held records no longer included."""
    unchanged: int
    left_extract: int = 0
    """Of the removed: local ids no longer in the file at all."""
    left_consent: int = 0
    """Of the removed: still in the file but excluded now (consent, opt-out or withdrawal)."""
    rejoined: int = 0
    """Of the added: local ids sent once before and removed since (consent given again,
    back in the extract)."""

    @property
    def sent(self) -> int:
        return len(self.added) + len(self.changed)

    def fingerprint(self) -> str:
        """SHA-256 over what the refresh sends, so an interrupted one resumes only if equal."""
        digest = hashlib.sha256()
        for local_id in sorted(self.added):
            digest.update(b"a\0" + local_id.encode() + b"\0")
        for local_id in sorted(self.changed):
            digest.update(b"c\0" + local_id.encode() + b"\0")
        for local_id in sorted(self.removed):
            digest.update(b"r\0" + local_id.encode() + b"\0")
        return digest.hexdigest()

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
            "left_extract": self.left_extract,
            "left_consent": self.left_consent,
            "rejoined": self.rejoined,
        }


def plan(
    included: Iterator[PreparedRecord],
    held: Mapping[str, tuple[str, str]],
    fingerprint: Fingerprint,
    *,
    in_file: Collection[str] = (),
    withdrawn_tokens: Collection[str] = (),
    sent_before: Collection[str] = (),
) -> tuple[Delta, dict[str, str]]:
    """Compare the included records with those held; returns the delta and every included
    record's fingerprint (local id -> fingerprint).

    ``in_file`` (every local id the file holds, included or not) splits the
    removed into those that left the extract and those excluded now;
    ``sent_before`` (local ids ever sent) finds the added that rejoined. Tokens
    already withdrawn are not removed again: the coordinator deleted them.
    """
    prints: dict[str, str] = {}
    added: set[str] = set()
    changed: dict[str, str] = {}
    unchanged = 0
    for record in included:
        fp = fingerprint(record)
        prints[record.local_id] = fp
        before = held.get(record.local_id)
        if before is None:
            added.add(record.local_id)
        elif before[1] != fp:
            changed[record.local_id] = before[0]
        else:
            unchanged += 1
    removed = {
        local: token
        for local, (token, _) in held.items()
        if local not in prints and token not in withdrawn_tokens
    }
    left_file = sum(1 for local in removed if local not in in_file) if in_file else len(removed)
    delta = Delta(
        frozenset(added),
        changed,
        removed,
        unchanged,
        left_extract=left_file,
        left_consent=len(removed) - left_file,
        rejoined=sum(1 for local in added if local in sent_before),
    )
    return delta, prints


def local_ids_in_file(config: NodeConfig) -> frozenset[str]:
    """Every local id in the input, included or not (empty if the file cannot be read so):
    tells records that left the extract from those the consent policy now leaves out."""
    section = config.input
    options = ReadOptions(section.format, section.encoding, section.delimiter, section.sheet)
    try:
        return local_ids(section.path, section.id_column, options)
    except (OSError, InputError):
        return frozenset()
