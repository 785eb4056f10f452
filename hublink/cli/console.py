"""``hublink console``: the local web console, as the identity (or identities) in client configs."""

from __future__ import annotations

from pathlib import Path

import click

from hublink.cli.errors import friendly

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@click.command("console")
@click.option(
    "--config",
    "config_paths",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Client TOML (an admin's, analyst's or auditor's); repeat to choose between several.",
)
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Keep the loopback default unless a proxy with its own "
    "authentication sits in front.",
)
@click.option(
    "--project",
    "projects",
    multiple=True,
    help="Project id to open (repeatable); without it the console asks.",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The coordinator's audit public key (coordinator.pub), for the auditor's verify page.",
)
@friendly
def console(
    config_paths: tuple[Path, ...],
    port: int,
    host: str,
    projects: tuple[str, ...],
    key_file: Path | None,
) -> None:
    """Serve the web console on this machine and print its address (with an access key).

    The pages follow each certificate's role: audit trail, verification and
    summaries for an auditor; overlaps, cross-tabs and downloads for an
    analyst; project status, runs and the quality report for an admin. It
    talks to the coordinator only over its gRPC API, as the identity in each
    --config. Stop it with Ctrl-C.
    """
    from hublink.audit.checkpoint import Verifier
    from hublink.console import ConsoleServer, Settings, load_profile

    if host not in LOOPBACK:
        click.echo(
            f"warning: listening on {host}, not loopback: anyone who can reach it and has the "
            "address printed below acts with your certificate",
            err=True,
        )
    verifier = Verifier.from_file(key_file) if key_file is not None else None
    settings = Settings(
        profiles=[load_profile(path) for path in config_paths],
        projects=projects,
        key=verifier,
        key_name=str(key_file or ""),
    )
    server = ConsoleServer(settings, host, port)
    server.serve(on_ready=lambda url: click.echo(f"console: {url}"))
