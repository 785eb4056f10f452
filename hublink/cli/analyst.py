"""``hublink analyst``: protected aggregate counts, as tables, CSV, JSON, charts or HTML."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from hublink.cli.errors import friendly
from hublink.cli.options import CLIENT_CONFIG
from hublink.clients import AnalystClient, open_channel
from hublink.config import ClientConfig, load


@click.group("analyst")
def group() -> None:
    """Aggregate counts over linked data, with small numbers suppressed."""


@group.command("overlap")
@CLIENT_CONFIG
@click.option("--project", required=True, help="Project id.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--release",
    default="",
    help="Count as of the release of this run id (see `hublink analyst series`); "
    "default: the latest run.",
)
@friendly
def analyst_overlap(config_path: Path, project: str, fmt: str, release: str) -> None:
    """How many children appear in each combination of the project's datasets."""
    from hublink.reports.overlap import overlap_json, print_overlap

    config = load(config_path, ClientConfig)
    overlap = AnalystClient(open_channel(config), timeout=config.timeout_seconds).overlap(
        project, release=release
    )
    if fmt == "json":
        click.echo(json.dumps(overlap_json(overlap), indent=2))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["datasets", "count", "suppressed"])
        for cell in overlap.cells:
            writer.writerow(
                ["+".join(cell.datasets), "" if cell.value is None else cell.value, cell.suppressed]
            )
    else:
        print_overlap(overlap)


@group.command("counts")
@CLIENT_CONFIG
@click.option("--project", required=True, help="Project id.")
@click.option(
    "--by",
    "by",
    multiple=True,
    help="Break down by this dimension (repeatable, at most 3): 'datasets' for the "
    "combination of services, or a released attribute such as area or age_band. "
    "Default: datasets (an overlap table).",
)
@click.option(
    "--in", "datasets_in", multiple=True, help="Count only children known to this dataset."
)
@click.option("--not-in", "datasets_out", multiple=True, help="...and not known to this dataset.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the table as a PNG chart (UpSet for overlaps, bars for breakdowns).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write an HTML report with the chart and the table.",
)
@click.option(
    "--release",
    default="",
    help="Count as of the release of this run id (see `hublink analyst series`); "
    "default: the latest run.",
)
@friendly
def analyst_counts(
    config_path: Path,
    project: str,
    by: tuple[str, ...],
    datasets_in: tuple[str, ...],
    datasets_out: tuple[str, ...],
    fmt: str,
    chart: Path | None,
    html_path: Path | None,
    release: str,
) -> None:
    """Protected counts: overlaps, 'in A but not in B', breakdowns by released attributes.

    Every cell passes the project's disclosure control at the coordinator
    (small counts withheld as *, others perturbed and rounded) and the query
    is audited.
    """
    from hublink.reports.counts import counts_json, counts_rows, pivot_table

    config = load(config_path, ClientConfig)
    client = AnalystClient(open_channel(config), timeout=config.timeout_seconds)
    dimensions = by if by or datasets_in or datasets_out else ("datasets",)
    if (chart or html_path) and not dimensions:
        raise click.UsageError("--chart and --html need at least one --by dimension")
    counts = client.counts(project, dimensions, datasets_in, datasets_out, release=release)
    if fmt == "json":
        click.echo(json.dumps(counts_json(counts), indent=2))
    elif fmt == "csv":
        csv.writer(sys.stdout).writerows(counts_rows(counts))
    else:
        from rich.console import Console

        Console().print(pivot_table(counts))
    if chart or html_path:
        from hublink.reports.charts import (
            figure_for,
            html_report,
            png_bytes,
            write_atomically,
            write_chart,
        )

        png = write_chart(chart, counts) if chart else png_bytes(figure_for(counts, {}))
        if html_path:
            page = html_report([(counts.query, counts, png)])
            write_atomically(html_path, page.encode())


@group.command("series")
@CLIENT_CONFIG
@click.option("--project", required=True, help="Project id.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the series as a PNG chart (lines per combination, new and left as bars).",
)
@friendly
def analyst_series(config_path: Path, project: str, fmt: str, chart: Path | None) -> None:
    """Counts over time: children known to each combination of services at every release
    (each completed run), with those new since the last release and those who left."""
    config = load(config_path, ClientConfig)
    series = AnalystClient(open_channel(config), timeout=config.timeout_seconds).time_series(
        project
    )
    labels = [c.label for c in series.releases[0].cells] if series.releases else []
    rows = [
        [r.date[:19], r.run_id, *("*" if r.value(lab) is None else r.value(lab) for lab in labels)]
        for r in series.releases
    ]
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "project_id": series.project_id,
                    "rule": series.rule,
                    "releases": [
                        {
                            "date": r.date,
                            "run_id": r.run_id,
                            "counts": {c.label: c.value for c in r.cells},
                        }
                        for r in series.releases
                    ],
                },
                indent=2,
            )
        )
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["date", "run_id", *labels])
        writer.writerows(rows)
    else:
        click.echo("  ".join(["date".ljust(19), "run".ljust(12), *labels]))
        for row in rows:
            click.echo(
                "  ".join([str(row[0]).ljust(19), str(row[1])[:12].ljust(12)])
                + "  "
                + "  ".join(str(v).rjust(len(lab)) for v, lab in zip(row[2:], labels, strict=True))
            )
        click.echo(f"* withheld. {series.rule}")
    if chart:
        from hublink.reports.series_chart import write_series_chart

        write_series_chart(chart, series)
