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
    """Keep the run's entities, the organisations each is known to and its attributes.

    Organisations are gathered as a bit mask per entity with numpy (a run has
    millions of records); attributes, which only some projects release, record
    by record.
    """
    organisations = list(project.organisations)
    rows = tx.execute(
        "SELECT r.id, u.organisation FROM records r JOIN uploads u ON u.id = r.upload_id "
        "WHERE u.project_id = ? AND u.state = 'committed' ORDER BY r.id",
        (project.id,),
    ).fetchall()
    for _, organisation in rows:
        if organisation not in organisations:
            organisations.append(str(organisation))
    index = {o: i for i, o in enumerate(organisations)}
    held_ids = np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=len(rows))
    held_org = np.fromiter((index[r[1]] for r in rows), dtype=np.int64, count=len(rows))
    at = np.minimum(np.searchsorted(held_ids, record_ids), max(0, len(held_ids) - 1))
    present = held_ids[at] == record_ids if len(held_ids) else np.zeros(len(record_ids), bool)
    masks = np.zeros(assignment.count, dtype=np.int64)
    np.bitwise_or.at(masks, assignment.entity[present], np.left_shift(1, held_org[at[present]]))
    attributes = (
        _attributes(tx, project, record_ids, assignment) if project.released_attributes else {}
    )
    names = {
        mask: ",".join(sorted(o for i, o in enumerate(organisations) if mask >> i & 1))
        for mask in np.unique(masks).tolist()
    }
    ids = [bytes(e).decode("ascii") for e in assignment.ids]
    tx.executemany(
        "INSERT INTO release_entities VALUES (?, ?, ?, ?, ?)",
        (
            (run_id, project.id, ids[n], names[mask], attributes.get(ids[n], "{}"))
            for n, mask in enumerate(masks.tolist())
            if mask
        ),
    )


def _attributes(
    tx: Transaction, project: Project, record_ids: np.ndarray, assignment: Entities
) -> dict[str, str]:
    """Entity id -> its resolved released attributes as JSON."""
    facts = {
        int(rid): (str(org), parse_attributes(attributes))
        for rid, org, attributes in tx.execute(
            f"SELECT r.id, u.organisation, {ATTRIBUTES_OF_RECORD} FROM records r "
            "JOIN uploads u ON u.id = r.upload_id WHERE u.project_id = ? AND u.state = 'committed'",
            (project.id,),
        ).fetchall()
    }
    values: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for record_id, entity_id in assignment.rows(record_ids):
        fact = facts.get(record_id)
        if fact is None:
            continue
        organisation, pairs = fact
        for name, value in pairs:
            values[entity_id][name].append((organisation, value))
    return {
        entity: json.dumps(
            {
                name: queries.resolve(pairs, project.attribute_precedence, project.organisations)
                for name, pairs in sorted(named.items())
            },
            sort_keys=True,
        )
        for entity, named in values.items()
    }


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
