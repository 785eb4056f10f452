"""Print what resuming an interrupted upload saves, and what the operations features cost.

Usage: python bench/resume.py [RECORDS]   (default 20000 per organisation)

On a real coordinator over mutual TLS on loopback (synthetic data, demo
configs): a full upload; an upload whose channel dies half-way, then the
re-run that resumes it (chunks sent, seconds); a scrape of /metrics; an online
backup of the coordinator's database while it serves. Encoding time is part
of every upload (a resumed run encodes again: it keeps no encodings on disk).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc

from coordinator.app import start
from hublink import backup, synthetic
from hublink.config import CoordinatorConfig, NodeConfig, load
from hublink.demo import free_port, write_deployment
from hublink.tls import TlsFiles, secure_channel
from node.errors import RunError as NodeError
from node.workflow import upload

PUT_CHUNK = "/hublink.v1.UploadService/PutChunk"


class Dies(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "channel cut by the benchmark"


class Counting(grpc.UnaryUnaryClientInterceptor):
    """Counts chunks delivered; after ``die_after`` of them, every call fails."""

    def __init__(self, die_after: int = -1) -> None:
        self.die_after = die_after
        self.chunks = 0

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if 0 <= self.die_after <= self.chunks:
            raise Dies()
        outcome = continuation(details, request)
        if details.method == PUT_CHUNK:
            outcome.result()
            self.chunks += 1
        return outcome


def channel(config: NodeConfig, counter: Counting) -> grpc.Channel:
    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    return grpc.intercept_channel(secure_channel(config.coordinator, tls), counter)


def main(records: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data = synthetic.generate(
            root / "data", records, seed=1, layouts=synthetic.DEFAULT_LAYOUTS[:2]
        )
        configs = write_deployment(root, data, free_port())
        coordinator_config = load(configs["coordinator"], CoordinatorConfig)
        running = start(coordinator_config)
        try:
            nodes = {
                org: dataclasses.replace(load(configs[org], NodeConfig), retry_attempts=1)
                for org in ("health-visiting", "flying-start")
            }
            full = Counting()
            started = time.perf_counter()
            summary = upload(
                nodes["health-visiting"], channel=channel(nodes["health-visiting"], full)
            )
            whole = time.perf_counter() - started
            print(f"full upload: {summary.records} records in {full.chunks} chunks, {whole:.1f} s")

            config = nodes["flying-start"]
            half = Counting()
            half.die_after = max(1, -(-records // config.chunk_records) // 2)
            started = time.perf_counter()
            with contextlib.suppress(NodeError):  # the cut, as expected
                upload(config, channel=channel(config, half))
            cut = time.perf_counter() - started
            resumed = Counting()
            started = time.perf_counter()
            summary = upload(config, channel=channel(config, resumed))
            again = time.perf_counter() - started
            print(
                f"interrupted after {half.chunks} chunks ({cut:.1f} s); the re-run sent "
                f"{resumed.chunks} chunks of {half.chunks + resumed.chunks} "
                f"({summary.records} records) in {again:.1f} s"
            )

            assert running.ops_port is not None
            url = f"http://127.0.0.1:{running.ops_port}/metrics"
            started = time.perf_counter()
            for _ in range(20):
                with urllib.request.urlopen(url, timeout=10) as answer:
                    size = len(answer.read())
            print(
                f"/metrics: {(time.perf_counter() - started) / 20 * 1000:.1f} ms a scrape, "
                f"{size} bytes"
            )

            started = time.perf_counter()
            manifest = backup.create(
                root / "backup", "coordinator", {"coordinator.db": coordinator_config.database}
            )
            taken = time.perf_counter() - started
            size_mb = coordinator_config.database.stat().st_size / 1e6
            print(
                f"online backup of the coordinator database ({size_mb:.1f} MB, "
                f"{len(manifest.files)} file): {taken:.2f} s"
            )
        finally:
            running.stop(grace=None)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
