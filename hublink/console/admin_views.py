"""The linkage unit's pages: project status, starting and following a run, the quality report.

Status comes from GetProjectState (organisations, uploads and their record
counts, the latest run). Starting a run is a POST with the session's CSRF
token; its page refreshes itself every few seconds with a meta refresh while
the run is queued or running, so it needs no script. The quality report is
the coordinator's aggregate report, drawn as SVG, with its caveats and a
"no data yet" state when there is no completed run to report on.
"""

from __future__ import annotations

import re

import grpc
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hublink.clients import RequestRefused
from hublink.console import svg
from hublink.console.pages import checked_form, need
from hublink.identity import Role

RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
REFRESH_SECONDS = 2


def status(request: Request) -> Response:
    context = need(request, Role.ADMIN)
    project = context.project()
    if not project:
        return context.render("choose_project.html")
    client = context.profile.admin()
    state = client.project_state(project)
    run = client.run_status(project, state.latest_run_id) if state.latest_run_id else None
    return context.render(
        "admin_status.html",
        project=project,
        state=state,
        datasets=[(context.profile.name(d.organisation), d) for d in state.datasets],
        uploaded=sum(1 for d in state.datasets if d.upload_id),
        run=run,
    )


async def start_run(request: Request) -> Response:
    context = need(request, Role.ADMIN)
    form = await checked_form(context)
    project = str(form.get("project") or context.project())
    threshold_text = str(form.get("threshold") or "").strip()
    try:
        threshold = float(threshold_text) if threshold_text else 0.0
        if not 0.0 <= threshold <= 1.0:
            raise ValueError
    except ValueError:
        return context.render(
            "message.html",
            400,
            title="There is a problem",
            text="Enter a threshold between 0 and 1, or leave it empty to use the project's.",
            error=True,
        )
    report = context.profile.admin().start_run(project, threshold)
    return RedirectResponse(f"/admin/runs/{report.run_id}?project={project}", status_code=303)


def run_page(request: Request) -> Response:
    context = need(request, Role.ADMIN)
    run_id = str(request.path_params["run_id"])
    if not RUN_ID.fullmatch(run_id):
        return context.render(
            "message.html", 404, title="No such run", text="That is not a run id."
        )
    project = context.project()
    report = context.profile.admin().run_status(project, run_id)
    going = report.state in ("queued", "running")
    percent = int(100 * report.done / report.total) if report.total else 0
    refresh = going and request.query_params.get("refresh") != "0"
    response = context.render(
        "admin_run.html",
        project=project,
        run=report,
        going=going,
        percent=percent,
        refresh=REFRESH_SECONDS if refresh else 0,
    )
    if refresh:
        # A Refresh header rather than <meta refresh>: the same reload without script, and the
        # page offers a link to stop it (WCAG 2.2.1, timing adjustable).
        response.headers["refresh"] = str(REFRESH_SECONDS)
    return response


def quality(request: Request) -> Response:
    context = need(request, Role.ADMIN)
    project = context.project()
    if not project:
        return context.render("choose_project.html")
    try:
        report = context.profile.admin().quality_report(project)
    except RequestRefused as exc:
        if exc.code not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
            raise
        return context.render("admin_quality.html", project=project, report=None, reason=str(exc))
    q = report.quality
    bins = [(b.lower, None if b.suppressed else int(b.count)) for b in report.bins]
    has_data = bool(report.bins) and any(v for _, v in bins)
    return context.render(
        "admin_quality.html",
        project=project,
        report=report,
        q=q,
        has_data=has_data,
        histogram=svg.histogram(
            bins,
            report.bin_width or 0.01,
            report.threshold_used,
            q.threshold_estimated if q.estimated else None,
        )
        if has_data
        else "",
        curve=svg.curves(
            [(p.threshold, p.precision, p.recall) for p in report.curve], report.threshold_used
        )
        if len(report.curve) > 1
        else "",
        datasets=[(context.profile.name(d.organisation), d) for d in report.datasets],
        withheld_bins=sum(1 for _, v in bins if v is None),
    )


ROUTES = [
    Route("/admin", status),
    Route("/admin/run", start_run, methods=["POST"]),
    Route("/admin/runs/{run_id}", run_page),
    Route("/admin/quality", quality),
]
