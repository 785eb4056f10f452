"""``hublink coordinator backup|restore`` and ``hublink node backup|restore``.

Thin commands over hublink.backup: they take the party's config to know
which files are its state, so operators name nothing but the config and the
backup folder.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hublink import backup
from hublink.audit.checkpoint import default_audit_key
from hublink.cli.errors import CouldNotRun
from hublink.config import ConfigError, CoordinatorConfig, NodeConfig, load

F = TypeVar("F", bound=Callable[..., Any])


def _one_line(command: F) -> F:
    """A user's mistake (bad config, bad or partial backup) as one line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (backup.BackupError, ConfigError, OSError) as exc:
            raise CouldNotRun(str(exc)) from None

    return wrapper  # type: ignore[return-value]


_CONFIG = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The party's TOML file; it says where the state to back up or restore lives.",
)
_FOLDER = click.argument("folder", type=click.Path(file_okay=False, path_type=Path))

COORDINATOR_KIND = "coordinator"
NODE_KIND = "node"


def _coordinator_files(config: CoordinatorConfig) -> dict[str, Path]:
    """Name in the backup -> where it lives: the database and the audit signing key."""
    return {
        "coordinator.db": config.database,
        "audit-key.pem": config.audit_key or default_audit_key(config.database),
    }


@click.command("backup")
@_CONFIG
@_FOLDER
@_one_line
def coordinator_backup(config_path: Path, folder: Path) -> None:
    """Back up the database and audit signing key into the new FOLDER (safe while serving).

    The database is copied with SQLite's online backup API, so the copy is
    consistent even while nodes upload. Project files and certificates are
    the operator's own files: keep them with the backup.
    """
    config = load(config_path, CoordinatorConfig)
    manifest = backup.create(folder, COORDINATOR_KIND, _coordinator_files(config))
    click.echo(f"backed up {len(manifest.files)} files into {folder}")


@click.command("restore")
@_CONFIG
@_FOLDER
@_one_line
def coordinator_restore(config_path: Path, folder: Path) -> None:
    """Restore the database and audit signing key from FOLDER to where the config puts them.

    Checks every file against the backup's manifest first, and refuses to
    overwrite an existing database or key. Stop the coordinator before, and
    run `hublink audit verify --database …` after.
    """
    config = load(config_path, CoordinatorConfig)
    backup.restore(folder, COORDINATOR_KIND, _coordinator_files(config))
    click.echo(f"restored {config.database} from {folder}")


@click.command("backup")
@_CONFIG
@_FOLDER
@_one_line
def node_backup(config_path: Path, folder: Path) -> None:
    """Back up the node's state folder (token store, receipts, log) into the new FOLDER.

    Without the token store the linkage keys the coordinator returns cannot be
    joined back to local records. The linkage secret is not included: keep it
    apart, as the organisations agreed.
    """
    config = load(config_path, NodeConfig)
    manifest = backup.create(folder, NODE_KIND, {"state": config.state_dir})
    click.echo(f"backed up {len(manifest.files)} files into {folder}")


@click.command("restore")
@_CONFIG
@_FOLDER
@_one_line
def node_restore(config_path: Path, folder: Path) -> None:
    """Restore the node's state folder from FOLDER; refuses to overwrite an existing one."""
    config = load(config_path, NodeConfig)
    backup.restore(folder, NODE_KIND, {"state": config.state_dir})
    click.echo(f"restored {config.state_dir} from {folder}")
