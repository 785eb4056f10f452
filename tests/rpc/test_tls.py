"""Mutual TLS against a real gRPC server: who gets in, and who the handler sees.

Each test starts a server on an ephemeral port with ``server_credentials`` and a
generic bytes-in, bytes-out method that answers with ``str(peer_identity(...))``,
so no protobuf is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from hublink.identity import Identity, Role
from hublink.pki import create_authority, issue_certificate
from hublink.tls import (
    MAX_MESSAGE_BYTES,
    TlsConfigError,
    TlsFiles,
    channel_credentials,
    peer_identity,
    secure_channel,
    server_credentials,
)

DEADLINE = 5.0
METHOD = "/hublink.test.Probe/WhoAmI"
COORDINATOR = Identity("hub", Role.COORDINATOR)
NODE = Identity("health-visiting", Role.NODE)


def _who_am_i(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Answer with the caller's identity, padded to the length asked for (decimal), if any."""
    answer = str(peer_identity(context)).encode()
    return answer.ljust(int(request or b"0"), b" ")


StartServer = Callable[[TlsFiles], int]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start mutual-TLS probe servers on 127.0.0.1 and stop them all after the test."""
    servers: list[grpc.Server] = []

    def start(files: TlsFiles) -> int:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "hublink.test.Probe",
                    {"WhoAmI": grpc.unary_unary_rpc_method_handler(_who_am_i)},
                ),
            )
        )
        servers.append(server)
        port = server.add_secure_port("127.0.0.1:0", server_credentials(files))
        assert port != 0, "gRPC could not bind a port"
        server.start()
        return int(port)

    yield start
    for server in servers:
        server.stop(None)


@pytest.fixture
def server_port(pilot_pki: Any, start_server: StartServer) -> int:
    return start_server(pilot_pki.issue(COORDINATOR))


def _call(channel: grpc.Channel) -> str:
    response: bytes = channel.unary_unary(METHOD)(b"", timeout=DEADLINE)
    return response.decode()


def _assert_refused(channel: grpc.Channel) -> None:
    with channel, pytest.raises(grpc.RpcError) as caught:
        _call(channel)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_node_certificate_is_seen_as_its_identity(pilot_pki: Any, server_port: int) -> None:
    with secure_channel(f"127.0.0.1:{server_port}", pilot_pki.issue(NODE)) as channel:
        assert _call(channel) == "node health-visiting"


def test_each_role_is_seen_as_itself(pilot_pki: Any, server_port: int) -> None:
    for role in Role:
        identity = Identity("children-services", role)
        with secure_channel(f"127.0.0.1:{server_port}", pilot_pki.issue(identity)) as channel:
            assert _call(channel) == str(identity)


def test_client_without_certificate_is_refused(pilot_pki: Any, server_port: int) -> None:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pilot_pki.authority.ca.read_bytes()
    )
    _assert_refused(grpc.secure_channel(f"127.0.0.1:{server_port}", credentials))


def test_client_certificate_from_another_ca_is_refused(
    pilot_pki: Any, server_port: int, tmp_path: Path
) -> None:
    other = create_authority(tmp_path / "other-ca")
    foreign = issue_certificate(other, NODE, tmp_path / "other-issued")
    # The client still trusts the pilot CA, so only the server's check can fail.
    files = TlsFiles(ca=pilot_pki.authority.ca, cert=foreign.cert, key=foreign.key)
    _assert_refused(secure_channel(f"127.0.0.1:{server_port}", files))


def test_expired_client_certificate_is_refused(pilot_pki: Any, server_port: int) -> None:
    expired = pilot_pki.issue(NODE, not_before=datetime.now(UTC) - timedelta(days=10), days=1)
    _assert_refused(secure_channel(f"127.0.0.1:{server_port}", expired))


def test_server_certificate_from_another_ca_is_refused(
    pilot_pki: Any, start_server: StartServer, tmp_path: Path
) -> None:
    other = create_authority(tmp_path / "other-ca")
    impostor = TlsFiles.from_certificate_files(
        issue_certificate(other, COORDINATOR, tmp_path / "other-issued")
    )
    port = start_server(impostor)
    _assert_refused(secure_channel(f"127.0.0.1:{port}", pilot_pki.issue(NODE)))


def test_server_name_override_checks_the_named_host(
    pilot_pki: Any, start_server: StartServer
) -> None:
    named = pilot_pki.issue(COORDINATOR, dns_names=("coordinator.example",), ip_addresses=())
    port = start_server(named)
    client = pilot_pki.issue(NODE)
    with secure_channel(f"127.0.0.1:{port}", client, server_name="coordinator.example") as channel:
        assert _call(channel) == "node health-visiting"
    # Without the override the client checks 127.0.0.1, which the certificate does not name.
    _assert_refused(secure_channel(f"127.0.0.1:{port}", client))
    _assert_refused(secure_channel(f"127.0.0.1:{port}", client, server_name="other.example"))


def test_replies_larger_than_grpc_default_are_received(pilot_pki: Any, server_port: int) -> None:
    """gRPC's default 4 MiB receive limit would refuse a 6 MiB reply; ours does not."""
    size = 6 * 1024 * 1024
    assert size < MAX_MESSAGE_BYTES
    client = pilot_pki.issue(NODE)
    with secure_channel(f"127.0.0.1:{server_port}", client) as channel:
        reply = channel.unary_unary(METHOD)(str(size).encode(), timeout=DEADLINE)
        assert len(reply) == size
        assert reply.rstrip() == b"node health-visiting"
    # Options given by the caller win over the defaults.
    limited = secure_channel(
        f"127.0.0.1:{server_port}",
        client,
        options=[("grpc.max_receive_message_length", 4 * 1024 * 1024)],
    )
    with limited, pytest.raises(grpc.RpcError) as caught:
        limited.unary_unary(METHOD)(str(size).encode(), timeout=DEADLINE)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


class _FakeContext:
    def __init__(self, auth: dict[str, list[bytes]]) -> None:
        self._auth = auth

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


def test_peer_identity_is_none_without_a_certificate() -> None:
    context: Any = _FakeContext({"transport_security_type": [b"insecure"]})
    assert peer_identity(context) is None


def test_peer_identity_is_none_for_a_certificate_without_identity(pilot_pki: Any) -> None:
    context: Any = _FakeContext({"x509_pem_cert": [pilot_pki.authority.ca.read_bytes()]})
    assert peer_identity(context) is None


def test_missing_file_names_the_file(pilot_pki: Any, tmp_path: Path) -> None:
    files = pilot_pki.issue(NODE)
    missing = tmp_path / "nowhere" / "node.pem"
    with pytest.raises(TlsConfigError, match=r"cannot read TLS certificate .*node\.pem: No such"):
        server_credentials(TlsFiles(ca=files.ca, cert=missing, key=files.key))


def test_key_of_another_certificate_is_refused(pilot_pki: Any) -> None:
    node = pilot_pki.issue(NODE)
    coordinator = pilot_pki.issue(COORDINATOR)
    mixed = TlsFiles(ca=node.ca, cert=node.cert, key=coordinator.key)
    with pytest.raises(TlsConfigError, match="does not belong to certificate"):
        channel_credentials(mixed)


def test_non_pem_ca_is_refused(pilot_pki: Any, tmp_path: Path) -> None:
    node = pilot_pki.issue(NODE)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(TlsConfigError, match=r"junk\.pem does not contain a PEM certificate"):
        channel_credentials(TlsFiles(ca=junk, cert=node.cert, key=node.key))
