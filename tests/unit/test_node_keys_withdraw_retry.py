"""Retries of the linkage-key stream and of Withdraw (NodeClient), against scripted fakes.

The key stream is the one call whose failure can come half-way through: the
node must then start it again and hand over the whole set once, never a
partial or doubled one. tests/e2e/test_network_faults_e2e.py cuts a real
connection in the middle of the stream.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from hublink.clients import RequestRefused
from hublink.v1 import keys_pb2
from node.uploader import NodeClient, RetryPolicy
from tests.conftest import InjectedRpcError as Failure
from tests.conftest import ScriptedChannel

KEYS = "/hublink.v1.KeyService/GetLinkageKeys"
WITHDRAW = "/hublink.v1.KeyService/Withdraw"


def batch(*pairs: tuple[str, str]) -> keys_pb2.LinkageKeyBatch:
    return keys_pb2.LinkageKeyBatch(keys=[keys_pb2.LinkageKey(token=t, key=k) for t, k in pairs])


def client(script: list[Any]) -> tuple[NodeClient, ScriptedChannel, list[float]]:
    channel = ScriptedChannel(script)
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, initial_seconds=1.0, max_seconds=4.0)
    node = NodeClient(channel, timeout=5.0, retry=policy, sleep=waits.append)  # type: ignore[arg-type]
    return node, channel, waits


FIRST = batch(("tok-a", "key-1"), ("tok-b", "key-2"))
SECOND = batch(("tok-c", "key-1"))


def test_a_stream_broken_half_way_is_restarted_and_returned_once_whole() -> None:
    node, channel, waits = client(
        [
            [FIRST, Failure(grpc.StatusCode.UNAVAILABLE)],
            [FIRST, SECOND],
        ]
    )
    keys = node.linkage_keys("p")
    assert keys == [("tok-a", "key-1"), ("tok-b", "key-2"), ("tok-c", "key-1")]
    assert channel.methods == [KEYS, KEYS]
    assert len(waits) == 1


def test_a_stream_refused_half_way_is_not_retried_and_nothing_is_returned() -> None:
    node, channel, waits = client([[FIRST, Failure(grpc.StatusCode.PERMISSION_DENIED)]])
    with pytest.raises(RequestRefused, match=r"fetching linkage keys.*PERMISSION_DENIED"):
        node.linkage_keys("p")
    assert channel.methods == [KEYS] and waits == []


def test_a_stream_that_keeps_breaking_gives_up_after_the_policy_s_attempts() -> None:
    broken = [FIRST, Failure(grpc.StatusCode.UNAVAILABLE)]
    node, channel, waits = client([broken, list(broken), list(broken)])
    with pytest.raises(RequestRefused) as refused:
        node.linkage_keys("p")
    assert refused.value.transient
    assert channel.methods == [KEYS] * 3 and len(waits) == 2


def test_withdraw_is_retried_on_a_transient_failure() -> None:
    node, channel, waits = client(
        [
            Failure(grpc.StatusCode.UNAVAILABLE),
            keys_pb2.WithdrawResponse(withdrawn=2, not_found=1),
        ]
    )
    assert node.withdraw("p", ["tok-a", "tok-b", "tok-x"]) == (2, 1)
    assert channel.methods == [WITHDRAW, WITHDRAW] and len(waits) == 1


def test_withdraw_refused_is_not_retried() -> None:
    node, channel, _ = client([Failure(grpc.StatusCode.INVALID_ARGUMENT)])
    with pytest.raises(RequestRefused, match="withdrawing records"):
        node.withdraw("p", ["tok-a"])
    assert channel.methods == [WITHDRAW]
