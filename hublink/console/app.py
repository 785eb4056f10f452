"""The console as one Starlette application: the first page, the role pages, the locks.

``create_app`` wires the home page (token exchange, choosing an identity and
a project), each role's routes, the stylesheet, and error pages; the
security middleware wraps all of it. ``hublink.console.server`` runs it.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hublink.clients import RequestRefused
from hublink.console import admin_views, analyst_views, audit_views, series_views
from hublink.console.pages import Refused, checked_form, current, need, render, sessions_of
from hublink.console.profiles import Settings
from hublink.console.security import SecurityHeaders, Sessions, allowed_hosts, cookie_header
from hublink.identity import Role

HOME = {Role.AUDITOR: "/audit", Role.ANALYST: "/analyst", Role.ADMIN: "/admin"}
PROJECT_ID_MAX = 63


def home(request: Request) -> Response:
    """Exchange the launch token for a session cookie, then offer the identities."""
    offered = request.query_params.get("token")
    if offered is not None:
        sessions = sessions_of(request)
        if not sessions.token_matches(offered):
            raise Refused(
                403,
                "That access key is not this console's",
                "Open the address the console printed when it started, exactly as printed.",
            )
        session = sessions.start()
        response = RedirectResponse("/", status_code=303)
        response.headers["set-cookie"] = cookie_header(session)
        return response
    context = need(request)
    if len(context.settings.profiles) == 1 and not request.query_params.get("choose"):
        return RedirectResponse(HOME[context.profile.role], 303)
    return context.render(
        "home.html", profiles=list(enumerate(context.settings.profiles)), home=HOME
    )


async def choose_identity(request: Request) -> Response:
    context = need(request)
    form = await checked_form(context)
    try:
        chosen = int(str(form.get("profile", "")))
        profile = context.settings.profiles[chosen]
    except (ValueError, IndexError):
        return context.render(
            "home.html",
            400,
            profiles=list(enumerate(context.settings.profiles)),
            home=HOME,
            errors=[("profile-0", "Choose who to act as")],
        )
    context.session.profile = chosen
    return RedirectResponse(HOME[profile.role], status_code=303)


async def choose_project(request: Request) -> Response:
    context = need(request)
    form = await checked_form(context)
    project = str(form.get("project", "")).strip()
    if not project or len(project) > PROJECT_ID_MAX:
        return context.render(
            "choose_project.html", 400, errors=[("project", "Enter the project's id")]
        )
    context.session.project = project
    return RedirectResponse(HOME[context.profile.role], status_code=303)


async def refused_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return render(
        request,
        "message.html",
        exc.status,
        context=current(request),
        title=exc.title,
        text=exc.text,
        error=True,
    )


async def coordinator_refused(request: Request, exc: Exception) -> Response:
    status = 502 if getattr(exc, "transient", False) else 400
    return render(
        request,
        "message.html",
        status,
        context=current(request),
        title="The coordinator did not answer as asked",
        text=str(exc),
        error=True,
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return render(
        request,
        "message.html",
        exc.status_code,
        context=current(request),
        title="Page not found" if exc.status_code == 404 else "There is a problem",
        text="There is no page at this address." if exc.status_code == 404 else str(exc.detail),
        error=True,
    )


def create_app(settings: Settings, sessions: Sessions, host: str, port: int) -> Starlette:
    """The console for ``settings``, answering only on ``host:port`` (its Host header)."""
    routes = [
        Route("/", home),
        Route("/identity", choose_identity, methods=["POST"]),
        Route("/project", choose_project, methods=["POST"]),
        *audit_views.ROUTES,
        *analyst_views.ROUTES,
        *series_views.ROUTES,
        *admin_views.ROUTES,
        Mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders, allowed_hosts=allowed_hosts(host, port))],
        exception_handlers={
            Refused: refused_page,
            RequestRefused: coordinator_refused,
            HTTPException: http_error,
        },
    )
    app.state.settings = settings
    app.state.sessions = sessions
    return app
