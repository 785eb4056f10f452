"""Each completed run as a dated release: which services knew each entity, then.

A run's entities replace the previous run's, so counts "as of" an older
release need what that release was. ``record`` keeps, per run, each entity's
set of organisations and its resolved released attributes (not its records:
counts need nothing more), and ``entities`` reads them back as counting
input for any completed run. Entity ids are the stable internal ids, so the
same child is the same entity in every release, which is what lets a time
series count who is new and who left, and lets cell-key noise give the same
set the same noise in every month (``coordinator.core.disclosure``).
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from coordinator.core import disclosure, queries
from coordinator.core.attributes import ATTRIBUTES_OF_RECORD, parse_attributes
from coordinator.core.entities import Entities
from coordinator.core.model import Project
from coordinator.core.store import Store, Transaction


def record(
    tx: Transaction, project: Project, run_id: str, record_ids: np.ndarray, assignment: Entities
) -> None:
    """Keep the run's entities, the organisations each is known to and its attributes."""
    facts: dict[int, tuple[str, tuple[tuple[str, str], ...]]] = {
        int(rid): (str(org), parse_attributes(attributes))
        for rid, org, attributes in tx.execute(
            f"SELECT r.id, u.organisation, {ATTRIBUTES_OF_RECORD} FROM records r "
            "JOIN uploads u ON u.id = r.upload_id WHERE u.project_id = ? AND u.state = 'committed'",
            (project.id,),
        ).fetchall()
    }
    known: dict[str, set[str]] = defaultdict(set)
    values: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for record_id, entity_id in assignment.rows(record_ids):
        fact = facts.get(record_id)
        if fact is None:
            continue
        organisation, attributes = fact
        known[entity_id].add(organisation)
        for name, value in attributes:
            values[entity_id][name].append((organisation, value))
    tx.executemany(
        "INSERT INTO release_entities VALUES (?, ?, ?, ?, ?)",
        (
            (
                run_id,
                project.id,
                entity,
                ",".join(sorted(orgs)),
                json.dumps(
                    {
                        name: queries.resolve(
                            pairs, project.attribute_precedence, project.organisations
                        )
                        for name, pairs in sorted(values[entity].items())
                    },
                    sort_keys=True,
                ),
            )
            for entity, orgs in known.items()
        ),
    )


def releases(store: Store, project_id: str) -> list[tuple[str, str]]:
    """(run id, finished at) of every completed run that left a release, oldest first."""
    return [
        (str(r["id"]), str(r["finished_at"]))
        for r in store.query(
            "SELECT id, finished_at FROM runs WHERE project_id = ? AND state = 'completed' "
            "AND EXISTS (SELECT 1 FROM release_entities e WHERE e.run_id = runs.id) "
            "ORDER BY finished_at, rowid",
            (project_id,),
        )
    ]


def entities(store: Store, run_id: str, project_key: bytes) -> dict[str, queries.Entity]:
    """Entity id -> what counting needs of it (datasets, attributes, record key), as the
    release of ``run_id`` held it."""
    return {
        str(entity): queries.Entity(
            frozenset(str(orgs).split(",")),
            json.loads(attributes),
            disclosure.record_key(project_key, str(entity)),
        )
        for entity, orgs, attributes in store.iterate(
            "SELECT entity_id, organisations, attributes FROM release_entities WHERE run_id = ?",
            (run_id,),
        )
    }
