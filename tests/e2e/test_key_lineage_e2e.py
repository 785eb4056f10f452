"""Keys that stay put, and say when they must not: merges, splits and changes.csv.

A child known to both services is first sent by one of them under details
too garbled to link (two entities, two keys), then corrected (the entities
merge: one key changes, "merge"), then garbled again (the entity splits,
"split"). Each month both nodes fetch only what changed and write it to
changes.csv; the audit log counts the changes and names no record.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.living import Deployment, log_entries, started

pytestmark = pytest.mark.e2e

GARBLED = {"Forename": "Zebedee", "Surname": "Quartermaine", "Postcode": "ZZ9 9ZZ"}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with started(tmp_path_factory.mktemp("lineage")) as running:
        yield running


def linked_child(deployment: Deployment, keys: dict[str, dict[str, str]]) -> tuple[str, str]:
    """(local id in the first organisation, in the second) of one child both sent, linked."""
    first, second = deployment.organisations
    people: dict[str, dict[str, str]] = {}
    for (organisation, local_id), person in sorted(deployment.data.truth().items()):
        people.setdefault(person, {}).setdefault(organisation, local_id)
    return next(
        (p[first], p[second])
        for p in people.values()
        if p.get(first) in keys[first]
        and p.get(second) in keys[second]
        and keys[first][p[first]] == keys[second][p[second]]
    )


def month(deployment: Deployment) -> dict[str, dict[str, str]]:
    """Both nodes send their extract, the admin runs, both fetch keys."""
    for organisation in deployment.organisations:
        deployment.upload(organisation)
    deployment.run()
    return {o: deployment.keys(o) for o in deployment.organisations}


def test_keys_change_on_a_split_and_on_a_merge_and_say_why(deployment: Deployment) -> None:
    first, second = deployment.organisations
    keys = month(deployment)
    assert {c["change"] for c in deployment.changes(first)} == {"added"}  # the first fetch
    here, there = linked_child(deployment, keys)
    fields, rows = deployment.rows(first)
    original = next(dict(r) for r in rows if r[fields[0]] == here)

    def set_child(values: dict[str, str]) -> None:
        fields, rows = deployment.rows(first)
        for row in rows:
            if row[fields[0]] == here:
                row.update(values)
        deployment.write_rows(first, fields, rows)

    set_child({**GARBLED, "NHS Number": ""})  # garbled: the entity splits
    keys = month(deployment)
    assert keys[first][here] != keys[second][there]
    split = [
        c for o in deployment.organisations for c in deployment.changes(o) if c["change"] == "split"
    ]
    assert split and split[0]["old_key"] != split[0]["new_key"]
    assert len(deployment.changes(first)) + len(deployment.changes(second)) <= 2  # only that

    set_child(original)  # corrected: the evidence joins them again
    keys = month(deployment)
    assert keys[first][here] == keys[second][there]
    merged = [
        c for o in deployment.organisations for c in deployment.changes(o) if c["change"] == "merge"
    ]
    assert merged

    lineage = [e for e in log_entries(deployment.database) if e.action == "keys.lineage"]
    assert len(lineage) == 3
    assert lineage[1].details["records"]["split"] >= 1
    assert lineage[2].details["records"]["merge"] >= 1
    assert here not in str([e.details for e in lineage])  # counts, never a record
