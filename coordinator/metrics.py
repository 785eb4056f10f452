"""The coordinator's Prometheus metrics: counted at the rpc edge, read from the store.

gRPC calls are measured under the names every gRPC dashboard and alert
already knows (those of go-grpc-prometheus and py-grpc-prometheus):
``grpc_server_started_total``, ``grpc_server_handled_total`` (with
``grpc_code``) and the latency histogram ``grpc_server_handling_seconds``,
labelled ``grpc_type``, ``grpc_service`` and ``grpc_method``. Uploads and
records are counted as requests pass the rpc layer
(coordinator.rpc.operability); match runs and their durations are read
from the ``runs`` table at scrape time, so they are right across restarts and
the core never learns that Prometheus exists. Every coordinator gets its own
registry, so several can run in one process (as tests do). No label ever
holds a project member's data: labels are method names, status codes, run
states and project ids.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from coordinator.core.store import Store

#: Upper bounds (seconds) of the run-duration histogram's buckets.
RUN_SECONDS_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))

#: Upper bounds (seconds) of gRPC handling-time buckets: from a status read (milliseconds)
#: to a long key stream or a chunk on a slow disk (a minute or two).
GRPC_SECONDS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, float("inf")
)  # fmt: skip

#: The labels of every gRPC server metric (grpc_type: unary, server_stream, …).
GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")


class CoordinatorMetrics:
    """One coordinator's metrics and the registry that exposes them."""

    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.started = Counter(
            "grpc_server_started",
            "gRPC calls started on the server.",
            GRPC_LABELS,
            registry=self.registry,
        )
        self.handled = Counter(
            "grpc_server_handled",
            "gRPC calls completed on the server, whatever their status code.",
            (*GRPC_LABELS, "grpc_code"),
            registry=self.registry,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "Time from a call's start to its last response (streams: the whole stream).",
            GRPC_LABELS,
            buckets=GRPC_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.uploads = Counter(
            "hublink_uploads",
            "Uploads begun and committed through this process, by stage.",
            ("stage",),
            registry=self.registry,
        )
        self.certificates_refused = Counter(
            "hublink_certificates_refused",
            "Client certificates refused after the TLS handshake (revoked, wrong CA, no "
            "identity), by reason. Handshake failures never reach hublink: see gRPC's log.",
            ("reason",),
            registry=self.registry,
        )
        self.records = Counter(
            "hublink_records_received",
            "Encoded records stored from upload chunks (repeated chunks are not counted).",
            registry=self.registry,
        )
        self.runs_started = Counter(
            "hublink_match_runs_started",
            "Matching runs started through this process.",
            registry=self.registry,
        )
        if store is not None:
            self.registry.register(RunCollector(store))

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class RunCollector(Collector):
    """Match runs by state and their durations, read from the store when scraped."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        # Declared without reading the store, so registering never touches the database.
        return [
            GaugeMetricFamily(
                "hublink_match_runs", "Matching runs held, by state.", labels=["state"]
            ),
            HistogramMetricFamily(
                "hublink_match_run_seconds", "Duration of completed matching runs."
            ),
        ]

    def collect(self) -> Iterator[Metric]:
        by_state = GaugeMetricFamily(
            "hublink_match_runs", "Matching runs held, by state.", labels=["state"]
        )
        for row in self._store.query("SELECT state, COUNT(*) AS n FROM runs GROUP BY state"):
            by_state.add_metric([str(row["state"])], float(row["n"]))
        yield by_state
        seconds = [
            float(row["seconds"])
            for row in self._store.query("SELECT seconds FROM runs WHERE state = 'completed'")
        ]
        buckets = [
            (_bound(limit), float(sum(1 for s in seconds if s <= limit)))
            for limit in RUN_SECONDS_BUCKETS
        ]
        yield HistogramMetricFamily(
            "hublink_match_run_seconds",
            "Duration of completed matching runs.",
            buckets=buckets,
            sum_value=sum(seconds),
        )


def _bound(limit: float) -> str:
    return "+Inf" if limit == float("inf") else repr(limit)
