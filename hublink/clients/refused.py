"""The one error every client raises when the coordinator refuses a call.

The node's uploader, the secret exchange and the admin, analyst and auditor
clients all turn a failed gRPC call into ``RequestRefused``: a sentence
saying what was being done and what the coordinator said, plus its status
code, so a caller can tell a refusal from a moment's unavailability.
"""

from __future__ import annotations

import grpc

from hublink.errors import HublinkError

TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
"""Status codes worth trying again: the call may succeed a moment later unchanged."""


class RequestRefused(HublinkError, RuntimeError):
    """The coordinator refused a call; the message is its sentence and status."""

    def __init__(self, what: str, error: grpc.RpcError) -> None:
        self.code = error.code()
        super().__init__(f"{what}: the coordinator said {self.code.name}: {error.details()}")

    @property
    def transient(self) -> bool:
        """True if trying again later may succeed (an upload can then be resumed)."""
        return self.code in TRANSIENT
