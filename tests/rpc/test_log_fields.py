"""A coordinator's log lines carry ids as fields, never in their text (issue 21).

The probe of issue 21 found JSON log lines with upload ids, run ids and
organisation names inside the message, so a pipeline could not select one
upload's lines and every id reached whatever indexes message text. Here a
coordinator does a day's work over mutual TLS (uploads, one under an id another
organisation holds, refusals, a rejected upload, a run, keys, a close request)
and every hublink log line it wrote is read back: none may hold an id in its
text, and the ids must be there as fields.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
import pytest

from coordinator.core.upload_ids import public
from hublink import logformat
from hublink.clients import AdminClient
from hublink.identity import Identity, Role
from node.uploader import NodeClient
from tests.rpc.conftest import (
    ADMIN_ORGANISATION,
    ANALYST_ORGANISATION,
    AUDITOR_ORGANISATION,
    PROJECT_ORGANISATIONS,
)
from tests.rpc.test_coordinator_rpc import (
    ADMIN,
    DEADLINE,
    FLYING_START,
    HEALTH_VISITING,
    SPEC,
    Uploads,
    encode,
    made_up_people,
    made_up_records,
    new_upload_id,
)


def a_days_work(coordinator: Any) -> None:
    """Uploads, refusals, a rejected upload, a matching run, keys and a close request."""
    people = made_up_people(12, seed=41)
    hv = NodeClient(coordinator.channel(HEALTH_VISITING), timeout=DEADLINE)
    project = hv.project(coordinator.project_id)
    receipt = hv.upload(project, SPEC.sha256, encode(people[:8]), chunk_records=3)
    # Flying start sends under the id health visiting holds, and asks after one it does not.
    fs = Uploads.over(coordinator.channel(FLYING_START), coordinator.project_id)
    fs.upload(receipt.upload_id, [made_up_records(4, seed=42)])
    with pytest.raises(grpc.RpcError):
        fs.status(new_upload_id())
    # A second upload from health visiting is refused; a wrong digest erases one.
    raw = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    with pytest.raises(grpc.RpcError):
        raw.begin(new_upload_id(), expected=2)
    childcare = Identity(PROJECT_ORGANISATIONS[2], Role.NODE)
    third = Uploads.over(coordinator.channel(childcare), coordinator.project_id)
    wrong = new_upload_id()
    third.begin(wrong, expected=2)
    third.put(wrong, 0, made_up_records(2, seed=43))
    with pytest.raises(grpc.RpcError):
        third.commit(wrong, 1, 2, "0" * 64)

    admin = AdminClient(coordinator.channel(ADMIN), timeout=DEADLINE)
    started = admin.start_run(coordinator.project_id)
    report = admin.wait(coordinator.project_id, started.run_id, poll=0.05, timeout=20)
    assert report.state == "completed", report.message
    assert len(list(hv.linkage_keys(coordinator.project_id))) == 8
    admin.request_close(coordinator.project_id, "log test")


def ids_held(coordinator: Any) -> set[str]:
    """Every id the day produced: project, organisations, uploads, runs and tokens."""
    store = coordinator.core.store
    uploads = {str(r["id"]) for r in store.query("SELECT id FROM uploads")}
    return {
        coordinator.project_id,
        *PROJECT_ORGANISATIONS,
        ADMIN_ORGANISATION,
        ANALYST_ORGANISATION,
        AUDITOR_ORGANISATION,
        *uploads,
        *(public(u) for u in uploads),
        *(str(r["id"]) for r in store.query("SELECT id FROM runs")),
        *(str(r["token"]) for r in store.query("SELECT token FROM records")),
    }


def test_no_log_line_holds_an_id_in_its_text(
    coordinator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="hublink"):
        a_days_work(coordinator)
    ids = ids_held(coordinator)
    lines = [r for r in caplog.records if r.name.startswith("hublink")]
    assert len(ids) > 20 and len(lines) > 10

    in_text = [(r.name, r.getMessage()) for r in lines if any(i in r.getMessage() for i in ids)]
    assert in_text == []
    # The ids are there, as fields, in the JSON a collector reads.
    parsed = [json.loads(logformat.JsonFormatter().format(r)) for r in lines]
    for field in ("project", "upload", "run", "caller"):
        assert any(line.get(field) for line in parsed), field
    runs = {str(r["id"]) for r in coordinator.core.store.query("SELECT id FROM runs")}
    assert runs <= {line.get("run") for line in parsed}
