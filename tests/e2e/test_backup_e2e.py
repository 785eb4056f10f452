"""Back up a running coordinator and a node, lose both, restore, and carry on.

After the restore the audit log verifies and the node's linkage keys still
resolve to the same local records, which is what the backup is for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.config import CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.identity import Identity, Role
from node.keys import fetch_keys
from node.workflow import upload
from tests.conftest import run_hublink as hublink

pytestmark = pytest.mark.e2e


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.mark.slow
def test_a_restored_coordinator_and_node_verify_and_resolve_the_same_keys(tmp_path: Path) -> None:
    data = synthetic.generate(tmp_path / "data", 80, seed=9, layouts=synthetic.DEFAULT_LAYOUTS[:2])
    configs = write_deployment(tmp_path, data, free_port())
    coordinator_config = load(configs["coordinator"], CoordinatorConfig)
    nodes = {org: load(configs[org], NodeConfig) for org in ("health-visiting", "flying-start")}
    running = start_coordinator(coordinator_config)
    try:
        for config in nodes.values():
            upload(config)
        run = running.core.start_run(
            Identity("linkage-unit", Role.ADMIN), PROJECT_ID, background=False
        )
        assert run.state == "completed", run.message
        node = nodes["health-visiting"]
        fetch_keys(node)
        before = node.output.read_text()
        # Both backups are taken while the coordinator serves.
        made = hublink(
            "coordinator",
            "backup",
            "--config",
            str(configs["coordinator"]),
            str(tmp_path / "backup-coordinator"),
        )
        assert made.returncode == 0, made.stderr
        made = hublink(
            "node",
            "backup",
            "--config",
            str(configs["health-visiting"]),
            str(tmp_path / "backup-node"),
        )
        assert made.returncode == 0, made.stderr
    finally:
        running.stop(grace=None)

    # The disks are lost.
    remove_database(coordinator_config.database)
    key = coordinator_config.database.with_name(f"{coordinator_config.database.stem}.audit-key.pem")
    key.unlink()
    for path in sorted(node.state_dir.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    node.state_dir.rmdir()
    node.output.unlink()

    restored = hublink(
        "coordinator",
        "restore",
        "--config",
        str(configs["coordinator"]),
        str(tmp_path / "backup-coordinator"),
    )
    assert restored.returncode == 0, restored.stderr
    restored = hublink(
        "node",
        "restore",
        "--config",
        str(configs["health-visiting"]),
        str(tmp_path / "backup-node"),
    )
    assert restored.returncode == 0, restored.stderr
    again = hublink(
        "node",
        "restore",
        "--config",
        str(configs["health-visiting"]),
        str(tmp_path / "backup-node"),
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    verified = hublink("audit", "verify", "--database", str(coordinator_config.database))
    assert verified.returncode == 0, verified.stderr

    running = start_coordinator(coordinator_config)
    try:
        fetch_keys(node)
    finally:
        running.stop(grace=None)
    assert node.output.read_text() == before
    assert len(before.splitlines()) > 1
