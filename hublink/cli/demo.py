"""``hublink demo``: the whole flow on synthetic data, for a first look."""

from __future__ import annotations

from pathlib import Path

import click

from hublink.cli.errors import friendly


@click.command()
@click.option(
    "--records",
    default=5000,
    show_default=True,
    type=click.IntRange(50, 2_000_000),
    help="Synthetic records per organisation.",
)
@click.option(
    "--out",
    "out_dir",
    default="hublink-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for every artefact (data, certificates, configs, databases, results).",
)
@click.option("--seed", default=2026, show_default=True, help="Seed for the synthetic data.")
@click.option("--quiet", is_flag=True, help="No progress display, only the results.")
@click.option(
    "--refreshes",
    default=0,
    show_default=True,
    type=click.IntRange(0, 24),
    help="Then play this many monthly refreshes (births, leavers, moves, duplicates, "
    "withdrawals): refresh uploads, incremental runs, key changes; summary.json gets "
    "'refreshes'.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Afterwards keep the coordinator running and serve the web console (until Ctrl-C).",
)
@click.option(
    "--port",
    default=0,
    type=click.IntRange(0, 65535),
    help="The console's port with --serve (0: any free port).",
)
@friendly
def demo(
    records: int,
    out_dir: Path,
    seed: int,
    quiet: bool,
    refreshes: int,
    serve: bool,
    port: int,
) -> None:
    """Run the whole flow on synthetic data: three organisations, a coordinator, real mutual TLS.

    Generates early-years records with known truth, makes a throwaway certificate
    authority, starts a coordinator and three nodes on loopback, links, prints the
    overlap table and the linkage quality, and writes summary.json into --out.
    With --serve it then keeps the coordinator running and prints the address
    of the web console (`console: http://127.0.0.1:PORT/?token=…`), where the
    demo's admin, analyst and auditor can each be chosen.
    """
    from hublink.demo import run_demo

    run_demo(
        out_dir,
        records_per_org=records,
        seed=seed,
        show_progress=not quiet,
        refreshes=refreshes,
    )
    if serve:
        from hublink.demo.serve import serve as serve_console

        serve_console(out_dir, port, lambda line: click.echo(line, nl=True))
