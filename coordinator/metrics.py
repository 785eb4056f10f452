"""The coordinator's Prometheus metrics: counted at the rpc edge, read from the store.

Calls, refusals, uploads and records are counted as requests pass the rpc
layer (coordinator.rpc.operability); match runs and their durations are read
from the ``runs`` table at scrape time, so they are right across restarts and
the core never learns that Prometheus exists. Every coordinator gets its own
registry, so several can run in one process (as tests do). No label ever
holds a project member's data: labels are method names, status codes, run
states and project ids.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from coordinator.core.store import Store

#: Upper bounds (seconds) of the run-duration histogram's buckets.
RUN_SECONDS_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))


class CoordinatorMetrics:
    """One coordinator's metrics and the registry that exposes them."""

    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "hublink_rpc_calls",
            "gRPC calls answered, by method and status code.",
            ("method", "code"),
            registry=self.registry,
        )
        self.refusals = Counter(
            "hublink_rpc_refusals",
            "gRPC calls answered with an error status, by method and status code.",
            ("method", "code"),
            registry=self.registry,
        )
        self.uploads = Counter(
            "hublink_uploads",
            "Uploads begun and committed through this process, by stage.",
            ("stage",),
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
