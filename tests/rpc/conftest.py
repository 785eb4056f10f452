"""Shared fixtures for tests that talk gRPC over mutual TLS.

``pilot_pki`` gives each test its own throw-away certificate authority, so tests
never share keys and can issue whatever identities they need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from hublink.identity import Identity
from hublink.pki import CertificateFiles, create_authority, issue_certificate
from hublink.tls import TlsFiles


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
