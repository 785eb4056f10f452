"""Identities, and the pilot CA that puts them into certificates."""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from hypothesis import given
from hypothesis import strategies as st

from hublink.identity import (
    Identity,
    InvalidIdentity,
    Role,
    identity_from_certificate,
)
from hublink.pki import CertificateFiles, create_authority, issue_certificate, load_authority

NODE = Identity("health-visiting", Role.NODE)

slugs = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)
identities = st.builds(Identity, organisation=slugs, role=st.sampled_from(Role))


# --- identities -----------------------------------------------------------------------------


def test_uri_and_str() -> None:
    assert NODE.uri() == "urn:hublink:node:health-visiting"
    assert str(NODE) == "node health-visiting"
    assert Identity.from_uri("urn:hublink:admin:la-7") == Identity("la-7", Role.ADMIN)


@given(identities)
def test_uri_round_trips(identity: Identity) -> None:
    assert Identity.from_uri(identity.uri()) == identity


near_uris = st.builds(
    "urn:hublink:{}:{}".format,
    st.one_of(st.sampled_from([role.value for role in Role]), st.text(max_size=12)),
    st.one_of(slugs, st.text(max_size=70)),
)


@given(st.one_of(st.text(), near_uris))
def test_from_uri_parses_exactly_or_refuses(text: str) -> None:
    """Any string either names an identity whose URI is that very string, or is refused."""
    try:
        identity = Identity.from_uri(text)
    except InvalidIdentity:
        return
    assert identity.uri() == text


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "urn:hublink:node",
        "urn:hublink:node:",
        "urn:hublink::health-visiting",
        "urn:hublink:node:health-visiting:extra",
        "urn:hublink:root:health-visiting",
        "urn:hublink:Node:health-visiting",
        "URN:HUBLINK:node:health-visiting",
        "urn:hublink:node:Health-Visiting",
        "urn:hublink:node:-health",
        "urn:hublink:node:health_visiting",
        "urn:hublink:node:health visiting",
        "urn:hublink:node:h\u00e9alth",
        "urn:hublink:node:health-visiting\n",
        " urn:hublink:node:health-visiting",
        "urn:hublink:node:" + "a" * 64,
        "spiffe://hublink/node/health-visiting",
        "https://health-visiting.example",
    ],
)
def test_bad_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidIdentity):
        Identity.from_uri(uri)


def test_longest_organisation_is_accepted() -> None:
    assert Identity("a" * 63, Role.NODE).organisation == "a" * 63


@pytest.mark.parametrize("organisation", ["", "-a", "A", "a.b", "a/b", "a:b", "a" * 64, "\u0661"])
def test_bad_organisations_are_refused(organisation: str) -> None:
    with pytest.raises(InvalidIdentity, match="not a lower-case slug"):
        Identity(organisation, Role.NODE)


def test_role_given_as_text_is_stored_as_role() -> None:
    identity = Identity("health-visiting", "node")  # type: ignore[arg-type]
    assert identity.role is Role.NODE
    assert identity == NODE
    with pytest.raises(InvalidIdentity, match="role 'root' is not one of node, analyst"):
        Identity("health-visiting", "root")  # type: ignore[arg-type]


def test_invalid_identity_is_a_value_error() -> None:
    assert issubclass(InvalidIdentity, ValueError)


# --- the pilot CA ---------------------------------------------------------------------------


@pytest.fixture
def authority(tmp_path: Path) -> CertificateFiles:
    return create_authority(tmp_path / "ca")


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_authority_is_a_ca_for_leaves_only(authority: CertificateFiles) -> None:
    assert authority.ca == authority.cert
    assert (authority.ca.name, authority.key.name) == ("ca.pem", "ca.key")
    ca = _certificate(authority.ca)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value == x509.BasicConstraints(ca=True, path_length=0)
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    ca.verify_directly_issued_by(ca)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "hublink pilot CA"


def test_issued_certificate_carries_identity_and_chains_to_ca(
    authority: CertificateFiles, tmp_path: Path
) -> None:
    files = issue_certificate(authority, NODE, tmp_path / "issued")
    assert files.ca == authority.ca
    assert (files.cert.name, files.key.name) == (
        "node-health-visiting.pem",
        "node-health-visiting.key",
    )
    ca = _certificate(authority.ca)
    leaf = _certificate(files.cert)

    # Signed by the CA: checks the issuer name and the ECDSA SHA-256 signature.
    leaf.verify_directly_issued_by(ca)
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    public_key = leaf.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert isinstance(public_key.curve, ec.SECP256R1)

    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [NODE.uri()]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == str(NODE)
    assert identity_from_certificate(files.cert.read_bytes()) == NODE

    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest

    # The private key belongs to the certificate.
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    assert key.public_key() == public_key
    assert files.key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8


def test_issued_certificate_passes_a_strict_path_validator(
    authority: CertificateFiles, tmp_path: Path
) -> None:
    """cryptography's RFC 5280 verifier accepts the leaf both as TLS client and as server."""
    files = issue_certificate(authority, NODE, tmp_path / "issued", dns_names=("node.example",))
    builder = PolicyBuilder().store(Store([_certificate(authority.ca)]))
    leaf = _certificate(files.cert)
    client = builder.build_client_verifier().verify(leaf, [])
    assert x509.UniformResourceIdentifier(NODE.uri()) in (client.subjects or [])
    builder.build_server_verifier(x509.DNSName("node.example")).verify(leaf, [])
    with pytest.raises(VerificationError):
        builder.build_server_verifier(x509.DNSName("other.example")).verify(leaf, [])


def test_expired_certificate_can_be_made(authority: CertificateFiles, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    files = issue_certificate(
        authority, NODE, tmp_path / "issued", not_before=now - timedelta(days=10), days=1
    )
    leaf = _certificate(files.cert)
    assert leaf.not_valid_before_utc == (now - timedelta(days=10)).replace(microsecond=0)
    assert leaf.not_valid_after_utc < now
    builder = PolicyBuilder().store(Store([_certificate(authority.ca)]))
    with pytest.raises(VerificationError, match="not valid at validation time"):
        builder.build_client_verifier().verify(leaf, [])


def test_validity_defaults_start_slightly_in_the_past(
    authority: CertificateFiles, tmp_path: Path
) -> None:
    before = datetime.now(UTC)
    leaf = _certificate(issue_certificate(authority, NODE, tmp_path / "issued", days=30).cert)
    assert leaf.not_valid_before_utc < before
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=30)


def test_validity_must_be_positive(authority: CertificateFiles, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        issue_certificate(authority, NODE, tmp_path / "issued", days=0)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable, to show keys do not rely on it."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    authority = create_authority(tmp_path / "ca")
    files = issue_certificate(authority, NODE, tmp_path / "issued")
    assert _mode(authority.key) == 0o600
    assert _mode(files.key) == 0o600
    assert _mode(files.cert) == 0o644


def test_authority_is_not_overwritten(authority: CertificateFiles) -> None:
    before = (authority.ca.read_bytes(), authority.key.read_bytes())
    with pytest.raises(FileExistsError) as caught:
        create_authority(authority.ca.parent)
    assert caught.value.filename == str(authority.key)
    assert str(authority.key) in str(caught.value)
    assert (authority.ca.read_bytes(), authority.key.read_bytes()) == before


def test_certificate_is_not_overwritten(authority: CertificateFiles, tmp_path: Path) -> None:
    files = issue_certificate(authority, NODE, tmp_path / "issued")
    key = files.key.read_bytes()
    with pytest.raises(FileExistsError, match=r"node-health-visiting\.key"):
        issue_certificate(authority, NODE, tmp_path / "issued")
    assert files.key.read_bytes() == key


def test_lone_certificate_blocks_issuing_and_no_key_is_left(
    authority: CertificateFiles, tmp_path: Path
) -> None:
    directory = tmp_path / "issued"
    directory.mkdir()
    (directory / "node-health-visiting.pem").write_text("keep me\n")
    with pytest.raises(FileExistsError, match=r"node-health-visiting\.pem"):
        issue_certificate(authority, NODE, directory)
    assert not (directory / "node-health-visiting.key").exists()
    assert (directory / "node-health-visiting.pem").read_text() == "keep me\n"


def test_overwrite_replaces_and_restores_permissions(
    authority: CertificateFiles, tmp_path: Path
) -> None:
    files = issue_certificate(authority, NODE, tmp_path / "issued")
    old_key = files.key.read_bytes()
    files.key.chmod(0o644)
    again = issue_certificate(authority, NODE, tmp_path / "issued", overwrite=True)
    assert again == files
    assert files.key.read_bytes() != old_key
    assert _mode(files.key) == 0o600
    assert identity_from_certificate(files.cert.read_bytes()) == NODE
    assert sorted(p.name for p in files.key.parent.iterdir()) == [
        "node-health-visiting.key",
        "node-health-visiting.pem",
    ]


def test_load_authority_finds_what_create_made(authority: CertificateFiles, tmp_path: Path) -> None:
    assert load_authority(authority.ca.parent) == authority
    with pytest.raises(FileNotFoundError):
        load_authority(tmp_path / "nowhere")


def test_load_authority_refuses_a_leaf_or_a_foreign_key(
    authority: CertificateFiles, tmp_path: Path
) -> None:
    leaf = issue_certificate(authority, NODE, tmp_path / "issued")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "ca.pem").write_bytes(leaf.cert.read_bytes())
    (fake / "ca.key").write_bytes(leaf.key.read_bytes())
    with pytest.raises(ValueError, match="not a certificate authority"):
        load_authority(fake)
    (fake / "ca.pem").write_bytes(authority.ca.read_bytes())
    with pytest.raises(ValueError, match="is not the private key of"):
        load_authority(fake)


# --- reading identities from certificates ---------------------------------------------------


def _self_signed(names: list[x509.GeneralName] | None) -> bytes:
    """A throw-away certificate with exactly the given subject alternative names."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
    )
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_identity_ignores_other_uris_and_names() -> None:
    pem = _self_signed(
        [
            x509.DNSName("urn-hublink-admin-x.example"),
            x509.UniformResourceIdentifier("https://health-visiting.example"),
            x509.UniformResourceIdentifier(NODE.uri()),
        ]
    )
    assert identity_from_certificate(pem) == NODE


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        (None, "no subject alternative names"),
        ([x509.DNSName("localhost")], "no hublink identity URI"),
        (
            [
                x509.UniformResourceIdentifier(NODE.uri()),
                x509.UniformResourceIdentifier("urn:hublink:admin:health-visiting"),
            ],
            "2 hublink identity URIs",
        ),
        (
            [
                x509.UniformResourceIdentifier(NODE.uri()),
                x509.UniformResourceIdentifier("URN:HUBLINK:admin:health-visiting"),
            ],
            "2 hublink identity URIs",
        ),
        ([x509.UniformResourceIdentifier("urn:hublink:root:x")], "role 'root'"),
    ],
)
def test_certificates_without_exactly_one_identity_are_refused(
    names: list[x509.GeneralName] | None, reason: str
) -> None:
    with pytest.raises(InvalidIdentity, match=reason):
        identity_from_certificate(_self_signed(names))


def test_non_certificate_is_refused() -> None:
    with pytest.raises(InvalidIdentity, match="cannot read the certificate"):
        identity_from_certificate(b"not a certificate")
