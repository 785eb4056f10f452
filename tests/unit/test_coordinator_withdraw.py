"""Coordinator.withdraw on a real SQLite store: own records only, counts-only audit, keys shrink."""

from __future__ import annotations

import json

import pytest
from test_coordinator_service import (  # fixtures and data of the service tests
    ADMIN,
    CC_RECORDS,
    CHILDCARE,
    FAMILY_SUPPORT,
    HEALTH_VISITING,
    HV_RECORDS,
    OUTSIDER,
    PROJECT,
    Hub,
    hub,
    matched,
)

from coordinator.core.errors import InvalidRequest, NotAllowed, NotAMember, NotReady

__all__ = ["hub", "matched"]


def test_withdrawn_records_leave_keys_and_counts_at_once(matched: Hub) -> None:
    withdrawn = [HV_RECORDS[0].token, HV_RECORDS[3].token]
    done = matched.coordinator.withdraw(HEALTH_VISITING, PROJECT, [*withdrawn, withdrawn[0]])
    assert (done.withdrawn, done.not_found) == (2, 0)
    assert matched.stored_records("upload-hv-1") == len(HV_RECORDS) - 2
    entry = matched.last_audit()
    keys = matched.keys(HEALTH_VISITING)
    assert set(keys) == {r.token for r in HV_RECORDS} - set(withdrawn)
    assert entry["action"] == "records.withdrawn"
    assert entry["details"] == {
        "upload_id": "upload-hv-1",
        "requested": 2,
        "withdrawn": 2,
        "not_found": 0,
    }
    assert not any(token in json.dumps(entry) for token in withdrawn)
    # A second withdrawal of the same tokens finds nothing.
    again = matched.coordinator.withdraw(HEALTH_VISITING, PROJECT, withdrawn)
    assert (again.withdrawn, again.not_found) == (0, 2)
    # The next run matches only what is left, and keys still cover every held record.
    run = matched.coordinator.start_run(ADMIN, PROJECT, background=False)
    assert run.records == len(HV_RECORDS) - 2 + len(CC_RECORDS)
    assert set(matched.keys(HEALTH_VISITING)) == set(keys)


def test_another_organisations_tokens_are_not_found_and_untouched(matched: Hub) -> None:
    done = matched.coordinator.withdraw(CHILDCARE, PROJECT, [r.token for r in HV_RECORDS])
    assert (done.withdrawn, done.not_found) == (0, len(HV_RECORDS))
    assert matched.stored_records("upload-hv-1") == len(HV_RECORDS)
    assert len(matched.keys(HEALTH_VISITING)) == len(HV_RECORDS)


def test_withdraw_refusals(matched: Hub) -> None:
    with pytest.raises(NotAllowed):
        matched.coordinator.withdraw(ADMIN, PROJECT, [HV_RECORDS[0].token])
    with pytest.raises(NotAMember):
        matched.coordinator.withdraw(OUTSIDER, PROJECT, [HV_RECORDS[0].token])
    with pytest.raises(NotReady, match="no committed upload"):
        matched.coordinator.withdraw(FAMILY_SUPPORT, PROJECT, [HV_RECORDS[0].token])
    with pytest.raises(InvalidRequest, match="token 1"):
        matched.coordinator.withdraw(HEALTH_VISITING, PROJECT, [HV_RECORDS[0].token, "bad token!"])
    assert matched.stored_records("upload-hv-1") == len(HV_RECORDS)
