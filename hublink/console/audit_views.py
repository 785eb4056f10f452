"""The IG officer's pages: the trail, one entry, verify, keep and compare checkpoints, consent,
refusals and a printable period summary.

Every page reads the log over gRPC as the auditor (only its projects' entries
come back) and shows it in plain English, times with their date and zone,
organisations by display name.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hublink.audit.checkpoint import CheckpointError, Verifier
from hublink.audit.log import AuditFileError, LogEntry
from hublink.audit.verify import CheckpointItem
from hublink.audit.words import ACTION_LABELS, time_filter
from hublink.clients import Filters
from hublink.console import audit_checks
from hublink.console.audit_digest import (
    consent_summaries,
    detail_rows,
    is_revocation,
    outcome,
    period_summary,
    refusals,
)
from hublink.console.pages import Context, checked_form, need
from hublink.identity import Role

MAX_FILE = 64 * 1024 * 1024
FILTER_FIELDS = ("project", "organisation", "action", "since", "until")


def _filters(context: Context) -> tuple[Filters, dict[str, str], list[tuple[str, str]]]:
    """The trail's filters from the query string, and errors naming any field that is wrong."""
    query = context.request.query_params
    given = {name: query.get(name, "").strip() for name in FILTER_FIELDS}
    errors: list[tuple[str, str]] = []
    times = {}
    for name in ("since", "until"):
        try:
            times[name] = time_filter(given[name])
        except ValueError:
            errors.append(
                (
                    name,
                    f"Enter the '{'From' if name == 'since' else 'To'}' date as a date like "
                    "2026-06-01 or a time like 2026-06-01T09:30",
                )
            )
            times[name] = ""
    filters = Filters(
        project_id=given["project"],
        organisation=given["organisation"],
        action=given["action"],
        since=times["since"],
        until=times["until"],
    )
    return filters, given, errors


def _rows(context: Context, entries: list[LogEntry]) -> list[dict[str, object]]:
    profile = context.profile
    rows = []
    for entry in entries:
        word, colour = outcome(entry)
        rows.append(
            {
                "entry": entry,
                "who": profile.name(entry.actor_organisation),
                "outcome": word,
                "colour": colour,
            }
        )
    return rows


def trail(request: Request) -> Response:
    context = need(request, Role.AUDITOR)
    filters, given, errors = _filters(context)
    client = context.profile.auditor()
    entries = [] if errors else list(client.entries(filters))
    everything = list(client.entries()) if not errors else []
    return context.render(
        "audit_trail.html",
        rows=_rows(context, entries),
        given=given,
        errors=errors,
        actions=sorted(ACTION_LABELS.items(), key=lambda item: item[1]),
        organisations=sorted({e.actor_organisation for e in everything}),
        projects=sorted({e.project_id for e in everything if e.project_id}),
    )


def entry(request: Request) -> Response:
    context = need(request, Role.AUDITOR)
    index = int(request.path_params["index"])
    client = context.profile.auditor()
    found = [e for e in client.entries() if e.index == index]
    if not found:
        return context.render(
            "message.html",
            404,
            title="No such entry",
            text=f"Entry {index} is not in the log, or it is not about one of your projects.",
        )
    shown = found[0]
    word, colour = outcome(shown)
    return context.render(
        "audit_entry.html",
        e=shown,
        who=context.profile.name(shown.actor_organisation),
        outcome=word,
        colour=colour,
        details=detail_rows(shown.details),
    )


def _file(form: FormData, name: str) -> tuple[bytes, str] | None:
    item = form.get(name)
    if isinstance(item, UploadFile) and item.filename:
        data = item.file.read(MAX_FILE + 1)
        if len(data) > MAX_FILE:
            raise AuditFileError(f"{item.filename} is larger than {MAX_FILE // 2**20} MB")
        return (data, item.filename) if data else None
    return None


def _verifier(context: Context, form: FormData | None) -> Verifier | None:
    uploaded = _file(form, "key") if form is not None else None
    if uploaded is not None:
        return audit_checks.read_key(uploaded[0])
    return context.settings.key


async def verify(request: Request) -> Response:
    context = need(request, Role.AUDITOR)
    results: list[audit_checks.Result] = []
    errors: list[tuple[str, str]] = []
    if request.method == "POST":
        form = await checked_form(context)
        try:
            verifier = _verifier(context, form)
            if verifier is None:
                errors.append(("key", "Choose the coordinator's public key file (coordinator.pub)"))
            else:
                results = await run_in_threadpool(_run_checks, context, form, verifier)
        except AuditFileError as exc:
            errors.append(("file", str(exc)))
        finally:
            await form.close()
    return context.render(
        "audit_verify.html",
        results=results,
        errors=errors,
        has_key=context.settings.key is not None,
        key_name=context.settings.key_name,
        ok=bool(results) and all(r.ok for r in results),
    )


def _run_checks(context: Context, form: FormData, verifier: Verifier) -> list[audit_checks.Result]:
    client = context.profile.auditor()
    results = [audit_checks.against_coordinator(client, list(client.entries()), verifier)]
    kept_items: list[tuple[str, CheckpointItem]] = []
    kept = _file(form, "checkpoint")
    if kept is not None:
        note = audit_checks.newest_note(kept[0], kept[1])
        kept_items.append((kept[1], note))
        results.append(audit_checks.kept_checkpoint(client, note, kept[1], verifier))
    export = _file(form, "export")
    if export is not None:
        results.append(audit_checks.exported_log(export[0], export[1], verifier, kept_items))
    return results


def checkpoint(request: Request) -> Response:
    """The coordinator's latest signed checkpoint as a file to keep (signature checked first)."""
    context = need(request, Role.AUDITOR)
    note = context.profile.auditor().checkpoint().note
    key = context.settings.key
    try:
        size = key.open_checkpoint(note).size if key else None
    except CheckpointError as exc:
        return context.render(
            "message.html",
            502,
            title="The coordinator's checkpoint does not verify",
            text=f"Do not keep it: {exc}",
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    name = f"checkpoint-{stamp}" + (f"-{size}-entries" if size is not None else "") + ".note"
    return Response(
        note,
        media_type="text/plain; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


async def compare(request: Request) -> Response:
    context = need(request, Role.AUDITOR)
    result = None
    errors: list[tuple[str, str]] = []
    if request.method == "POST":
        form = await checked_form(context)
        try:
            verifier = _verifier(context, form)
            first, second = _file(form, "first"), _file(form, "second")
            client = context.profile.auditor()
            if verifier is None:
                errors.append(("key", "Choose the coordinator's public key file (coordinator.pub)"))
            elif first is None:
                errors.append(("first", "Choose the first checkpoint file"))
            else:
                a = audit_checks.newest_note(first[0], first[1])
                b = (
                    audit_checks.newest_note(second[0], second[1])
                    if second is not None
                    else client.checkpoint().note
                )
                result = await run_in_threadpool(audit_checks.compare_two, client, a, b, verifier)
        except AuditFileError as exc:
            errors.append(("first", str(exc)))
        finally:
            await form.close()
    return context.render(
        "audit_compare.html", result=result, errors=errors, has_key=context.settings.key is not None
    )


def consent(request: Request) -> Response:
    context = need(request, Role.AUDITOR)
    uploads = consent_summaries(context.profile.auditor().entries())
    rules = sorted({rule for u in uploads for rule in u.rule_counts})
    return context.render("audit_consent.html", uploads=uploads, rules=rules)


def refused(request: Request) -> Response:
    context = need(request, Role.AUDITOR)
    found = refusals(context.profile.auditor().entries())
    return context.render(
        "audit_refusals.html",
        refusals=[(e, context.profile.name(e.actor_organisation), is_revocation(e)) for e in found],
        revoked=sum(1 for e in found if is_revocation(e)),
    )


def summary(request: Request) -> Response:
    context = need(request, Role.AUDITOR)
    filters, given, errors = _filters(context)
    entries = [] if errors else list(context.profile.auditor().entries(filters))
    return context.render(
        "audit_summary.html",
        s=period_summary(entries, filters.since, filters.until),
        given=given,
        errors=errors,
        uploads=consent_summaries(entries),
    )


ROUTES = [
    Route("/audit", trail),
    Route("/audit/entry/{index:int}", entry),
    Route("/audit/verify", verify, methods=["GET", "POST"]),
    Route("/audit/checkpoint", checkpoint),
    Route("/audit/compare", compare, methods=["GET", "POST"]),
    Route("/audit/consent", consent),
    Route("/audit/refusals", refused),
    Route("/audit/summary", summary),
]
