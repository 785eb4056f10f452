"""Second confirmations for destructive calls: a code bound to the action, project and caller.

Closing a project erases every record it holds, for good. One call with a
stolen or mistaken admin certificate should not be enough, so a destructive
call takes two: the first is refused with a confirmation code, the second
must echo it. The code is an HMAC, under a key that lives only in this
process's memory, over the action, the project, the caller's organisation,
role and certificate fingerprint, the reason given, a nonce and an expiry;
so it cannot be forged, cannot be used by another caller or for another
project or reason, and is worthless after the window or a restart. Each code
is accepted once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from hublink.identity import Identity

WINDOW_SECONDS = 300
"""How long a confirmation code is accepted for (five minutes)."""


class ConfirmationRefused(ValueError):
    """The code is malformed, forged, for another call, expired or used; says which."""


@dataclass(frozen=True)
class Confirmation:
    """A code to echo, and when it stops being accepted (RFC 3339, UTC)."""

    code: str
    expires_at: str


class Confirmations:
    """Issues and checks confirmation codes; one per coordinator process."""

    def __init__(self, window_seconds: int = WINDOW_SECONDS, key: bytes | None = None) -> None:
        self.window_seconds = window_seconds
        self._key = key or secrets.token_bytes(32)
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def issue(
        self, action: str, project_id: str, caller: Identity, reason: str, now: float | None = None
    ) -> Confirmation:
        """A fresh code for ``caller`` to confirm ``action`` on ``project_id`` for ``reason``."""
        nonce = secrets.token_hex(8)
        expires = int(now if now is not None else time.time()) + self.window_seconds
        mac = self._mac(action, project_id, caller, reason, nonce, expires)
        return Confirmation(f"{nonce}-{expires}-{mac}", _rfc3339(expires))

    def check(
        self,
        code: str,
        action: str,
        project_id: str,
        caller: Identity,
        reason: str,
        now: float | None = None,
    ) -> None:
        """Accept ``code`` once, or raise ConfirmationRefused saying why."""
        now = now if now is not None else time.time()
        nonce, _, rest = code.partition("-")
        expires_text, _, mac = rest.partition("-")
        if not (nonce and expires_text.isdigit() and mac):
            raise ConfirmationRefused("the confirmation code is malformed; ask for a new one")
        expires = int(expires_text)
        expected = self._mac(action, project_id, caller, reason, nonce, expires)
        if not hmac.compare_digest(mac, expected):
            raise ConfirmationRefused(
                "the confirmation code was not issued to this caller for this project and "
                "reason; ask for a new one"
            )
        if now > expires:
            raise ConfirmationRefused(
                f"the confirmation code expired at {_rfc3339(expires)}; ask for a new one"
            )
        with self._lock:
            self._used = {n: e for n, e in self._used.items() if e >= now}
            if nonce in self._used:
                raise ConfirmationRefused("the confirmation code has been used already")
            self._used[nonce] = expires

    def _mac(
        self,
        action: str,
        project_id: str,
        caller: Identity,
        reason: str,
        nonce: str,
        expires: int,
    ) -> str:
        message = "\n".join(
            (
                action,
                project_id,
                caller.role.value,
                caller.organisation,
                caller.certificate_sha256,
                hashlib.sha256(reason.encode()).hexdigest(),
                nonce,
                str(expires),
            )
        )
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()[:40]


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
