"""deploy/ agrees with the code: ports, paths, commands and users.

No container engine or cluster runs where the tests run, so the images,
compose file, manifests and units are checked as files: they parse, every
command they run exists with the options given, every path a config names is
mounted where the config expects it, the ports are the ones the configs
listen on, and nothing runs as root.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import yaml

import hublink
from coordinator.projects import load_project
from hublink.cli import main
from hublink.config import CoordinatorConfig, NodeConfig, from_mapping, load

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent
NON_ROOT_UID = 10001
#: python:3.11.14-slim-bookworm's multi-platform index digest (not checked against Docker Hub,
#: which the tests cannot reach; deploy/README.md, "Base image").
PINNED_BASE = (
    "python:3.11.14-slim-bookworm@sha256:"
    "65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d"
)


def check_command(words: list[str]) -> None:
    """``hublink WORDS…`` names a real command and only options it has."""
    command: click.Command = main
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        found = command.get_command(click.Context(command), rest.pop(0))
        assert found is not None, f"hublink has no command {' '.join(words)!r}"
        command = found
    assert not isinstance(command, click.Group), f"{words} stops at a group"
    options = {name for p in command.params for name in p.opts}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"hublink {' '.join(words)}: no option {word}"


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def covered(path: Path | PurePosixPath, mounts: set[str]) -> bool:
    """Whether ``path`` is a mount target or lies inside one."""
    return any(str(path) == m or str(path).startswith(m.rstrip("/") + "/") for m in mounts)


def coordinator_paths(config: CoordinatorConfig) -> list[Path]:
    return [
        config.tls.ca,
        config.tls.cert,
        config.tls.key,
        config.database.parent,
        *config.projects,
    ]


def node_paths(config: NodeConfig) -> list[Path]:
    paths = [config.tls.ca, config.tls.cert, config.tls.key, config.schema, config.input.path]
    paths += [config.state_dir, config.output.parent]
    if config.secret_file is not None:
        paths.append(config.secret_file)
    return paths


# --------------------------------------------------------------------------- configs
def test_the_deploy_configs_load_and_the_project_uses_the_shipped_schema() -> None:
    coordinator = load(DEPLOY / "config" / "coordinator.toml", CoordinatorConfig)
    assert port_of(coordinator.listen) == port_of(CoordinatorConfig.listen)
    assert port_of(coordinator.ops_listen) == port_of(CoordinatorConfig.ops_listen)
    for organisation in ("health-visiting", "flying-start"):
        node = load(DEPLOY / "config" / f"node-{organisation}.toml", NodeConfig)
        assert node.coordinator == f"coordinator:{port_of(coordinator.listen)}"
    load(DEPLOY / "systemd" / "node.toml", NodeConfig)
    project = load_project(DEPLOY / "config" / "projects" / "early-years.toml")
    assert set(project.organisations) == {"health-visiting", "flying-start"}
    shipped = Path(hublink.__file__).parent / "schemas" / "early-years.json"
    copy = DEPLOY / "config" / "projects" / "early-years.json"
    assert copy.read_bytes() == shipped.read_bytes()


# ------------------------------------------------------------------------- Dockerfiles
@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("coordinator.Dockerfile", ["coordinator", "serve"]),
        ("node.Dockerfile", ["node", "upload"]),
    ],
)
def test_images_are_pinned_non_root_and_run_real_commands(name: str, command: list[str]) -> None:
    text = (DEPLOY / name).read_text()
    bases = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert bases and set(bases) == {"${BASE_IMAGE}"}
    (default,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    assert default == PINNED_BASE  # by digest: a tag can be moved, a digest cannot
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] == str(NON_ROOT_UID)
    assert "--no-deps" in text and "-r requirements.lock" in text  # the lock route
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.MULTILINE):
        for item in source.split():
            assert (REPO / item).exists(), f"{name} copies {item}, which does not exist"
    entrypoint = re.search(r'^ENTRYPOINT \["hublink"\]', text, flags=re.MULTILINE)
    assert entrypoint is not None
    cmd = re.search(r"^CMD (\[.*\])", text, flags=re.MULTILINE)
    assert cmd is not None
    words = yaml.safe_load(cmd.group(1))
    assert words[: len(command)] == command
    check_command(words)


@pytest.mark.parametrize("name", ["coordinator.Dockerfile", "node.Dockerfile"])
def test_builds_trust_an_organisations_proxy_ca_from_deploy_certs(name: str) -> None:
    text = (DEPLOY / name).read_text()
    build = text[: text.index("FROM ${BASE_IMAGE}\n")]  # the build stage, which downloads
    copy = build.index("COPY deploy/certs/ /usr/local/share/ca-certificates/")
    update = build.index("update-ca-certificates")
    assert copy < update < build.index("apt-get update") < build.index("pip wheel")
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    assert f"PIP_CERT={bundle}" in build and f"SSL_CERT_FILE={bundle}" in build
    # The folder exists (COPY needs it) and holds no certificate by default.
    assert not list((DEPLOY / "certs").glob("*.crt"))


def test_the_coordinator_image_exposes_the_configured_ports() -> None:
    text = (DEPLOY / "coordinator.Dockerfile").read_text()
    exposed = re.search(r"^EXPOSE (.+)$", text, flags=re.MULTILINE)
    assert exposed is not None
    config = load(DEPLOY / "config" / "coordinator.toml", CoordinatorConfig)
    assert {int(p) for p in exposed.group(1).split()} == {
        port_of(config.listen),
        port_of(config.ops_listen),
    }
    assert f"127.0.0.1:{port_of(config.ops_listen)}/readyz" in text


# ------------------------------------------------------------------------------ compose
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a compose service's bind mounts and volumes."""
    out = {}
    for volume in service.get("volumes", []):
        found = re.fullmatch(r"(\$\{[^}]*\}[^:]*|[^:]+):([^:]+)(?::ro|:rw)?", volume)
        assert found is not None, volume
        out[found.group(2)] = found.group(1)
    for secret in service.get("secrets", []):
        out[f"/run/secrets/{secret}"] = secret
    return out


def test_compose_brings_up_a_coordinator_and_two_nodes_as_configured() -> None:
    services = compose()["services"]
    assert set(services) == {"coordinator", "node-health-visiting", "node-flying-start"}
    for service in services.values():
        assert service["user"].split(":")[0] == str(NON_ROOT_UID)
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        limits = service["deploy"]["resources"]["limits"]
        assert {"cpus", "memory", "pids"} <= set(limits)
        check_command(service["command"])
        for target, host in mounts(service).items():
            if host.startswith("./"):  # files in the repository must exist
                assert (DEPLOY / host).exists(), f"{host} (mounted at {target}) is missing"
            elif host.startswith("${"):  # certificates, secret and data come from outside
                assert target.startswith(("/etc/hublink/tls", "/data/")), target

    coordinator = services["coordinator"]
    where = mounts(coordinator)
    config_path = DEPLOY / where["/etc/hublink/coordinator.toml"]
    config = load(config_path, CoordinatorConfig)
    published = {int(p.rsplit(":", 1)[1]) for p in coordinator["ports"]}
    assert published == {port_of(config.listen), port_of(config.ops_listen)}
    assert f"127.0.0.1:{port_of(config.ops_listen)}/readyz" in " ".join(
        coordinator["healthcheck"]["test"]
    )
    for path in coordinator_paths(config):
        assert covered(path, set(where)), f"{path} is not mounted in the coordinator"

    secrets = compose()["secrets"]
    for name in ("node-health-visiting", "node-flying-start"):
        node = services[name]
        where = mounts(node)
        node_config = load(DEPLOY / where["/etc/hublink/node.toml"], NodeConfig)
        project = load_project(DEPLOY / "config" / "projects" / "early-years.toml")
        assert node_config.project == project.id
        for path in node_paths(node_config):
            assert covered(path, set(where)), f"{path} is not mounted in {name}"
        for secret in node.get("secrets", []):
            assert secret in secrets
        assert node["depends_on"]["coordinator"]["condition"] == "service_healthy"


def test_compose_states_that_it_needs_compose_v2() -> None:
    # Compose v1 rejects the top-level name and ignores deploy.resources outside Swarm.
    assert "name" in compose()
    header = (DEPLOY / "compose.yaml").read_text().split("\nname:")[0]
    assert "Needs Compose v2" in header
    assert "Needs **Compose v2**" in (DEPLOY / "README.md").read_text()


# --------------------------------------------------------------------------- Kubernetes
def manifests() -> dict[str, dict[str, Any]]:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "coordinator.yaml").read_text()))
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents}


def test_the_kubernetes_coordinator_keeps_its_data_and_probes_the_operations_port() -> None:
    found = manifests()
    configmap = found["ConfigMap/hublink-coordinator-config"]
    source = DEPLOY / "kubernetes" / "coordinator.yaml"
    config = from_mapping(
        tomllib.loads(configmap["data"]["coordinator.toml"]),
        CoordinatorConfig,
        source=source,
        base=Path("/"),
    )
    statefulset = found["StatefulSet/hublink-coordinator"]
    spec = statefulset["spec"]["template"]["spec"]
    assert statefulset["spec"]["replicas"] == 1  # SQLite: one writer
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == NON_ROOT_UID
    (container,) = spec["containers"]
    check_command(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": port_of(config.listen), "ops": port_of(config.ops_listen)}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False

    volumes = {v["name"]: v for v in spec["volumes"]}
    claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
    mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for path in coordinator_paths(config):
        assert covered(path, set(mounted)), f"{path} is not mounted"
    data_mount = next(m for m in mounted if covered(config.database, {m}))
    assert mounted[data_mount] in claims  # the database is on a persistent volume
    tls_mount = next(m for m in mounted if covered(config.tls.key, {m}))
    assert "secret" in volumes[mounted[tls_mount]]  # the key comes from a Secret
    assert mounted["/etc/hublink/coordinator.toml"] == "config"
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert spec["terminationGracePeriodSeconds"] > 2 * config.shutdown_grace_seconds

    grpc_service = found["Service/hublink-coordinator"]["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in grpc_service] == [
        (port_of(config.listen), "grpc")
    ]
    ops_service = found["Service/hublink-coordinator-ops"]
    assert ops_service["spec"]["ports"][0]["port"] == port_of(config.ops_listen)


def test_the_kubernetes_coordinator_is_limited_and_fenced() -> None:
    found = manifests()
    statefulset = found["StatefulSet/hublink-coordinator"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert {"cpu", "memory"} <= set(resources["limits"])
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["seccompProfile"]["type"] == "RuntimeDefault"

    headless = found["Service/hublink-coordinator-headless"]
    assert headless["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["serviceName"] == headless["metadata"]["name"]

    policy = found["NetworkPolicy/hublink-coordinator"]["spec"]
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    by_port = {rule["ports"][0]["port"]: rule["from"] for rule in policy["ingress"]}
    assert set(by_port) == {"grpc", "ops"}  # nothing else is admitted
    assert all(len(rule["ports"]) == 1 for rule in policy["ingress"])
    (grpc_from,) = by_port["grpc"]
    assert grpc_from["namespaceSelector"]["matchLabels"] == {
        "hublink.example.org/grpc-clients": "true"
    }
    (ops_from,) = by_port["ops"]
    assert ops_from["namespaceSelector"]["matchLabels"] == {
        "hublink.example.org/monitoring": "true"
    }
    assert "podSelector" in ops_from  # Prometheus itself, not every pod in that namespace


# ------------------------------------------------------------------------------ systemd
def unit(name: str) -> configparser.ConfigParser:
    # strict=False: systemd allows a key more than once (SystemCallFilter allow, then deny).
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


@pytest.mark.parametrize(
    "name",
    ["hublink-coordinator.service", "hublink-node-upload.service", "hublink-node-keys.service"],
)
def test_systemd_units_run_real_commands_as_an_unprivileged_user(name: str) -> None:
    service = unit(name)["Service"]
    assert service["User"] not in ("", "root")
    words = service["ExecStart"].split()
    assert words[0].endswith("/hublink")
    check_command(words[1:])
    assert service["ReadWritePaths"] == "/var/lib/hublink"
    config = Path(words[words.index("--config") + 1])
    if "node" in name:
        example = load(DEPLOY / "systemd" / "node.toml", NodeConfig)
        assert config == Path("/etc/hublink/node.toml")
        assert covered(example.state_dir, {service["ReadWritePaths"]})
    else:
        example_coordinator = load(DEPLOY / "config" / "coordinator.toml", CoordinatorConfig)
        assert config == Path("/etc/hublink/coordinator.toml")
        assert covered(example_coordinator.database, {service["ReadWritePaths"]})
        assert int(service["TimeoutStopSec"]) > 2 * example_coordinator.shutdown_grace_seconds


def test_only_the_upload_unit_gets_the_secret_and_as_a_credential() -> None:
    upload = unit("hublink-node-upload.service")["Service"]
    name, _, source = upload["LoadCredential"].partition(":")
    example = load(DEPLOY / "systemd" / "node.toml", NodeConfig)
    assert Path(source) == example.secret_file  # root-only file; the unit gets a copy
    words = upload["ExecStart"].split()
    assert words[words.index("--secret-file") + 1] == f"%d/{name}"
    keys = unit("hublink-node-keys.service")["Service"]
    assert "LoadCredential" not in keys and "--secret-file" not in keys["ExecStart"]


def test_the_keys_timer_starts_the_keys_service() -> None:
    timer = unit("hublink-node-keys.timer")
    assert (DEPLOY / "systemd" / timer["Timer"]["Unit"]).exists()
    assert timer["Install"]["WantedBy"] == "timers.target"
