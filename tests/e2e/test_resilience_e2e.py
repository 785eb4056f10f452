"""A node's upload survives a flaky network and an interrupted run, storing each record once.

The coordinator is real (mutual TLS, SQLite); the faults are put on the
node's channel by a client interceptor: calls that fail before reaching the
coordinator, acknowledgements lost after the coordinator stored the chunk,
and a channel that dies for good after some chunks (the node process
stopping half-way). The node is then run again from its files, as an
operator would, and must resume the same upload.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coordinator.app import RunningCoordinator
from coordinator.app import start as start_coordinator
from coordinator.core import candidates
from hublink import synthetic
from hublink.clients import RequestRefused
from hublink.config import CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.identity import Identity, Role
from hublink.tls import TlsFiles, secure_channel
from node.errors import RunError as NodeError
from node.tokens import TokenStore
from node.workflow import upload
from tests.conftest import InjectedRpcError

pytestmark = pytest.mark.e2e

RECORDS = 150
CHUNK = 20
PUT_CHUNK = "/hublink.v1.UploadService/PutChunk"


class Faults(grpc.UnaryUnaryClientInterceptor):
    """Fails chosen calls on the node's side of a real channel; keeps the chunks delivered."""

    def __init__(self, *, fail_before: int = 0, lose_acks: int = 0, die_after: int = -1) -> None:
        self.fail_before = fail_before
        self.lose_acks = lose_acks
        self.die_after = die_after
        self.delivered: list[int] = []

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if 0 <= self.die_after <= len(self.delivered):
            raise InjectedRpcError(details="connection reset (injected by the test)")
        if details.method != PUT_CHUNK:
            return continuation(details, request)
        if self.fail_before:
            self.fail_before -= 1
            raise InjectedRpcError(details="connection reset (injected by the test)")
        outcome = continuation(details, request)
        outcome.result()  # raises if the coordinator refused
        self.delivered.append(request.chunk_index)
        if self.lose_acks:
            self.lose_acks -= 1
            raise InjectedRpcError(details="connection reset (injected by the test)")
        return outcome


@dataclasses.dataclass
class Deployment:
    configs: dict[str, Path]
    coordinator: RunningCoordinator
    database: Path

    def node(self, organisation: str) -> NodeConfig:
        config = load(self.configs[organisation], NodeConfig)
        return dataclasses.replace(
            config, chunk_records=CHUNK, retry_initial_seconds=0.001, retry_max_seconds=0.002
        )

    def channel(self, config: NodeConfig, faults: Faults) -> grpc.Channel:
        tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
        return grpc.intercept_channel(secure_channel(config.coordinator, tls), faults)

    def stored(self, upload_id: str) -> tuple[int, int, str, str]:
        """(records, distinct tokens, state, digest) the coordinator holds for an upload."""
        with closing(sqlite3.connect(self.database)) as db, db:
            n, distinct = db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT token) FROM records WHERE upload_id = ?",
                (upload_id,),
            ).fetchone()
            state, digest = db.execute(
                "SELECT state, COALESCE(digest_sha256, '') FROM uploads WHERE id = ?",
                (upload_id,),
            ).fetchone()
        return int(n), int(distinct), str(state), str(digest)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    data = synthetic.generate(
        tmp_path / "data", RECORDS, seed=3, layouts=synthetic.DEFAULT_LAYOUTS[:2]
    )
    configs = write_deployment(tmp_path, data, free_port())
    config = load(configs["coordinator"], CoordinatorConfig)
    coordinator = start_coordinator(config)
    try:
        yield Deployment(configs, coordinator, config.database)
    finally:
        coordinator.stop(grace=None)


def test_transient_failures_and_lost_acknowledgements_are_retried(
    deployment: Deployment,
) -> None:
    config = deployment.node("health-visiting")
    faults = Faults(fail_before=2, lose_acks=2)
    summary = upload(config, channel=deployment.channel(config, faults))

    chunks = -(-summary.records // CHUNK)
    assert faults.fail_before == 0 and faults.lose_acks == 0
    # Two chunks reached the coordinator but their acknowledgements were lost; the node
    # asked for the upload's status and did not send them again.
    assert sorted(faults.delivered) == list(range(chunks))
    records, distinct, state, digest = deployment.stored(summary.upload_id)
    assert (records, distinct, state) == (summary.records, summary.records, "committed")
    assert digest == summary.digest_sha256

    # The metrics count each record once, and hold no token.
    assert deployment.coordinator.ops_port is not None
    url = f"http://127.0.0.1:{deployment.coordinator.ops_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("hublink_records_received_total", ())] == summary.records
    assert samples[("hublink_uploads_total", (("stage", "committed"),))] == 1
    calls = {
        dict(labels)["grpc_method"]: value
        for (name, labels), value in samples.items()
        if name == "grpc_server_handled_total" and dict(labels)["grpc_code"] == "OK"
    }
    # Each chunk reached the coordinator once; each of the four failures was followed by a
    # status check, not a blind resend.
    assert calls["PutChunk"] == chunks
    assert calls["GetUploadStatus"] == 4
    assert not any(
        name == "grpc_server_handled_total" and dict(labels)["grpc_code"] != "OK"
        for name, labels in samples
    )
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        tokens = store.local_ids(summary.upload_id)
    assert not any(token in text for token in tokens)


def test_an_interrupted_upload_resumes_from_the_last_acknowledged_chunk(
    deployment: Deployment,
) -> None:
    config = deployment.node("flying-start")
    dying = Faults(die_after=3)
    with pytest.raises(NodeError, match="resumes where it stopped"):
        upload(config, channel=deployment.channel(config, dying))
    assert dying.delivered == [0, 1, 2]
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        interrupted = store.interrupted_upload(PROJECT_ID)
    assert interrupted is not None
    upload_id, tokens = interrupted
    assert deployment.stored(upload_id)[:3] == (3 * CHUNK, 3 * CHUNK, "open")

    healthy = Faults()
    summary = upload(config, channel=deployment.channel(config, healthy))

    assert summary.upload_id == upload_id
    chunks = -(-summary.records // CHUNK)
    assert healthy.delivered == list(range(3, chunks))
    # Tokens are recorded a chunk at a time, each chunk before it is sent: the first run
    # recorded the chunks it reached (three sent, the fourth being sent), no more.
    assert len(tokens) == 4 * CHUNK < summary.records
    records, distinct, state, digest = deployment.stored(upload_id)
    assert (records, distinct, state) == (summary.records, summary.records, "committed")
    assert digest == summary.digest_sha256
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        assert store.committed_upload(PROJECT_ID) == upload_id
        assert store.interrupted_upload(PROJECT_ID) is None
        now = {local: token for token, local in store.local_ids(upload_id).items()}
    # The resumed run kept every token recorded before and gave the rest their own.
    assert len(now) == summary.records
    assert all(now[local] == token for local, token in tokens.items())


def test_a_refusal_is_not_retried_and_the_next_run_starts_afresh(
    deployment: Deployment,
) -> None:
    """A permanent refusal (records that differ from the chunks held) marks the upload failed."""
    config = deployment.node("health-visiting")
    dying = Faults(die_after=1)
    with pytest.raises(NodeError):
        upload(config, channel=deployment.channel(config, dying))
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        interrupted = store.interrupted_upload(PROJECT_ID)
    assert interrupted is not None
    # Give the interrupted upload's records other tokens, as if the token store had been
    # tampered with: what the node now sends no longer adds up to what the coordinator holds.
    with closing(sqlite3.connect(config.state_dir / "tokens.sqlite")) as db, db:
        db.execute(
            "UPDATE tokens SET token = 'Z' || substr(token, 2) WHERE upload_id = ?",
            (interrupted[0],),
        )
    with pytest.raises(RequestRefused) as refused:
        upload(config, channel=deployment.channel(config, Faults()))
    assert not refused.value.transient
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        assert store.interrupted_upload(PROJECT_ID) is None
    summary = upload(config, channel=deployment.channel(config, Faults()))
    assert summary.upload_id != interrupted[0]
    assert deployment.stored(summary.upload_id)[2] == "committed"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_run_still_going_at_shutdown_is_recorded_as_failed(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM's stop waits for a run, then records it failed; the audit log still verifies."""
    for organisation in ("health-visiting", "flying-start"):
        config = deployment.node(organisation)
        upload(config, channel=deployment.channel(config, Faults()))
    release = threading.Event()

    def stuck(*args: object, **kwargs: object) -> object:
        release.wait(30)
        raise RuntimeError("the test let the stuck run go")

    # The run gets stuck comparing, where a real run spends its time.
    monkeypatch.setattr(candidates, "find", stuck)
    core = deployment.coordinator.core
    run = core.start_run(Identity("linkage-unit", Role.ADMIN), PROJECT_ID)
    assert run.state == "running"
    try:
        deployment.coordinator.stop(grace=0.2)
    finally:
        release.set()
        core.wait_for_run(run.run_id, timeout=30)
    with closing(sqlite3.connect(deployment.database)) as db, db:
        state, message = db.execute(
            "SELECT state, message FROM runs WHERE id = ?", (run.run_id,)
        ).fetchone()
    assert (state, message) == ("failed", "the coordinator stopped during the run")
    verified = subprocess.run(
        [
            sys.executable,
            "-m",
            "hublink",
            "audit",
            "verify",
            "--database",
            str(deployment.database),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    # A restart finds nothing left running and keeps the failure as it was.
    restarted = start_coordinator(load(deployment.configs["coordinator"], CoordinatorConfig))
    try:
        rows = restarted.core.store.query("SELECT state FROM runs")
        assert [r["state"] for r in rows] == ["failed"]
    finally:
        restarted.stop(grace=None)


class TokensAtEachChunk(grpc.UnaryUnaryClientInterceptor):
    """Counts, as each chunk leaves, the tokens the node has recorded so far."""

    def __init__(self, token_store: Path) -> None:
        self.token_store = token_store
        self.recorded: list[int] = []

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if details.method == PUT_CHUNK:
            with closing(sqlite3.connect(self.token_store)) as db, db:
                self.recorded.append(int(db.execute("SELECT COUNT(*) FROM tokens").fetchone()[0]))
        return continuation(details, request)


def test_an_upload_reads_encodes_and_sends_one_chunk_at_a_time(deployment: Deployment) -> None:
    """The node streams: chunk k's records are encoded and given tokens just before chunk k
    leaves, so a million-record upload never sits in memory whole."""
    config = deployment.node("flying-start")
    watch = TokensAtEachChunk(config.state_dir / "tokens.sqlite")
    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    events: list[tuple[str, int, int]] = []

    summary = upload(
        config,
        channel=grpc.intercept_channel(secure_channel(config.coordinator, tls), watch),
        progress=lambda stage, done, total: events.append((stage, done, total)),
    )

    chunks = -(-summary.records // CHUNK)
    assert watch.recorded == [min((k + 1) * CHUNK, summary.records) for k in range(chunks)]
    # Encoding and sending alternate, a chunk at a time, against the total known up front.
    assert events[:4] == [
        ("encode", CHUNK, summary.records),
        ("upload", CHUNK, summary.records),
        ("encode", 2 * CHUNK, summary.records),
        ("upload", 2 * CHUNK, summary.records),
    ]
    assert events[-1] == ("upload", summary.records, summary.records)
    # Tokens are random and ascend through the upload, in the order records were sent.
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        sent = store.local_ids(summary.upload_id)
    with closing(sqlite3.connect(deployment.database)) as db:
        held = db.execute(
            "SELECT token FROM records WHERE upload_id = ? ORDER BY id", (summary.upload_id,)
        ).fetchall()
    order = [row[0] for row in held]
    assert order == sorted(order) and set(order) == set(sent)


def test_a_file_changed_while_it_is_sent_commits_nothing(deployment: Deployment) -> None:
    config = deployment.node("flying-start")
    original = config.input.path.read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)

    class Edits(grpc.UnaryUnaryClientInterceptor):
        """Someone saves the file (one record fewer) while the second chunk is on its way."""

        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            if details.method == PUT_CHUNK and request.chunk_index == 1:
                config.input.path.write_text("".join(lines[:-1]), encoding="utf-8")
            return continuation(details, request)

    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    with pytest.raises(NodeError, match="changed while it was being sent"):
        upload(
            config, channel=grpc.intercept_channel(secure_channel(config.coordinator, tls), Edits())
        )

    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        assert store.committed_upload(PROJECT_ID) is None
        assert store.interrupted_upload(PROJECT_ID) is None  # marked failed, not resumable
    with closing(sqlite3.connect(deployment.database)) as db, db:
        states = [r[0] for r in db.execute("SELECT state FROM uploads")]
    assert "committed" not in states
    # Run again on the file as it now is: a fresh upload of what it now holds.
    summary = upload(config, channel=deployment.channel(config, Faults()))
    assert deployment.stored(summary.upload_id)[2] == "committed"
