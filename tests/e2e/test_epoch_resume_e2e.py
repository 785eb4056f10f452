"""An interrupted upload is never resumed under a different linkage-secret epoch.

The node's interrupted upload was encoded under the secret of epoch 1. If
the project has moved to epoch 2 before the operator runs the upload again,
resuming would put encodings under two secrets into one upload, and they
would never match each other. The node must abandon the old upload, say so
in one line, and send everything afresh under epoch 2; the coordinator must
refuse to resume an upload under another epoch than it was begun with.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import grpc
import pytest

from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.config import CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, exchange_secrets, free_port, write_deployment
from hublink.spec import LinkageSpec
from hublink.tls import TlsFiles, secure_channel
from hublink.v1 import records_pb2, upload_pb2, upload_pb2_grpc
from node.errors import RunError as NodeError
from node.secret_workflow import create_secret
from node.tokens import TokenStore
from node.workflow import upload
from tests.conftest import InjectedRpcError

pytestmark = pytest.mark.e2e

PUT_CHUNK = "/hublink.v1.UploadService/PutChunk"


class DiesAfter(grpc.UnaryUnaryClientInterceptor):
    """The channel fails for good after ``chunks`` chunks are acknowledged (the run stops)."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if details.method == PUT_CHUNK and self.chunks == 0:
            raise InjectedRpcError(details="connection lost (injected by the test)")
        outcome = continuation(details, request)
        if details.method == PUT_CHUNK and outcome.exception() is None:
            self.chunks -= 1
        return outcome


def test_an_upload_interrupted_under_an_older_epoch_is_abandoned_and_sent_afresh(
    tmp_path: Path,
) -> None:
    data = synthetic.generate(tmp_path / "data", 120, seed=5, layouts=synthetic.DEFAULT_LAYOUTS[:2])
    configs = write_deployment(tmp_path, data, free_port(), secret_exchange=True)
    coordinator_config = load(configs["coordinator"], CoordinatorConfig)
    coordinator = start_coordinator(coordinator_config)
    try:
        health, flying = (
            dataclasses.replace(
                load(configs[org], NodeConfig),
                chunk_records=20,
                retry_attempts=1,
            )
            for org in ("health-visiting", "flying-start")
        )
        assert exchange_secrets(configs, ["health-visiting", "flying-start"]) == 1
        tls = TlsFiles(ca=health.tls.ca, cert=health.tls.cert, key=health.tls.key)
        dying = grpc.intercept_channel(secure_channel(health.coordinator, tls), DiesAfter(2))
        with pytest.raises(NodeError, match="resumes where it stopped"):
            upload(health, channel=dying)
        with TokenStore(health.state_dir / "tokens.sqlite") as store:
            interrupted = store.interrupted_upload(PROJECT_ID)
            assert interrupted is not None
            old_upload = interrupted[0]
            assert store.upload_epoch(old_upload) == 1

        # The project moves to a new secret before the node runs again.
        assert create_secret(flying).epoch == 2

        # The coordinator itself refuses to continue the old upload under epoch 2.
        stub = upload_pb2_grpc.UploadServiceStub(secure_channel(health.coordinator, tls))
        with pytest.raises(grpc.RpcError) as refused:
            stub.BeginUpload(
                upload_pb2.BeginUploadRequest(
                    project_id=PROJECT_ID,
                    upload_id=old_upload,
                    encoding_sha256=LinkageSpec.from_file(health.schema).sha256,
                    expected_records=len(interrupted[1]),
                    consent=records_pb2.ConsentSummary(),
                    secret_epoch=2,
                ),
                timeout=30,
            )
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "epoch 1, not 2; it cannot be resumed" in str(refused.value.details())

        # The node, run again, abandons it with one line and sends everything under epoch 2.
        summary = upload(health)
        assert summary.upload_id != old_upload
        assert summary.notes == (
            f"abandoned interrupted upload {old_upload}: its records were encoded under "
            f"linkage-secret epoch 1 but project '{PROJECT_ID}' is now at epoch 2; "
            "starting a new upload",
        )
        with closing(sqlite3.connect(coordinator_config.database)) as db, db:
            uploads = dict(
                db.execute(
                    "SELECT id, state || ':' || secret_epoch FROM uploads "
                    "WHERE organisation = 'health-visiting'"
                ).fetchall()
            )
            old_records = db.execute(
                "SELECT COUNT(*) FROM records WHERE upload_id = ?", (old_upload,)
            ).fetchone()[0]
            new_records = db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT token) FROM records WHERE upload_id = ?",
                (summary.upload_id,),
            ).fetchone()
        # The old upload was never committed, so no run ever uses its epoch-1 encodings.
        assert uploads == {old_upload: "open:1", summary.upload_id: "committed:2"}
        assert old_records == 40
        assert new_records == (summary.records, summary.records)
        with TokenStore(health.state_dir / "tokens.sqlite") as store:
            assert store.interrupted_upload(PROJECT_ID) is None
            assert store.committed_upload(PROJECT_ID) == summary.upload_id
            assert store.upload_epoch(summary.upload_id) == 2
        log = (health.state_dir / "node.log").read_text()
        assert f'upload_id={old_upload} reason="secret epoch changed"' in log
    finally:
        coordinator.stop(grace=None)
