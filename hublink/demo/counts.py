"""What the demo's analyst asks for and keeps: protected tables, charts and counts.json.

The analyst (organisation ``family-hubs-analytics``, which the demo project
lists under ``analysts``) asks three questions over mutual TLS, as a board
paper would: which services know which children (an overlap, drawn UpSet
style), how the children break down by local authority and age band, and how
many Flying Start children health visiting does not know, by area. Only
released values are written: ``counts.json`` holds every cell with its
dataset combination or attribute values, its ``value`` (null when withheld)
and ``suppressed``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from hublink.clients import AnalystClient, Counts
from hublink.reports.charts import html_report, write_atomically, write_chart
from hublink.reports.counts import counts_json, pivot_table

OVERLAP_PNG = "overlap.png"
BREAKDOWN_PNG = "breakdown.png"
REPORT_HTML = "report.html"


@dataclass(frozen=True)
class DemoCounts:
    overlap: Counts
    breakdown: Counts
    outreach: Counts


def fetch(client: AnalystClient, project_id: str, organisations: list[str]) -> DemoCounts:
    """Ask the coordinator the demo's three questions."""
    outreach_in, outreach_out = organisations[1:2], organisations[:1]
    return DemoCounts(
        overlap=client.counts(project_id, ["datasets"]),
        breakdown=client.counts(project_id, ["area", "age_band"]),
        outreach=client.counts(
            project_id, ["area"], datasets_in=outreach_in, datasets_out=outreach_out
        ),
    )


def write(
    out_dir: Path, overlap_cells: Mapping[str, Any], counts: DemoCounts, names: Mapping[str, str]
) -> dict[str, Any]:
    """Write counts.json, the two charts and the HTML report; returns counts.json's content."""
    overlap_png = write_chart(
        out_dir / OVERLAP_PNG, counts.overlap, names, "Children known to exactly these services"
    )
    breakdown_png = write_chart(
        out_dir / BREAKDOWN_PNG,
        counts.breakdown,
        names,
        "Children known to any service, by local authority and age band",
    )
    content = {
        **overlap_cells,
        "tables": {
            "overlap": counts_json(counts.overlap),
            "area_by_age_band": counts_json(counts.breakdown),
            "outreach_by_area": counts_json(counts.outreach),
        },
    }
    write_atomically(out_dir / "counts.json", (json.dumps(content, indent=2) + "\n").encode())
    page = html_report(
        [
            ("Children known to exactly these services", counts.overlap, overlap_png),
            ("Children by local authority and age band", counts.breakdown, breakdown_png),
        ],
        names,
    )
    write_atomically(out_dir / REPORT_HTML, page.encode())
    return content


def print_counts(console: Console, out_dir: Path, names: Mapping[str, str]) -> None:
    """The breakdown by area and age band as a table, and where the charts are."""
    tables = json.loads((out_dir / "counts.json").read_text())["tables"]
    breakdown = _counts(tables["area_by_age_band"])
    console.print(pivot_table(breakdown, names))
    console.print(
        f"Charts for a board paper: {out_dir / OVERLAP_PNG} (overlap, UpSet style), "
        f"{out_dir / BREAKDOWN_PNG} (area and age band); both with the tables in "
        f"{out_dir / REPORT_HTML}"
    )


def _counts(data: Mapping[str, Any]) -> Counts:
    from hublink.clients import CountCell

    return Counts(
        data["project_id"],
        data["run_id"],
        tuple(data["dimensions"]),
        tuple(
            CountCell(
                tuple(c["datasets"]),
                dict(c["attributes"]),
                tuple(c["totalled"]),
                c["value"],
                c.get("reason", ""),
            )
            for c in data["cells"]
        ),
        data["disclosure_rule"],
        data["query"],
    )
