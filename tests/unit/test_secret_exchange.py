"""node.secret_exchange and hublink.sealing without a network: sealing, opening, trusting keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

import hublink
from coordinator.projects import load_project
from hublink import sealing
from hublink.config import ConfigError
from hublink.identity import Identity, Role
from hublink.pki import CertificateFiles, create_authority, issue_certificate
from node import secret_exchange as exchange
from node.secret_exchange import ExchangeError, PeerTrust

PROJECT = "early-years-unit"


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, CertificateFiles]:
    authority = create_authority(tmp_path / "ca")
    return {
        org: issue_certificate(authority, Identity(org, Role.NODE), tmp_path / "certs")
        for org in ("health-visiting", "childcare")
    }


def published(
    files: CertificateFiles, org: str, key: x25519.X25519PrivateKey
) -> exchange.PublishedKey:
    return exchange.signed_key(
        PROJECT, org, key, files.cert.read_text(), exchange.load_signing_key(files.key)
    )


def test_a_sealed_secret_opens_only_for_its_recipient(
    certificates: dict[str, CertificateFiles],
) -> None:
    sender, recipient = certificates["health-visiting"], certificates["childcare"]
    recipient_key = x25519.X25519PrivateKey.generate()
    secret = exchange.new_secret()
    (envelope,) = exchange.seal_secret(
        PROJECT,
        3,
        "health-visiting",
        secret,
        [published(recipient, "childcare", recipient_key)],
        sender.cert.read_text(),
        exchange.load_signing_key(sender.key),
    )
    assert secret not in envelope.ciphertext and len(envelope.enc) == sealing.ENC_BYTES
    sender_certificate = sealing.load_certificate(sender.cert.read_text())
    opened = exchange.open_envelope(
        envelope,
        project_id=PROJECT,
        organisation="childcare",
        sender_certificate=sender_certificate,
        node_key=recipient_key,
    )
    assert opened == secret
    with pytest.raises(ExchangeError, match="cannot be opened with this node's key"):
        exchange.open_envelope(
            envelope,
            project_id=PROJECT,
            organisation="childcare",
            sender_certificate=sender_certificate,
            node_key=x25519.X25519PrivateKey.generate(),
        )
    # A relabelled epoch breaks the signature (and HPKE's info) even with the right key.
    relabelled = exchange.SealedEnvelope(**{**envelope.__dict__, "epoch": 4})
    with pytest.raises(ExchangeError, match="signature does not verify"):
        exchange.open_envelope(
            relabelled,
            project_id=PROJECT,
            organisation="childcare",
            sender_certificate=sender_certificate,
            node_key=recipient_key,
        )


def test_a_pinned_fingerprint_decides_and_a_different_key_is_refused(
    certificates: dict[str, CertificateFiles],
) -> None:
    files = certificates["childcare"]
    genuine = published(files, "childcare", x25519.X25519PrivateKey.generate())
    pin = sealing.fingerprint(genuine.public_key, genuine.certificate_pem)
    trust = PeerTrust(pinned={"childcare": pin})
    assert trust.check_key(PROJECT, genuine).serial_number > 0
    other = published(files, "childcare", x25519.X25519PrivateKey.generate())
    with pytest.raises(ExchangeError, match=r"'childcare' did not verify.*confirmed for it"):
        trust.check_key(PROJECT, other)


def test_a_key_signed_for_another_project_or_by_another_org_is_refused(
    certificates: dict[str, CertificateFiles],
) -> None:
    files = certificates["childcare"]
    key = published(files, "childcare", x25519.X25519PrivateKey.generate())
    trust = PeerTrust(
        pinned={"childcare": sealing.fingerprint(key.public_key, key.certificate_pem)}
    )
    with pytest.raises(ExchangeError, match="signature does not verify"):
        trust.check_key("another-project", key)
    claimed = exchange.PublishedKey("health-visiting", *list(key.__dict__.values())[1:])
    with pytest.raises(ExchangeError, match="certificate names node childcare"):
        PeerTrust(pinned={"health-visiting": "sha256:" + "0" * 64}).check_key(PROJECT, claimed)


def test_node_key_files_are_owner_only_and_never_replaced(tmp_path: Path) -> None:
    path = exchange.generate_node_key(tmp_path / "state")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    with pytest.raises(FileExistsError, match="already exists"):
        exchange.generate_node_key(tmp_path / "state")
    stored = exchange.store_secret(tmp_path / "state", PROJECT, 1, b"s" * 32)
    assert stored.stat().st_mode & 0o777 == 0o600
    assert exchange.stored_secret(tmp_path / "state", PROJECT, 1) == b"s" * 32
    assert exchange.stored_secret(tmp_path / "state", PROJECT, 2) is None


def test_a_project_file_checks_its_node_key_fingerprints(tmp_path: Path) -> None:
    schema = Path(hublink.__file__).parent / "schemas" / "early-years.json"
    base = (
        f'id = "{PROJECT}"\npurpose = "Test"\n'
        'organisations = ["health-visiting", "childcare"]\n'
        f'schema = "{schema}"\n\n[node_keys]\n'
    )
    good = tmp_path / "good.toml"
    good.write_text(base + f'childcare = "sha256:{"ab" * 32}"\n')
    assert load_project(good).node_keys == {"childcare": f"sha256:{'ab' * 32}"}
    outsider = tmp_path / "outsider.toml"
    outsider.write_text(base + f'youth-justice = "sha256:{"ab" * 32}"\n')
    with pytest.raises(ConfigError, match=r"node_keys\.youth-justice names an organisation not"):
        load_project(outsider)
    malformed = tmp_path / "malformed.toml"
    malformed.write_text(base + 'childcare = "ab12"\n')
    with pytest.raises(ConfigError, match=r"node_keys\.childcare must be sha256:<64 hex digits>"):
        load_project(malformed)
