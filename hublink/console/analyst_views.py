"""The analyst's pages: the overlap as an UpSet chart with its table, cross-tabs, downloads.

Each page asks the coordinator for a protected count table as the analyst
(every query is audited there) and shows what came back, nothing more:
withheld cells are marked "withheld" and never given a value, and a sentence
under each table says why. The downloads re-ask the same question, and the
coordinator's protection gives the same answer each time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hublink.clients import Counts
from hublink.console import svg, tables
from hublink.console.pages import Context, need
from hublink.identity import Role

MAX_DIMENSIONS = 3


def withheld_sentence(counts: Counts) -> str:
    """Why some cells show no value, in one sentence (empty if none was withheld)."""
    withheld = [c for c in counts.cells if c.suppressed]
    if not withheld:
        return ""
    secondary = any(c.reason == "secondary" for c in withheld)
    return (
        f"{len(withheld)} cell(s) marked withheld count too few children to release safely"
        + (", or would let a withheld cell be worked out from the totals," if secondary else "")
        + ", so the coordinator did not release them."
    )


def title(counts: Counts, names: Mapping[str, str]) -> str:
    """The table's question in words: "Children known to A but not to B, by area and age band"."""
    by = [
        "combination of services" if d == "datasets" else tables.heading(d).lower()
        for d in counts.dimensions
    ]
    scope = counts.query.split(" by ")[0].removeprefix("entities").strip()
    scope = scope.replace("but not in", "but not to").replace("in ", "known to ", 1)
    for slug, name in names.items():
        scope = scope.replace(slug, name)
    return (
        "Children"
        + (f" {scope}" if scope else "")
        + (f"{',' if scope else ''} by {' and '.join(by)}" if by else "")
    )


def _query(context: Context) -> tuple[list[str], list[str], list[str]]:
    params = context.request.query_params
    by = [v.strip() for v in params.getlist("by") if v.strip()][:MAX_DIMENSIONS]
    datasets_in = [v.strip() for v in params.getlist("in") if v.strip()]
    datasets_out = [v.strip() for v in params.getlist("not_in") if v.strip()]
    return by, datasets_in, datasets_out


def _datasets(counts: Counts) -> list[str]:
    return sorted({d for c in counts.cells for d in c.datasets})


def overlap(request: Request) -> Response:
    context = need(request, Role.ANALYST)
    project = context.project()
    if not project:
        return context.render("choose_project.html")
    counts = context.profile.analyst().counts(project, ["datasets"])
    datasets = _datasets(counts)
    combos = [(c.datasets, c.value) for c in counts.inner]
    names = context.profile.names
    return context.render(
        "analyst_overlap.html",
        project=project,
        counts=counts,
        chart=svg.upset(combos, datasets, names),
        rows=[
            (tables.label("datasets", c.coordinate("datasets"), names), c)
            for c in sorted(
                counts.cells, key=lambda c: (bool(c.totalled), c.value is None, -(c.value or 0))
            )
        ],
        withheld=withheld_sentence(counts),
        suggested=context.settings.suggested,
        download="by=datasets",
    )


def _link(by: Sequence[str], datasets_in: Sequence[str], datasets_out: Sequence[str]) -> str:
    from urllib.parse import urlencode

    return urlencode(
        [("by", b) for b in by]
        + [("in", d) for d in datasets_in]
        + [("not_in", d) for d in datasets_out]
    )


def cross_tab(request: Request) -> Response:
    context = need(request, Role.ANALYST)
    project = context.project()
    if not project:
        return context.render("choose_project.html")
    by, datasets_in, datasets_out = _query(context)
    counts = None
    if by or datasets_in or datasets_out:
        counts = context.profile.analyst().counts(project, by, datasets_in, datasets_out)
    names = context.profile.names
    bars = None
    if counts is not None and len(counts.dimensions) == 1:
        dimension = counts.dimensions[0]
        bars = svg.bars(
            [
                svg.Bar(tables.label(dimension, c.coordinate(dimension), names), c.value)
                for c in counts.inner
            ],
            title=f"Children by {tables.heading(dimension).lower()}",
            key="bars",
        )
    return context.render(
        "analyst_counts.html",
        project=project,
        counts=counts,
        grid=tables.grid(counts) if counts is not None else None,
        bars=bars,
        by=by + [""] * (2 - len(by)) if len(by) < 2 else by,
        datasets_in=datasets_in,
        datasets_out=datasets_out,
        label=tables.label,
        title=title(counts, names) if counts is not None else "",
        heading=tables.heading,
        withheld=withheld_sentence(counts) if counts is not None else "",
        download=_link(by, datasets_in, datasets_out),
        suggested=context.settings.suggested,
    )


def _download(request: Request, kind: str) -> Response:
    context = need(request, Role.ANALYST)
    project = context.project()
    by, datasets_in, datasets_out = _query(context)
    counts = context.profile.analyst().counts(
        project, by or ["datasets"], datasets_in, datasets_out
    )
    stem = "counts-" + "-".join([project, *(by or ["datasets"])])
    if kind == "csv":
        return Response(
            tables.csv_bytes(counts),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{stem}.csv"'},
        )
    return Response(
        tables.xlsx_bytes(counts),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"content-disposition": f'attachment; filename="{stem}.xlsx"'},
    )


def download_csv(request: Request) -> Response:
    return _download(request, "csv")


def download_xlsx(request: Request) -> Response:
    return _download(request, "xlsx")


ROUTES = [
    Route("/analyst", overlap),
    Route("/analyst/counts", cross_tab),
    Route("/analyst/download.csv", download_csv),
    Route("/analyst/download.xlsx", download_xlsx),
]
