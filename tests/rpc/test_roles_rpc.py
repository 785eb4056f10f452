"""Roles are scoped to projects (issue 21, findings 1 and 6), over real mutual TLS.

The outside probe's reproduction first: an admin certificate for an
organisation the project does not name, issued by the project's own CA with
``hublink pki issue``, must not close the project, and the refusal is in the
audit log. Then what a named admin may do (close, in two confirmed steps),
what an auditor sees, and how refusals of the transport are audited.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner

from hublink.cli import main
from hublink.identity import Identity, Role
from hublink.v1 import admin_pb2, admin_pb2_grpc, audit_pb2, audit_pb2_grpc
from tests.rpc.conftest import (
    ADMIN_ORGANISATION,
    AUDITOR_ORGANISATION,
    RunningCoordinator,
)

DEADLINE = 20


def _client_config(coordinator: RunningCoordinator, files_stem: Path, at: Path) -> Path:
    at.write_text(
        f'coordinator = "{coordinator.address}"\n'
        "[tls]\n"
        f'ca = "{coordinator.pki.authority.ca}"\n'
        f'cert = "{files_stem}.pem"\n'
        f'key = "{files_stem}.key"\n',
        encoding="utf-8",
    )
    return at


def _refusals(coordinator: RunningCoordinator) -> list[dict[str, object]]:
    return [
        {
            "organisation": e.event.actor_organisation,
            "role": e.event.actor_role,
            "project": e.event.project_id,
            **e.event.details,
        }
        for e in coordinator.core.store.audit_entries()
        if e.event.action == "access.refused"
    ]


def test_an_admin_of_an_organisation_outside_the_project_cannot_close_it(
    coordinator: RunningCoordinator, tmp_path: Path
) -> None:
    runner = CliRunner()
    pki = str(coordinator.pki.directory)
    issued = runner.invoke(
        main, ["pki", "issue", pki, "--organisation", "evil-org", "--role", "admin"]
    )
    assert issued.exit_code == 0, issued.output
    config = _client_config(
        coordinator, coordinator.pki.directory / "admin-evil-org", tmp_path / "evil.toml"
    )

    project = coordinator.project_id
    close = ["admin", "close", "--config", str(config), "--project", project, "--reason", "probe"]
    closed = runner.invoke(main, [*close, "--yes"])

    assert closed.exit_code != 0
    assert "PERMISSION_DENIED" in closed.output
    assert "evil-org" in closed.output
    state = coordinator.core.store.query_one(
        "SELECT state FROM projects WHERE id = ?", (coordinator.project_id,)
    )
    assert state is not None and state["state"] == "open"
    [refusal] = _refusals(coordinator)
    assert refusal["organisation"] == "evil-org"
    assert refusal["role"] == "admin"
    assert refusal["attempted"] == "project.close"
    assert refusal["project"] == coordinator.project_id


def test_an_outside_admin_can_neither_read_state_nor_list_the_project(
    coordinator: RunningCoordinator,
) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(coordinator.channel(Identity("evil-org", Role.ADMIN)))
    with pytest.raises(grpc.RpcError) as refused:
        admin.GetProjectState(
            admin_pb2.GetProjectStateRequest(project_id=coordinator.project_id), timeout=DEADLINE
        )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert [r["attempted"] for r in _refusals(coordinator)] == ["project.state"]


def test_closing_takes_two_calls_bound_to_the_project_and_the_caller(
    coordinator: RunningCoordinator,
) -> None:
    named = admin_pb2_grpc.AdminServiceStub(
        coordinator.channel(Identity(ADMIN_ORGANISATION, Role.ADMIN))
    )
    project = coordinator.project_id

    first = named.CloseProject(
        admin_pb2.CloseProjectRequest(project_id=project, reason="evaluation ended"),
        timeout=DEADLINE,
    )
    assert first.confirmation and first.expires_at and not first.closed
    actions = [e.event.action for e in coordinator.core.store.audit_entries()]
    assert actions[-1] == "project.close_requested"

    with pytest.raises(grpc.RpcError) as forged:
        named.CloseProject(
            admin_pb2.CloseProjectRequest(
                project_id=project, reason="evaluation ended", confirmation="0" * 40
            ),
            timeout=DEADLINE,
        )
    assert forged.value.code() is grpc.StatusCode.FAILED_PRECONDITION

    done = named.CloseProject(
        admin_pb2.CloseProjectRequest(
            project_id=project, reason="evaluation ended", confirmation=first.confirmation
        ),
        timeout=DEADLINE,
    )
    assert done.closed
    actions = [e.event.action for e in coordinator.core.store.audit_entries()]
    assert actions[-2:] == ["project.close_confirmed", "project.closed"]


def test_an_auditor_the_project_does_not_name_sees_none_of_its_entries(
    coordinator: RunningCoordinator,
) -> None:
    outsider = audit_pb2_grpc.AuditServiceStub(
        coordinator.channel(Identity("another-ig-office", Role.AUDITOR))
    )
    with pytest.raises(grpc.RpcError) as refused:
        list(outsider.ListEntries(audit_pb2.ListEntriesRequest(), timeout=DEADLINE))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    named = audit_pb2_grpc.AuditServiceStub(
        coordinator.channel(Identity(AUDITOR_ORGANISATION, Role.AUDITOR))
    )
    entries = list(named.ListEntries(audit_pb2.ListEntriesRequest(), timeout=DEADLINE))
    assert entries
    assert {e.project_id for e in entries} == {coordinator.project_id}


def test_an_auditor_verifies_its_own_entries_by_inclusion_proofs(
    coordinator: RunningCoordinator, tmp_path: Path
) -> None:
    from hublink.audit.checkpoint import write_public_key

    outsider_refused = admin_pb2_grpc.AdminServiceStub(
        coordinator.channel(Identity("evil-org", Role.ADMIN))
    )
    with pytest.raises(grpc.RpcError):  # a refusal: the project's second entry
        outsider_refused.GetProjectState(
            admin_pb2.GetProjectStateRequest(project_id=coordinator.project_id), timeout=DEADLINE
        )
    public = tmp_path / "coordinator.pub"
    write_public_key(coordinator.core.store.signer.verifier, public)
    auditor = Identity(AUDITOR_ORGANISATION, Role.AUDITOR)
    files = coordinator.pki.issue(auditor)
    config = _client_config(coordinator, files.cert.with_suffix(""), tmp_path / "auditor.toml")

    verified = CliRunner().invoke(
        main, ["audit", "verify", "--config", str(config), "--key", str(public)]
    )

    assert verified.exit_code == 0, verified.output
    assert "audit verify passed: 2 entries of your projects proved" in verified.output
