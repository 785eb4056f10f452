"""What the node's config points at before any record is read: who we are, our secret, our line.

Every node command starts here: its organisation comes from its own
certificate, the linkage secret from a file or environment variable, and the
mutual-TLS channel to the coordinator from the config's TLS files. Kept apart
from the commands (``node.workflow``, ``node.keys``, ``node.secret_workflow``,
``node.withdraw``, ``node.plan``) so each can use them without importing the
others.
"""

from __future__ import annotations

import os

import grpc

from hublink.config import NodeConfig
from hublink.identity import Identity, identity_from_certificate
from hublink.tls import TlsFiles, secure_channel
from node.errors import RunError
from node.uploader import NodeClient, RetryPolicy


def own_identity(config: NodeConfig) -> Identity:
    """This node's organisation and role, read from its own certificate."""
    try:
        return identity_from_certificate(config.tls.cert.read_bytes())
    except OSError as exc:
        raise RunError(f"{config.tls.cert}: cannot read certificate: {exc.strerror}") from None


def certificate_pem(config: NodeConfig) -> str:
    """This node's certificate as PEM text (secret exchange signs with it and sends it)."""
    try:
        return config.tls.cert.read_text()
    except OSError as exc:
        raise RunError(f"{config.tls.cert}: cannot read certificate: {exc.strerror}") from None


def read_secret(config: NodeConfig) -> bytes:
    """The project's linkage secret, from the file or environment variable the config names."""
    if config.secret_file is not None:
        try:
            secret = config.secret_file.read_bytes().strip()
        except OSError as exc:
            raise RunError(
                f"{config.secret_file}: cannot read the linkage secret: {exc.strerror}"
            ) from None
        where = str(config.secret_file)
    elif config.secret_env:
        secret = os.environ.get(config.secret_env, "").strip().encode()
        where = f"environment variable {config.secret_env}"
    else:
        raise RunError("the node config names no linkage secret (secret_file or secret_env)")
    if len(secret) < 16:
        raise RunError(f"{where}: the linkage secret must be at least 16 characters")
    return secret


def channel(config: NodeConfig, given: grpc.Channel | None = None) -> grpc.Channel:
    """The mutual-TLS channel the config describes, or ``given`` when a caller wraps its own.

    (The privacy tests pass a channel that records every message sent.)
    """
    if given is not None:
        return given
    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    return secure_channel(config.coordinator, tls, server_name=config.server_name or None)


def client(config: NodeConfig, given: grpc.Channel | None = None) -> NodeClient:
    """The coordinator client over ``channel``, with the config's timeout and retry policy."""
    retry = RetryPolicy(
        config.retry_attempts, config.retry_initial_seconds, config.retry_max_seconds
    )
    return NodeClient(channel(config, given), timeout=config.timeout_seconds, retry=retry)
