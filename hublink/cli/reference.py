"""``hublink config-reference``: the settings reference page, generated from the config types."""

from __future__ import annotations

from pathlib import Path

import click

from hublink.cli.errors import friendly


@click.command("config-reference")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the page to this file (e.g. docs/configuration.md) instead of printing it.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if --output differs from what would be written.",
)
@friendly
def config_reference(output: Path | None, check: bool) -> None:
    """Print the reference of every configuration setting, generated from the code.

    Lists every key of the coordinator, project, node and client files with its
    type, default and meaning, as docs/configuration.md holds it.
    """
    import os
    import tempfile

    from hublink.config_reference import render

    page = render()
    if output is None:
        click.echo(page, nl=False)
        return
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != page:
            raise click.ClickException(
                f"{output} is out of date; run `hublink config-reference --output {output}`"
            )
        return
    fd, temp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(page)
    os.replace(temp, output)
    click.echo(f"wrote {output}", err=True)
