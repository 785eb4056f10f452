"""``hublink schema``: the linkage schema a project uses, and the encoding hash everyone pins.

A project file names a clkhash schema; the coordinator and every node hash it,
with the normalisation version, the hardening, the record CLK's parts and (with
``field_scoring``, the default) the per-field filter groups, into the
``encoding_sha256`` they compare before any record moves. ``export`` writes
the schema file to hand to each party; ``hash`` prints that hash whole, so it
can be pasted into a project file or checked against what a node reports.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click

from hublink.cli.errors import friendly
from hublink.config import ProjectConfig, default_of, load
from hublink.spec import (
    DEFAULT_HARDENING,
    HARDENINGS,
    NORMALISATION_VERSION,
    RECORD_CLKS,
    LinkageSpec,
    warn_if_legacy,
)

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)

_FIELD_SCORING = click.option(
    "--field-scoring/--no-field-scoring",
    default=default_of(ProjectConfig, "field_scoring"),
    show_default=True,
    help="Per-field filters as well (the project and node setting field_scoring).",
)
_RECORD_CLK = click.option(
    "--record-clk",
    type=click.Choice(RECORD_CLKS),
    default=default_of(ProjectConfig, "record_clk"),
    show_default=True,
    help='How the record CLK is made (the setting record_clk; "unsalted" is legacy).',
)
_SCHEMA = click.option(
    "--schema",
    "schema_path",
    type=_FILE,
    default=None,
    help="A clkhash v3 schema file (default: the shipped early-years.json).",
)
_PROJECT = click.option(
    "--project",
    "project_path",
    type=_FILE,
    default=None,
    help="A project file: its schema and settings (instead of --schema and the others).",
)

#: The options --project stands in for, by parameter name.
_SETTINGS = {
    "schema_path": "--schema",
    "field_scoring": "--field-scoring",
    "record_clk": "--record-clk",
    "normalisation": "--normalisation",
    "hardening": "--hardening",
}


@click.group("schema")
def group() -> None:
    """The linkage schema a project uses, and the encoding hash nodes and projects pin."""


def _spec(
    schema_path: Path | None,
    *,
    field_scoring: bool,
    record_clk: str,
    normalisation: str = NORMALISATION_VERSION,
    hardening: str = DEFAULT_HARDENING,
    project_path: Path | None = None,
) -> LinkageSpec:
    """The spec of ``schema_path`` (the shipped schema when None) with these settings, or
    the one a project file (``project_path``) names, with its settings."""
    if project_path is not None:
        ctx = click.get_current_context()
        given = [
            option
            for name, option in _SETTINGS.items()
            if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
        ]
        if given:
            raise click.UsageError(
                "--project takes the schema and settings from the project file; "
                f"leave out {', '.join(given)}"
            )
        project = load(project_path, ProjectConfig)
        warn_if_legacy(project.record_clk, str(project_path))
        return LinkageSpec.from_file(
            project.schema,
            normalisation=project.normalisation or NORMALISATION_VERSION,
            hardening=project.hardening,
            field_scoring=project.field_scoring,
            record_clk=project.record_clk,
        )
    if schema_path is None:
        text, source = LinkageSpec.default().json_text, "early-years.json"
    else:
        text, source = schema_path.read_text(encoding="utf-8"), str(schema_path)
    return LinkageSpec.from_json(
        text,
        source=source,
        normalisation=normalisation,
        hardening=hardening,
        field_scoring=field_scoring,
        record_clk=record_clk,
    )


@group.command("export")
@_SCHEMA
@_PROJECT
@_FIELD_SCORING
@_RECORD_CLK
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the schema to this file instead of printing it.",
)
@friendly
def schema_export(
    schema_path: Path | None,
    project_path: Path | None,
    field_scoring: bool,
    record_clk: str,
    output: Path | None,
) -> None:
    """Print or write the linkage schema JSON a project's parties use.

    The shipped early-years.json by default, or the schema file given (or the
    one a project file names), checked first (with field scoring, the default,
    that it hashes every feature the per-field filters need). Written with --output,
    the file's encoding hash (with the default normalisation and hardening, or
    the project's settings) is shown on stderr.
    """
    spec = _spec(
        schema_path, field_scoring=field_scoring, record_clk=record_clk, project_path=project_path
    )
    # Readable (two-space indent, sorted keys): the same schema, so the same hash.
    text = json.dumps(spec.schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    fd, temp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temp, output)
    click.echo(f"wrote {output} (encoding_sha256 {spec.sha256})", err=True)


@group.command("hash")
@_SCHEMA
@_PROJECT
@_FIELD_SCORING
@_RECORD_CLK
@click.option(
    "--normalisation",
    default=NORMALISATION_VERSION,
    show_default=True,
    help="Normalisation version the encodings assume (the project's normalisation).",
)
@click.option(
    "--hardening",
    type=click.Choice(HARDENINGS),
    default=DEFAULT_HARDENING,
    show_default=True,
    help="Post-processing of the record CLK (the project's hardening).",
)
@friendly
def schema_hash(
    schema_path: Path | None,
    project_path: Path | None,
    field_scoring: bool,
    record_clk: str,
    normalisation: str,
    hardening: str,
) -> None:
    """Print the encoding hash, whole: the project's and node's ``encoding_sha256``.

    It covers the schema, the normalisation version, the hardening, the record
    CLK's salted parts and (unless --no-field-scoring) the per-field filter
    groups, so give the settings the project file has, or the project file
    itself with --project.
    """
    spec = _spec(
        schema_path,
        field_scoring=field_scoring,
        record_clk=record_clk,
        normalisation=normalisation,
        hardening=hardening,
        project_path=project_path,
    )
    click.echo(spec.sha256)
