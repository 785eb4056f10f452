"""The secret-exchange steps a node runs, from its configuration.

``keygen`` makes the node's X25519 key pair and prints its fingerprint for the
organisation to confirm to the project's owner; ``publish_key`` sends the
signed public key; ``create_secret`` starts a new epoch with a fresh secret
sealed to every member; ``fetch_secret`` opens this node's copy. Every key
that arrives is checked against ``PeerTrust`` before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from hublink import sealing
from hublink.clients import open_channel
from hublink.config import NodeConfig
from node import secret_exchange as exchange
from node.secret_client import SecretClient
from node.uploader import NodeClient, RemoteProject
from node.workflow import NodeError, own_identity


@dataclass(frozen=True)
class KeyInfo:
    organisation: str
    path: Path
    fingerprint: str
    created: bool


@dataclass(frozen=True)
class EpochInfo:
    project_id: str
    epoch: int
    path: Path


def _channel(config: NodeConfig, channel: grpc.Channel | None) -> grpc.Channel:
    if channel is not None:
        return channel
    return open_channel(config)


def _certificate_pem(config: NodeConfig) -> str:
    try:
        return config.tls.cert.read_text()
    except OSError as exc:
        raise NodeError(f"{config.tls.cert}: cannot read certificate: {exc.strerror}") from None


def keygen(config: NodeConfig) -> KeyInfo:
    """Create the node's key pair if it has none; either way report its fingerprint."""
    identity = own_identity(config)
    path = exchange.exchange_dir(config.state_dir) / exchange.NODE_KEY_FILE
    created = not path.exists()
    if created:
        exchange.generate_node_key(config.state_dir)
    public = exchange.raw_public(exchange.load_node_key(config.state_dir))
    return KeyInfo(
        identity.organisation,
        path,
        sealing.fingerprint(public, _certificate_pem(config)),
        created,
    )


def publish_key(config: NodeConfig, *, channel: grpc.Channel | None = None) -> KeyInfo:
    """Publish this node's public key for the project, signed with its certificate's key."""
    identity = own_identity(config)
    key = exchange.signed_key(
        config.project,
        identity.organisation,
        exchange.load_node_key(config.state_dir),
        _certificate_pem(config),
        exchange.load_signing_key(config.tls.key),
    )
    client = SecretClient(_channel(config, channel), timeout=config.timeout_seconds)
    fingerprint = client.publish(config.project, key)
    ours = sealing.fingerprint(key.public_key, key.certificate_pem)
    if fingerprint != ours:
        raise NodeError(
            f"the coordinator stored fingerprint {fingerprint[:19]}… for this node's key, "
            f"not {ours[:19]}…"
        )
    path = exchange.exchange_dir(config.state_dir) / exchange.NODE_KEY_FILE
    return KeyInfo(identity.organisation, path, ours, False)


def _trust(config: NodeConfig, project: RemoteProject) -> exchange.PeerTrust:
    return exchange.PeerTrust(
        pinned=dict(config.node_keys),
        cas=exchange.load_peer_cas(config.peer_ca),
        served=dict(project.node_key_fingerprints),
    )


def create_secret(config: NodeConfig, *, channel: grpc.Channel | None = None) -> EpochInfo:
    """Start the project's next epoch: a fresh secret sealed to every member's verified key."""
    identity = own_identity(config)
    channel = _channel(config, channel)
    project = NodeClient(channel, timeout=config.timeout_seconds).project(config.project)
    client = SecretClient(channel, timeout=config.timeout_seconds)
    published = {k.organisation: k for k in client.keys(project.project_id)}
    missing = [org for org in project.organisations if org not in published]
    if missing:
        raise NodeError(
            f"project {project.project_id!r}: no secret-exchange key published yet by "
            f"{', '.join(missing)}; each node runs `hublink node secret publish` first"
        )
    trust = _trust(config, project)
    recipients = [published[org] for org in project.organisations]
    for key in recipients:
        trust.check_key(project.project_id, key)
    epoch = project.secret_epoch + 1
    secret = exchange.new_secret()
    envelopes = exchange.seal_secret(
        project.project_id,
        epoch,
        identity.organisation,
        secret,
        recipients,
        _certificate_pem(config),
        exchange.load_signing_key(config.tls.key),
    )
    stored = client.put_envelopes(project.project_id, epoch, envelopes)
    if stored != epoch:
        raise NodeError(f"the coordinator reports epoch {stored}, not {epoch}")
    path = exchange.store_secret(config.state_dir, project.project_id, epoch, secret)
    return EpochInfo(project.project_id, epoch, path)


def fetch_secret(
    config: NodeConfig, epoch: int = 0, *, channel: grpc.Channel | None = None
) -> EpochInfo:
    """Fetch, verify and open this node's envelope (the latest epoch unless one is named)."""
    identity = own_identity(config)
    channel = _channel(config, channel)
    project = NodeClient(channel, timeout=config.timeout_seconds).project(config.project)
    client = SecretClient(channel, timeout=config.timeout_seconds)
    envelope = client.envelope(project.project_id, epoch or project.secret_epoch)
    if epoch and envelope.epoch != epoch:
        raise NodeError(f"asked for epoch {epoch} but the coordinator sent epoch {envelope.epoch}")
    published = {k.organisation: k for k in client.keys(project.project_id)}
    sender = published.get(envelope.sender)
    if sender is None or envelope.sender not in project.organisations:
        raise NodeError(
            f"the secret envelope names sender {envelope.sender!r}, which has no published key "
            f"in project {project.project_id!r}"
        )
    certificate = _trust(config, project).check_key(project.project_id, sender)
    secret = exchange.open_envelope(
        envelope,
        project_id=project.project_id,
        organisation=identity.organisation,
        sender_certificate=certificate,
        node_key=exchange.load_node_key(config.state_dir),
    )
    path = exchange.store_secret(config.state_dir, project.project_id, envelope.epoch, secret)
    return EpochInfo(project.project_id, envelope.epoch, path)


def secret_for_epoch(
    config: NodeConfig, epoch: int, *, channel: grpc.Channel | None = None
) -> bytes:
    """The exchanged secret of ``epoch``, fetched and verified if this node does not hold it."""
    if epoch == 0:
        raise NodeError(
            f"project {config.project!r} has no exchanged linkage secret yet; one node runs "
            "`hublink node secret create` after every node has published its key"
        )
    secret = exchange.stored_secret(config.state_dir, config.project, epoch)
    if secret is None:
        fetch_secret(config, epoch, channel=channel)
        secret = exchange.stored_secret(config.state_dir, config.project, epoch)
    assert secret is not None
    return secret
