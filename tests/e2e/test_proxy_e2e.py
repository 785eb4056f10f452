"""A node behind an HTTP CONNECT proxy reaches the coordinator, with TLS names still checked.

Nodes inside NHS and council networks often reach the outside only through
an HTTP CONNECT proxy. gRPC honours ``grpc_proxy`` / ``https_proxy`` /
``http_proxy`` and ``no_grpc_proxy`` / ``no_proxy``, and hublink's channel
options leave that on. The node addresses the coordinator by a name no DNS
server knows (``coordinator.hublink.test``); only the proxy (the test's own,
``connectproxy.ConnectProxy``) can reach it, so a successful upload shows the
traffic went through the proxy. The tunnel carries mutual TLS end to end: the
coordinator's certificate must still name the host the node asked for.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import grpc
import pytest
from connectproxy import ConnectProxy

from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.clients import RequestRefused
from hublink.config import CoordinatorConfig, NodeConfig, load
from hublink.demo import COORDINATOR, free_port, write_deployment
from hublink.pki import issue_certificate, load_authority
from node.workflow import upload

pytestmark = pytest.mark.e2e

NAME = "coordinator.hublink.test"
PROXY_VARIABLES = (
    "grpc_proxy",
    "https_proxy",
    "http_proxy",
    "no_grpc_proxy",
    "no_proxy",
    "GRPC_PROXY",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
)


@dataclasses.dataclass
class Site:
    configs: dict[str, Path]
    port: int
    database: Path
    proxy: ConnectProxy

    def node(self, organisation: str, host: str) -> NodeConfig:
        config = load(self.configs[organisation], NodeConfig)
        return dataclasses.replace(config, coordinator=f"{host}:{self.port}", retry_attempts=1)

    def uploads(self) -> dict[str, str]:
        with closing(sqlite3.connect(self.database)) as db, db:
            return dict(db.execute("SELECT organisation, state FROM uploads").fetchall())


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    data = synthetic.generate(tmp_path / "data", 60, seed=9, layouts=synthetic.DEFAULT_LAYOUTS[:2])
    port = free_port()
    configs = write_deployment(tmp_path, data, port)
    # The coordinator's certificate names the host nodes ask for, as a real one would.
    issue_certificate(
        load_authority(tmp_path / "pki"),
        COORDINATOR,
        tmp_path / "pki",
        dns_names=("localhost", NAME),
        overwrite=True,
    )
    config = load(configs["coordinator"], CoordinatorConfig)
    coordinator = start_coordinator(config)
    proxy = ConnectProxy()
    try:
        yield Site(configs, port, config.database, proxy)
    finally:
        proxy.stop()
        coordinator.stop(grace=None)


@pytest.mark.slow
def test_a_node_process_uploads_through_the_proxy_named_in_https_proxy(site: Site) -> None:
    original = site.configs["health-visiting"]
    behind_proxy = original.with_name("node-proxy.toml")
    behind_proxy.write_text(
        original.read_text().replace(f'"localhost:{site.port}"', f'"{NAME}:{site.port}"', 1)
    )
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    result = subprocess.run(
        [sys.executable, "-m", "hublink", "node", "upload", "--config", str(behind_proxy)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "https_proxy": site.proxy.url, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert "health-visiting: uploaded" in result.stdout
    assert f"CONNECT {NAME}:{site.port} HTTP/1.1" in site.proxy.requests
    assert set(site.proxy.requests) == {f"CONNECT {NAME}:{site.port} HTTP/1.1"}
    assert site.uploads() == {"health-visiting": "committed"}


def test_through_the_proxy_the_certificate_must_still_name_the_host(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", site.proxy.url)
    # The proxy would happily connect "elsewhere" to the same coordinator; TLS refuses it.
    with pytest.raises(RequestRefused) as refused:
        upload(site.node("flying-start", "elsewhere.hublink.test"))
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE, str(refused.value)
    assert f"CONNECT elsewhere.hublink.test:{site.port} HTTP/1.1" in site.proxy.requests
    assert site.uploads() == {}

    # The right name through the same proxy works.
    summary = upload(site.node("flying-start", NAME))
    assert summary.records > 0
    assert f"CONNECT {NAME}:{site.port} HTTP/1.1" in site.proxy.requests
    assert site.uploads() == {"flying-start": "committed"}


def test_no_proxy_sends_a_host_around_the_proxy(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", site.proxy.url)
    monkeypatch.setenv("no_proxy", "localhost")
    summary = upload(site.node("flying-start", "localhost"))
    assert summary.records > 0
    assert site.proxy.requests == []
    assert site.uploads() == {"flying-start": "committed"}
