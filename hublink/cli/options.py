"""Options every command group shares: each party names its one TOML file with --config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from hublink.cli.errors import F


def config_option(help_text: str) -> Callable[[F], F]:
    """The --config option every command takes: one TOML file per party."""
    return click.option(
        "--config",
        "config_path",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help=help_text,
    )


NODE_CONFIG = config_option("Node TOML file.")
CLIENT_CONFIG = config_option("Client TOML file (an admin's, analyst's or auditor's).")
