"""coordinator.core.audit: entries whose leaf hashes show any edit, removal or reordering.

(Checkpoints, receipts and a rehashing forger are tested in test_audit_verify.py.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from coordinator.core.audit import (
    AuditEntry,
    AuditEvent,
    ChainProblem,
    seal,
    verify,
)
from hublink.audit.merkle import leaf_hash
from hublink.spec import canonical_json

EVENTS = [
    AuditEvent("project.created", "coordinator", "coordinator", "early-years", {"threshold": 0.8}),
    AuditEvent("upload.started", "health-visiting", "node", "early-years", {"records": 120}),
    AuditEvent("upload.committed", "health-visiting", "node", "early-years", {"records": 120}),
    AuditEvent("upload.committed", "childcare", "node", "early-years", {"records": 80}),
    AuditEvent("run.completed", "hub-admin", "admin", "early-years", {"entities": 160}),
    AuditEvent("counts.released", "analytics", "analyst", "early-years", {"cells": 3}),
]


def build_chain(events: list[AuditEvent]) -> list[AuditEntry]:
    return [
        seal(index, f"2025-06-01T09:00:{index:02d}.000Z", event)
        for index, event in enumerate(events)
    ]


def with_details(entry: AuditEntry, **details: Any) -> AuditEntry:
    event = dataclasses.replace(entry.event, details={**entry.event.details, **details})
    return dataclasses.replace(entry, event=event)


def test_a_sealed_chain_verifies() -> None:
    chain = build_chain(EVENTS)
    assert verify(chain) is None
    assert len({e.entry_hash for e in chain}) == len(chain)


def test_the_entry_hash_is_the_rfc_6962_leaf_of_its_canonical_content() -> None:
    entry = build_chain(EVENTS)[1]
    expected = leaf_hash(canonical_json(entry.content()).encode())
    assert entry.entry_hash == expected.hex()
    assert entry.content()["index"] == 1


def test_an_empty_chain_verifies() -> None:
    assert verify([]) is None


def test_sealing_is_deterministic() -> None:
    assert build_chain(EVENTS) == build_chain(EVENTS)


def test_an_edited_detail_is_found_at_its_entry() -> None:
    chain = build_chain(EVENTS)
    chain[3] = with_details(chain[3], records=81)
    problem = verify(chain)
    assert problem == ChainProblem(3, "its content does not match its hash")


def test_an_edited_actor_is_found_at_its_entry() -> None:
    chain = build_chain(EVENTS)
    chain[5] = dataclasses.replace(
        chain[5], event=dataclasses.replace(chain[5].event, actor_organisation="someone-else")
    )
    problem = verify(chain)
    assert problem is not None
    assert problem.index == 5


def test_a_deleted_entry_is_found_where_it_was() -> None:
    chain = build_chain(EVENTS)
    del chain[2]
    problem = verify(chain)
    assert problem is not None
    assert problem.index == 2
    assert "missing" in problem.reason


def test_a_deleted_entry_is_found_even_if_later_indexes_are_renumbered() -> None:
    chain = build_chain(EVENTS)
    del chain[2]
    chain = [dataclasses.replace(e, index=i) for i, e in enumerate(chain)]
    problem = verify(chain)
    assert problem is not None
    assert problem.index == 2


def test_two_swapped_entries_are_found_at_the_first() -> None:
    chain = build_chain(EVENTS)
    chain[1], chain[4] = chain[4], chain[1]
    problem = verify(chain)
    assert problem is not None
    assert problem.index == 1


def test_swapped_entries_with_swapped_indexes_are_found() -> None:
    chain = build_chain(EVENTS)
    first, second = chain[1], chain[2]
    chain[1] = dataclasses.replace(second, index=1)
    chain[2] = dataclasses.replace(first, index=2)
    problem = verify(chain)
    assert problem is not None
    assert problem.index == 1


def test_a_resealed_edit_verifies_alone_so_checkpoints_are_needed() -> None:
    # Entries alone cannot catch a forger who rehashes; the signed checkpoints do
    # (test_audit_verify.py). This pins down that limit.
    chain = build_chain(EVENTS)
    edited = with_details(chain[2], records=999)
    chain[2] = seal(2, edited.time, edited.event)
    assert verify(chain) is None


# --- property: every single-entry mutation is detected --------------------------------------

events = st.builds(
    AuditEvent,
    action=st.sampled_from(["upload.started", "upload.committed", "run.started", "keys.released"]),
    actor_organisation=st.from_regex(r"[a-z][a-z-]{0,20}", fullmatch=True),
    actor_role=st.sampled_from(["node", "admin", "analyst", "auditor"]),
    project_id=st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    details=st.dictionaries(
        st.text(min_size=1, max_size=8), st.integers(0, 10**6) | st.text(max_size=10), max_size=3
    ),
)

FIELDS = ["time", "action", "organisation", "role", "project", "details", "hash"]


def mutate(entry: AuditEntry, field: str) -> AuditEntry:
    event = entry.event
    if field == "time":
        return dataclasses.replace(entry, time=entry.time + "1")
    if field == "action":
        return dataclasses.replace(
            entry, event=dataclasses.replace(event, action="x" + event.action)
        )
    if field == "organisation":
        changed = dataclasses.replace(event, actor_organisation=event.actor_organisation + "x")
        return dataclasses.replace(entry, event=changed)
    if field == "role":
        return dataclasses.replace(entry, event=dataclasses.replace(event, actor_role="admin!"))
    if field == "project":
        changed = dataclasses.replace(event, project_id=event.project_id + "x")
        return dataclasses.replace(entry, event=changed)
    if field == "details":
        return with_details(entry, tampered=True)
    assert field == "hash"
    return dataclasses.replace(entry, entry_hash="0" * 64)


@given(
    chain_events=st.lists(events, min_size=1, max_size=8),
    data=st.data(),
)
def test_any_single_entry_mutation_is_detected_at_that_entry(
    chain_events: list[AuditEvent], data: st.DataObject
) -> None:
    chain = build_chain(chain_events)
    assert verify(chain) is None
    index = data.draw(st.integers(0, len(chain) - 1), label="index")
    field = data.draw(st.sampled_from(FIELDS), label="field")

    chain[index] = mutate(chain[index], field)

    problem = verify(chain)
    assert problem is not None
    assert problem.index == index


@given(chain_events=st.lists(events, min_size=2, max_size=8), data=st.data())
def test_any_removal_or_swap_before_the_end_is_detected(
    chain_events: list[AuditEvent], data: st.DataObject
) -> None:
    chain = build_chain(chain_events)
    index = data.draw(st.integers(0, len(chain) - 2), label="index")
    if data.draw(st.booleans(), label="swap"):
        chain[index], chain[index + 1] = chain[index + 1], chain[index]
    else:
        del chain[index]

    problem = verify(chain)
    assert problem is not None
    assert problem.index == index
