"""The node's side of the linkage-secret exchange, without any transport.

A node keeps an X25519 key pair in its state folder and publishes the public
half, signed with its TLS certificate's key. The node that creates a secret
checks every member's key, seals a copy of a fresh random secret to each with
HPKE and signs each envelope; every node checks the sender's key and
signature before opening its own copy. Keys are checked here and only here,
against a trust the coordinator cannot forge (``PeerTrust``): a certificate
from a CA its operator does not run, or a fingerprint the organisation
confirmed. A coordinator that substitutes a key is refused with a sentence
naming the organisation whose key failed.

Private keys and secrets are written with owner-only permissions, through a
temporary file, so a crash never leaves half a key.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.x509 import verification

from hublink import sealing
from hublink.identity import Identity, InvalidIdentity, Role, identity_from_certificate
from node.errors import NodeError

NODE_KEY_FILE = "node-key.pem"


class ExchangeError(NodeError, RuntimeError):
    """The exchange cannot go on; the message names the organisation or file and why."""


@dataclass(frozen=True)
class PublishedKey:
    """A member's key as the coordinator relayed it (not yet trusted)."""

    organisation: str
    public_key: bytes
    certificate_pem: str
    signature: bytes


@dataclass(frozen=True)
class SealedEnvelope:
    project_id: str
    epoch: int
    sender: str
    recipient: str
    enc: bytes
    ciphertext: bytes
    signature: bytes
    sender_certificate_pem: str


# ------------------------------------------------------------------ local files
def exchange_dir(state_dir: Path) -> Path:
    return state_dir / "secret-exchange"


def secret_path(state_dir: Path, project_id: str, epoch: int) -> Path:
    return exchange_dir(state_dir) / f"{project_id}.epoch-{epoch}.secret"


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner only, atomically (temporary file, then rename)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def generate_node_key(state_dir: Path) -> Path:
    """Create the node's X25519 key pair (refusing to replace one), returning its path."""
    path = exchange_dir(state_dir) / NODE_KEY_FILE
    if path.exists():
        raise FileExistsError(f"{path}: a node key already exists; it is kept")
    key = x25519.X25519PrivateKey.generate()
    write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return path


def load_node_key(state_dir: Path) -> x25519.X25519PrivateKey:
    path = exchange_dir(state_dir) / NODE_KEY_FILE
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ExchangeError(
            f"{path}: no node key; create one with `hublink node secret keygen`"
        ) from None
    except (OSError, ValueError) as exc:
        raise ExchangeError(f"{path}: cannot read the node key: {exc}") from None
    if not isinstance(key, x25519.X25519PrivateKey):
        raise ExchangeError(f"{path}: not an X25519 private key")
    return key


def raw_public(key: x25519.X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_signing_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ExchangeError(f"{path}: cannot read the certificate's private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ExchangeError(f"{path}: the certificate's key is not an elliptic-curve key")
    return key


def store_secret(state_dir: Path, project_id: str, epoch: int, secret: bytes) -> Path:
    path = secret_path(state_dir, project_id, epoch)
    write_private(path, secret.hex().encode())
    return path


def stored_secret(state_dir: Path, project_id: str, epoch: int) -> bytes | None:
    """The secret of ``epoch`` if this node holds it, else None."""
    path = secret_path(state_dir, project_id, epoch)
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ExchangeError(f"{path}: cannot read the stored secret: {exc}") from None


# ------------------------------------------------------------------ signing
def signed_key(
    project_id: str,
    organisation: str,
    node_key: x25519.X25519PrivateKey,
    certificate_pem: str,
    signing_key: ec.EllipticCurvePrivateKey,
) -> PublishedKey:
    """Our public key for ``project_id``, signed with our certificate's key."""
    public = raw_public(node_key)
    signature = sealing.sign(
        signing_key, sealing.node_key_message(project_id, organisation, public)
    )
    return PublishedKey(organisation, public, certificate_pem, signature)


# ------------------------------------------------------------------ trust
@dataclass(frozen=True)
class PeerTrust:
    """How this node decides a member's published key is genuine.

    ``pinned`` maps organisations to the fingerprints this organisation
    confirmed (the project file's ``[node_keys]``, copied into the node's
    config); ``cas`` are CA certificates the coordinator's operator does not
    control. A pinned fingerprint, when there is one, decides; otherwise the
    key's certificate must chain to one of ``cas``. The coordinator's own list
    of fingerprints (``served``) is only compared, never trusted.
    """

    pinned: Mapping[str, str]
    cas: Sequence[x509.Certificate] = ()
    served: Mapping[str, str] | None = None

    def check_key(self, project_id: str, key: PublishedKey) -> x509.Certificate:
        """The key's certificate, if the key is trustworthy; else ExchangeError naming the org."""
        org = key.organisation
        refuse = f"the secret-exchange key published for organisation {org!r} did not verify"
        try:
            certificate = sealing.load_certificate(key.certificate_pem)
            named = identity_from_certificate(key.certificate_pem.encode())
        except (sealing.SignatureError, InvalidIdentity) as exc:
            raise ExchangeError(f"{refuse}: {exc}") from None
        if named != Identity(org, Role.NODE):
            raise ExchangeError(f"{refuse}: its certificate names {named}")
        try:
            sealing.verify(
                certificate,
                key.signature,
                sealing.node_key_message(project_id, org, key.public_key),
            )
        except sealing.SignatureError as exc:
            raise ExchangeError(f"{refuse}: {exc}") from None
        pinned = self.pinned.get(org)
        if self.served is not None and pinned and self.served.get(org, pinned) != pinned:
            raise ExchangeError(
                f"the coordinator's project file lists a different key fingerprint for "
                f"organisation {org!r} than this node's confirmed copy; refusing"
            )
        if pinned:
            actual = sealing.fingerprint(key.public_key, key.certificate_pem)
            if actual != pinned:
                raise ExchangeError(
                    f"{refuse}: its fingerprint {actual[:19]}… is not the {pinned[:19]}… "
                    "confirmed for it (the coordinator may have substituted it)"
                )
            return certificate
        if self.cas:
            try:
                verifier = (
                    verification.PolicyBuilder()
                    .store(verification.Store(list(self.cas)))
                    .time(datetime.now(UTC))
                    .build_client_verifier()
                )
                verifier.verify(certificate, [])
            except verification.VerificationError as exc:
                raise ExchangeError(
                    f"{refuse}: its certificate is not from a trusted peer CA ({exc})"
                ) from None
            return certificate
        raise ExchangeError(
            f"{refuse}: this node has no confirmed fingerprint for it (node_keys) and no "
            "peer_ca; it will not trust the coordinator's word for a key"
        )


def load_peer_cas(path: Path | None) -> tuple[x509.Certificate, ...]:
    if path is None:
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(path.read_bytes()))
    except OSError as exc:
        raise ExchangeError(f"{path}: cannot read peer_ca: {exc.strerror}") from None
    except ValueError:
        raise ExchangeError(f"{path}: peer_ca holds no PEM certificate") from None


# ------------------------------------------------------------------ sealing
def seal_secret(
    project_id: str,
    epoch: int,
    sender: str,
    secret: bytes,
    recipients: Sequence[PublishedKey],
    certificate_pem: str,
    signing_key: ec.EllipticCurvePrivateKey,
) -> list[SealedEnvelope]:
    """One signed HPKE envelope of ``secret`` per recipient (keys already checked)."""
    envelopes = []
    for recipient in recipients:
        public = x25519.X25519PublicKey.from_public_bytes(recipient.public_key)
        sealed = sealing.SUITE.encrypt(
            secret,
            public,
            info=sealing.hpke_info(project_id, epoch, sender, recipient.organisation),
        )
        enc, ciphertext = sealed[: sealing.ENC_BYTES], sealed[sealing.ENC_BYTES :]
        signature = sealing.sign(
            signing_key,
            sealing.envelope_message(
                project_id, epoch, sender, recipient.organisation, enc, ciphertext
            ),
        )
        envelopes.append(
            SealedEnvelope(
                project_id,
                epoch,
                sender,
                recipient.organisation,
                enc,
                ciphertext,
                signature,
                certificate_pem,
            )
        )
    return envelopes


def open_envelope(
    envelope: SealedEnvelope,
    *,
    project_id: str,
    organisation: str,
    sender_certificate: x509.Certificate,
    node_key: x25519.X25519PrivateKey,
) -> bytes:
    """The secret inside ``envelope``, after checking it is ours and signed by the sender.

    ``sender_certificate`` is the certificate of the sender's key this node
    already trusts (``PeerTrust.check_key``); the envelope's own certificate
    must certify the same signing key.
    """
    sender = envelope.sender
    refuse = f"the secret envelope from organisation {sender!r} did not verify"
    if envelope.project_id != project_id or envelope.recipient != organisation:
        raise ExchangeError(f"{refuse}: it is addressed to another project or organisation")
    try:
        attached = sealing.load_certificate(envelope.sender_certificate_pem)
    except sealing.SignatureError as exc:
        raise ExchangeError(f"{refuse}: {exc}") from None
    if not sealing.same_signing_key(attached, sender_certificate):
        raise ExchangeError(f"{refuse}: it is not signed with {sender!r}'s verified key")
    try:
        sealing.verify(
            sender_certificate,
            envelope.signature,
            sealing.envelope_message(
                envelope.project_id,
                envelope.epoch,
                sender,
                envelope.recipient,
                envelope.enc,
                envelope.ciphertext,
            ),
        )
    except sealing.SignatureError as exc:
        raise ExchangeError(f"{refuse}: {exc}") from None
    try:
        secret = sealing.SUITE.decrypt(
            envelope.enc + envelope.ciphertext,
            node_key,
            info=sealing.hpke_info(project_id, envelope.epoch, sender, organisation),
        )
    except Exception:  # cryptography raises InvalidTag (or ValueError) for a bad envelope
        raise ExchangeError(
            f"{refuse}: it cannot be opened with this node's key (was it sealed to an older "
            "key? publish the current key and ask for a new secret)"
        ) from None
    if len(secret) != sealing.SECRET_BYTES:
        raise ExchangeError(f"{refuse}: the secret inside has the wrong length")
    return secret


def new_secret() -> bytes:
    return secrets.token_bytes(sealing.SECRET_BYTES)
