"""A TCP relay between a node and the coordinator that breaks the connection on cue.

Why a relay rather than a client interceptor: the fault is then a real one
on the wire. The node's gRPC channel sees its TCP connection closed in the
middle of an HTTP/2 frame (``cut``) or stop moving (``hold``), and has to
reconnect and recover exactly as it would on a flaky network; nothing in
the node is told what happened.

Faults are one-shot and counted in bytes of one connection's direction
("up": node to coordinator, "down": coordinator to node), so a test aims them
by size, never by time.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass


@dataclass
class _Fault:
    kind: str  # "cut" or "hold"
    direction: str  # "up" or "down"
    after: int


class TcpRelay:
    """Listens on 127.0.0.1 and relays each connection to ``target_port``."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._fault: _Fault | None = None
        self._released = threading.Event()
        self._stopping = False
        self._sockets: list[socket.socket] = []
        self.connections = 0
        self.cuts = 0
        self.carried = {"up": 0, "down": 0}
        """Bytes relayed each way over all connections (to aim a fault at a later run)."""
        self.held = threading.Event()
        """Set once a ``hold`` fault has stopped a connection."""
        self._thread = threading.Thread(target=self._accept, name="relay", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ faults
    def cut(self, direction: str, after: int) -> None:
        """Close both sides of the connection once it has carried ``after`` bytes that way."""
        with self._lock:
            self._fault = _Fault("cut", direction, after)

    def hold(self, direction: str, after: int) -> None:
        """Stop relaying that way after ``after`` bytes (the connection stays open, silent)."""
        with self._lock:
            self._fault = _Fault("hold", direction, after)

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self._stopping = True
        self._released.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)

    # --------------------------------------------------------------- plumbing
    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self.connections += 1
                self._sockets += [client, upstream]
            counters = {"up": 0, "down": 0}
            for source, sink, direction in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(
                    target=self._pump,
                    args=(source, sink, direction, counters, (client, upstream)),
                    daemon=True,
                ).start()

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        direction: str,
        counters: dict[str, int],
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                with self._lock:
                    fault = self._fault
                    seen = counters[direction]
                    counters[direction] += len(data)
                    self.carried[direction] += len(data)
                    fires = (
                        fault is not None
                        and fault.direction == direction
                        and seen + len(data) >= fault.after
                    )
                    if fires:
                        self._fault = None
                if not fires:
                    sink.sendall(data)
                    continue
                assert fault is not None
                sink.sendall(data[: max(0, fault.after - seen)])
                if fault.kind == "cut":
                    self.cuts += 1
                    break
                self.held.set()
                self._released.wait()
                break
        except OSError:
            pass
        for sock in pair:
            _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
