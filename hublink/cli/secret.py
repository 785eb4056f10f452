"""``hublink node secret``: agree a project's linkage secret through the coordinator."""

from __future__ import annotations

from pathlib import Path

import click

from hublink.cli.errors import friendly
from hublink.cli.options import NODE_CONFIG
from hublink.config import NodeConfig, load


@click.group("secret")
def group() -> None:
    """Agree the project's linkage secret through the coordinator, which cannot read it.

    Each node runs `keygen` (and confirms the printed fingerprint with the
    project's owner), then `publish`; one node runs `create`; every other node
    runs `fetch` (upload fetches it too when secret_exchange = true).
    """


@group.command("keygen")
@NODE_CONFIG
@friendly
def node_secret_keygen(config_path: Path) -> None:
    """Create this node's X25519 key pair (kept if one exists) and print its fingerprint."""
    from node.secret_workflow import keygen

    info = keygen(load(config_path, NodeConfig))
    state = "created" if info.created else "kept existing"
    click.echo(f"{info.organisation}: {state} node key {info.path}")
    click.echo(f"fingerprint (confirm it for the project file's [node_keys]): {info.fingerprint}")


@group.command("publish")
@NODE_CONFIG
@friendly
def node_secret_publish(config_path: Path) -> None:
    """Publish this node's public key to the project, signed with its certificate's key."""
    from node.secret_workflow import publish_key

    info = publish_key(load(config_path, NodeConfig))
    click.echo(f"{info.organisation}: published node key {info.fingerprint}")


@group.command("create")
@NODE_CONFIG
@friendly
def node_secret_create(config_path: Path) -> None:
    """Start a new secret epoch: seal a fresh secret to every member's verified key."""
    from node.secret_workflow import create_secret

    info = create_secret(load(config_path, NodeConfig))
    click.echo(f"{info.project_id}: started secret epoch {info.epoch}; stored in {info.path}")


@group.command("fetch")
@NODE_CONFIG
@click.option("--epoch", default=0, type=click.IntRange(0), help="Epoch (default: the latest).")
@friendly
def node_secret_fetch(config_path: Path, epoch: int) -> None:
    """Fetch, verify and open this node's sealed copy of the project's secret."""
    from node.secret_workflow import fetch_secret

    info = fetch_secret(load(config_path, NodeConfig), epoch)
    click.echo(f"{info.project_id}: holds the secret of epoch {info.epoch} in {info.path}")
