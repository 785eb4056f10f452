"""Checks on the caller's certificate that run before any servicer: revocation and issuing CA.

The TLS handshake has already verified the client certificate against the
coordinator's trust bundle. Two things it cannot know are checked here, for
every call, from the verified certificate itself:

- whether the certificate has been revoked: a plain-text deny list of
  certificate fingerprints (SHA-256 of the DER) or serial numbers, re-read
  whenever the file changes, so an operator can revoke without a restart;
- whether it was issued by its own organisation's CA: when the coordinator
  trusts several organisations' CAs (``organisation_cas``), a node
  certificate naming organisation X must come from X's CA, so no organisation
  (nor the coordinator's operator) can mint a node certificate for another;
  and an organisation's CA may issue only node certificates, so no
  organisation can make itself an admin, auditor or analyst. Those roles'
  certificates come from the project's CA (in the coordinator's trust bundle,
  not in ``organisation_cas``), and the project file names who holds them.

A certificate that names no valid hublink identity is refused here too, and
recorded by its fingerprint alone. Refusals leave as UNAUTHENTICATED with a
sentence, are audited, written to hublink's log with the peer's address (as
fields, ``hublink.logformat``) and counted in ``hublink_certificates_refused``
by reason.

Handshake failures (no certificate, an untrusted or expired one) never reach
this interceptor or any servicer: gRPC ends the connection inside its TLS
layer, and its Python API offers no hook there (docs/operations.md, "Refusals
and handshake failures", says exactly why and where the lines are instead).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from coordinator.core.service import Coordinator
from coordinator.metrics import CoordinatorMetrics
from hublink.identity import (
    Identity,
    InvalidIdentity,
    Role,
    fingerprint,
    identity_from_certificate,
)
from hublink.tls import PEER_CERTIFICATE_KEY

log = logging.getLogger("hublink.coordinator.access")


class RevocationList:
    """Revoked certificates, from a file of fingerprints or ``serial:<hex>`` lines.

    Blank lines and ``#`` comments are ignored. The file is read again when its
    modification time or size changes; a missing file means nothing is revoked
    only if no file was configured — a configured file that disappears is an
    error, and every call is refused until it is back (failing closed).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._fingerprints: frozenset[str] = frozenset()
        self._serials: frozenset[int] = frozenset()

    def _reload(self) -> None:
        assert self.path is not None
        stat = self.path.stat()
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._stamp:
            return
        fingerprints: set[str] = set()
        serials: set[int] = set()
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            entry = line.split("#", 1)[0].strip().lower()
            if not entry:
                continue
            if entry.startswith("serial:"):
                try:
                    serials.add(int(entry[7:].replace(":", ""), 16))
                except ValueError:
                    raise ValueError(f"{self.path}, line {number}: not a hex serial") from None
            else:
                digest = entry.removeprefix("sha256:").replace(":", "")
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise ValueError(f"{self.path}, line {number}: not a SHA-256 fingerprint")
                fingerprints.add(digest)
        self._fingerprints, self._serials = frozenset(fingerprints), frozenset(serials)
        self._stamp = stamp
        log.info(
            "revocation list %s loaded: %d entries", self.path, len(fingerprints) + len(serials)
        )

    def is_revoked(self, certificate: x509.Certificate) -> bool:
        if self.path is None:
            return False
        with self._lock:
            self._reload()
            return (
                fingerprint(certificate) in self._fingerprints
                or certificate.serial_number in self._serials
            )


@dataclass(frozen=True)
class Refusal:
    """Why a verified certificate may not be used: a short ``kind`` (the log line's and the
    metric's reason) and the sentence the caller and the audit log get."""

    kind: str
    sentence: str


class CertificatePolicy:
    """Revocation and organisation-CA checks on a verified client certificate."""

    def __init__(
        self,
        revocations: RevocationList | None = None,
        organisation_cas: Mapping[str, Path] | None = None,
    ) -> None:
        self.revocations = revocations or RevocationList(None)
        self._cas = {
            org: x509.load_pem_x509_certificate(path.read_bytes())
            for org, path in (organisation_cas or {}).items()
        }

    def refusal(self, certificate: x509.Certificate, identity: Identity) -> Refusal | None:
        """Why this certificate may not be used, or None."""
        try:
            if self.revocations.is_revoked(certificate):
                return Refusal("revoked", f"the certificate of {identity} has been revoked")
        except (OSError, ValueError) as exc:
            log.error("revocation list unusable, refusing every call: %s", exc)
            return Refusal(
                "revocation list unreadable",
                "the coordinator cannot read its revocation list; try again later",
            )
        if not self._cas:
            return None
        if identity.role is not Role.NODE:
            issuer = next((o for o, ca in self._cas.items() if _issued_by(certificate, ca)), None)
            if issuer is not None:
                return Refusal(
                    "role from an organisation CA",
                    f"the certificate of {identity} was issued by organisation {issuer!r}'s "
                    "certificate authority, which may issue only node certificates",
                )
            return None
        ca = self._cas.get(identity.organisation)
        if ca is None:
            return Refusal(
                "no organisation CA",
                f"organisation {identity.organisation!r} has no certificate authority here",
            )
        if not _issued_by(certificate, ca):
            return Refusal(
                "another organisation's CA",
                f"the certificate of {identity} was not issued by organisation "
                f"{identity.organisation!r}'s own certificate authority",
            )
        return None


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


class AccessInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Runs ``CertificatePolicy`` before every method, and audits refusals through the core."""

    def __init__(
        self,
        core: Coordinator,
        policy: CertificatePolicy,
        metrics: CoordinatorMetrics | None = None,
    ) -> None:
        self.core = core
        self.policy = policy
        self.metrics = metrics

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = str(details.method)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._guard(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._guard_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # hublink declares no client-streaming methods

    def _check(self, context: grpc.ServicerContext, method: str) -> None:
        certificates = context.auth_context().get(PEER_CERTIFICATE_KEY) or []
        if len(certificates) != 1:
            return  # the servicer refuses callers without an identity
        try:
            certificate = x509.load_pem_x509_certificate(certificates[0])
        except ValueError:
            return  # cannot happen after a handshake; the servicer refuses it
        try:
            identity = identity_from_certificate(certificates[0])
        except InvalidIdentity:
            unidentified = "the client certificate carries no valid hublink identity"
            self._note(context, "no hublink identity", {"certificate": fingerprint(certificate)})
            self.core.record_unidentified(
                fingerprint(certificate), method.rsplit("/", 1)[-1], unidentified
            )
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                f"{unidentified} (exactly one urn:hublink:<role>:<organisation> URI)",
            )
            return
        refusal = self.policy.refusal(certificate, identity)
        if refusal is not None:
            self._note(context, refusal.kind, {"caller": str(identity)})
            self.core.record_refusal(identity, method.rsplit("/", 1)[-1], refusal.sentence)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, refusal.sentence)

    def _note(self, context: grpc.ServicerContext, kind: str, ids: dict[str, str]) -> None:
        """Log and count a certificate refused after the handshake, with the peer's address."""
        if self.metrics is not None:
            self.metrics.certificates_refused.labels(reason=kind).inc()
        log.warning(
            "certificate refused after the TLS handshake: %s",
            kind,
            extra={"peer": str(context.peer()), **ids},
        )

    def _guard(
        self, behaviour: Callable[[Any, Any], Any], method: str
    ) -> Callable[[Any, Any], Any]:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            self._check(context, method)
            return behaviour(request, context)

        return guarded

    def _guard_stream(
        self, behaviour: Callable[[Any, Any], Iterator[Any]], method: str
    ) -> Callable[[Any, Any], Iterator[Any]]:
        def guarded(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            self._check(context, method)
            yield from behaviour(request, context)

        return guarded
