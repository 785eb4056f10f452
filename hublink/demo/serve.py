"""``hublink demo --serve``: the demo, then its coordinator and the console kept running.

After the demo has played every party, the coordinator starts again on the
same database and address, and the console serves the demo's admin, analyst
and auditor identities (config/admin.toml, analyst.toml, auditor.toml), each
selectable on its first page, until interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from coordinator.app import start as start_coordinator
from hublink.audit.checkpoint import Verifier
from hublink.config import CoordinatorConfig, load
from hublink.console import ConsoleServer, Settings, load_profile
from hublink.demo.deployment import PROJECT_ID

IDENTITIES = ("auditor", "admin", "analyst")
"""The demo's client configs the console offers, in the order its first page lists them."""


def console_settings(out_dir: Path) -> Settings:
    """The console over a finished demo folder: its three identities, project and audit key."""
    config_dir = out_dir / "config"
    key = out_dir / "coordinator.pub"
    return Settings(
        profiles=[load_profile(config_dir / f"{name}.toml") for name in IDENTITIES],
        projects=(PROJECT_ID,),
        key=Verifier.from_file(key) if key.exists() else None,
        key_name=key.name,
        suggested=(("area", "age_band"), ("age_band",)),
    )


def serve(out_dir: Path, port: int, announce: Callable[[str], None]) -> None:
    """Restart the demo's coordinator and serve the console until interrupted."""
    coordinator = start_coordinator(
        load(out_dir / "config" / "coordinator.toml", CoordinatorConfig)
    )
    try:
        server = ConsoleServer(console_settings(out_dir), port=port)
        server.serve(on_ready=lambda url: announce(f"console: {url}"))
    finally:
        coordinator.stop()
