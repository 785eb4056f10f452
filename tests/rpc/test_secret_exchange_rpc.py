"""The linkage-secret exchange over real mutual TLS: three nodes, one coordinator that cannot read.

Each test starts a real coordinator on loopback and three nodes, each with its
own certificate, state folder and node key, driven through the same workflow
functions the CLI calls. The coordinator is then made to misbehave the way an
operator could — swapping a published key for one it made, with a certificate
its own CA minted, or forging an envelope — and the nodes must refuse, naming
the organisation whose key failed.
"""

from __future__ import annotations

import base64
import logging
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

import hublink
from coordinator.core.errors import NotAllowed, NotReady, SchemaMismatch
from coordinator.core.model import ConsentSummary
from coordinator.core.secret_relay import SecretRelay, current_epoch
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.projects import load_project
from coordinator.rpc.server import create_server
from hublink import sealing
from hublink.clients import RequestRefused
from hublink.config import InputSection, NodeConfig, TlsSection
from hublink.identity import Identity, Role
from hublink.pki import CertificateFiles, create_authority, issue_certificate
from hublink.tls import TlsFiles, secure_channel
from node import secret_exchange as exchange
from node.errors import RunError as NodeError
from node.secret_client import SecretClient
from node.secret_exchange import ExchangeError
from node.secret_workflow import (
    create_secret,
    fetch_secret,
    keygen,
    publish_key,
    secret_for_epoch,
)

PROJECT_ID = "early-years-secrets"
ORGANISATIONS = ("health-visiting", "flying-start", "childcare")


@dataclass
class Deployment:
    """A running coordinator and the configs of three member nodes (and one outsider)."""

    root: Path
    core: Coordinator
    store: Store
    port: int
    operator_ca: CertificateFiles
    nodes: dict[str, NodeConfig]
    log_file: Path
    extra: dict[str, NodeConfig] = field(default_factory=dict)

    def everyone_publishes(self) -> None:
        for config in self.nodes.values():
            publish_key(config)


def _node_config(
    root: Path, org: str, files: CertificateFiles, port: int, schema: Path, **options: object
) -> NodeConfig:
    return NodeConfig(
        coordinator=f"127.0.0.1:{port}",
        project=PROJECT_ID,
        schema=schema,
        input=InputSection(path=root / "unused.csv", id_column="id"),
        tls=TlsSection(ca=files.ca, cert=files.cert, key=files.key),
        state_dir=root / "nodes" / org,
        secret_exchange=True,
        timeout_seconds=10.0,
        **options,  # type: ignore[arg-type]
    )


def _start(
    root: Path,
    *,
    node_authority: CertificateFiles | None = None,
    pin: bool = True,
    peer_ca: Path | None = None,
) -> Iterator[Deployment]:
    """Start a coordinator whose operator runs ``operator_ca``; nodes may have their own CA."""
    operator_ca = create_authority(root / "operator-ca", name="coordinator operator CA")
    node_ca = node_authority or operator_ca
    schema = root / "early-years.json"
    shutil.copyfile(Path(hublink.__file__).parent / "schemas" / "early-years.json", schema)
    certificates = {
        org: issue_certificate(node_ca, Identity(org, Role.NODE), root / "certs")
        for org in (*ORGANISATIONS, "youth-justice")
    }
    # The node's own TLS trust is the operator's CA (it must recognise the coordinator).
    certificates = {
        org: CertificateFiles(ca=operator_ca.ca, cert=f.cert, key=f.key)
        for org, f in certificates.items()
    }
    fingerprints: dict[str, str] = {}
    configs: dict[str, NodeConfig] = {}
    for org in (*ORGANISATIONS, "youth-justice"):
        config = _node_config(root, org, certificates[org], 0, schema)
        fingerprints[org] = keygen(config).fingerprint
    pins = {org: fingerprints[org] for org in ORGANISATIONS} if pin else {}
    table = "".join(f'{org} = "{fp}"\n' for org, fp in pins.items())
    project_file = root / "project.toml"
    project_file.write_text(
        f'id = "{PROJECT_ID}"\n'
        'purpose = "Test the linkage-secret exchange"\n'
        f"organisations = {list(ORGANISATIONS)!r}\n".replace("'", '"')
        + 'schema = "early-years.json"\nadmins = ["family-hub"]\n'
        + ("\n[node_keys]\n" + table if table else "")
    )
    # The coordinator accepts client certificates from the nodes' CA as well as its own.
    bundle = root / "client-cas.pem"
    bundle.write_bytes(
        operator_ca.ca.read_bytes() + (node_ca.ca.read_bytes() if node_authority else b"")
    )
    served = issue_certificate(
        operator_ca, Identity("coordinator", Role.COORDINATOR), root / "certs"
    )
    store = Store(root / "coordinator.db")
    core = Coordinator(store, [load_project(project_file)])
    server, port = create_server(
        core, "127.0.0.1:0", TlsFiles(ca=bundle, cert=served.cert, key=served.key)
    )
    server.start()
    log_file = root / "coordinator.log"
    handler = logging.FileHandler(log_file)
    logger = logging.getLogger("hublink")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    for org in (*ORGANISATIONS, "youth-justice"):
        configs[org] = _node_config(
            root, org, certificates[org], port, schema, node_keys=pins, peer_ca=peer_ca
        )
    try:
        yield Deployment(
            root,
            core,
            store,
            port,
            operator_ca,
            {org: configs[org] for org in ORGANISATIONS},
            log_file,
            {"youth-justice": configs["youth-justice"]},
        )
    finally:
        server.stop(None)
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()
        store.close()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """Nodes that pin each other's confirmed fingerprints (the project file's [node_keys])."""
    yield from _start(tmp_path)


@pytest.fixture
def ca_deployment(tmp_path: Path) -> Iterator[Deployment]:
    """Nodes whose certificates come from a CA the operator does not run, trusted as peer_ca."""
    node_ca = create_authority(tmp_path / "organisations-ca", name="organisations' own CA")
    yield from _start(tmp_path, node_authority=node_ca, pin=False, peer_ca=node_ca.ca)


def _exchange(deployment: Deployment) -> dict[str, bytes]:
    deployment.everyone_publishes()
    first, *others = ORGANISATIONS
    epoch = create_secret(deployment.nodes[first]).epoch
    for org in others:
        assert fetch_secret(deployment.nodes[org]).epoch == epoch
    held = {
        org: exchange.stored_secret(config.state_dir, PROJECT_ID, epoch)
        for org, config in deployment.nodes.items()
    }
    assert all(secret is not None for secret in held.values())
    return {org: secret for org, secret in held.items() if secret is not None}


def _genuine_key(deployment: Deployment, org: str) -> exchange.PublishedKey:
    config = deployment.nodes[org]
    return exchange.signed_key(
        PROJECT_ID,
        org,
        exchange.load_node_key(config.state_dir),
        config.tls.cert.read_text(),
        exchange.load_signing_key(config.tls.key),
    )


def _channel(config: NodeConfig) -> grpc.Channel:
    return secure_channel(
        config.coordinator, TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    )


def _forms(secret: bytes) -> list[bytes]:
    """The secret as raw bytes and in every text form a careless log might use."""
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


def _substitute_key(deployment: Deployment, victim: str) -> x25519.X25519PrivateKey:
    """Play the operator: replace ``victim``'s stored key with one it made and signed.

    The operator runs the coordinator's CA, so it can mint a node certificate
    naming the victim and sign the forged key with it: every check the
    coordinator itself could make passes.
    """
    forged = issue_certificate(
        deployment.operator_ca,
        Identity(victim, Role.NODE),
        deployment.root / "forged",
        overwrite=True,
    )
    attacker_key = x25519.X25519PrivateKey.generate()
    published = exchange.signed_key(
        PROJECT_ID,
        victim,
        attacker_key,
        forged.cert.read_text(),
        exchange.load_signing_key(forged.key),
    )
    with deployment.store.transaction() as tx:
        tx.execute(
            "UPDATE node_keys SET public_key = ?, certificate_pem = ?, signature = ?, "
            "fingerprint = ? WHERE project_id = ? AND organisation = ?",
            (
                published.public_key,
                published.certificate_pem,
                published.signature,
                sealing.fingerprint(published.public_key, published.certificate_pem),
                PROJECT_ID,
                victim,
            ),
        )
    return attacker_key


# ----------------------------------------------------------------------------- the exchange
def test_three_nodes_agree_one_secret_that_is_private_to_them(deployment: Deployment) -> None:
    held = _exchange(deployment)
    secrets = set(held.values())
    assert len(secrets) == 1
    (secret,) = secrets
    assert len(secret) == sealing.SECRET_BYTES
    for config in deployment.nodes.values():
        path = exchange.secret_path(config.state_dir, PROJECT_ID, 1)
        assert path.stat().st_mode & 0o777 == 0o600
        key_path = exchange.exchange_dir(config.state_dir) / exchange.NODE_KEY_FILE
        assert key_path.stat().st_mode & 0o777 == 0o600
    assert current_epoch(deployment.store, PROJECT_ID) == 1
    actions = [e.event.action for e in deployment.store.audit_entries()]
    assert actions.count("secret.key_published") == 3
    assert actions.count("secret.epoch_started") == 1
    assert actions.count("secret.envelope_fetched") == 2


def test_the_coordinators_files_and_log_hold_no_copy_of_the_secret(
    deployment: Deployment,
) -> None:
    (secret,) = set(_exchange(deployment).values())
    deployment.store.close()  # flush nothing away: the WAL is searched as it was left
    files = [Path(f"{deployment.root / 'coordinator.db'}{s}") for s in ("", "-wal", "-shm")]
    log = deployment.log_file.read_bytes()
    assert b"secret epoch 1" in log  # the exchange was logged, without the secret
    scanned = 0
    for path in [*files, deployment.log_file]:
        if path.exists():
            data = path.read_bytes()
            scanned += len(data)
            for form in _forms(secret):
                assert form not in data, path.name
    assert scanned > 10_000
    # The search would have found it: the node's own file holds it in one of those forms.
    node_file = exchange.secret_path(deployment.nodes["childcare"].state_dir, PROJECT_ID, 1)
    assert any(form in node_file.read_bytes() for form in _forms(secret))
    # Audit details hold fingerprints and digests, never key material.
    with closing(sqlite3.connect(deployment.root / "coordinator.db")) as db, db:
        details = " ".join(d for (d,) in db.execute("SELECT details_json FROM audit"))
        public_keys = [bytes(k) for (k,) in db.execute("SELECT public_key FROM node_keys")]
    assert "sha256:" in details
    for key in public_keys:
        assert key.hex() not in details
        assert base64.b64encode(key).decode() not in details


def test_a_new_secret_starts_a_new_epoch_that_uploads_must_name(deployment: Deployment) -> None:
    first = _exchange(deployment)["health-visiting"]
    second = create_secret(deployment.nodes["flying-start"])
    assert second.epoch == 2
    fetched = fetch_secret(deployment.nodes["childcare"])
    assert fetched.epoch == 2
    newer = exchange.stored_secret(deployment.nodes["childcare"].state_dir, PROJECT_ID, 2)
    assert newer is not None and newer != first
    node = Identity("childcare", Role.NODE)
    spec_hash = deployment.core.project(node, PROJECT_ID).encoding_sha256
    with pytest.raises(SchemaMismatch, match=r"epoch 1 but project .* is at epoch 2"):
        deployment.core.begin_upload(
            node, PROJECT_ID, "upload-old-epoch", spec_hash, 1, ConsentSummary(), 1
        )
    state = deployment.core.begin_upload(
        node, PROJECT_ID, "upload-new-epoch", spec_hash, 1, ConsentSummary(), 2
    )
    assert state.state == "open"


def test_an_epoch_cannot_be_skipped_or_replayed(deployment: Deployment) -> None:
    _exchange(deployment)
    sender = deployment.nodes["health-visiting"]
    keys = [_genuine_key(deployment, org) for org in ORGANISATIONS]
    envelopes = exchange.seal_secret(
        PROJECT_ID,
        1,
        "health-visiting",
        exchange.new_secret(),
        keys,
        sender.tls.cert.read_text(),
        exchange.load_signing_key(sender.tls.key),
    )
    with _channel(sender) as channel, pytest.raises(RequestRefused) as refused:
        SecretClient(channel).put_envelopes(PROJECT_ID, 1, envelopes)
    assert refused.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert "must start epoch 2, not 1" in str(refused.value)
    assert current_epoch(deployment.store, PROJECT_ID) == 1


# ------------------------------------------------------------------------- a lying coordinator
def test_a_substituted_recipient_key_is_refused_by_the_creating_node(
    deployment: Deployment,
) -> None:
    deployment.everyone_publishes()
    _substitute_key(deployment, "flying-start")
    with pytest.raises(ExchangeError) as refused:
        create_secret(deployment.nodes["health-visiting"])
    message = str(refused.value)
    assert "'flying-start'" in message
    assert "did not verify" in message and "confirmed for it" in message
    assert current_epoch(deployment.store, PROJECT_ID) == 0  # nothing was sealed or stored


def test_a_forged_envelope_under_a_substituted_sender_key_is_refused(
    deployment: Deployment,
) -> None:
    _exchange(deployment)
    # The operator makes a secret of its own, seals it to childcare's genuine key, signs it
    # with a certificate it minted for health-visiting, and swaps health-visiting's key.
    forged_dir = deployment.root / "forged-sender"
    forged = issue_certificate(
        deployment.operator_ca, Identity("health-visiting", Role.NODE), forged_dir
    )
    _substitute_key(deployment, "health-visiting")
    childcare = deployment.nodes["childcare"]
    genuine = _genuine_key(deployment, "childcare")
    (envelope,) = exchange.seal_secret(
        PROJECT_ID,
        1,
        "health-visiting",
        b"k" * sealing.SECRET_BYTES,
        [genuine],
        forged.cert.read_text(),
        exchange.load_signing_key(forged.key),
    )
    with deployment.store.transaction() as tx:
        tx.execute(
            "UPDATE secret_envelopes SET enc = ?, ciphertext = ?, signature = ?, "
            "sender_certificate_pem = ? WHERE recipient = 'childcare'",
            (
                envelope.enc,
                envelope.ciphertext,
                envelope.signature,
                envelope.sender_certificate_pem,
            ),
        )
    exchange.secret_path(childcare.state_dir, PROJECT_ID, 1).unlink()
    with pytest.raises(ExchangeError, match="'health-visiting' did not verify"):
        fetch_secret(childcare)
    assert exchange.stored_secret(childcare.state_dir, PROJECT_ID, 1) is None


def test_with_peer_cas_a_key_certified_by_the_operators_ca_is_refused(
    ca_deployment: Deployment,
) -> None:
    held = _exchange(ca_deployment)  # genuine keys from the organisations' CA are accepted
    assert len(set(held.values())) == 1
    _substitute_key(ca_deployment, "childcare")
    with pytest.raises(ExchangeError) as refused:
        create_secret(ca_deployment.nodes["flying-start"])
    assert "'childcare'" in str(refused.value)
    assert "not from a trusted peer CA" in str(refused.value)
    assert current_epoch(ca_deployment.store, PROJECT_ID) == 1


def test_a_node_with_neither_pins_nor_peer_ca_trusts_no_relayed_key(tmp_path: Path) -> None:
    for deployment in _start(tmp_path, pin=False):
        deployment.everyone_publishes()
        with pytest.raises(ExchangeError, match=r"no confirmed fingerprint .* and no peer_ca"):
            create_secret(deployment.nodes["health-visiting"])


def test_a_served_fingerprint_that_differs_from_the_nodes_copy_is_refused(
    deployment: Deployment,
) -> None:
    deployment.everyone_publishes()
    config = deployment.nodes["health-visiting"]
    altered = dict(config.node_keys)
    altered["childcare"] = "sha256:" + "0" * 64
    with pytest.raises(ExchangeError, match="'childcare'"):
        create_secret(replace(config, node_keys=altered))


# ------------------------------------------------------------------------------- who may ask
def test_a_node_outside_the_project_can_neither_publish_nor_fetch(
    deployment: Deployment,
) -> None:
    _exchange(deployment)
    outsider = deployment.extra["youth-justice"]
    with pytest.raises(RequestRefused) as refused:
        fetch_secret(outsider, 1)
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(RequestRefused) as refused:
        publish_key(outsider)
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    refusals = [
        e.event
        for e in deployment.store.audit_entries()
        if e.event.action == "access.refused" and e.event.actor_organisation == "youth-justice"
    ]
    assert refusals, "refusals are audited"


def test_a_node_cannot_publish_a_key_signed_by_another_certificate(
    deployment: Deployment,
) -> None:
    config = deployment.nodes["flying-start"]
    other = deployment.nodes["childcare"]
    published = exchange.signed_key(
        PROJECT_ID,
        "flying-start",
        exchange.load_node_key(config.state_dir),
        other.tls.cert.read_text(),
        exchange.load_signing_key(other.tls.key),
    )
    with _channel(config) as channel, pytest.raises(RequestRefused) as refused:
        SecretClient(channel).publish(PROJECT_ID, published)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "names node childcare" in str(refused.value)


def test_upload_without_an_exchanged_secret_says_what_to_run(deployment: Deployment) -> None:
    with pytest.raises(NodeError, match="hublink node secret create"):
        secret_for_epoch(deployment.nodes["childcare"], 0)


def test_a_run_refuses_uploads_of_different_epochs(deployment: Deployment) -> None:
    with deployment.store.transaction() as tx:
        for org, epoch in (("health-visiting", 1), ("flying-start", 2)):
            tx.execute(
                "INSERT INTO uploads (id, project_id, organisation, state, encoding_sha256, "
                "expected_records, consent_json, created_at, secret_epoch) "
                "VALUES (?, ?, ?, 'committed', '', 0, '{}', '', ?)",
                (f"upload-{org}", PROJECT_ID, org, epoch),
            )
    admin = Identity("family-hub", Role.ADMIN)
    with pytest.raises(NotReady, match=r"different linkage-secret epochs \(1, 2\)"):
        deployment.core.start_run(admin, PROJECT_ID, background=False)


def test_only_nodes_take_part_in_the_exchange(deployment: Deployment) -> None:
    admin = Identity("family-hub", Role.ADMIN)
    relay = SecretRelay(deployment.core)
    with pytest.raises(NotAllowed, match="may not fetch sealed linkage secrets"):
        relay.envelope(admin, PROJECT_ID)
    with pytest.raises(NotAllowed, match="may not list secret-exchange keys"):
        relay.node_keys(admin, PROJECT_ID)
