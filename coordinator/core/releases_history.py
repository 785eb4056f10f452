"""Each completed run as a dated release: which services knew each entity, then.

A release is stored as the changes since the release before it (when that one
was resolved the same way): a month's run changes hundreds of a hundred
thousand entities, and writing every entity again would make each run cost
the size of the project. ``entities`` lays the changes over the last release
stored whole.

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

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from coordinator.core import disclosure, queries
from coordinator.core.attributes import ATTRIBUTES_OF_RECORD, parse_attributes
from coordinator.core.entities import ID_DTYPE, Entities, ids_in
from coordinator.core.model import Project
from coordinator.core.store import Store, Transaction

#: A release is stored whole when more than this share of its entities changed.
WHOLE_ABOVE = 0.3


@dataclass(frozen=True)
class Touched:
    """What a run may have changed since the last release: the only entities a release
    stored as changes needs to write."""

    entities: np.ndarray
    """Entity numbers (into the run's assignment) that gained, lost or changed records."""
    left: np.ndarray
    """Ids (``ID_DTYPE``) of earlier entities that lost records: gone, unless still here."""


def record(
    tx: Transaction,
    project: Project,
    run_id: str,
    record_ids: np.ndarray,
    assignment: Entities,
    touched: Touched | None = None,
) -> None:
    """Keep the run's entities, the organisations each is known to and its attributes.

    With ``touched``, and a previous release resolved the same way, only the
    entities that changed are written, against that release (``release_bases``):
    a month's run writes hundreds of rows, not one per child. Otherwise, or when
    much changed, the release is written whole. Organisations are gathered as a
    bit mask per entity with numpy (a run has millions of records); attributes,
    which only some projects release, record by record.
    """
    settings = _settings(project)
    base = _base(tx, project.id, settings)
    whole = (
        touched is None
        or base is None
        or len(touched.entities) + len(touched.left) > WHOLE_ABOVE * max(1, assignment.count)
    )
    wanted = np.ones(len(record_ids), dtype=bool)
    numbers = np.arange(assignment.count)
    gone = np.zeros(0, dtype=ID_DTYPE)
    if touched is not None and not whole:
        # Entities that lost records but live on are rewritten too.
        still = np.flatnonzero(ids_in(assignment.ids, touched.left))
        numbers = np.union1d(touched.entities, still)
        # Gone: earlier entities that lost records and are not in this run (the ones that
        # are, are ``still``: only those few are compared again).
        gone = touched.left[~ids_in(touched.left, assignment.ids[still])]
        wanted = np.isin(assignment.entity, numbers)
    organisations, held_org = _organisations(tx, project, record_ids[wanted])
    masks = np.zeros(assignment.count, dtype=np.int64)
    present = held_org >= 0
    np.bitwise_or.at(masks, assignment.entity[wanted][present], np.left_shift(1, held_org[present]))
    attributes = (
        _attributes(tx, project, record_ids[wanted], assignment.entity[wanted], assignment.ids)
        if project.released_attributes
        else {}
    )
    names = {
        mask: ",".join(sorted(o for i, o in enumerate(organisations) if mask >> i & 1))
        for mask in np.unique(masks).tolist()
    }
    ids = assignment.ids[numbers].tolist()
    rows = [
        (run_id, project.id, bytes(e).decode("ascii"), names[m])
        for e, m in zip(ids, masks[numbers].tolist(), strict=True)
        if m
    ]
    rows += [(run_id, project.id, bytes(e).decode("ascii"), "") for e in gone.tolist()]
    tx.executemany(
        "INSERT INTO release_entities VALUES (?, ?, ?, ?, ?)",
        ((*row, attributes.get(row[2], "{}")) for row in rows),
    )
    tx.execute(
        "INSERT INTO release_bases VALUES (?, ?, ?, ?)",
        (run_id, project.id, "" if whole else base, settings),
    )


def _settings(project: Project) -> str:
    """What decides an entity's release row besides its records."""
    text = repr((project.organisations, project.released_attributes, project.attribute_precedence))
    return hashlib.sha256(text.encode()).hexdigest()


def _base(tx: Transaction, project_id: str, settings: str) -> str | None:
    """The project's latest release, if it was resolved with the same ``settings``."""
    row = tx.execute(
        "SELECT b.run_id, b.settings FROM runs r JOIN release_bases b ON b.run_id = r.id "
        "WHERE r.project_id = ? AND r.state = 'completed' "
        "ORDER BY r.finished_at DESC, r.rowid DESC LIMIT 1",
        (project_id,),
    ).fetchone()
    latest = tx.execute(
        "SELECT id FROM runs WHERE project_id = ? AND state = 'completed' "
        "ORDER BY finished_at DESC, rowid DESC LIMIT 1",
        (project_id,),
    ).fetchone()
    if row is None or latest is None or row[0] != latest[0] or row[1] != settings:
        return None
    return str(row[0])


def _organisations(
    tx: Transaction, project: Project, record_ids: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """The project's organisations and each record's index among them (-1: not held)."""
    organisations = list(project.organisations)
    rows = list(
        _rows_of(
            tx,
            "SELECT r.id, u.organisation FROM records r JOIN uploads u ON u.id = r.upload_id "
            "WHERE u.project_id = ? AND u.state = 'committed'",
            project.id,
            record_ids,
        )
    )
    for _, organisation in rows:
        if organisation not in organisations:
            organisations.append(str(organisation))
    index = {o: i for i, o in enumerate(organisations)}
    held_ids = np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=len(rows))
    held_org = np.fromiter((index[r[1]] for r in rows), dtype=np.int64, count=len(rows))
    order = np.argsort(held_ids)
    held_ids, held_org = held_ids[order], held_org[order]
    out = np.full(len(record_ids), -1, dtype=np.int64)
    if len(held_ids):
        at = np.minimum(np.searchsorted(held_ids, record_ids), len(held_ids) - 1)
        found = held_ids[at] == record_ids
        out[found] = held_org[at[found]]
    return organisations, out


#: Record ids asked for in one statement; more than ``_ALL_ABOVE`` and the project is read whole.
_IDS_AT_ONCE = 500
_ALL_ABOVE = 20_000


def _rows_of(
    tx: Transaction, sql: str, project_id: str, record_ids: np.ndarray
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql`` (records of the project, ``r`` the records table) for ``record_ids``:
    a few by id, many by reading the project's records whole."""
    if len(record_ids) > _ALL_ABOVE:
        yield from tx.execute(sql, (project_id,)).fetchall()
        return
    ids = [int(i) for i in record_ids]
    for start in range(0, len(ids), _IDS_AT_ONCE):
        part = ids[start : start + _IDS_AT_ONCE]
        marks = ",".join("?" * len(part))
        yield from tx.execute(f"{sql} AND r.id IN ({marks})", (project_id, *part)).fetchall()


def _attributes(
    tx: Transaction,
    project: Project,
    record_ids: np.ndarray,
    entity: np.ndarray,
    entity_ids: np.ndarray,
) -> dict[str, str]:
    """Entity id -> its resolved released attributes as JSON, from ``record_ids`` (each in
    entity number ``entity``; ``entity_ids`` names the numbers)."""
    facts = {
        int(rid): (str(org), parse_attributes(attributes))
        for rid, org, attributes in _rows_of(
            tx,
            f"SELECT r.id, u.organisation, {ATTRIBUTES_OF_RECORD} FROM records r "
            "JOIN uploads u ON u.id = r.upload_id WHERE u.project_id = ? "
            "AND u.state = 'committed'",
            project.id,
            record_ids,
        )
    }
    values: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for record_id, number in zip(record_ids.tolist(), entity.tolist(), strict=True):
        fact = facts.get(record_id)
        if fact is None:
            continue
        organisation, pairs = fact
        entity_id = bytes(entity_ids[number]).decode("ascii")
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
            "AND (EXISTS (SELECT 1 FROM release_bases b WHERE b.run_id = runs.id) "
            "OR EXISTS (SELECT 1 FROM release_entities e WHERE e.run_id = runs.id)) "
            "ORDER BY finished_at, rowid",
            (project_id,),
        )
    ]


def entities(store: Store, run_id: str, project_key: bytes) -> dict[str, queries.Entity]:
    """Entity id -> what counting needs of it (datasets, attributes, record key), as the
    release of ``run_id`` held it: the last whole release before it, with every release's
    changes since laid over it in order."""
    chain = [run_id]
    while True:
        row = store.query_one(
            "SELECT base_run_id FROM release_bases WHERE run_id = ?", (chain[-1],)
        )
        if row is None or not row["base_run_id"]:
            break
        chain.append(str(row["base_run_id"]))
    held: dict[str, tuple[str, str]] = {}
    for run in reversed(chain):
        for entity, orgs, attributes in store.iterate(
            "SELECT entity_id, organisations, attributes FROM release_entities WHERE run_id = ?",
            (run,),
        ):
            if orgs:
                held[str(entity)] = (str(orgs), str(attributes))
            else:
                held.pop(str(entity), None)
    return {
        entity: queries.Entity(
            frozenset(orgs.split(",")),
            json.loads(attributes),
            disclosure.record_key(project_key, entity),
        )
        for entity, (orgs, attributes) in held.items()
    }
