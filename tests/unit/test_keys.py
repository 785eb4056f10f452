"""coordinator.core.keys: opaque linkage keys derived from entity ids with a project key."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from coordinator.core.keys import PROJECT_KEY_BYTES, linkage_key, new_project_key

KEY_SHAPE = re.compile(r"[a-z2-7]{26}")
PROJECT_KEY = bytes(range(32))
OTHER_PROJECT_KEY = bytes(range(1, 33))


def test_a_key_is_26_lower_case_base32_characters() -> None:
    key = linkage_key(PROJECT_KEY, "0f3a9c")
    assert KEY_SHAPE.fullmatch(key), key


def test_the_same_entity_in_the_same_project_gets_the_same_key() -> None:
    assert linkage_key(PROJECT_KEY, "entity-1") == linkage_key(bytes(range(32)), "entity-1")


def test_different_entities_get_different_keys() -> None:
    assert linkage_key(PROJECT_KEY, "entity-1") != linkage_key(PROJECT_KEY, "entity-2")


def test_the_same_entity_gets_unrelated_keys_in_two_projects() -> None:
    assert linkage_key(PROJECT_KEY, "entity-1") != linkage_key(OTHER_PROJECT_KEY, "entity-1")


def test_the_key_does_not_contain_the_entity_id() -> None:
    entity_id = "abcdefabcdefabcdefabcdefabcdefab"
    assert entity_id[:8] not in linkage_key(PROJECT_KEY, entity_id)


def test_new_project_keys_are_random_and_full_length() -> None:
    first, second = new_project_key(), new_project_key()
    assert len(first) == len(second) == PROJECT_KEY_BYTES
    assert first != second


@given(entity_id=st.text(min_size=1, max_size=40), project_key=st.binary(min_size=1, max_size=64))
def test_keys_always_have_the_same_shape_and_are_deterministic(
    entity_id: str, project_key: bytes
) -> None:
    key = linkage_key(project_key, entity_id)
    assert KEY_SHAPE.fullmatch(key)
    assert linkage_key(project_key, entity_id) == key


@given(st.lists(st.text(max_size=20), min_size=2, max_size=50, unique=True))
def test_distinct_entities_never_share_a_key(entity_ids: list[str]) -> None:
    keys = {linkage_key(PROJECT_KEY, e) for e in entity_ids}
    assert len(keys) == len(entity_ids)


def test_batch_keys_are_the_keys_the_standard_library_base32_gives() -> None:
    """Keys must not change between versions: the fast batch encoding is checked against
    base32 from the standard library, for both key scopes."""
    import base64
    import hashlib
    import hmac
    import secrets

    from coordinator.core.keys import linkage_key, linkage_keys

    project_key = secrets.token_bytes(32)
    entities = [secrets.token_hex(16) for _ in range(200)]
    for organisation in (None, "health-visiting"):
        suffix = "" if organisation is None else f"\x1f{organisation}"
        expected = [
            base64.b32encode(
                hmac.new(project_key, f"{e}{suffix}".encode(), hashlib.sha256).digest()
            )
            .decode()
            .lower()[:26]
            for e in entities
        ]
        assert linkage_keys(project_key, entities, organisation) == expected
        assert linkage_key(project_key, entities[0], organisation) == expected[0]
    assert linkage_keys(project_key, []) == []
