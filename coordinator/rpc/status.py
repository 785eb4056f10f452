"""One table from the core's exceptions to gRPC status codes, and the caller's identity.

Servicer methods are wrapped by ``translating_errors``: a core refusal leaves
as its status code with the core's sentence; anything unexpected leaves as
INTERNAL with a reference to the coordinator's log and no record data.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from coordinator.core import errors
from hublink.identity import Identity
from hublink.logformat import current_request_id
from hublink.tls import peer_identity

log = logging.getLogger("hublink.coordinator.rpc")

STATUS_OF: tuple[tuple[type[errors.CoordinatorError], grpc.StatusCode], ...] = (
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.NotAllowed, grpc.StatusCode.PERMISSION_DENIED),
    (errors.InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.SchemaMismatch, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.NotReady, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.Cancelled, grpc.StatusCode.CANCELLED),
)

F = TypeVar("F", bound=Callable[..., Any])


def status_for(error: errors.CoordinatorError) -> grpc.StatusCode:
    """The gRPC status code a core exception leaves as."""
    for kind, code in STATUS_OF:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def caller(context: grpc.ServicerContext) -> Identity:
    """The verified identity of the caller, from its client certificate, or abort."""
    identity = peer_identity(context)
    if identity is None:
        context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "the client certificate carries no hublink identity (urn:hublink:<role>:<org>)",
        )
    assert identity is not None
    return identity


def _abort(context: grpc.ServicerContext, exc: Exception, method: str) -> None:
    if isinstance(exc, errors.CoordinatorError):
        context.abort(status_for(exc), str(exc))
    if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
        # SQLite rolled the transaction back: nothing of the request was kept, and the node
        # may resume once space is freed (RESOURCE_EXHAUSTED is one it retries).
        log.error("%s refused: the coordinator's disk is full (%s)", method, exc)
        context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "the coordinator's disk is full; nothing of this request was kept; "
            "try again once its operator has freed space",
        )
    reference = current_request_id() or uuid.uuid4().hex[:12]  # the call's log lines share it
    log.exception("internal error in %s (reference %s)", method, reference)
    context.abort(
        grpc.StatusCode.INTERNAL,
        f"internal error in the coordinator; its log has the details under reference {reference}",
    )


def translating_errors(method: F) -> F:
    """Turn core exceptions raised by a unary servicer method into gRPC statuses."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except grpc.RpcError:
            raise
        except Exception as exc:
            if _is_abort(exc):
                raise
            _abort(context, exc, method.__qualname__)

    return wrapper  # type: ignore[return-value]


def translating_stream_errors(method: F) -> F:
    """The same for server-streaming methods, whose errors surface while iterating."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from method(self, request, context)
        except grpc.RpcError:
            raise
        except Exception as exc:
            if _is_abort(exc):
                raise
            _abort(context, exc, method.__qualname__)

    return wrapper  # type: ignore[return-value]


def _is_abort(exc: Exception) -> bool:
    # grpc raises a bare Exception from context.abort(); let it through untouched.
    return type(exc) is Exception and not isinstance(exc, errors.CoordinatorError)
