"""The console's locks: a per-launch access token, session cookies, CSRF tokens, strict headers.

Why each one. The console runs on the user's own machine with the user's
certificate, so anything that can make their browser send a request to it acts
as them. Binding to loopback keeps other machines out; the access token in the
printed URL (as Jupyter does) keeps out other local users and web pages that
guess the port; the HttpOnly, SameSite=Strict cookie it is exchanged for keeps
the token out of later URLs and away from other sites' requests; a CSRF token
bound to the session (an HMAC of its id) guards every form; checking the Host
header defeats DNS rebinding; and a strict Content-Security-Policy means the
pages run no script at all, inline or injected.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

COOKIE = "hublink_console"
CSRF_FIELD = "csrf_token"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
"""No inline script or style anywhere: the pages' SVG uses presentation attributes."""

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
"""Sent with every response; ``no-referrer`` keeps the access token out of Referer headers."""


@dataclass
class Session:
    """One browser's session: which identity it acts as, and its chosen project."""

    session_id: str
    profile: int = 0
    project: str = ""
    flash: list[str] = field(default_factory=list)


class Sessions:
    """Sessions by id, the launch token, and the key CSRF tokens are made with."""

    def __init__(self, access_token: str | None = None) -> None:
        self.access_token = access_token or secrets.token_urlsafe(32)
        self._key = secrets.token_bytes(32)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def token_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self.access_token.encode())

    def start(self) -> Session:
        session = Session(secrets.token_urlsafe(32))
        with self._lock:
            self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            return self._sessions.get(session_id)

    def csrf_token(self, session: Session) -> str:
        """The form token of this session: an HMAC of its id under a key that never leaves."""
        return hmac.new(
            self._key, b"csrf\0" + session.session_id.encode(), hashlib.sha256
        ).hexdigest()

    def csrf_ok(self, session: Session, offered: str) -> bool:
        return hmac.compare_digest(self.csrf_token(session).encode(), offered.encode())


def cookie_header(session: Session) -> str:
    """The Set-Cookie value that carries the session: never readable by script, same site only."""
    return f"{COOKIE}={session.session_id}; HttpOnly; SameSite=Strict; Path=/"


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SecurityHeaders:
    """ASGI middleware: refuse unexpected Host headers; add the strict headers to every answer."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").lower()
        if self.allowed_hosts and host not in self.allowed_hosts:
            await _plain(send, 421, "This console answers only on the address it printed.")
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in HEADERS}
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message["headers"] = kept + list(HEADERS)
            await send(message)

        await self.app(scope, receive, with_headers)


async def _plain(send: Send, status: int, text: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values a browser sends for this console's own address."""
    names = {host, "localhost"} if host in ("127.0.0.1", "::1") else {host}
    return frozenset(f"{name}:{port}" for name in names)
