"""A differencing attacker across consecutive releases learns no more than rounding allows.

The attacker knows one child and everything else about two consecutive
monthly releases: the same children in a cell both months, except that the
target child was added in the second month, or not. They guess "added" when
the released count changed. With stable entity ids the same set of children
gets the same noise and rounding every month, so a cell that did not change
never seems to; one that gained a child moves only about one time in the
rounding base (``coordinator.core.disclosure``). The "new" and "left" cells
of a single child are withheld.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.core import disclosure
from coordinator.core.store import Store, utc_now
from coordinator.core.time_series import series

ORGS = ("health-visiting", "flying-start")
KEY = b"k" * 32
RULE = disclosure.PRESETS["hospital-statistics"]


def releases(store: Store, months: list[dict[str, str]]) -> None:
    """One completed run a month, each with its entities (entity id -> organisations);
    consecutive pairs are the trials (each pair its own cell of children)."""
    with store.transaction() as tx:
        for n, people in enumerate(months):
            run_id = f"run-{n}"
            tx.execute(
                "INSERT INTO runs (id, project_id, state, threshold, started_at, finished_at) "
                "VALUES (?, 'p', 'completed', 0.8, ?, ?)",
                (run_id, utc_now(), f"2026-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"),
            )
            tx.executemany(
                "INSERT INTO release_entities VALUES (?, 'p', ?, ?, '{}')",
                ((run_id, entity, orgs) for entity, orgs in people.items()),
            )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "c.db")
    yield opened
    opened.close()


def test_differencing_two_releases_tells_an_attacker_little(store: Store) -> None:
    rng = random.Random(2026)
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO projects (id, definition_sha256, encoding_sha256, project_key, "
            "created_at) VALUES ('p', 'd', 'e', ?, ?)",
            (KEY, utc_now()),
        )
    months: list[dict[str, str]] = []
    added: list[bool] = []
    for trial in range(300):
        size = rng.randint(RULE.threshold, 120)
        base = {f"t{trial}-e{i}": ORGS[0] for i in range(size)}
        grew = rng.random() < 0.5
        after = dict(base)
        if grew:
            after[f"t{trial}-target"] = ORGS[0]
        months += [base, after]
        added.append(grew)
    releases(store, months)
    points = series(store, "p", ORGS, RULE, KEY)
    changed_when_added = changed_when_not = 0
    for trial, grew in enumerate(added):
        first, second = points[2 * trial], points[2 * trial + 1]
        differ = first.value(ORGS[0]) != second.value(ORGS[0])
        if grew:
            changed_when_added += differ
            assert second.value("new") is None  # one child new this month: withheld
        else:
            changed_when_not += differ
            assert second.value("new") == 0 and second.value("left") == 0
    assert changed_when_not == 0  # the same set, the same released count
    share = changed_when_added / sum(added)
    accuracy = 0.5 + 0.5 * share
    assert share < 0.35, share  # about 1 in 5 for rounding to 5
    assert accuracy < 0.68
