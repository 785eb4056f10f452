"""Mutual-TLS credentials for gRPC, and the caller's identity as its certificate names it.

Every hublink connection is mutual TLS against one trusted CA bundle: the
server proves who it is to the client and, just as importantly, the client
proves who it is to the server. The server side then learns the caller's
organisation and role from the verified client certificate (``peer_identity``)
and from nowhere else.

Files are read and checked here, before gRPC sees them, because gRPC reports a
missing or mismatched file only as a failed handshake or an opaque start-up
error; ``TlsConfigError`` instead names the file and what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hublink.errors import HublinkError
from hublink.identity import Identity, InvalidIdentity, identity_from_certificate
from hublink.pki import CertificateFiles

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""Largest gRPC message either side sends or accepts. gRPC's default receive limit
is 4 MiB; a batch of encodings can exceed that, and a fixed, stated limit is
easier to reason about than a default that differs between client and server."""

PEER_CERTIFICATE_KEY = "x509_pem_cert"
"""The auth-context property in which gRPC puts the peer's verified leaf certificate."""


class TlsConfigError(HublinkError, ValueError):
    """A TLS file that is missing, unreadable or wrong; the message names the file and why."""


@dataclass(frozen=True)
class TlsFiles:
    """The trusted CA bundle, this party's certificate chain, and its private key."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def from_certificate_files(cls, files: CertificateFiles) -> TlsFiles:
        """Use certificates made by ``hublink.pki`` (or laid out the same way)."""
        return cls(ca=files.ca, cert=files.cert, key=files.key)


@dataclass(frozen=True)
class _Material:
    ca: bytes
    cert: bytes
    key: bytes


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise TlsConfigError(f"cannot read TLS {what} {path}: {reason}") from exc


def _load(files: TlsFiles) -> _Material:
    """Read all three files and check that they fit together.

    Checks: the CA file holds at least one PEM certificate, the certificate file
    holds a PEM chain whose first certificate is this party's, and the private
    key is unencrypted PEM and belongs to that first certificate.
    """
    ca = _read(files.ca, "CA certificate")
    cert = _read(files.cert, "certificate")
    key = _read(files.key, "private key")
    try:
        x509.load_pem_x509_certificates(ca)
    except ValueError:
        raise TlsConfigError(
            f"TLS CA certificate {files.ca} does not contain a PEM certificate"
        ) from None
    try:
        leaf = x509.load_pem_x509_certificates(cert)[0]
    except ValueError:
        raise TlsConfigError(
            f"TLS certificate {files.cert} does not contain a PEM certificate"
        ) from None
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        # TypeError: the key is encrypted; gRPC cannot use an encrypted key.
        raise TlsConfigError(
            f"TLS private key {files.key} is not an unencrypted PEM private key: {exc}"
        ) from None
    if private_key.public_key() != leaf.public_key():
        raise TlsConfigError(
            f"TLS private key {files.key} does not belong to certificate {files.cert}"
        )
    return _Material(ca=ca, cert=cert, key=key)


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials that demand and verify a client certificate from ``files.ca``.

    ``require_client_auth=True`` makes the handshake fail for a client with no
    certificate, or one that does not chain to the CA or has expired, so no
    handler ever runs for an unidentified caller.
    """
    material = _load(files)
    return grpc.ssl_server_credentials(
        [(material.key, material.cert)],
        root_certificates=material.ca,
        require_client_auth=True,
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Client credentials that present our certificate and trust only ``files.ca``.

    Trusting only the hublink CA (not the system store) means a server
    certificate from any public CA is refused.
    """
    material = _load(files)
    return grpc.ssl_channel_credentials(
        root_certificates=material.ca,
        private_key=material.key,
        certificate_chain=material.cert,
    )


def secure_channel(
    target: str,
    files: TlsFiles,
    *,
    server_name: str | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """Open a mutual-TLS channel to ``target`` (``host:port``).

    ``server_name`` is the name checked against the server certificate when it
    differs from the host in ``target`` (for example connecting by IP address to
    a server whose certificate names ``coordinator.example``). Message size
    limits default to ``MAX_MESSAGE_BYTES``; ``options`` are applied last, so a
    caller can override any of them.

    Nothing here sets ``grpc.enable_http_proxy``, so gRPC's own proxy support
    stays on: a node behind an HTTP CONNECT proxy sets ``https_proxy`` (or
    ``grpc_proxy``), and TLS, name check included, runs end to end through the
    tunnel (tests/e2e/test_proxy_e2e.py).
    """
    merged: dict[str, Any] = {
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    }
    if server_name is not None:
        merged["grpc.ssl_target_name_override"] = server_name
    merged.update(dict(options))
    return grpc.secure_channel(target, channel_credentials(files), options=list(merged.items()))


def peer_identity(context: grpc.ServicerContext) -> Identity | None:
    """The caller's identity from its verified client certificate, or None.

    On a mutual-TLS server, gRPC 1.85's ``context.auth_context()`` holds (each
    value a list of bytes): ``transport_security_type`` (``ssl``),
    ``security_level``, ``ssl_session_reused``, ``ssl_tls_version``,
    ``ssl_negotiated_key_exchange_group``, ``x509_subject``,
    ``x509_common_name``, ``x509_subject_alternative_name``, ``peer_uri``,
    ``peer_dns``, ``peer_ip`` and ``x509_pem_cert`` (the client's leaf
    certificate as PEM). ``context.peer_identities()`` returns
    ``x509_subject_alternative_name``.

    We parse ``x509_pem_cert`` ourselves rather than trusting one of the derived
    properties. ``x509_subject_alternative_name`` (and so ``peer_identities()``)
    flattens URIs, DNS names and IP addresses into one untyped list; the common
    name is a display label, not an identity; ``peer_uri`` is gRPC's own
    extraction, whose rules are gRPC's to change. The PEM is the exact
    certificate the handshake verified, and parsing it lets hublink apply its
    own rule (exactly one ``urn:hublink:`` URI, see
    ``identity_from_certificate``) in one place for every service.

    The certificate is trustworthy only because ``server_credentials`` requires
    client authentication, so the handshake has already verified it against
    the CA. None means no certificate (an insecure port) or one that names no
    valid hublink identity; callers should refuse the call.
    """
    auth_context = context.auth_context()
    certificates = auth_context.get(PEER_CERTIFICATE_KEY) or []
    if len(certificates) != 1:
        return None
    try:
        return identity_from_certificate(certificates[0])
    except InvalidIdentity:
        return None
