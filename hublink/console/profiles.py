"""Who the console acts as: one client config per identity, its role read from its certificate.

The console holds no credentials of its own. Each profile is a client TOML an
operator already has (an admin's, analyst's or auditor's), and the role shown
is the one the certificate names (``hublink.identity``), never one the user
picks: the coordinator decides what each call may do, and the console only
chooses which pages to offer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from hublink.audit.checkpoint import Verifier
from hublink.clients import AdminClient, AnalystClient, AuditClient, open_channel
from hublink.config import ClientConfig, load
from hublink.errors import HublinkError
from hublink.identity import Identity, Role, identity_from_certificate

ROLE_WORDS = {
    Role.AUDITOR: "Information governance (audit)",
    Role.ANALYST: "Analyst",
    Role.ADMIN: "Linkage unit (project admin)",
}
"""How each role is named to people on the console's pages."""

CONSOLE_ROLES = frozenset(ROLE_WORDS)


class ProfileError(HublinkError, ValueError):
    """A config the console cannot act as (not a client's, or a role with no pages)."""


@dataclass
class Profile:
    """One identity the console can act as, and its channel to the coordinator (made once)."""

    path: Path
    config: ClientConfig
    identity: Identity
    _channel: grpc.Channel | None = field(default=None, repr=False)

    @property
    def role(self) -> Role:
        return self.identity.role

    @property
    def label(self) -> str:
        name = self.config.display_names.get(self.identity.organisation)
        return f"{ROLE_WORDS[self.role]}: {name or self.identity.organisation}"

    def name(self, organisation: str) -> str:
        """An organisation's display name from this config, else its slug."""
        return self.config.display_names.get(organisation, organisation)

    @property
    def names(self) -> Mapping[str, str]:
        return self.config.display_names

    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = open_channel(self.config)
        return self._channel

    def admin(self) -> AdminClient:
        return AdminClient(self.channel(), timeout=self.config.timeout_seconds)

    def analyst(self) -> AnalystClient:
        return AnalystClient(self.channel(), timeout=self.config.timeout_seconds)

    def auditor(self) -> AuditClient:
        return AuditClient(self.channel(), timeout=self.config.timeout_seconds)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def load_profile(path: Path) -> Profile:
    """A client config and the identity its certificate names; refuses roles with no pages."""
    config = load(path, ClientConfig)
    try:
        pem = Path(config.tls.cert).read_bytes()
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read its certificate: {exc.strerror}") from None
    identity = identity_from_certificate(pem)
    if identity.role not in CONSOLE_ROLES:
        raise ProfileError(
            f"{path}: its certificate is a {identity.role.value}'s; the console is for "
            "admins, analysts and auditors"
        )
    return Profile(path, config, identity)


@dataclass(frozen=True)
class Settings:
    """What one launch of the console serves: its identities, projects and audit key."""

    profiles: Sequence[Profile]
    projects: Sequence[str] = ()
    """Project ids to open (``--project``); empty: auditors see every one in the log, and
    admins and analysts are asked for one."""
    key: Verifier | None = None
    """The coordinator's audit public key (``--key coordinator.pub``), for the verify page."""
    key_name: str = ""
    suggested: Sequence[Sequence[str]] = ()
    """Breakdowns offered to analysts as links, e.g. (("area", "age_band"),)."""
