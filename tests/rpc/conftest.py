"""Shared fixtures for tests that talk gRPC over mutual TLS.

``pilot_pki`` gives each test its own throw-away certificate authority, so tests
never share keys and can issue whatever identities they need. ``coordinator``
starts a real coordinator server on an ephemeral loopback port with that CA.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

import hublink
from coordinator.core.model import Project
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.projects import load_project
from coordinator.rpc.server import create_server
from hublink.identity import Identity, Role
from hublink.pki import CertificateFiles, create_authority, issue_certificate
from hublink.tls import TlsFiles, secure_channel


@dataclass(frozen=True)
class PilotPki:
    """A pilot CA in a temporary directory that issues TLS files on demand."""

    authority: CertificateFiles
    directory: Path

    def issue(
        self,
        identity: Identity,
        *,
        dns_names: Sequence[str] = ("localhost",),
        ip_addresses: Sequence[str] = ("127.0.0.1",),
        days: int = 825,
        not_before: datetime | None = None,
    ) -> TlsFiles:
        """Issue a certificate for ``identity`` and return the files a gRPC peer needs.

        Issuing the same identity again replaces the earlier certificate, so a
        test can, for instance, swap in an expired one.
        """
        files = issue_certificate(
            self.authority,
            identity,
            self.directory / "issued",
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            days=days,
            not_before=not_before,
            overwrite=True,
        )
        return TlsFiles.from_certificate_files(files)


@pytest.fixture
def pilot_pki(tmp_path: Path) -> PilotPki:
    """A fresh pilot CA under ``tmp_path/pki``; see ``PilotPki``."""
    directory = tmp_path / "pki"
    return PilotPki(authority=create_authority(directory), directory=directory)


# --------------------------------------------------------------------------- coordinator
PROJECT_ID = "early-years-test"
PROJECT_ORGANISATIONS = ("health-visiting", "flying-start", "childcare")
SUPPRESSION_THRESHOLD = 15
ANALYST_ORGANISATION = "public-health"
ADMIN_ORGANISATION = "family-hub"
AUDITOR_ORGANISATION = "information-governance"
RELEASED_ATTRIBUTES = ("age_band", "area")
"""Counts from 1 to 14 are withheld: with 30 records per node and 10 shared
people, the 10 linked entities are suppressed and the 20 held by one
organisation only are released."""


@dataclass(frozen=True)
class RunningCoordinator:
    """A started coordinator gRPC server over mutual TLS on loopback, and its core."""

    core: Coordinator
    port: int
    project: Project
    schema_path: Path
    pki: PilotPki
    _channels: list[grpc.Channel]

    @property
    def project_id(self) -> str:
        return self.project.id

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self, identity: Identity, **options: Any) -> grpc.Channel:
        """A mutual-TLS channel presenting a fresh certificate for ``identity``.

        ``options`` are gRPC channel options (``grpc.max_send_message_length=…``);
        channels are closed when the test ends.
        """
        channel = secure_channel(
            self.address, self.pki.issue(identity), options=list(options.items())
        )
        self._channels.append(channel)
        return channel


@pytest.fixture
def coordinator(pilot_pki: PilotPki, tmp_path: Path) -> Iterator[RunningCoordinator]:
    """A real coordinator serving one project to three organisations, stopped afterwards.

    The project file points at a copy of the schema hublink ships, so the
    coordinator computes the encoding hash from a file as it does in service.
    """
    directory = tmp_path / "coordinator"
    directory.mkdir()
    schema = directory / "early-years.json"
    shutil.copyfile(Path(hublink.__file__).parent / "schemas" / "early-years.json", schema)
    organisations = ", ".join(f'"{org}"' for org in PROJECT_ORGANISATIONS)
    definition = directory / f"{PROJECT_ID}.toml"
    definition.write_text(
        f'id = "{PROJECT_ID}"\n'
        'purpose = "Test that the coordinator serves a project over gRPC"\n'
        f"organisations = [{organisations}]\n"
        'schema = "early-years.json"\n'
        # These tests send the record CLK alone (a record-only project).
        "field_scoring = false\n"
        f"suppression_threshold = {SUPPRESSION_THRESHOLD}\n"
        'disclosure = "unrounded"\n'
        f'admins = ["{ADMIN_ORGANISATION}"]\n'
        f'auditors = ["{AUDITOR_ORGANISATION}"]\n'
        f'analysts = ["{ANALYST_ORGANISATION}"]\n'
        f"released_attributes = {json.dumps(list(RELEASED_ATTRIBUTES))}\n"
        'attribute_precedence = ["health-visiting", "flying-start"]\n'
        "max_chunk_records = 2000\n",
        encoding="utf-8",
    )
    store = Store(directory / "coordinator.db")
    project = load_project(definition)
    core = Coordinator(store, [project])
    server, port = create_server(
        core, "127.0.0.1:0", pilot_pki.issue(Identity("coordinator", Role.COORDINATOR))
    )
    server.start()
    channels: list[grpc.Channel] = []
    try:
        yield RunningCoordinator(core, port, project, schema, pilot_pki, channels)
    finally:
        for channel in channels:
            channel.close()
        server.stop(None)
        for run in store.query("SELECT id FROM runs WHERE state = 'running'"):
            core.wait_for_run(run["id"], timeout=30)
        store.close()
