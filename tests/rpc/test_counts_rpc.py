"""Released attributes and protected counts over real mutual TLS.

Nodes' chunks carry coarse attributes next to their encodings; the
coordinator takes only those its project releases, keeps them per record,
binds them into the chunk and upload digests, and lets only the analysts the
project lists ask for counts, every answer audited. The project here
(``conftest.py``) releases ``age_band`` and ``area``, lets analysts of
``public-health`` query, lets health visiting's value win when organisations
disagree, and publishes unrounded counts with suppression of 1 to 14, so
released values can be checked exactly.
"""

from __future__ import annotations

import random
from typing import Any

import grpc
import pytest
from test_coordinator_rpc import (
    ADMIN,
    ANALYST,
    DEADLINE,
    FLYING_START,
    HEALTH_VISITING,
    Uploads,
    audited,
    made_up_records,
    new_upload_id,
    refused,
    stored_records,
)

from hublink.clients import AdminClient, AnalystClient, RequestRefused
from hublink.identity import Identity, Role
from hublink.spec import UploadDigest
from hublink.v1 import records_pb2


def with_attributes(records: list[Any], pairs: list[list[tuple[str, str]]]) -> list[Any]:
    out = []
    for record, attributes in zip(records, pairs, strict=True):
        copy = records_pb2.EncodedRecord()
        copy.CopyFrom(record)
        copy.attributes.extend(records_pb2.Attribute(name=n, value=v) for n, v in attributes)
        out.append(copy)
    return out


def digest_with_attributes(records: list[Any]) -> str:
    digest = UploadDigest()
    for record in records:
        digest.add(
            record.token,
            [e.bits for e in record.encodings],
            [(a.name, a.value) for a in record.attributes],
        )
    return digest.hexdigest()


def test_an_attribute_the_project_does_not_release_is_refused_and_nothing_is_stored(
    coordinator: Any,
) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    uploads.begin(upload_id, expected=3)
    records = with_attributes(
        made_up_records(3, seed=1),
        [[("age_band", "0-1")], [("age_band", "1-2"), ("ethnicity", "X")], []],
    )
    refused(
        lambda: uploads.put(upload_id, 0, records),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["record 1", "'ethnicity'", "not released"],
        records=records,
    )
    assert stored_records(coordinator, upload_id) == 0
    assert coordinator.core.store.query("SELECT * FROM record_attributes") == []


def test_an_attribute_value_that_is_not_a_coarse_code_is_refused(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    uploads.begin(upload_id, expected=1)
    [record] = with_attributes(made_up_records(1, seed=2), [[("area", "25/06/2022 Jones")]])
    refused(
        lambda: uploads.put(upload_id, 0, [record]),
        grpc.StatusCode.INVALID_ARGUMENT,
        mentions=["'area'", "coarse code"],
    )
    assert stored_records(coordinator, upload_id) == 0


def test_attributes_are_stored_per_record_and_bound_into_both_digests(coordinator: Any) -> None:
    uploads = Uploads.over(coordinator.channel(HEALTH_VISITING), coordinator.project_id)
    upload_id = new_upload_id()
    records = with_attributes(
        made_up_records(4, seed=3),
        [[("age_band", "0-1"), ("area", "W06000901")], [("area", "E06000902")], [], []],
    )
    uploads.begin(upload_id, expected=4)
    uploads.put(upload_id, 0, records[:2])
    # The same chunk number again with one attribute changed is not a repeat.
    changed = with_attributes(made_up_records(2, seed=3), [[("age_band", "4-5")], []])
    refused(
        lambda: uploads.put(upload_id, 0, changed),
        grpc.StatusCode.ALREADY_EXISTS,
        mentions=["chunk 0", "different content"],
    )
    assert uploads.put(upload_id, 0, records[:2]).duplicate
    uploads.put(upload_id, 1, records[2:])
    stored = coordinator.core.store.query(
        "SELECT r.token, a.name, a.value FROM record_attributes a JOIN records r "
        "ON r.id = a.record_id ORDER BY r.token, a.name"
    )
    assert sorted(tuple(row) for row in stored) == sorted(
        [
            (records[0].token, "age_band", "0-1"),
            (records[0].token, "area", "W06000901"),
            (records[1].token, "area", "E06000902"),
        ]
    )
    # A digest that leaves the attributes out does not match what was received.
    without = UploadDigest()
    for record in records:
        without.add(record.token, [e.bits for e in record.encodings])
    assert without.hexdigest() != digest_with_attributes(records)
    receipt = uploads.commit(upload_id, 2, 4, digest_with_attributes(records))
    assert receipt.digest_sha256 == digest_with_attributes(records)


def _linked_project(coordinator: Any) -> dict[str, int]:
    """Two organisations; identical encodings link. Returns the true counts per cell."""
    rng = random.Random(8)
    shared = made_up_records(40, seed=10)
    hv_only = made_up_records(30, seed=11)
    fs_only = made_up_records(18, seed=12)

    def attributes(i: int) -> list[tuple[str, str]]:
        return [("area", "W1" if i % 4 else "W2"), ("age_band", f"{i % 2}-{i % 2 + 1}")]

    def fresh(records: list[Any]) -> list[Any]:
        out = []
        for record in records:
            copy = records_pb2.EncodedRecord()
            copy.CopyFrom(record)
            copy.token = f"t{rng.getrandbits(64):016x}"
            out.append(copy)
        return out

    hv = with_attributes(
        fresh(shared + hv_only), [attributes(i) for i in range(len(shared) + len(hv_only))]
    )
    # Flying Start disagrees on the area of the shared children: health visiting's counts.
    fs = with_attributes(
        fresh(shared + fs_only),
        [[("area", "W9")] for _ in shared] + [attributes(i) for i in range(len(fs_only))],
    )
    for node, records in ((HEALTH_VISITING, hv), (FLYING_START, fs)):
        uploads = Uploads.over(coordinator.channel(node), coordinator.project_id)
        upload_id = new_upload_id()
        uploads.begin(upload_id, expected=len(records))
        uploads.put(upload_id, 0, records)
        uploads.commit(upload_id, 1, len(records), digest_with_attributes(records))
    admin = AdminClient(coordinator.channel(ADMIN), timeout=DEADLINE)
    run = admin.wait(coordinator.project_id, admin.start_run(coordinator.project_id).run_id)
    assert run.state == "completed"
    return {"shared": len(shared), "hv_only": len(hv_only), "fs_only": len(fs_only)}


def test_an_allowed_analyst_gets_protected_breakdowns_and_every_query_is_audited(
    coordinator: Any,
) -> None:
    truth = _linked_project(coordinator)
    analyst = AnalystClient(coordinator.channel(ANALYST), timeout=DEADLINE)

    overlap = analyst.counts(coordinator.project_id, ["datasets"])
    cells = {(c.coordinate("datasets")): c.value for c in overlap.cells}
    assert cells["health-visiting"] == truth["hv_only"]
    assert cells["flying-start"] == truth["fs_only"]
    assert cells["health-visiting+flying-start"] == truth["shared"]
    assert cells[None] == sum(truth.values())  # the total, unrounded here

    by_area = analyst.counts(
        coordinator.project_id,
        ["area"],
        datasets_in=["health-visiting"],
        datasets_out=["flying-start"],
    )
    areas = {c.coordinate("area"): c for c in by_area.cells}
    # 30 health-visiting-only children: i = 40..69, area W2 when i % 4 == 0 (8 of them).
    assert areas["W1"].value == 22
    assert areas["W2"].suppressed and areas["W2"].reason == "primary"
    assert areas[None].suppressed, "the total would give W2 away"
    assert "but not in flying-start" in by_area.query

    shared_by_area = analyst.counts(
        coordinator.project_id, ["area"], datasets_in=["health-visiting", "flying-start"]
    )
    values = {c.coordinate("area"): c.value for c in shared_by_area.cells}
    assert "W9" not in values or values["W9"] == 0, "Flying Start's area must not win"
    assert values["W1"] == 30
    assert values["W2"] is None  # 10 shared children in W2: below 15
    assert values[None] is None  # and the total of 40 would give it away

    entries = audited(coordinator, "counts.released")
    assert len(entries) == 3
    last = entries[-1].event.details
    assert last["by"] == ["area"] and last["datasets_in"] == ["health-visiting", "flying-start"]
    assert last["withheld"] == ["W2", "Total"]
    assert last["released"]["W1"] == 30
    assert "unrounded" in last["rule"]


def test_analysts_the_project_does_not_list_and_unreleased_attributes_are_refused(
    coordinator: Any,
) -> None:
    _linked_project(coordinator)
    outsider = AnalystClient(
        coordinator.channel(Identity("market-research", Role.ANALYST)), timeout=DEADLINE
    )
    with pytest.raises(RequestRefused) as denied:
        outsider.counts(coordinator.project_id, ["area"])
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "does not name 'market-research' among its analysts" in str(denied.value)
    refusals = audited(coordinator, "access.refused")
    assert refusals[-1].event.actor_organisation == "market-research"
    assert refusals[-1].event.details["attempted"] == "counts.query"

    analyst = AnalystClient(coordinator.channel(ANALYST), timeout=DEADLINE)
    with pytest.raises(RequestRefused) as invalid:
        analyst.counts(coordinator.project_id, ["ethnicity"])
    assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not an attribute this project releases" in str(invalid.value)
    assert audited(coordinator, "counts.released") == []
