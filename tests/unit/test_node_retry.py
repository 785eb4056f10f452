"""NodeClient's retries: transient failures are retried with bounded, jittered backoff."""

from __future__ import annotations

import random
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hublink.clients import RequestRefused
from hublink.v1 import project_pb2
from node.uploader import NodeClient, RetryPolicy
from tests.conftest import InjectedRpcError as Failure
from tests.conftest import ScriptedChannel


def client(script: list[Any], attempts: int = 4) -> tuple[NodeClient, ScriptedChannel, list[float]]:
    channel = ScriptedChannel(script)
    waits: list[float] = []
    policy = RetryPolicy(attempts=attempts, initial_seconds=1.0, max_seconds=4.0)
    return NodeClient(channel, timeout=7.0, retry=policy, sleep=waits.append), channel, waits  # type: ignore[arg-type]


def project() -> project_pb2.Project:
    return project_pb2.Project(project_id="p", max_chunk_records=10)


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ],
)
def test_transient_failures_are_retried_with_the_deadline_each_time(code: grpc.StatusCode) -> None:
    node, channel, waits = client([Failure(code), Failure(code), project()])
    assert node.project("p").project_id == "p"
    assert len(channel.calls) == 3 and all(t == 7.0 for _, t in channel.calls)
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0


def test_a_refusal_is_not_retried() -> None:
    node, channel, waits = client([Failure(grpc.StatusCode.PERMISSION_DENIED)])
    with pytest.raises(RequestRefused) as refused:
        node.project("p")
    assert not refused.value.transient
    assert len(channel.calls) == 1 and waits == []


def test_retries_stop_after_the_configured_attempts() -> None:
    node, channel, waits = client([Failure(grpc.StatusCode.UNAVAILABLE)] * 3, attempts=3)
    with pytest.raises(RequestRefused) as refused:
        node.project("p")
    assert refused.value.transient
    assert len(channel.calls) == 3 and len(waits) == 2


@given(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_each_wait_is_between_half_and_all_of_its_capped_backoff(retry: int, seed: int) -> None:
    policy = RetryPolicy(attempts=5, initial_seconds=0.5, max_seconds=15.0)
    cap = min(15.0, 0.5 * 2**retry)
    assert cap / 2 <= policy.delay(retry, random.Random(seed)) <= cap
