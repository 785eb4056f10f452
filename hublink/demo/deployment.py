"""A whole local deployment written as operators would write it: CA, project, one config per party.

The demo runs on it, and so do the end-to-end tests and benchmarks, so the
files they exercise are the files the demo shows. Every party gets its own
certificate from a throwaway CA and its own TOML file; nothing is shared but
the project definition and, when the nodes do not exchange the secret
through the coordinator, one secret file.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import grpc

from hublink import sealing, synthetic
from hublink.config import NodeConfig, load
from hublink.demo.policy import write_policy
from hublink.identity import Identity, Role
from hublink.pki import create_authority, issue_certificate
from hublink.spec import LinkageSpec
from node.secret_exchange import generate_node_key, load_node_key, raw_public
from node.secret_workflow import create_secret, fetch_secret, publish_key

PROJECT_ID = "early-years-demo"
COORDINATOR = Identity("linkage-unit", Role.COORDINATOR)
ADMIN = Identity("linkage-unit", Role.ADMIN)
ANALYST = Identity("family-hubs-analytics", Role.ANALYST)
AUDITOR = Identity("information-governance", Role.AUDITOR)


def free_port() -> int:
    """A loopback port nothing listens on now (the coordinator binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _toml_str(value: str) -> str:
    return json.dumps(value)


def _within(field_scoring: bool, record_clk: str) -> float:
    """The within threshold the demo writes: the default unless the salted record CLK
    decides alone (measured: docs/benchmarks.md, "Salted record CLK")."""
    return 0.74 if record_clk == "salted" and not field_scoring else 0.9


def write_deployment(
    out_dir: Path,
    data: synthetic.GeneratedData,
    port: int,
    *,
    secret_exchange: bool = False,
    field_scoring: bool = True,
    record_clk: str = "salted",
) -> dict[str, Path]:
    """Certificates, the project, and one config per party, as operators would write them.

    Returns the config file of each party: "coordinator", "admin", "analyst"
    and one per organisation of ``data``. The tests build their deployments
    with this too, so the demo and the tests exercise the same files.

    With ``secret_exchange`` the nodes agree their linkage secret through the
    coordinator (``exchange_secrets``): each node gets a key pair in its state
    folder, and the fingerprints, as each organisation would confirm them, go
    into the project file and every node's config. Without it the nodes share
    one secret file, the option for organisations that exchange it themselves.

    ``field_scoring`` and ``record_clk`` are the project's (both sides write them): the
    defaults are a project file's, salted per-field filters and record CLK, decided by one
    field model; the tests also write record-only and legacy unsalted deployments.
    """
    pki_dir = out_dir / "pki"
    spec = LinkageSpec.from_json(
        LinkageSpec.default().json_text, field_scoring=field_scoring, record_clk=record_clk
    )
    authority = create_authority(pki_dir, name="hublink demo CA")
    config_dir = out_dir / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    schema_path = config_dir / "early-years.json"
    schema_path.write_text(LinkageSpec.default().json_text + "\n", encoding="utf-8")

    def tls_block(identity: Identity) -> str:
        files = issue_certificate(authority, identity, pki_dir)
        return (
            f"[tls]\nca = {_toml_str(str(files.ca.resolve()))}\n"
            f"cert = {_toml_str(str(files.cert.resolve()))}\n"
            f"key = {_toml_str(str(files.key.resolve()))}\n"
        )

    organisations = [layout.organisation for layout in data.layouts]
    node_tls = {org: tls_block(Identity(org, Role.NODE)) for org in organisations}
    node_keys = ""
    if secret_exchange:
        node_keys = "\n[node_keys]\n" + "".join(
            f"{org} = {_toml_str(_node_key(out_dir / 'nodes' / org / 'state', pki_dir, org))}\n"
            for org in organisations
        )
    project = config_dir / "project.toml"
    project.write_text(
        f"id = {_toml_str(PROJECT_ID)}\n"
        'purpose = "Find children known to one early-years service but not the others, to '
        'plan Family Hub outreach"\n'
        f"organisations = {json.dumps(organisations)}\n"
        'schema = "early-years.json"\n'
        f"encoding_sha256 = {_toml_str(spec.sha256)}\n"
        f"field_scoring = {str(field_scoring).lower()}\n"
        f"record_clk = {_toml_str(record_clk)}\n"
        "threshold = 0.83\n"
        "auto_threshold = true\n"
        # Record-only salted projects: a duplicate with one salt field written differently
        # scores about 0.8, so 0.9 would find only exact ones (docs/benchmarks.md).
        f"within_threshold = {_within(field_scoring, record_clk)}\n"
        'disclosure = "hospital-statistics"\n'
        'released_attributes = ["age_band", "area"]\n'
        "# Who administers, audits and queries this project (their certificates' organisations).\n"
        f"admins = {json.dumps([ADMIN.organisation])}\n"
        f"auditors = {json.dumps([AUDITOR.organisation])}\n"
        f"analysts = {json.dumps([ANALYST.organisation])}\n"
        f"attribute_precedence = {json.dumps(organisations)}\n"
        f"reference_date = {_toml_str(synthetic.REFERENCE_DATE.isoformat())}\n" + node_keys
    )
    coordinator_dir = out_dir / "coordinator"
    coordinator_dir.mkdir(exist_ok=True)
    paths = {"coordinator": config_dir / "coordinator.toml"}
    paths["coordinator"].write_text(
        f'listen = "127.0.0.1:{port}"\n'
        'ops_listen = "127.0.0.1:0"\n'
        f"database = {_toml_str(str((coordinator_dir / 'coordinator.db').resolve()))}\n"
        f"projects = [{_toml_str(str(project.resolve()))}]\n\n" + tls_block(COORDINATOR)
    )
    secret = out_dir / "secrets" / "project-secret"
    if not secret_exchange:
        secret.parent.mkdir(mode=0o700, exist_ok=True)
        secret.write_text(secrets.token_urlsafe(32) + "\n")
        secret.chmod(0o600)
    for layout in data.layouts:
        org = layout.organisation
        columns = "\n".join(
            f"{field} = {_toml_str(column)}" for field, column in layout.columns.items()
        )
        node_dir = out_dir / "nodes" / org
        node_dir.mkdir(parents=True, exist_ok=True)
        policy = write_policy(node_dir, layout, data.csv_paths[org])
        paths[org] = node_dir / "node.toml"
        paths[org].write_text(
            f'coordinator = "localhost:{port}"\n'
            f"project = {_toml_str(PROJECT_ID)}\n"
            f"schema = {_toml_str(str(schema_path.resolve()))}\n"
            f"field_scoring = {str(field_scoring).lower()}\n"
            f"record_clk = {_toml_str(record_clk)}\n"
            + (
                "secret_exchange = true\n"
                if secret_exchange
                else f"secret_file = {_toml_str(str(secret.resolve()))}\n"
            )
            + f"consent_policy = {_toml_str(str(policy.resolve()))}\n"
            'state_dir = "state"\n'
            'output = "linked.csv"\n\n'
            f"[input]\npath = {_toml_str(str(data.csv_paths[org].resolve()))}\n"
            f"id_column = {_toml_str(layout.id_column)}\n\n"
            f"[input.columns]\n{columns}\n\n"
            + _attributes_block(layout)
            + node_tls[org]
            + node_keys
        )
    # Clients show organisations by the names people know them by (hublink audit show).
    people = {
        ADMIN.organisation: "Linkage unit",
        ANALYST.organisation: "Family Hubs analytics team",
        AUDITOR.organisation: "Information governance team",
        **{layout.organisation: layout.display_name for layout in data.layouts},
    }
    names = "\n[display_names]\n" + "".join(
        f"{organisation} = {_toml_str(name)}\n" for organisation, name in people.items()
    )
    for name, identity in (("admin", ADMIN), ("analyst", ANALYST), ("auditor", AUDITOR)):
        paths[name] = config_dir / f"{name}.toml"
        paths[name].write_text(
            f'coordinator = "localhost:{port}"\n\n' + tls_block(identity) + names
        )
    return paths


def _node_key(state_dir: Path, pki_dir: Path, organisation: str) -> str:
    """Make a node's secret-exchange key pair; return the fingerprint its organisation confirms."""
    generate_node_key(state_dir)
    certificate = (pki_dir / f"{Role.NODE.value}-{organisation}.pem").read_text()
    return sealing.fingerprint(raw_public(load_node_key(state_dir)), certificate)


def exchange_secrets(
    configs: Mapping[str, Path],
    organisations: Sequence[str],
    *,
    channel_for: Callable[[str], grpc.Channel | None] = lambda org: None,
) -> int:
    """Agree the project's linkage secret across the nodes through the coordinator.

    Every node publishes its key; the first creates and seals the secret; the
    others fetch and open their copies. Returns the new epoch. ``channel_for``
    lets tests record what each node sends.
    """
    for org in organisations:
        publish_key(load(configs[org], NodeConfig), channel=channel_for(org))
    first, *others = organisations
    epoch = create_secret(load(configs[first], NodeConfig), channel=channel_for(first)).epoch
    for org in others:
        fetch_secret(load(configs[org], NodeConfig), epoch, channel=channel_for(org))
    return epoch


def _attributes_block(layout: synthetic.OrganisationLayout) -> str:
    """The node's released attributes: age band from its DOB column, area from its LA column."""
    block = (
        "[attributes.age_band]\n"
        f"column = {_toml_str(layout.columns['date_of_birth'])}\n"
        'derive = "age_band"\n\n'
    )
    if layout.area_column:
        block += f"[attributes.area]\ncolumn = {_toml_str(layout.area_column)}\n\n"
    return block
