"""The one way a party's config becomes a mutual-TLS channel to the coordinator.

Nodes, admins, analysts and auditors all name the coordinator's address, their
certificate files and, when the address is not the name on the coordinator's
certificate, the name to check instead. Building the channel in one place means
each of them checks the server the same way.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from hublink.config import TlsSection
from hublink.tls import TlsFiles, secure_channel


class ReachesCoordinator(Protocol):
    """What a config needs to reach the coordinator (``NodeConfig`` and ``ClientConfig`` do)."""

    @property
    def coordinator(self) -> str: ...

    @property
    def tls(self) -> TlsSection: ...

    @property
    def server_name(self) -> str: ...


def open_channel(config: ReachesCoordinator) -> grpc.Channel:
    """A mutual-TLS channel to ``config.coordinator`` with this party's certificate.

    An empty ``server_name`` means the host in the address is the name checked.
    """
    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    return secure_channel(config.coordinator, tls, server_name=config.server_name or None)
