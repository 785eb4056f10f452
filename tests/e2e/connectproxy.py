"""A minimal HTTP CONNECT proxy for tests: records each CONNECT line, then relays bytes.

It stands in for an NHS or council outbound proxy. It resolves every host
name it is asked for to ``resolve_to`` (default 127.0.0.1), so a node can
address the coordinator by a name no DNS server knows: the connection then
works only if it really went through the proxy.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class ConnectProxy:
    """Listens on 127.0.0.1; answers CONNECT host:port with 200 and relays the tunnel."""

    def __init__(self, *, resolve_to: str = "127.0.0.1") -> None:
        self._resolve_to = resolve_to
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[str] = []
        """Every request line received, e.g. ``CONNECT coordinator.hublink.test:4431 HTTP/1.1``."""
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="connect-proxy", daemon=True).start()

    def stop(self) -> None:
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data:
                _close(client)
                return
            head += data
        head, _, early = head.partition(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        with self._lock:
            self.requests.append(line)
        method, target, _ = [*line.split(" "), "", ""][:3]
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or not host or not port.isdigit():
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            _close(client)
            return
        try:
            upstream = socket.create_connection((self._resolve_to, int(port)))
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            _close(client)
            return
        with self._lock:
            self._sockets.append(upstream)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if early:
            upstream.sendall(early)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
