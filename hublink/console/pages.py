"""What every page handler shares: the session check, the acting profile, forms and rendering.

A handler asks ``need(request, role)`` for its context: that refuses a
browser without a session (no token exchanged) and a profile of another
role, so no page can be reached by typing its address. ``checked_form``
reads a POST and refuses it unless its CSRF token is this session's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from hublink.audit.words import action_label, format_time
from hublink.console.profiles import ROLE_WORDS, Profile, Settings
from hublink.console.security import COOKIE, CSRF_FIELD, Session, Sessions
from hublink.identity import Role

TEMPLATES = Environment(
    loader=PackageLoader("hublink.console", "templates"),
    autoescape=select_autoescape(["html", "svg"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["when"] = format_time
TEMPLATES.filters["action"] = action_label
TEMPLATES.filters["thousands"] = lambda n: f"{n:,}" if isinstance(n, int) else n

MAX_UPLOAD_FILES = 4
MAX_FIELDS = 40


class Refused(Exception):
    """A request the console will not serve; rendered as a page with this status and text."""

    def __init__(self, status: int, title: str, text: str) -> None:
        super().__init__(text)
        self.status, self.title, self.text = status, title, text


@dataclass
class Context:
    """The request's session, acting profile and launch settings."""

    request: Request
    sessions: Sessions
    session: Session
    settings: Settings

    @property
    def profile(self) -> Profile:
        return self.settings.profiles[self.session.profile]

    @property
    def csrf(self) -> str:
        return self.sessions.csrf_token(self.session)

    def project(self) -> str:
        """The project this page is about: ?project=, else the session's, else the first given."""
        chosen = self.request.query_params.get("project", "").strip()
        if chosen:
            self.session.project = chosen
        return self.session.project or (self.settings.projects[0] if self.settings.projects else "")

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return render(self.request, template, status, context=self, **values)


def render(
    request: Request,
    template: str,
    status: int = 200,
    *,
    context: Context | None = None,
    **values: Any,
) -> HTMLResponse:
    """A template as a page; every page gets the acting profile and the CSRF token."""
    page = TEMPLATES.get_template(template).render(
        ctx=context,
        profile=context.profile if context else None,
        csrf_field=CSRF_FIELD,
        csrf=context.csrf if context else "",
        role_words=ROLE_WORDS,
        roles=Role,
        path=request.url.path,
        **values,
    )
    return HTMLResponse(page, status_code=status)


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def current(request: Request) -> Context | None:
    """The request's context if its cookie names a live session."""
    sessions = sessions_of(request)
    session = sessions.get(request.cookies.get(COOKIE))
    return None if session is None else Context(request, sessions, session, settings_of(request))


def need(request: Request, role: Role | None = None) -> Context:
    """The context of a request with a session, acting as ``role`` if one is named."""
    context = current(request)
    if context is None:
        raise Refused(
            403,
            "Open the console from the address it printed",
            "This console needs the access key in the address it printed when it started "
            "(it ends ?token=…). Open that address again in this browser.",
        )
    if role is not None and context.profile.role is not role:
        raise Refused(
            403,
            "Not available to this identity",
            f"This page is for the {ROLE_WORDS[role].lower()} role; you are acting as "
            f"{context.profile.label}.",
        )
    return context


async def checked_form(context: Context) -> FormData:
    """The POSTed form, refused unless it carries this session's CSRF token."""
    form = await context.request.form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_FIELDS)
    offered = form.get(CSRF_FIELD)
    if not isinstance(offered, str) or not context.sessions.csrf_ok(context.session, offered):
        raise Refused(
            403,
            "The form could not be accepted",
            "The form was missing its security token or it did not match this session. "
            "Go back, reload the page and send it again.",
        )
    return form


def template_dir() -> Path:
    return Path(__file__).with_name("templates")


def names_of(profile: Profile) -> Mapping[str, str]:
    return profile.names
