"""An analyst's client: protected aggregate counts, never record-level data.

The tables come back as plain values (``Overlap``, ``Counts``) that the
reports in ``hublink.reports`` draw and print; a withheld cell is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from hublink.clients.refused import RequestRefused
from hublink.v1 import analyst_pb2, analyst_pb2_grpc


@dataclass(frozen=True)
class OverlapCell:
    datasets: tuple[str, ...]
    value: int | None

    @property
    def suppressed(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class Overlap:
    project_id: str
    run_id: str
    cells: tuple[OverlapCell, ...]
    rule: str


@dataclass(frozen=True)
class CountCell:
    """One released cell: where it sits in each dimension, and its value (None = withheld)."""

    datasets: tuple[str, ...]
    attributes: Mapping[str, str]
    totalled: tuple[str, ...]
    value: int | None
    reason: str = ""

    @property
    def suppressed(self) -> bool:
        return self.value is None

    def coordinate(self, dimension: str) -> str | None:
        """The cell's value in ``dimension`` ("a+b" for datasets); None where it is a total."""
        if dimension in self.totalled:
            return None
        if dimension == "datasets":
            return "+".join(self.datasets)
        return self.attributes.get(dimension)


@dataclass(frozen=True)
class Counts:
    """A protected count table as an analyst receives it."""

    project_id: str
    run_id: str
    dimensions: tuple[str, ...]
    cells: tuple[CountCell, ...]
    rule: str
    query: str

    @property
    def inner(self) -> tuple[CountCell, ...]:
        """The cells that are not totals."""
        return tuple(c for c in self.cells if not c.totalled)


class AnalystClient:
    """An analyst's calls: aggregate counts only."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = 60.0) -> None:
        self._stub = analyst_pb2_grpc.AnalystServiceStub(channel)
        self.timeout = timeout

    def overlap(self, project_id: str, *, release: str = "") -> Overlap:
        """The overlap table, of the latest run or as of the release of run ``release``."""
        try:
            table = self._stub.GetOverlap(
                analyst_pb2.GetOverlapRequest(project_id=project_id, release=release),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused(f"asking for the overlap of {project_id!r}", exc) from None
        return Overlap(
            table.project_id,
            table.run_id,
            tuple(
                OverlapCell(tuple(c.datasets), None if c.suppressed else int(c.value))
                for c in table.cells
            ),
            table.disclosure_rule,
        )

    def counts(
        self,
        project_id: str,
        by: Sequence[str] = (),
        datasets_in: Sequence[str] = (),
        datasets_out: Sequence[str] = (),
        *,
        release: str = "",
    ) -> Counts:
        """Any count table (overlap, "in A not B", breakdowns by released attributes), protected;
        as of the release of run ``release`` if given."""
        try:
            table = self._stub.GetCounts(
                analyst_pb2.GetCountsRequest(
                    project_id=project_id,
                    by=list(by),
                    datasets_in=list(datasets_in),
                    datasets_out=list(datasets_out),
                    release=release,
                ),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise RequestRefused(f"asking for counts of {project_id!r}", exc) from None
        return Counts(
            table.project_id,
            table.run_id,
            tuple(table.dimensions),
            tuple(
                CountCell(
                    tuple(c.datasets),
                    dict(sorted(c.attributes.items())),
                    tuple(c.totalled),
                    None if c.suppressed else int(c.value),
                    c.reason,
                )
                for c in table.cells
            ),
            table.disclosure_rule,
            table.query,
        )

    def time_series(self, project_id: str) -> TimeSeries:
        """Counts per combination of datasets, new and left, for every release, protected."""
        try:
            series = self._stub.GetTimeSeries(
                analyst_pb2.GetTimeSeriesRequest(project_id=project_id), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise RequestRefused(f"asking for the time series of {project_id!r}", exc) from None
        return TimeSeries(
            series.project_id,
            tuple(
                ReleaseCounts(
                    r.run_id,
                    r.date,
                    tuple(
                        SeriesCell(
                            c.label, tuple(c.datasets), None if c.suppressed else int(c.value)
                        )
                        for c in r.cells
                    ),
                )
                for r in series.releases
            ),
            series.disclosure_rule,
        )


@dataclass(frozen=True)
class SeriesCell:
    """A combination of datasets ("a+b"), or "new" / "left", and its count (None: withheld)."""

    label: str
    datasets: tuple[str, ...]
    value: int | None


@dataclass(frozen=True)
class ReleaseCounts:
    run_id: str
    date: str
    cells: tuple[SeriesCell, ...]

    def value(self, label: str) -> int | None:
        return next((c.value for c in self.cells if c.label == label), None)


@dataclass(frozen=True)
class TimeSeries:
    project_id: str
    releases: tuple[ReleaseCounts, ...]
    rule: str
