"""Signed checkpoints of the audit log, in the C2SP signed-note checkpoint format.

Why a standard text format: an IG officer, a node and a third party each keep
the checkpoints they were shown and can compare them with nothing but the
coordinator's public key, in any language. A checkpoint's body is three
lines — origin, tree size in decimal, base64 root hash — then hublink's one
extension line, ``time <RFC 3339 UTC>``, so the moment it was signed is
signed too (checkpoints signed by earlier versions carry no time line; their time is
only what the database says, and verification says so). The note adds,
after a blank line, one line per signature: an em dash, the key's name, and
base64 of the 4-byte key id followed by the Ed25519 signature of the body.
The key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public
key). A public key is passed around as a verifier key line,
``name+hexid+base64(0x01 || public key)``, which is what ``coordinator.pub``
holds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hublink.errors import HublinkError

ED25519 = b"\x01"
DASH = "\u2014"


class CheckpointError(HublinkError, ValueError):
    """A note, checkpoint or key that cannot be read or whose signature does not verify."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CheckpointError(f"{what} is not valid base64") from None


def key_id(name: str, public: bytes) -> bytes:
    """The 4-byte id a signature line carries: SHA-256(name || LF || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(ch.isspace() or ch == "+" for ch in name):
        raise CheckpointError(f"key name {name!r} must be non-empty without spaces or '+'")


TIME_PREFIX = "time "


@dataclass(frozen=True)
class Checkpoint:
    """A log's size and root hash at one moment, named by the log's origin.

    ``time`` is when it was signed, as the signed ``time`` extension line
    states it ("" for a checkpoint signed without one).
    """

    origin: str
    size: int
    root: bytes
    time: str = ""

    def body(self) -> str:
        extension = f"{TIME_PREFIX}{self.time}\n" if self.time else ""
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\n{extension}"


def parse_body(body: str) -> Checkpoint:
    """Read a checkpoint body: origin, size, root, then extension lines (``time …`` is read)."""
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise CheckpointError("a checkpoint has an origin, a size and a root, one a line")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin:
        raise CheckpointError("the checkpoint has no origin line")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"checkpoint size {size_text!r} is not a decimal number")
    root = _unb64(root_text, "the checkpoint's root hash")
    if len(root) != 32:
        raise CheckpointError("the checkpoint's root hash is not 32 bytes")
    times = [line[len(TIME_PREFIX) :] for line in lines[3:-1] if line.startswith(TIME_PREFIX)]
    if len(times) > 1:
        raise CheckpointError("the checkpoint states its time twice")
    return Checkpoint(origin, int(size_text), root, times[0] if times else "")


class Verifier:
    """A public key that checks notes signed under one name."""

    def __init__(self, name: str, public: bytes) -> None:
        _check_name(name)
        if len(public) != 32:
            raise CheckpointError("an Ed25519 public key is 32 bytes")
        self.name = name
        self.public = public
        self.key_id = key_id(name, public)
        self._key = Ed25519PublicKey.from_public_bytes(public)

    @classmethod
    def from_vkey(cls, text: str) -> Verifier:
        """Read a verifier key line: name+hexid+base64(0x01 || public key)."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise CheckpointError("a public key line reads name+keyid+base64key")
        name, hexid, encoded = parts
        raw = _unb64(encoded, "the public key")
        if not raw.startswith(ED25519) or len(raw) != 33:
            raise CheckpointError("the public key is not an Ed25519 key")
        verifier = cls(name, raw[1:])
        if verifier.key_id.hex() != hexid.lower():
            raise CheckpointError("the public key line's id does not match its key")
        return verifier

    @classmethod
    def from_file(cls, path: Path) -> Verifier:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot read the public key: {exc.strerror}") from None
        try:
            return cls.from_vkey(text)
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(ED25519 + self.public)}"

    def open(self, note: str) -> str:
        """The note's body if one of its signatures is this key's and verifies; else raise."""
        body, signatures = split_note(note)
        ours = [s for s in signatures if s[0] == self.name and s[1][:4] == self.key_id]
        if not ours and any(s[0] == self.name for s in signatures):
            raise CheckpointError(
                f"the note's signature names the key {self.name} but not its id "
                f"({self.key_id.hex()}): it was altered, or made with another key"
            )
        if not ours:
            names = ", ".join(sorted({s[0] for s in signatures})) or "none"
            raise CheckpointError(
                f"the note is not signed by the key {self.name} ({self.key_id.hex()}); "
                f"it is signed by: {names}"
            )
        for _, blob in ours:
            try:
                self._key.verify(blob[4:], body.encode())
                return body
            except InvalidSignature:
                continue
        raise CheckpointError(f"the note's signature by {self.name} does not verify")

    def open_checkpoint(self, note: str) -> Checkpoint:
        """A checkpoint whose signature verifies under this key and whose origin is the key's."""
        checkpoint = parse_body(self.open(note))
        if checkpoint.origin != self.name:
            raise CheckpointError(
                f"the checkpoint is for log {checkpoint.origin!r}, not {self.name!r}"
            )
        return checkpoint


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """A note's body and its (key name, key id + signature) pairs."""
    body, sep, rest = note.rpartition("\n\n")
    if not sep or not rest.endswith("\n"):
        raise CheckpointError("a signed note is text, a blank line, then signature lines")
    body += "\n"
    signatures: list[tuple[str, bytes]] = []
    for line in rest[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise CheckpointError(f"{line[:40]!r} is not a signature line")
        blob = _unb64(parts[2], "a signature")
        if len(blob) < 5:
            raise CheckpointError("a signature line is too short")
        signatures.append((parts[1], blob))
    return body, signatures


def parse_note(note: str) -> Checkpoint:
    """The checkpoint a note states, without checking any signature (to report what it claims)."""
    return parse_body(split_note(note)[0])


class Signer:
    """The coordinator's Ed25519 key, signing checkpoints of its log."""

    def __init__(self, key: Ed25519PrivateKey, name: str | None = None) -> None:
        self._key = key
        self.public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.name = name or default_origin(self.public)
        _check_name(self.name)
        self.key_id = key_id(self.name, self.public)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.public)

    def sign(self, body: str) -> str:
        """A signed note of ``body`` (which must end with a newline)."""
        if not body.endswith("\n"):
            raise CheckpointError("a note's text ends with a newline")
        signature = self._key.sign(body.encode())
        return f"{body}\n{DASH} {self.name} {_b64(self.key_id + signature)}\n"

    def sign_checkpoint(self, size: int, root: bytes, time: str = "") -> str:
        """A signed checkpoint note; ``time`` (RFC 3339), if given, is signed with it."""
        if "\n" in time:
            raise CheckpointError("a checkpoint time is one line")
        return self.sign(Checkpoint(self.name, size, root, time).body())


def default_origin(public: bytes) -> str:
    """A log's origin (and key name) derived from its key, unique to each coordinator."""
    return f"hublink.audit/{hashlib.sha256(public).hexdigest()[:16]}"


def default_audit_key(database: Path | str) -> Path:
    """Where the audit signing key lives when the config names none: beside the database.

    Here rather than in the coordinator because the coordinator, its backup and
    the audit commands that read its database on its host all need the same path.
    """
    path = Path(database)
    return path.with_name(f"{path.stem}.audit-key.pem")


def load_or_create_key(path: Path) -> Signer:
    """The signing key at ``path``, created (mode 0600, never overwritten) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            # Linking fails if another process created the key meanwhile: keep theirs.
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        finally:
            temp.unlink(missing_ok=True)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read the audit signing key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path}: the audit signing key is not an Ed25519 key")
    return Signer(key)


def write_public_key(verifier: Verifier, path: Path) -> None:
    """Write the verifier key line to ``path`` (through a temporary file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(verifier.vkey() + "\n", encoding="utf-8")
    os.replace(temp, path)
