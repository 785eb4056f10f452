"""What operators need from the gRPC server: health, reflection and counted calls.

Standard gRPC health checking (grpc.health.v1) and server reflection let
stock tools (grpc_health_probe, grpcurl) talk to the coordinator with a
client certificate. Probes that cannot present one use the plain-HTTP
operations port instead (coordinator.ops). ``MetricsInterceptor`` counts
and times every call under the standard gRPC server metric names
(coordinator.metrics), and the upload and run calls by what they did,
without looking at any record's content beyond how many there were.

A small interceptor of our own rather than py-grpc-prometheus: that one
registers its metrics in the process-wide registry (tests run several
coordinators in one process), reads the status from the servicer context's
private state, and neither counts nor times server streams, where our key
and audit streams spend their time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from coordinator.metrics import CoordinatorMetrics
from hublink.logformat import request_scope


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


@dataclass(frozen=True)
class _Call:
    """The labels of one method's metrics."""

    kind: str  # grpc_type: "unary" or "server_stream"
    service: str  # e.g. "hublink.v1.UploadService"
    method: str  # e.g. "PutChunk"

    @property
    def labels(self) -> tuple[str, str, str]:
        return (self.kind, self.service, self.method)


class MetricsInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Counts and times each call by method and final status; outermost, so refusals count."""

    def __init__(self, metrics: CoordinatorMetrics) -> None:
        self.metrics = metrics

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        service, _, method = str(details.method).lstrip("/").rpartition("/")
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, _Call("unary", service, method)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, _Call("server_stream", service, method)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # reflection's bidirectional stream: not counted

    def _unary(
        self, behaviour: Callable[[Any, Any], Any], call: _Call
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def counted(request: Any, context: grpc.ServicerContext) -> Any:
            with request_scope():  # every log line of this call carries one request id
                began = self._start(call)
                try:
                    response = behaviour(request, context)
                except BaseException:
                    self._finish(call, context, began, failed=True)
                    raise
                if self._finish(call, context, began, failed=False):
                    self._what_it_did(call.method, request, response)
                return response

        return counted

    def _stream(
        self, behaviour: Callable[[Any, Any], Iterator[Any]], call: _Call
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def counted(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with request_scope():
                began = self._start(call)
                try:
                    yield from behaviour(request, context)
                except GeneratorExit:  # the client went away mid-stream
                    self._finish(call, context, began, failed=True, gone=True)
                    raise
                except BaseException:
                    self._finish(call, context, began, failed=True)
                    raise
                self._finish(call, context, began, failed=False)

        return counted

    def _start(self, call: _Call) -> float:
        self.metrics.started.labels(*call.labels).inc()
        return time.perf_counter()

    def _finish(
        self,
        call: _Call,
        context: grpc.ServicerContext,
        began: float,
        *,
        failed: bool,
        gone: bool = False,
    ) -> bool:
        """Count and time the call; True if it succeeded."""
        self.metrics.handling.labels(*call.labels).observe(time.perf_counter() - began)
        code = context.code()  # set by context.abort / set_code; None means untouched
        if code is None:
            if gone:
                code = grpc.StatusCode.CANCELLED
            else:
                code = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        self.metrics.handled.labels(*call.labels, name).inc()
        return name == "OK"

    def _what_it_did(self, method: str, request: Any, response: Any) -> None:
        if method == "BeginUpload" and not response.received_chunks:
            self.metrics.uploads.labels("begun").inc()
        elif method == "CommitUpload":
            self.metrics.uploads.labels("committed").inc()
        elif method == "PutChunk" and not response.duplicate:
            self.metrics.records.inc(len(request.records))
        elif method == "StartRun":
            self.metrics.runs_started.inc()
