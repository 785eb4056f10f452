"""The coordinator's plain-HTTP operations port: /healthz, /readyz and /metrics.

Kubernetes probes and Prometheus cannot present the client certificate the
gRPC port demands, so they get a separate port with nothing on it but
whether the process is alive, whether it is ready to serve, and counters.
It returns no project data, so it binds to loopback by default; expose it
only to the cluster's monitoring network.

- ``/healthz`` (liveness): 200 while the process answers at all.
- ``/readyz`` (readiness): 200 while gRPC health reports SERVING and the
  database answers; 503 once shutdown has begun or the database is gone.
- ``/metrics``: Prometheus text format (coordinator.metrics).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from coordinator.metrics import CoordinatorMetrics

log = logging.getLogger("hublink.coordinator.ops")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class OpsServer:
    """A small threaded HTTP server; ``start`` runs it in a daemon thread."""

    def __init__(
        self, address: str, metrics: CoordinatorMetrics, ready: Callable[[], bool]
    ) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"operations address must be host:port, not {address!r}")
        handler = _handler(metrics, ready)
        self._http = ThreadingHTTPServer((host.strip("[]"), int(port)), handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="ops-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("operations endpoints (/healthz, /readyz, /metrics) on port %d", self.port)

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def _handler(
    metrics: CoordinatorMetrics, ready: Callable[[], bool]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "hublink-ops"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b"ok\n")
            elif path == "/readyz":
                ok = _safely(ready)
                self._send(200 if ok else 503, b"ok\n" if ok else b"not ready\n")
            elif path == "/metrics":
                self._send(200, metrics.exposition(), PROMETHEUS_TEXT)
            else:
                self._send(404, b"not found\n")

        def _send(self, status: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds would drown the log: say nothing per request."""

    return Handler


def _safely(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except Exception:  # a readiness check that fails means not ready, never a crash
        log.warning("readiness check failed", exc_info=False)
        return False
