"""The node's gRPC calls for the linkage-secret exchange (SecretService).

Like ``node.uploader``, this is transport only: it turns the exchange's plain
dataclasses into messages and back. Nothing it receives is trusted here;
``node.secret_exchange`` checks every key and envelope.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from hublink.clients import RequestRefused
from hublink.v1 import secrets_pb2, secrets_pb2_grpc
from node.secret_exchange import PublishedKey, SealedEnvelope


class SecretClient:
    """SecretService over an already-built mutual-TLS channel."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = 60.0) -> None:
        self._stub = secrets_pb2_grpc.SecretServiceStub(channel)
        self.timeout = timeout

    def publish(self, project_id: str, key: PublishedKey) -> str:
        """Publish our key; returns the fingerprint the coordinator computed."""
        try:
            answer = self._stub.PublishNodeKey(
                secrets_pb2.PublishNodeKeyRequest(
                    project_id=project_id,
                    key=secrets_pb2.NodeKey(
                        organisation=key.organisation,
                        public_key=key.public_key,
                        certificate_pem=key.certificate_pem,
                        signature=key.signature,
                    ),
                ),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused("publishing the node key", exc) from None
        return str(answer.fingerprint)

    def keys(self, project_id: str) -> list[PublishedKey]:
        try:
            answer = self._stub.ListNodeKeys(
                secrets_pb2.ListNodeKeysRequest(project_id=project_id), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise RequestRefused("listing node keys", exc) from None
        return [
            PublishedKey(k.organisation, bytes(k.public_key), k.certificate_pem, bytes(k.signature))
            for k in answer.keys
        ]

    def put_envelopes(
        self, project_id: str, epoch: int, envelopes: Sequence[SealedEnvelope]
    ) -> int:
        try:
            answer = self._stub.PutEnvelopes(
                secrets_pb2.PutEnvelopesRequest(
                    project_id=project_id,
                    epoch=epoch,
                    envelopes=[_message(e) for e in envelopes],
                ),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused("storing the sealed secrets", exc) from None
        return int(answer.epoch)

    def envelope(self, project_id: str, epoch: int) -> SealedEnvelope:
        try:
            m = self._stub.GetEnvelope(
                secrets_pb2.GetEnvelopeRequest(project_id=project_id, epoch=epoch),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused("fetching this node's sealed secret", exc) from None
        return SealedEnvelope(
            m.project_id,
            int(m.epoch),
            m.sender,
            m.recipient,
            bytes(m.enc),
            bytes(m.ciphertext),
            bytes(m.signature),
            m.sender_certificate_pem,
        )


def _message(e: SealedEnvelope) -> secrets_pb2.SecretEnvelope:
    return secrets_pb2.SecretEnvelope(
        project_id=e.project_id,
        epoch=e.epoch,
        sender=e.sender,
        recipient=e.recipient,
        enc=e.enc,
        ciphertext=e.ciphertext,
        signature=e.signature,
        sender_certificate_pem=e.sender_certificate_pem,
    )
