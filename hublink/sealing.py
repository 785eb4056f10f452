"""What both sides of the linkage-secret exchange must compute identically.

The nodes of a project agree their hashing secret through the coordinator
without the coordinator learning it: each node publishes an X25519 public key,
one node seals a fresh secret to every member's key with HPKE, and each node
opens its own copy. HPKE in base mode says nothing about who sealed, so every
published key and every envelope is signed with the private key of the
signer's TLS certificate (ECDSA P-256), over the exact bytes defined here.

The coordinator checks these signatures too (to refuse malformed uploads
early), but nodes never rely on that: a coordinator could substitute keys and
re-sign them with a certificate its own CA minted. Nodes trust a peer's key
only through a certificate from a CA the operator does not control, or a
fingerprint the organisation confirmed (``fingerprint`` below, which also
binds the certificate key that signs envelopes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec

#: HPKE suite for sealing secrets: X25519 KEM, HKDF-SHA256, ChaCha20-Poly1305.
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
#: Bytes of an X25519 public key, and of HPKE's encapsulated key for it.
PUBLIC_KEY_BYTES = 32
ENC_BYTES = 32
#: Bytes of the linkage secret a node creates for an epoch.
SECRET_BYTES = 32
#: Upper bound on a sealed secret's ciphertext (secret plus AEAD tag, with room to spare).
MAX_CIPHERTEXT_BYTES = 256

_NODE_KEY_LABEL = b"hublink node key v1"
_ENVELOPE_LABEL = b"hublink secret envelope v1"
_HPKE_INFO_LABEL = b"hublink linkage secret v1"


class SignatureError(ValueError):
    """A signature or certificate that does not check out; the message says which and why."""


def _fields(label: bytes, values: Sequence[bytes | str | int]) -> bytes:
    """Length-prefixed concatenation, so no two field lists give the same bytes."""
    out = bytearray(label)
    for value in values:
        raw = (
            value.encode()
            if isinstance(value, str)
            else value.to_bytes(8, "big")
            if isinstance(value, int)
            else value
        )
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def node_key_message(project_id: str, organisation: str, public_key: bytes) -> bytes:
    """The bytes a node signs when it publishes its public key for a project."""
    return _fields(_NODE_KEY_LABEL, (project_id, organisation, public_key))


def envelope_message(
    project_id: str, epoch: int, sender: str, recipient: str, enc: bytes, ciphertext: bytes
) -> bytes:
    """The bytes the creating node signs for each envelope."""
    return _fields(_ENVELOPE_LABEL, (project_id, epoch, sender, recipient, enc, ciphertext))


def hpke_info(project_id: str, epoch: int, sender: str, recipient: str) -> bytes:
    """HPKE's info string: binds a sealed secret to its project, epoch, sender and recipient."""
    return _fields(_HPKE_INFO_LABEL, (project_id, epoch, sender, recipient))


def load_certificate(pem: str | bytes) -> x509.Certificate:
    raw = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(raw)
    except ValueError as exc:
        raise SignatureError(f"the certificate is not readable PEM: {exc}") from None


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def same_signing_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    """Whether two certificates certify the same public key."""
    return _spki(a) == _spki(b)


def fingerprint(public_key: bytes, certificate_pem: str | bytes) -> str:
    """``sha256:<hex>`` over the X25519 key and the signing certificate's public key.

    Covering the certificate's key as well means a confirmed fingerprint also
    pins who may sign envelopes for the organisation; a node that renews its
    certificate with a new key gets a new fingerprint to confirm.
    """
    spki = _spki(load_certificate(certificate_pem))
    digest = hashlib.sha256(_fields(b"hublink node key fingerprint v1", (public_key, spki)))
    return f"sha256:{digest.hexdigest()}"


def sign(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """ECDSA-SHA256 signature (DER)."""
    return private_key.sign(message, ec.ECDSA(hashes.SHA256()))


def verify(certificate: x509.Certificate, signature: bytes, message: bytes) -> None:
    """Raise SignatureError unless ``signature`` is the certificate key's over ``message``."""
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError("the certificate's key is not an elliptic-curve key")
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureError("the signature does not verify") from None
