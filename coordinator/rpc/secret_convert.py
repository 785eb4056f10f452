"""Secret-exchange protobuf messages to the relay's plain dataclasses and back."""

from __future__ import annotations

from coordinator.core.secret_relay import Envelope, NodeKey
from hublink.v1 import secrets_pb2


def node_key(message: secrets_pb2.NodeKey) -> NodeKey:
    return NodeKey(
        organisation=message.organisation,
        public_key=bytes(message.public_key),
        certificate_pem=message.certificate_pem,
        signature=bytes(message.signature),
    )


def node_key_message(key: NodeKey) -> secrets_pb2.NodeKey:
    return secrets_pb2.NodeKey(
        organisation=key.organisation,
        public_key=key.public_key,
        certificate_pem=key.certificate_pem,
        signature=key.signature,
        fingerprint=key.fingerprint,
    )


def envelope(message: secrets_pb2.SecretEnvelope) -> Envelope:
    return Envelope(
        project_id=message.project_id,
        epoch=int(message.epoch),
        sender=message.sender,
        recipient=message.recipient,
        enc=bytes(message.enc),
        ciphertext=bytes(message.ciphertext),
        signature=bytes(message.signature),
        sender_certificate_pem=message.sender_certificate_pem,
    )


def envelope_message(value: Envelope) -> secrets_pb2.SecretEnvelope:
    return secrets_pb2.SecretEnvelope(
        project_id=value.project_id,
        epoch=value.epoch,
        sender=value.sender,
        recipient=value.recipient,
        enc=value.enc,
        ciphertext=value.ciphertext,
        signature=value.signature,
        sender_certificate_pem=value.sender_certificate_pem,
    )
