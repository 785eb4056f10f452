"""Who a caller is: an organisation and the role it plays, as named in its certificate.

hublink never believes an organisation or role carried in a request body; a
caller could put anything there. The only source of identity is the client
certificate that the TLS handshake has already verified against the trusted
certificate authority. Each certificate names its holder with exactly one URI
subject alternative name of the form ``urn:hublink:<role>:<organisation>``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hublink.errors import HublinkError

URI_PREFIX = "urn:hublink:"
"""Every hublink identity URI starts with this; other URI SANs are ignored."""

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class Role(StrEnum):
    """What a certificate holder may do; the coordinator authorises calls by role."""

    NODE = "node"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    ADMIN = "admin"
    COORDINATOR = "coordinator"


class InvalidIdentity(HublinkError, ValueError):
    """A value that cannot name a hublink identity; the message says why in one sentence."""


@dataclass(frozen=True)
class Identity:
    """An organisation acting in one role, e.g. ``Identity("health-visiting", Role.NODE)``.

    The organisation is a lower-case slug (letters, digits and hyphens, at most
    63 characters, not starting with a hyphen) so that it is safe in URIs, file
    names and log lines, and so that two spellings can never name the same
    organisation.
    """

    organisation: str
    role: Role
    certificate_sha256: str = field(default="", compare=False)
    """Fingerprint (``fingerprint()``) of the certificate the identity was read from; empty
    for one built in code. Not part of equality: the same organisation and role is the same
    identity whichever of its certificates it presents; project pins compare it."""

    def __post_init__(self) -> None:
        if not isinstance(self.organisation, str) or not _SLUG.fullmatch(self.organisation):
            raise InvalidIdentity(
                f"organisation {self.organisation!r} is not a lower-case slug: use 1 to 63 "
                "letters a-z, digits and hyphens, starting with a letter or digit."
            )
        if not isinstance(self.role, Role):
            # Accept the plain string value (handy when reading configuration) but
            # store the enum, so that equality and hashing behave the same either way.
            object.__setattr__(self, "role", _parse_role(self.role))

    def uri(self) -> str:
        """The URI subject alternative name that carries this identity in a certificate."""
        return f"{URI_PREFIX}{self.role.value}:{self.organisation}"

    @classmethod
    def from_uri(cls, uri: str) -> Identity:
        """Parse ``urn:hublink:<role>:<organisation>``, refusing anything else.

        Parsing is exact (no case folding, no surrounding whitespace) because the
        URI is compared against what a certificate authority signed; a lenient
        parser would let two different strings name the same caller.
        """
        if not isinstance(uri, str) or not uri.startswith(URI_PREFIX):
            raise InvalidIdentity(f"{uri!r} is not a hublink identity URI ({URI_PREFIX}...).")
        parts = uri[len(URI_PREFIX) :].split(":")
        if len(parts) != 2:
            raise InvalidIdentity(f"{uri!r} is not of the form {URI_PREFIX}<role>:<organisation>.")
        role, organisation = parts
        return cls(organisation=organisation, role=_parse_role(role))

    def __str__(self) -> str:
        return f"{self.role.value} {self.organisation}"


def _parse_role(value: object) -> Role:
    """Turn a role name into a Role, with a sentence naming the allowed roles if it is not one."""
    if isinstance(value, str):
        try:
            return Role(value)
        except ValueError:
            pass
    roles = ", ".join(r.value for r in Role)
    raise InvalidIdentity(f"role {value!r} is not one of {roles}.")


def identity_from_certificate(pem: bytes) -> Identity:
    """Read the identity from a PEM certificate's hublink URI subject alternative name.

    Exactly one hublink URI is required. A certificate with none names nobody; one
    with several would let the holder choose which identity to act as, so both are
    refused rather than picking one. URIs that merely look like hublink URIs in a
    different letter case count too, so that they cannot hide a second identity.

    This does not verify the certificate: call it only on a certificate that the
    TLS handshake has already verified (see ``hublink.tls.peer_identity``).
    """
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise InvalidIdentity(f"cannot read the certificate as PEM: {exc}.") from None
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise InvalidIdentity(
            "the certificate has no subject alternative names, so no hublink identity."
        ) from None
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        # Extensions are parsed lazily, so a malformed one surfaces only here.
        raise InvalidIdentity(f"cannot read the certificate's extensions: {exc}.") from None
    uris = [
        uri
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
        if uri.lower().startswith(URI_PREFIX)
    ]
    if not uris:
        raise InvalidIdentity("the certificate has no hublink identity URI.")
    if len(uris) > 1:
        raise InvalidIdentity(
            f"the certificate has {len(uris)} hublink identity URIs; exactly one is allowed."
        )
    parsed = Identity.from_uri(uris[0])
    return Identity(parsed.organisation, parsed.role, fingerprint(certificate))


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding, lower-case hex.

    The name a revocation list gives a certificate (``sha256:<hex>``): written
    by ``hublink pki revoke`` and checked by the coordinator on every call.
    """
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
