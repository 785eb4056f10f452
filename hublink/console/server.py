"""Running the console: bind loopback, print the one address with its access token, serve.

The socket is bound before the server starts, so the printed port is the one
listening (port 0 picks a free one). uvicorn's access log is off: it would
write the access token into the terminal's scrollback with every first visit.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import uvicorn

from hublink.console.app import create_app
from hublink.console.profiles import ProfileError, Settings
from hublink.console.security import Sessions

DEFAULT_HOST = "127.0.0.1"


class ConsoleServer:
    """A console bound to ``host:port``; ``url`` is what to open; run in front or in a thread."""

    def __init__(self, settings: Settings, host: str = DEFAULT_HOST, port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as exc:
            self.socket.close()
            raise ProfileError(
                f"the console cannot listen on {host}:{port}: {exc.strerror}"
            ) from None
        self.host = host
        self.port = int(self.socket.getsockname()[1])
        self.sessions = Sessions()
        self.app = create_app(settings, self.sessions, host, self.port)
        self.settings = settings
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The address to open: the console with this launch's access token."""
        return f"{self.base}/?token={self.sessions.access_token}"

    def serve(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve in this thread until interrupted (Ctrl-C)."""
        if on_ready is not None:
            on_ready(self.url)
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self._close_profiles()

    def start(self) -> str:
        """Serve in a background thread; returns the URL once it answers."""
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the console stopped as it started")
            threading.Event().wait(0.02)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket.close()
        self._close_profiles()

    def _close_profiles(self) -> None:
        for profile in self.settings.profiles:
            profile.close()
