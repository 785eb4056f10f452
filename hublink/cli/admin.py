"""``hublink admin``: a project admin's commands: runs, state, closure, the quality report."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hublink.cli.errors import EXIT_FAILED, friendly
from hublink.cli.options import CLIENT_CONFIG
from hublink.clients import AdminClient, open_channel
from hublink.config import ClientConfig, load


@click.group("admin")
def group() -> None:
    """Project administration: start matching runs, see a project's state."""


@group.command("run")
@CLIENT_CONFIG
@click.option("--project", required=True, help="Project id.")
@click.option(
    "--threshold",
    default=0.0,
    type=click.FloatRange(0.0, 1.0),
    help="Similarity threshold for this run (default: the project's).",
)
@click.option("--no-wait", is_flag=True, help="Start the run and return at once.")
@click.option(
    "--full",
    is_flag=True,
    help="Compare every record again (a full re-link), not only those added or changed "
    "since the last run; the entities are the same.",
)
@friendly
def admin_run(config_path: Path, project: str, threshold: float, no_wait: bool, full: bool) -> None:
    """Start matching every committed upload of a project, and wait for it to finish."""
    from hublink.reports.progress import StageProgress

    config = load(config_path, ClientConfig)
    client = AdminClient(open_channel(config), timeout=config.timeout_seconds)
    report = client.start_run(project, threshold, full=full)
    if not no_wait:
        with StageProgress(enabled=sys.stderr.isatty()) as progress:
            report = client.wait(
                project,
                report.run_id,
                poll=1.0,
                on_progress=lambda r: progress(f"run {r.stage or r.state}", r.done, r.total),
            )
    click.echo(
        f"run {report.run_id}: {report.state}; {report.records} records, "
        f"{report.entities} entities ({report.linked_entities} linked across "
        f"organisations) at threshold {report.threshold:g} in {report.seconds:.1f} s"
        + (f"; {report.message}" if report.message else "")
    )
    if report.state not in ("completed", "running"):
        sys.exit(EXIT_FAILED)  # the run ran and did not complete: a negative answer


@group.command("cancel")
@CLIENT_CONFIG
@click.option("--project", required=True, help="Project id.")
@click.option("--run", "run_id", required=True, help="Run id (as `admin run` printed it).")
@friendly
def admin_cancel(config_path: Path, project: str, run_id: str) -> None:
    """Cancel a matching run in progress; the previous run's keys stay in force."""

    config = load(config_path, ClientConfig)
    report = AdminClient(open_channel(config), timeout=config.timeout_seconds).cancel_run(
        project, run_id
    )
    click.echo(f"run {report.run_id}: {report.state}")


@group.command("status")
@CLIENT_CONFIG
@click.option("--project", required=True, help="Project id.")
@friendly
def admin_status(config_path: Path, project: str) -> None:
    """Show which organisations have uploaded and the latest run."""

    config = load(config_path, ClientConfig)
    state = AdminClient(open_channel(config), timeout=config.timeout_seconds).project_state(project)
    click.echo(
        f"project {state.project_id} ({state.state}); latest run: {state.latest_run_id or 'none'}"
    )
    for dataset in state.datasets:
        click.echo(
            f"  {dataset.organisation}: "
            + (
                f"{dataset.records} records (upload {dataset.upload_id})"
                if dataset.upload_id
                else "no upload yet"
            )
        )


@group.command("close")
@CLIENT_CONFIG
@click.option("--project", required=True, help="Project id.")
@click.option("--reason", required=True, help="Why the project is closed (goes to the audit log).")
@click.option(
    "--yes", is_flag=True, help="Confirm without asking (the coordinator's two steps still run)."
)
@friendly
def admin_close(config_path: Path, project: str, reason: str, yes: bool) -> None:
    """Close a project: the coordinator erases its encodings, entities and keys for good.

    Two calls: the first announces the close in the audit log and returns a
    confirmation code bound to you, the project and the reason; after you
    confirm (or with --yes) the second sends the code back, within its
    window, and the project is closed.
    """

    config = load(config_path, ClientConfig)
    client = AdminClient(open_channel(config), timeout=config.timeout_seconds)
    confirmation, expires_at = client.request_close(project, reason)
    click.echo(f"closing {project} is announced in the audit log; confirm by {expires_at}")
    if not yes:
        click.confirm(f"Erase everything the coordinator holds for {project}?", abort=True)
    erased = client.confirm_close(project, reason, confirmation)
    click.echo(f"project {project} closed; {erased} encoded records erased")


@group.command("quality")
@CLIENT_CONFIG
@click.option("--project", required=True, help="Project id.")
@click.option("--run", "run_id", default="", help="Run id (default: the latest completed run).")
@click.option(
    "--out",
    "out_path",
    default=Path("quality.html"),
    type=click.Path(dir_okay=False, path_type=Path),
    show_default=True,
    help="HTML file to write.",
)
@friendly
def admin_quality(config_path: Path, project: str, run_id: str, out_path: Path) -> None:
    """Write a run's linkage-quality report (score distribution, estimated precision/recall,
    per-organisation link and duplicate rates) as one HTML page with charts."""
    from hublink.reports.quality import estimate_line, write

    config = load(config_path, ClientConfig)
    report = AdminClient(open_channel(config), timeout=config.timeout_seconds).quality_report(
        project, run_id
    )
    write(out_path, report)
    q = report.quality
    click.echo(
        f"run {report.run_id}: threshold {report.threshold_used:.3f}; "
        + estimate_line(q)
        + (
            f"; estimated duplicate pairs {q.duplicates.estimated_duplicate_pairs:.1f} "
            f"({q.duplicates.linked} linked)"
            if q.HasField("duplicates")
            else ""
        )
        + f"; report written to {out_path}"
    )
