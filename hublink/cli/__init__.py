"""The ``hublink`` command: one entry point over the node, the coordinator and the clients.

Each command group is a module of its own (``hublink.cli.node``,
``hublink.cli.coordinator``, ``hublink.cli.admin``, ``hublink.cli.analyst``,
``hublink.cli.audit``, ``hublink.cli.pki``, ``hublink.cli.schema``,
``hublink.cli.demo`` ...); this
module only gathers them under ``main``, the console script. Together with
``hublink.demo`` they are the only part of the ``hublink`` package that
imports ``node`` and ``coordinator``, and they do so inside each command, so
``hublink --help`` stays quick. Every failure a user can cause ends as one
readable line and exit status 2; a check whose answer is no exits 1
(``hublink.cli.errors``).
"""

from __future__ import annotations

import click

from hublink import __version__
from hublink.cli import (
    admin,
    analyst,
    audit,
    console,
    coordinator,
    demo,
    node,
    pki,
    reference,
    schema,
)
from hublink.cli.errors import HublinkGroup


@click.group(cls=HublinkGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hublink")
def main() -> None:
    """hublink links family-services records across organisations without pooling identifiers.

    Each organisation runs a node that hashes its records into keyed Bloom-filter
    encodings; a coordinator matches the encodings and returns only linkage keys
    and suppressed aggregate counts. Start with `hublink demo`.
    """


for _command in (
    demo.demo,
    reference.config_reference,
    schema.group,
    coordinator.group,
    node.group,
    admin.group,
    analyst.group,
    pki.group,
    audit.group,
    console.console,
):
    main.add_command(_command)

__all__ = ["main"]
