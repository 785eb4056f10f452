"""An admin can read a run's status while the run writes its results (issue #25).

A run stores its entities, lineage and figures in one transaction at its end, so a
failed or cancelled run leaves the previous keys; with millions of records that write
takes minutes. A status read must not wait for it: over a real server with mutual TLS,
the run here is held inside that transaction (as a big run is, for longer) while the
admin reads its status with a short deadline.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from coordinator.core import after_run
from hublink.clients import AdminClient
from tests.rpc.test_coordinator_rpc import (
    ADMIN,
    FLYING_START,
    HEALTH_VISITING,
    Uploads,
    made_up_records,
)

#: How long a status read may take while the run writes: well under the 60 s a client
#: waits by default, and under the seconds the held write lasts.
QUICK = 3.0
HELD = 8.0


def test_status_answers_while_the_run_writes_its_results(
    coordinator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed, node in enumerate((HEALTH_VISITING, FLYING_START)):
        Uploads.over(coordinator.channel(node), coordinator.project_id).upload(
            f"upload-{seed}", [made_up_records(50, seed=seed)]
        )
    writing, release = threading.Event(), threading.Event()
    record = after_run.record

    def slow_record(*args: Any, **kwargs: Any) -> None:
        """The run's final write, held open as a big run's is."""
        writing.set()
        release.wait(HELD)
        record(*args, **kwargs)

    monkeypatch.setattr(after_run, "record", slow_record)
    admin = AdminClient(coordinator.channel(ADMIN), timeout=QUICK)
    started = admin.start_run(coordinator.project_id)
    assert writing.wait(20), "the run never reached its final write"

    replies = []
    for _ in range(3):
        began = time.monotonic()
        status = admin.run_status(coordinator.project_id, started.run_id)
        replies.append(time.monotonic() - began)
        assert (status.state, status.stage) == ("running", "storing")
    assert max(replies) < QUICK / 2, replies
    assert not release.is_set()

    release.set()
    final = admin.wait(coordinator.project_id, started.run_id, poll=0.05, timeout=20)
    assert final.state == "completed", final.message
    assert final.records == 100
