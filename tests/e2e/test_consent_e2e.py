"""Consent over real mutual TLS: excluded records never leave, and withdrawal works end to end.

One organisation's export is given extra columns (a consent flag, a service,
a closed date, an opened date, a key worker) and a policy with one rule of
every kind. Each tenth of the rows is built to fail exactly one rule, so the
test knows, independently of the node, which records each rule must stop.
Every message the node sends is recorded by a client interceptor.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from coordinator.app import start as start_coordinator
from coordinator.core.store import Store
from hublink import synthetic
from hublink.clients import AdminClient
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.nhs import check_digit
from hublink.tls import TlsFiles, secure_channel
from hublink.v1 import upload_pb2
from node import consent
from node.keys import fetch_keys
from node.plan import plan
from node.tokens import TokenStore
from node.uploader import NodeClient
from node.withdraw import withdraw
from node.workflow import upload

pytestmark = pytest.mark.e2e

RULES = [
    "consented",
    "service",
    "objection",
    "closed-early",
    "under-7",
    "opened-recently",
    "keyworker-blank",
    "ndop",
    "fhub-kw9",
]
POLICY = """\
purpose = "consent e2e"

[[rule]]
name = "consented"
action = "require"
column = "Consent"
equals = "Y"

[[rule]]
name = "service"
action = "require"
column = "Service"
one_of = ["HV", "FHUB"]

[[rule]]
name = "objection"
action = "exclude"
column = "Patient ID"
in_file = "objections.txt"

[[rule]]
name = "closed-early"
action = "exclude"
column = "Closed"
before = 2025-04-01

[[rule]]
name = "under-7"
action = "require"
column = "DOB"
age_under = 7
on = 2026-03-31

[[rule]]
name = "opened-recently"
action = "require"
column = "Opened"
on_or_after = 2015-01-01

[[rule]]
name = "keyworker-blank"
action = "exclude"
column = "Keyworker"
blank = true

[[rule]]
name = "ndop"
column = "NHS Number"
opt_out_file = "opted-out.csv"
no_nhs_number = "include"

[[rule]]
name = "fhub-kw9"
action = "exclude"
all = [{ column = "Service", equals = "FHUB" }, { column = "Keyworker", equals = "KW9" }]
"""


class Recorder(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self.sent.append((details.method, request))
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        self.sent.append((details.method, request))
        return continuation(details, request)


@dataclass
class Deployment:
    root: Path
    configs: dict[str, Path]
    hv: NodeConfig
    designed: dict[str, set[str]]  # rule (or "included") -> local ids built to get it
    policy: Path
    wire: Recorder
    database: Path
    coordinator: Any

    def channel(self, config: NodeConfig) -> grpc.Channel:
        tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
        return grpc.intercept_channel(secure_channel(config.coordinator, tls), self.wire)

    def admin(self) -> AdminClient:
        config = load(self.configs["admin"], ClientConfig)
        tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
        return AdminClient(secure_channel(config.coordinator, tls))

    def tokens(self) -> dict[str, str]:
        """token -> local id, from the node's own token store."""
        with TokenStore(self.hv.state_dir / "tokens.sqlite") as store:
            upload_id = store.committed_upload(PROJECT_ID)
            assert upload_id is not None
            return store.local_ids(upload_id)


def _fresh_nhs_numbers(count: int) -> list[str]:
    out = []
    n = 880000
    while len(out) < count:
        body = f"999{n:06d}"
        digit = check_digit(body)
        if digit is not None:
            out.append(f"{body}{digit}")
        n += 1
    return out


def _build_input(root: Path, source: Path) -> tuple[Path, dict[str, set[str]]]:
    """The health-visiting export with extra columns; each tenth of rows fails one rule."""
    with source.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    opted_out = _fresh_nhs_numbers(len(rows))
    assert not {r["NHS Number"].replace(" ", "") for r in rows} & set(opted_out)
    designed: dict[str, set[str]] = {name: set() for name in [*RULES, "included"]}
    objections, opt_out_list = [], []
    for i, row in enumerate(rows):
        kind = i % 10
        row.update(Consent="Y", Service="HV", Closed="", Opened="2020-01-01", Keyworker="KW1")
        if kind == 0:
            row["Consent"] = "N"
        elif kind == 1:
            row["Service"] = "CSC"
        elif kind == 2:
            objections.append(row["Patient ID"])
        elif kind == 3:
            row["Closed"] = "30/06/2024"
        elif kind == 4:
            row["DOB"] = "01/01/2015"
        elif kind == 5:
            row["Opened"] = "2010-01-01"
        elif kind == 6:
            row["Keyworker"] = " "
        elif kind == 7:
            row["NHS Number"] = opted_out[i]
            opt_out_list.append(opted_out[i])
        elif kind == 8:
            row.update(Service="FHUB", Keyworker="KW9")
        name = RULES[kind] if kind < 9 else "included"
        designed[name].add(row["Patient ID"])
    folder = root / "consent-input"
    folder.mkdir()
    path = folder / "health-visiting-extended.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (folder / "objections.txt").write_text("".join(f"{i}\n" for i in objections))
    (folder / "opted-out.csv").write_text("nhs_number\n" + "".join(f"{n}\n" for n in opt_out_list))
    (folder / "policy.toml").write_text(POLICY)
    return path, designed


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("consent")
    data = synthetic.generate(root / "data", 300, seed=3, layouts=synthetic.DEFAULT_LAYOUTS[:2])
    configs = write_deployment(root, data, free_port())
    extended, designed = _build_input(root, data.csv_paths["health-visiting"])
    policy = extended.parent / "policy.toml"
    text = configs["health-visiting"].read_text()
    lines = [
        f"consent_policy = {json.dumps(str(policy))}"
        if line.startswith("consent_policy =")
        else f"path = {json.dumps(str(extended))}"
        if line.startswith("path =")
        else line
        for line in text.splitlines()
    ]
    configs["health-visiting"].write_text("\n".join(lines) + "\n")
    coordinator_config = load(configs["coordinator"], CoordinatorConfig)
    coordinator = start_coordinator(coordinator_config)
    wire = Recorder()
    deployment = Deployment(
        root,
        configs,
        load(configs["health-visiting"], NodeConfig),
        designed,
        policy,
        wire,
        coordinator_config.database,
        coordinator,
    )
    try:
        for organisation in ("health-visiting", "flying-start"):
            config = load(configs[organisation], NodeConfig)
            upload(config, channel=deployment.channel(config))
        admin = deployment.admin()
        run = admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID).run_id, timeout=120)
        assert run.state == "completed", run.message
        yield deployment
    finally:
        coordinator.stop()


def _begin_requests(wire: Recorder) -> list[upload_pb2.BeginUploadRequest]:
    return [m for method, m in wire.sent if method.endswith("/BeginUpload")]


def test_each_rule_kind_excludes_exactly_its_records_and_they_never_leave(deployment):
    sent_tokens = {
        record.token
        for method, message in deployment.wire.sent
        if method.endswith("/PutChunk")
        for record in message.records
    }
    tokens = deployment.tokens()
    hv_sent = {tokens[t] for t in sent_tokens if t in tokens}
    assert hv_sent == deployment.designed["included"]
    for rule in RULES:
        assert deployment.designed[rule], rule
        assert not deployment.designed[rule] & hv_sent, rule
        assert not deployment.designed[rule] & set(tokens.values()), rule  # never even encoded


def test_the_upload_carries_the_policy_hash_and_counts_only(deployment):
    begin = next(
        m
        for m in _begin_requests(deployment.wire)
        if m.consent.policy_sha256 and dict((c.rule, c.count) for c in m.consent.counts).get("ndop")
    )
    digest = hashlib.sha256(deployment.policy.read_bytes()).hexdigest()
    assert begin.consent.policy_sha256 == digest
    counts = {c.rule: c.count for c in begin.consent.counts}
    expected = {rule: len(ids) for rule, ids in deployment.designed.items()}
    assert counts == {**expected, consent.WITHDRAWN: 0}
    store = Store(deployment.database)
    try:
        started = [
            e
            for e in store.audit_entries()
            if e.event.action == "upload.started"
            and e.event.actor_organisation == "health-visiting"
        ]
    finally:
        store.close()
    assert started[0].event.details["consent"] == {"policy_sha256": digest, "counts": counts}


def test_the_exclusion_report_and_local_log_hold_counts_not_records(deployment):
    state = deployment.hv.state_dir
    report = json.loads((state / "exclusion-report.json").read_text())
    assert report["policy"]["sha256"] == hashlib.sha256(deployment.policy.read_bytes()).hexdigest()
    assert {d["rule"]: d["count"] for d in report["decisions"]}["objection"] == 30
    text = (state / "exclusion-report.txt").read_text()
    assert "objection" in text and "ndop" in text
    everything = text + (state / "node.log").read_text() + json.dumps(report)
    for ids in deployment.designed.values():
        assert not any(local_id in everything for local_id in ids)


def _held(database: Path, organisation: str) -> tuple[int, int]:
    """(records held, records with an entity) for one organisation's committed upload."""
    store = Store(database)
    try:
        held = store.query_one(
            "SELECT COUNT(*) AS n FROM records r JOIN uploads u ON u.id = r.upload_id "
            "WHERE u.organisation = ? AND u.state = 'committed'",
            (organisation,),
        )
        keyed = store.query_one(
            "SELECT COUNT(*) AS n FROM records r JOIN uploads u ON u.id = r.upload_id "
            "JOIN entities e ON e.record_id = r.id WHERE u.organisation = ? "
            "AND u.state = 'committed'",
            (organisation,),
        )
    finally:
        store.close()
    assert held is not None and keyed is not None
    return int(held["n"]), int(keyed["n"])


def test_withdrawal_end_to_end(deployment):
    hv = deployment.hv
    fs = load(deployment.configs["flying-start"], NodeConfig)
    included = sorted(deployment.designed["included"])
    withdrawn_ids = included[:5]
    before = fetch_keys(hv, channel=deployment.channel(hv))
    assert before.keys == len(included)
    tokens = deployment.tokens()
    hv_tokens = [t for t, lid in tokens.items() if lid in withdrawn_ids]

    # Another organisation cannot withdraw health visiting's records.
    other = NodeClient(deployment.channel(fs)).withdraw(PROJECT_ID, hv_tokens)
    assert other == (0, 5)
    assert _held(deployment.database, "health-visiting") == (len(included), len(included))

    done = withdraw(hv, [*withdrawn_ids, "NEVER-SENT-1"], channel=deployment.channel(hv))
    assert (done.withdrawn, done.not_found, done.never_uploaded) == (5, 0, 1)
    assert _held(deployment.database, "health-visiting") == (len(included) - 5,) * 2

    # Keys straight away, and after the next run, leave the withdrawn records out.
    for rerun in (False, True):
        if rerun:
            admin = deployment.admin()
            run = admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID).run_id, timeout=120)
            assert (
                run.state == "completed"
                and run.records == len(included) - 5 + _held(deployment.database, "flying-start")[0]
            )
        summary = fetch_keys(hv, channel=deployment.channel(hv))
        with summary.output.open(newline="") as handle:
            keyed = {row["local_id"] for row in csv.DictReader(handle)}
        assert keyed == set(included) - set(withdrawn_ids)

    store = Store(deployment.database)
    try:
        entries = [e for e in store.audit_entries() if e.event.action == "records.withdrawn"]
    finally:
        store.close()
    by_org = {e.event.actor_organisation: e.event.details for e in entries}
    assert by_org["health-visiting"]["withdrawn"] == 5
    assert by_org["flying-start"] == {
        "upload_id": by_org["flying-start"]["upload_id"],
        "requested": 5,
        "withdrawn": 0,
        "not_found": 5,
    }
    assert set(by_org["health-visiting"]) == {"upload_id", "requested", "withdrawn", "not_found"}
    # On the wire a withdrawal is the project and tokens, nothing else.
    asks = [m for method, m in deployment.wire.sent if method.endswith("/Withdraw")]
    assert asks and all(
        {f.name for f, _ in m.ListFields()} == {"project_id", "tokens"} for m in asks
    )
    assert set(asks[-1].tokens) == set(hv_tokens)
    details = json.dumps([e.event.details for e in entries])
    assert not any(token in details for token in hv_tokens)

    log = (hv.state_dir / "node.log").read_text()
    assert "withdrawal.honoured" in log and "withdrawn=5" in log
    assert not any(local_id in log for local_id in withdrawn_ids)

    # The node remembers: a later run leaves the withdrawn records out before any rule.
    later = plan(hv)
    assert dict(later.decisions)[consent.WITHDRAWN] == 5
    assert later.included == len(included) - 5
