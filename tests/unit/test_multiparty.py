"""Multi-party consistency: three or more organisations give one entity per person, no chains.

Two promises, checked at the solver on crafted candidates and at the
coordinator on real encodings:

* **Consistency.** Links are entities, not pairs: when A1-B1 and B1-C1 are
  links, A1 and C1 have the same entity (and so the same linkage key).
* **No chaining.** A middle record similar to two records that are not
  similar to each other must not pull them into one entity: within every
  entity at least ``merge_threshold`` of all record pairs are candidates
  themselves (all of them for the greedy solver).

Every person here is made up.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.core.matching import Candidates, RecordRef, solve
from coordinator.core.model import ConsentSummary, IncomingRecord, Project
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from hublink.identity import Identity, Role
from hublink.spec import RECORD_CLK, LinkageSpec, UploadDigest
from node.encoder import Encoder

Pair = tuple[RecordRef, RecordRef, float]
A1, B1, C1, D1 = (0, 0), (1, 0), (2, 0), (3, 0)


def candidates(pairs: Sequence[Pair]) -> Candidates:
    """anonlink's candidate structure from crafted pairs, most similar first."""
    ordered = sorted(pairs, key=lambda p: -p[2])
    return (
        array("d", [s for _, _, s in ordered]),
        (array("I", [a[0] for a, _, _ in ordered]), array("I", [b[0] for _, b, _ in ordered])),
        (array("I", [a[1] for a, _, _ in ordered]), array("I", [b[1] for _, b, _ in ordered])),
    )


def entity_of(groups: Sequence[Sequence[RecordRef]]) -> dict[RecordRef, int]:
    """Record -> group number; also checks no record is in two groups."""
    out: dict[RecordRef, int] = {}
    for number, group in enumerate(groups):
        for record in group:
            assert record not in out, f"{record} is in two entities"
            out[record] = number
    return out


SOLVERS = pytest.mark.parametrize("merge", [None, 0.9], ids=["greedy", "probabilistic-0.9"])


@SOLVERS
def test_three_parties_agreeing_pairwise_make_one_entity(merge: float | None) -> None:
    groups = solve(
        candidates([(A1, B1, 0.95), (B1, C1, 0.93), (A1, C1, 0.91)]), merge_threshold=merge
    )
    assert [sorted(g) for g in groups] == [[A1, B1, C1]]


@SOLVERS
def test_four_parties_agreeing_pairwise_make_one_entity_whatever_the_order(
    merge: float | None,
) -> None:
    records = [A1, B1, C1, D1]
    pairs = [(a, b, 0.99 - 0.01 * i) for i, (a, b) in enumerate(itertools.combinations(records, 2))]
    for rotated in (pairs, pairs[::-1]):
        groups = solve(candidates(rotated), merge_threshold=merge)
        assert [sorted(g) for g in groups] == [records]


@SOLVERS
def test_a_middle_record_does_not_chain_two_dissimilar_records(merge: float | None) -> None:
    # B1 is like A1 and like C1, but A1 and C1 are not alike (no candidate pair).
    groups = solve(candidates([(A1, B1, 0.95), (B1, C1, 0.93)]), merge_threshold=merge)
    entity = entity_of(groups)
    assert entity[A1] == entity[B1]
    assert entity.get(C1) != entity[A1]


def test_a_loose_merge_threshold_would_chain_which_is_what_the_default_prevents() -> None:
    """The guard is the merge threshold: at 0.5 the same candidates do chain."""
    groups = solve(candidates([(A1, B1, 0.95), (B1, C1, 0.93)]), merge_threshold=0.5)
    assert [sorted(g) for g in groups] == [[A1, B1, C1]]


@SOLVERS
def test_a_chain_across_four_parties_is_cut_where_similarity_stops(merge: float | None) -> None:
    # A1, B1, C1 are alike pairwise; D1 is like C1 only.
    pairs = [(A1, B1, 0.97), (B1, C1, 0.95), (A1, C1, 0.94), (C1, D1, 0.96)]
    entity = entity_of(solve(candidates(pairs), merge_threshold=merge))
    assert len({entity[A1], entity[B1]}) == 1
    # D1 took C1 first (0.96 is the highest pair C1 is in after A1-B1) or C1 stayed with A1, B1:
    # either way D1 is never with A1 or B1, which it is not similar to.
    assert entity.get(D1) not in (entity[A1], entity[B1])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.tuples(st.integers(0, 3), st.integers(0, 2)),
            st.tuples(st.integers(0, 3), st.integers(0, 2)),
            st.floats(0.8, 1.0),
        ),
        max_size=30,
    ),
    st.sampled_from([None, 0.9, 0.75]),
)
def test_every_entity_is_dense_in_candidate_pairs(raw: list[Pair], merge: float | None) -> None:
    """Whatever the candidates: entities are disjoint, and at least ``merge`` of each entity's
    record pairs (all of them for greedy) are candidate pairs, so no entity is a chain."""
    # One pair per unordered couple, across organisations (within-organisation candidates
    # take part only with the probabilistic solver, as in a run).
    seen: dict[frozenset[RecordRef], Pair] = {}
    for a, b, s in raw:
        if a != b and (a[0] != b[0] or merge is not None):
            seen.setdefault(frozenset((a, b)), (a, b, s))
    pairs = list(seen.values())
    if not pairs:
        return
    groups = solve(candidates(pairs), merge_threshold=merge)
    entity_of(groups)
    for group in groups:
        couples = list(itertools.combinations(group, 2))
        present = sum(1 for a, b in couples if frozenset((a, b)) in seen)
        assert present >= (1.0 if merge is None else merge) * len(couples) - 1e-9
        if merge is None:
            assert len({d for d, _ in group}) == len(group)  # one record per organisation


# --- at the coordinator, real encodings -----------------------------------------------------

ORGANISATIONS = ("org-a", "org-b", "org-c")
SECRET = b"a-test-secret-of-16+chars"
ADMIN = Identity("hub-admin", Role.ADMIN)
# One child held by all three, written slightly differently each time. The salted record CLK
# keeps two parts of three when one salt field (name, birth date, postcode) differs (about
# 0.76 here) and all three when only the sex does (about 0.97): every pair is above 0.7.
FREYA_A = ("freya", "pryce", "03042021", "F", "CF10 1AA", "")
FREYA_B = ("freya", "pryce", "03042021", "F", "CF10 3AB", "")  # moved within CF10
FREYA_C = ("freya", "pryce", "03042021", "M", "CF10 1AA", "")  # sex keyed wrongly
# A chain: the middle record is like both ends (one salt field differs: about 0.74 and 0.8),
# the ends are not alike (postcode and birth date differ: one part of three, about 0.6).
ISLA_A = ("isla", "morgan", "22072022", "F", "NP20 4AB", "")
ISLA_B = ("isla", "morgan", "22072022", "F", "NP19 7XY", "")
ISLA_C = ("isla", "morgan", "22082022", "F", "NP19 7XY", "")
FILLER = [
    ("oliver", "jenkins", "15112020", "M", "SA1 1DP", ""),
    ("cai", "rowlands", "09012023", "M", "LL57 2PW", ""),
    ("seren", "davies", "11112021", "F", "SY23 1AB", ""),
]


def project() -> Project:
    spec = LinkageSpec.default()
    return Project(
        id="three-way",
        purpose="Check multi-party consistency",
        organisations=ORGANISATIONS,
        admins=("hub-admin",),
        schema_json=spec.json_text,
        encoding_sha256=spec.sha256,
        encodings=spec.encodings,
        definition_sha256="0" * 64,
        threshold=0.7,
        auto_threshold=False,
    )


def upload(core: Coordinator, organisation: str, people: Sequence[tuple[str, ...]]) -> list[str]:
    encoder = Encoder(LinkageSpec.default(), SECRET)
    tokens = [f"{organisation}-tok-{i}" for i in range(len(people))]
    sent = [
        IncomingRecord(token, [(RECORD_CLK, bits)])
        for token, bits in zip(tokens, encoder.encode(list(people)), strict=True)
    ]
    caller = Identity(organisation, Role.NODE)
    upload_id = f"upload-{organisation}"
    core.begin_upload(
        caller,
        "three-way",
        upload_id,
        core._projects["three-way"].encoding_sha256,
        len(sent),
        ConsentSummary("c0ffee" * 8 + "0" * 16, {"consented": len(sent)}),
    )
    core.put_chunk(caller, upload_id, 0, sent)
    digest = UploadDigest()
    for record in sent:
        digest.add(record.token, [bits for _, bits in record.encodings])
    core.commit_upload(caller, upload_id, 1, len(sent), digest.hexdigest())
    return tokens


def keys(core: Coordinator, organisation: str) -> dict[str, str]:
    caller = Identity(organisation, Role.NODE)
    return {t: k for batch in core.linkage_keys(caller, "three-way") for t, k in batch.keys}


def test_three_organisations_get_one_key_per_child_and_no_chained_key(tmp_path: Path) -> None:
    core = Coordinator(Store(tmp_path / "c.db"), [project()])
    try:
        held = {
            "org-a": upload(core, "org-a", [FREYA_A, ISLA_A, *FILLER[:2]]),
            "org-b": upload(core, "org-b", [FILLER[2], FREYA_B, ISLA_B]),
            "org-c": upload(core, "org-c", [ISLA_C, FILLER[1], FREYA_C]),
        }
        run = core.start_run(ADMIN, "three-way", background=False)
        assert run.state == "completed", run.message
        key = {org: keys(core, org) for org in ORGANISATIONS}

        freya = {key["org-a"][held["org-a"][0]], key["org-b"][held["org-b"][1]]}
        freya.add(key["org-c"][held["org-c"][2]])
        assert len(freya) == 1  # A-B, B-C and A-C links are one entity

        isla_a = key["org-a"][held["org-a"][1]]
        isla_b = key["org-b"][held["org-b"][2]]
        isla_c = key["org-c"][held["org-c"][0]]
        assert isla_a != isla_c  # the ends of the chain are not joined through the middle
        assert isla_b in (isla_a, isla_c)  # the middle links to one end
        # The one filler person held twice (org-a and org-c) is linked; the others are alone.
        assert key["org-a"][held["org-a"][3]] == key["org-c"][held["org-c"][1]]
        assert key["org-a"][held["org-a"][2]] not in set(key["org-b"].values()) | set(
            key["org-c"].values()
        )
    finally:
        core.store.close()
