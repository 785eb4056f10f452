"""Relaying the linkage-secret exchange: public keys and sealed envelopes, never the secret.

The coordinator stores each member node's X25519 public key (with the
certificate and signature that vouch for it) and, per epoch, one HPKE
envelope per member. It cannot open an envelope, and nodes do not take its
word for any key: they check keys against CAs or fingerprints the operator
does not control (see ``hublink.sealing``). What the coordinator does check —
role, membership, that a key or envelope is signed by the caller's own
certificate, that an epoch follows the last one and covers every member — is
there to refuse mistakes early and to keep an audited record; audit details
carry fingerprints and digests, never key material.

An epoch is the number of the secret in force: 0 until the first exchange,
then one more for each new secret. Uploads name the epoch they encoded under
and runs refuse to mix epochs (``coordinator.core.uploads``, ``.run_control``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from coordinator.core.errors import AlreadyExists, InvalidRequest, NotFound
from coordinator.core.guard import Guard, event
from coordinator.core.model import Project
from coordinator.core.store import Store, utc_now
from hublink import sealing
from hublink.identity import Identity, InvalidIdentity, Role, identity_from_certificate

_MAX_CERTIFICATE_CHARS = 16_384

log = logging.getLogger("hublink.coordinator.secrets")


@dataclass(frozen=True)
class NodeKey:
    """A node's published X25519 key and what vouches for it."""

    organisation: str
    public_key: bytes
    certificate_pem: str
    signature: bytes
    fingerprint: str = ""


@dataclass(frozen=True)
class Envelope:
    """One sealed copy of an epoch's secret, for one recipient organisation."""

    project_id: str
    epoch: int
    sender: str
    recipient: str
    enc: bytes
    ciphertext: bytes
    signature: bytes
    sender_certificate_pem: str


def current_epoch(store: Store, project_id: str) -> int:
    """The project's secret epoch now in force (0 before any exchange)."""
    row = store.query_one(
        "SELECT MAX(epoch) AS epoch FROM secret_envelopes WHERE project_id = ?", (project_id,)
    )
    return int(row["epoch"]) if row is not None and row["epoch"] is not None else 0


class Guarded(Protocol):
    """What the relay needs of the coordinator's core: its store and its guard."""

    @property
    def store(self) -> Store: ...

    @property
    def guard(self) -> Guard: ...


class SecretRelay:
    """The coordinator's part of the exchange, authorised and audited like every other call."""

    def __init__(self, core: Guarded) -> None:
        self.store = core.store
        self.guard = core.guard

    def _member_project(self, caller: Identity, project_id: str, action: str) -> Project:
        project = self.guard.project(project_id)
        self.guard.authorise(caller, action, project, Role.NODE)
        return project

    def publish_key(self, caller: Identity, project_id: str, key: NodeKey) -> NodeKey:
        """Store (or replace) the caller's public key after checking its own signature."""
        project = self._member_project(caller, project_id, "secret.publish_key")
        if key.organisation and key.organisation != caller.organisation:
            raise InvalidRequest(
                f"organisation {caller.organisation!r} may publish only its own key, "
                f"not {key.organisation!r}'s"
            )
        if len(key.public_key) != sealing.PUBLIC_KEY_BYTES:
            raise InvalidRequest(
                f"the public key must be {sealing.PUBLIC_KEY_BYTES} bytes (raw X25519)"
            )
        self._check_signed_by_caller(
            caller,
            key.certificate_pem,
            key.signature,
            sealing.node_key_message(project.id, caller.organisation, key.public_key),
            "public key",
        )
        fingerprint = sealing.fingerprint(key.public_key, key.certificate_pem)
        with self.store.transaction() as tx:
            replaced = tx.execute(
                "SELECT fingerprint FROM node_keys WHERE project_id = ? AND organisation = ?",
                (project.id, caller.organisation),
            ).fetchone()
            tx.execute(
                "INSERT OR REPLACE INTO node_keys VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    project.id,
                    caller.organisation,
                    key.public_key,
                    key.certificate_pem,
                    key.signature,
                    fingerprint,
                    utc_now(),
                ),
            )
            tx.audit(
                event(
                    caller,
                    "secret.key_published",
                    project.id,
                    {
                        "fingerprint": fingerprint,
                        "replaced_fingerprint": replaced[0] if replaced else "",
                    },
                )
            )
        log.info(
            "secret-exchange key published (%s)",
            fingerprint,
            extra={"caller": caller, "project": project.id},
        )
        return NodeKey(
            caller.organisation, key.public_key, key.certificate_pem, key.signature, fingerprint
        )

    def node_keys(self, caller: Identity, project_id: str) -> list[NodeKey]:
        """Every member's published key, in the project's organisation order."""
        project = self._member_project(caller, project_id, "secret.list_keys")
        rows = {
            r["organisation"]: r
            for r in self.store.query("SELECT * FROM node_keys WHERE project_id = ?", (project.id,))
        }
        return [
            NodeKey(
                org,
                bytes(rows[org]["public_key"]),
                str(rows[org]["certificate_pem"]),
                bytes(rows[org]["signature"]),
                str(rows[org]["fingerprint"]),
            )
            for org in project.organisations
            if org in rows
        ]

    def put_envelopes(
        self, caller: Identity, project_id: str, epoch: int, envelopes: Sequence[Envelope]
    ) -> int:
        """Start epoch ``epoch`` with one envelope per member; returns the epoch now in force."""
        project = self._member_project(caller, project_id, "secret.put_envelopes")
        with self.store.transaction() as tx:
            row = tx.execute(
                "SELECT MAX(epoch) FROM secret_envelopes WHERE project_id = ?", (project.id,)
            ).fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            if epoch != current + 1:
                raise AlreadyExists(
                    f"project {project.id!r} is at secret epoch {current}; a new secret must "
                    f"start epoch {current + 1}, not {epoch}"
                )
            recipients = [e.recipient for e in envelopes]
            if sorted(recipients) != sorted(project.organisations):
                raise InvalidRequest(
                    "the envelopes must be addressed to every member organisation once "
                    f"({', '.join(project.organisations)}); got {', '.join(recipients) or 'none'}"
                )
            digests: dict[str, str] = {}
            for envelope in envelopes:
                self._check_envelope(caller, project, epoch, envelope)
                digests[envelope.recipient] = hashlib.sha256(
                    envelope.enc + envelope.ciphertext
                ).hexdigest()
            tx.executemany(
                "INSERT INTO secret_envelopes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        project.id,
                        epoch,
                        caller.organisation,
                        e.recipient,
                        e.enc,
                        e.ciphertext,
                        e.signature,
                        e.sender_certificate_pem,
                        utc_now(),
                    )
                    for e in envelopes
                ],
            )
            tx.audit(
                event(
                    caller,
                    "secret.epoch_started",
                    project.id,
                    {"epoch": epoch, "envelope_sha256": digests},
                )
            )
        log.info(
            "secret epoch %d started",
            epoch,
            extra={"caller": caller, "project": project.id, "epoch": epoch},
        )
        return epoch

    def envelope(self, caller: Identity, project_id: str, epoch: int = 0) -> Envelope:
        """The envelope sealed to the caller's organisation (latest epoch when ``epoch`` is 0)."""
        project = self._member_project(caller, project_id, "secret.get_envelope")
        epoch = epoch or current_epoch(self.store, project.id)
        row = self.store.query_one(
            "SELECT * FROM secret_envelopes WHERE project_id = ? AND epoch = ? AND recipient = ?",
            (project.id, epoch, caller.organisation),
        )
        if row is None:
            raise NotFound(
                f"project {project.id!r} has no secret envelope for organisation "
                f"{caller.organisation!r} at epoch {epoch}"
                + ("; no node has created a secret yet" if epoch == 0 else "")
            )
        with self.store.transaction() as tx:
            tx.audit(
                event(
                    caller,
                    "secret.envelope_fetched",
                    project.id,
                    {"epoch": epoch, "sender": row["sender"]},
                )
            )
        log.info(
            "sealed secret of epoch %d fetched",
            epoch,
            extra={"caller": caller, "project": project.id, "epoch": epoch},
        )
        return Envelope(
            project.id,
            epoch,
            str(row["sender"]),
            str(row["recipient"]),
            bytes(row["enc"]),
            bytes(row["ciphertext"]),
            bytes(row["signature"]),
            str(row["sender_certificate_pem"]),
        )

    def _check_envelope(
        self, caller: Identity, project: Project, epoch: int, envelope: Envelope
    ) -> None:
        where = f"the envelope for {envelope.recipient!r}"
        if envelope.project_id != project.id or envelope.epoch != epoch:
            raise InvalidRequest(f"{where} names another project or epoch")
        if envelope.sender != caller.organisation:
            raise InvalidRequest(f"{where} names {envelope.sender!r} as its sender")
        if len(envelope.enc) != sealing.ENC_BYTES:
            raise InvalidRequest(f"{where} has an encapsulated key of the wrong length")
        if not 0 < len(envelope.ciphertext) <= sealing.MAX_CIPHERTEXT_BYTES:
            raise InvalidRequest(f"{where} has a ciphertext of the wrong length")
        self._check_signed_by_caller(
            caller,
            envelope.sender_certificate_pem,
            envelope.signature,
            sealing.envelope_message(
                project.id,
                epoch,
                envelope.sender,
                envelope.recipient,
                envelope.enc,
                envelope.ciphertext,
            ),
            where,
        )

    @staticmethod
    def _check_signed_by_caller(
        caller: Identity, certificate_pem: str, signature: bytes, message: bytes, what: str
    ) -> None:
        if len(certificate_pem) > _MAX_CERTIFICATE_CHARS:
            raise InvalidRequest(f"the certificate with {what} is too large")
        try:
            certificate = sealing.load_certificate(certificate_pem)
            named = identity_from_certificate(certificate_pem.encode())
            if named != Identity(caller.organisation, Role.NODE):
                raise InvalidRequest(
                    f"the certificate with {what} names {named}, not the caller ({caller})"
                )
            sealing.verify(certificate, signature, message)
        except (sealing.SignatureError, InvalidIdentity) as exc:
            raise InvalidRequest(f"{what}: {exc}") from None
