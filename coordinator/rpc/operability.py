"""What operators need from the gRPC server: health, reflection and counted calls.

Standard gRPC health checking (grpc.health.v1) and server reflection let
stock tools (grpc_health_probe, grpcurl) talk to the coordinator with a
client certificate. Probes that cannot present one use the plain-HTTP
operations port instead (coordinator.ops). ``MetricsInterceptor`` counts
every call by method and status, and the upload and run calls by what they
did, without looking at any record's content beyond how many there were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from coordinator.metrics import CoordinatorMetrics


def add_health_and_reflection(
    server: grpc.Server, services: Sequence[str], servicer: health.HealthServicer | None = None
) -> health.HealthServicer:
    """Register health checking (every service SERVING) and reflection on ``server``."""
    servicer = servicer or health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", *services):
        servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*services, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return servicer


def is_serving(servicer: health.HealthServicer) -> bool:
    """Whether the server as a whole reports SERVING (False once shutdown has begun)."""
    answer = servicer.Check(health_pb2.HealthCheckRequest(service=""), _NoContext())
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


class _NoContext:
    """Stands in for a servicer context when asking the health servicer in-process."""

    def set_code(self, code: grpc.StatusCode) -> None:  # pragma: no cover - "" is always set
        pass

    def set_details(self, details: str) -> None:  # pragma: no cover
        pass


class MetricsInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Counts each call by method and final status; outermost, so it sees refusals too."""

    def __init__(self, metrics: CoordinatorMetrics) -> None:
        self.metrics = metrics

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        method = str(details.method).rsplit("/", 1)[-1]
        if handler is None:
            return None
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # reflection's bidirectional stream: not counted

    def _unary(
        self, behaviour: Callable[[Any, Any], Any], method: str
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def counted(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                response = behaviour(request, context)
            except BaseException:
                self._count(method, context, failed=True)
                raise
            if self._count(method, context, failed=False):
                self._what_it_did(method, request, response)
            return response

        return counted

    def _stream(
        self, behaviour: Callable[[Any, Any], Iterator[Any]], method: str
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def counted(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from behaviour(request, context)
            except BaseException:
                self._count(method, context, failed=True)
                raise
            self._count(method, context, failed=False)

        return counted

    def _count(self, method: str, context: grpc.ServicerContext, *, failed: bool) -> bool:
        """Count the call; True if it succeeded."""
        code = context.code()  # set by context.abort / set_code; None means untouched
        if code is None:
            code = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        self.metrics.calls.labels(method, name).inc()
        if name != "OK":
            self.metrics.refusals.labels(method, name).inc()
            return False
        return True

    def _what_it_did(self, method: str, request: Any, response: Any) -> None:
        if method == "BeginUpload" and not response.received_chunks:
            self.metrics.uploads.labels("begun").inc()
        elif method == "CommitUpload":
            self.metrics.uploads.labels("committed").inc()
        elif method == "PutChunk" and not response.duplicate:
            self.metrics.records.inc(len(request.records))
        elif method == "StartRun":
            self.metrics.runs_started.inc()
