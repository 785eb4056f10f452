"""A small certificate authority for pilots, demonstrations and tests.

Production organisations issue certificates from their own certificate
authorities; this module exists so that a pilot can stand up mutual TLS in
minutes and so that tests can make valid, foreign and expired certificates
cheaply. It follows the same profile a production CA must follow for hublink:

* the CA may sign leaf certificates only (``path_length=0``);
* each leaf names its holder with exactly one ``urn:hublink:<role>:<org>`` URI
  subject alternative name, plus the DNS names and IP addresses it serves on;
* leaves may act as both TLS server and TLS client, because nodes and the
  coordinator each play both parts.

Keys are ECDSA P-256: they are quick to generate (tests make many) and gRPC's
BoringSSL handles them well. Private keys are written unencrypted in PKCS#8 PEM,
readable by their owner only, and are never overwritten unless asked.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hublink.identity import Identity

CA_CERTIFICATE = "ca.pem"
CA_KEY = "ca.key"

_CLOCK_SKEW = timedelta(minutes=5)
"""Certificates start this long before "now" so that a peer whose clock is a
little behind does not reject a certificate issued a moment ago."""

_KEY_MODE = 0o600
_CERTIFICATE_MODE = 0o644


@dataclass(frozen=True)
class CertificateFiles:
    """Where a certificate, its private key and the CA certificate that signed it live.

    For the authority itself ``cert`` and ``ca`` are the same file.
    """

    ca: Path
    cert: Path
    key: Path


def create_authority(
    directory: Path,
    *,
    name: str = "hublink pilot CA",
    days: int = 3650,
    overwrite: bool = False,
) -> CertificateFiles:
    """Create a self-signed CA in ``directory`` as ``ca.pem`` and ``ca.key``.

    Raises FileExistsError naming the file if either already exists, unless
    ``overwrite`` is true: replacing a CA silently would orphan every
    certificate it has issued.
    """
    _check_days(days)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(
        ca=directory / CA_CERTIFICATE,
        cert=directory / CA_CERTIFICATE,
        key=directory / CA_KEY,
    )
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hublink"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    not_before = datetime.now(UTC) - _CLOCK_SKEW
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    _write_pair(files, certificate, key, overwrite=overwrite)
    return files


def load_authority(directory: Path) -> CertificateFiles:
    """Find the CA made by ``create_authority`` in ``directory`` and check it is usable.

    Checking here (both files readable, the certificate is a CA, the key belongs
    to it) turns a confusing signing or handshake failure later into a plain
    error now. Raises FileNotFoundError for a missing file and ValueError for
    one that is not a usable CA.
    """
    directory = Path(directory)
    files = CertificateFiles(
        ca=directory / CA_CERTIFICATE,
        cert=directory / CA_CERTIFICATE,
        key=directory / CA_KEY,
    )
    _load_signer(files)
    return files


def issue_certificate(
    authority: CertificateFiles,
    identity: Identity,
    directory: Path,
    *,
    dns_names: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    days: int = 825,
    not_before: datetime | None = None,
    overwrite: bool = False,
) -> CertificateFiles:
    """Issue a leaf certificate for ``identity``, written as ``<role>-<organisation>.pem/.key``.

    The returned ``ca`` points at the authority's own ``ca.pem`` rather than a
    copy, so there is only ever one CA certificate to replace. ``not_before``
    (default: a few minutes ago) and ``days`` set the validity window; tests use
    them to make certificates that have already expired. Raises FileExistsError
    naming the file if the certificate or key exists, unless ``overwrite``.
    """
    _check_days(days)
    if not isinstance(identity, Identity):
        raise TypeError(f"identity must be an Identity, not {type(identity).__name__}")
    ca_certificate, ca_key = _load_signer(authority)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{identity.role.value}-{identity.organisation}"
    files = CertificateFiles(
        ca=authority.ca, cert=directory / f"{stem}.pem", key=directory / f"{stem}.key"
    )

    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri())]
    names += [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]

    key = ec.generate_private_key(ec.SECP256R1())
    public_key = key.public_key()
    start = (datetime.now(UTC) - _CLOCK_SKEW) if not_before is None else not_before
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(identity))]))
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_identifier(ca_certificate, ca_key), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_pair(files, certificate, key, overwrite=overwrite)
    return files


def _check_days(days: int) -> None:
    if days < 1:
        raise ValueError(f"a certificate must be valid for at least one day, not {days}")


def _authority_key_identifier(
    ca_certificate: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> x509.AuthorityKeyIdentifier:
    """Copy the CA's own key identifier when it has one, so that chain building matches it."""
    try:
        ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def _load_signer(
    authority: CertificateFiles,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the CA certificate and key, refusing anything that could not sign leaves."""
    certificate = x509.load_pem_x509_certificate(authority.cert.read_bytes())
    key = serialization.load_pem_private_key(authority.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{authority.key} is not an elliptic-curve private key")
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.value.ca:
        raise ValueError(f"{authority.cert} is not a certificate authority certificate")
    if key.public_key() != certificate.public_key():
        raise ValueError(f"{authority.key} is not the private key of {authority.cert}")
    return certificate, key


def _write_pair(
    files: CertificateFiles,
    certificate: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    *,
    overwrite: bool,
) -> None:
    """Write the key and certificate, refusing before writing either if one exists."""
    if not overwrite:
        for path in (files.key, files.cert):
            if path.exists() or path.is_symlink():
                raise _refuse_overwrite(path)
    key_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    _write_file(files.key, key_pem, _KEY_MODE, overwrite=overwrite)
    try:
        _write_file(
            files.cert,
            certificate.public_bytes(serialization.Encoding.PEM),
            _CERTIFICATE_MODE,
            overwrite=overwrite,
        )
    except BaseException:
        # Do not leave a key behind without the certificate it belongs to.
        files.key.unlink(missing_ok=True)
        raise


def _write_file(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    """Create ``path`` with ``mode`` from the start, so a key is never briefly readable.

    Without ``overwrite`` the file is opened with O_EXCL, which also refuses to
    follow a symbolic link planted at the path. With ``overwrite`` the data goes
    to a fresh temporary file that then replaces the old one, because truncating
    the old file in place would keep whatever permissions it had.
    """
    if overwrite:
        # A random name, so concurrent writers and crashed leftovers never collide.
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        _create_exclusive(temporary, data, mode)
        try:
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    else:
        try:
            _create_exclusive(path, data, mode)
        except FileExistsError:
            raise _refuse_overwrite(path) from None


def _create_exclusive(path: Path, data: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb", closefd=True) as stream:
            stream.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _refuse_overwrite(path: Path) -> FileExistsError:
    return FileExistsError(
        errno.EEXIST, "file exists (pass overwrite=True to replace it)", str(path)
    )
