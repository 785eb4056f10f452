"""Key lineage: when a run moves a record to another entity, say so, and why.

Entity ids are inherited run to run (``coordinator.core.entities``), so a
child's key stays while the evidence about them does. When it does not —
a new record links two entities that were apart (*merge*), or a changed
record leaves its entity (*split*) — the key of some records changes, and
the organisations holding them must be told. ``record`` compares the run's
assignment with the previous one inside the run's storing transaction and
writes:

* ``key_lineage``: old entity → new entity with the reason, one row a pair;
* ``key_changes``: per record that moved or is new, for the organisation that
  holds it, in sequence, so a node fetches only what changed since its last
  fetch (``changes_since``). Records removed between runs (withdrawn, gone
  from the extract) were written there when they were removed (``removed``).

The audit log gets counts only (``keys.lineage``), never a record or a key.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core import keys
from coordinator.core.entities import ID_DTYPE, Entities, Previous
from coordinator.core.guard import event
from coordinator.core.store import Store, Transaction
from hublink.identity import Identity

MERGE = "merge"
SPLIT = "split"
RELINKED = "relinked"
ADDED = "added"
WITHDRAWN = "withdrawn"
LEFT = "left the extract"
REASONS = (MERGE, SPLIT, RELINKED, ADDED, WITHDRAWN, LEFT)

_IDS_AT_ONCE = 900


@dataclass(frozen=True)
class KeyChange:
    """One record's key change as its organisation sees it (keys, never entity ids)."""

    seq: int
    token: str
    old_key: str
    new_key: str
    change: str


@dataclass(frozen=True)
class Rewrite:
    """What a run changes in the entity rows: only these need writing."""

    counts: dict[str, int]
    changed: np.ndarray
    """Per record of the run (load order): new, or in another entity than before."""
    orphans: np.ndarray
    """Record ids with an entity row that the run did not cover."""
    left: np.ndarray
    """Earlier entity ids (``ID_DTYPE``) that records moved out of or orphans held."""


def removed(tx: Transaction, project_id: str, record_ids: Sequence[int], reason: str) -> None:
    """Note records about to be deleted (before their entity rows go), for their nodes."""
    for start in range(0, len(record_ids), _IDS_AT_ONCE):
        part = list(record_ids[start : start + _IDS_AT_ONCE])
        marks = ",".join("?" * len(part))
        tx.execute(
            "INSERT INTO key_changes (project_id, run_id, organisation, token, old_entity_id, "
            "new_entity_id, reason) SELECT ?, '', u.organisation, r.token, e.entity_id, '', ? "
            "FROM records r JOIN uploads u ON u.id = r.upload_id "
            f"JOIN entities e ON e.record_id = r.id WHERE r.id IN ({marks})",
            (project_id, reason, *part),
        )


def record(
    tx: Transaction,
    caller: Identity,
    project_id: str,
    run_id: str,
    record_ids: np.ndarray,
    assignment: Entities,
    previous: Previous | None = None,
) -> Rewrite:
    """Compare the run's entities with the previous run's; write lineage and key changes.

    Call inside the run's storing transaction, before its entity rows replace
    the old ones (``previous``: those rows, if the run read them already).
    Returns the counts it audited and which entity rows differ.
    """
    if previous is None:
        previous = _previous(tx, project_id)
    new_entities = assignment.ids[assignment.entity] if len(record_ids) else np.zeros(0, ID_DTYPE)
    at, present = previous.rows_of(record_ids)
    before = np.where(present, previous.entity_ids[at] if len(previous.record_ids) else b"", b"")
    moved = present & (before != new_entities)
    reasons = np.full(len(record_ids), "", dtype=object)
    reasons[~present] = ADDED
    if moved.any():
        # Over the records in both runs: how many old entities feed each new one, and how
        # many new entities each old one went to.
        # Only entities a moved record left or joined can be a merge or a split: marked in
        # tables by entity number (``assignment.entity``, ``previous.codes``), not by id.
        old_code = previous.codes[1][at]
        joined = np.zeros(len(assignment.ids), dtype=bool)
        joined[assignment.entity[moved]] = True
        vacated = np.zeros(len(previous.codes[0]), dtype=bool)
        vacated[old_code[moved]] = True
        involved = present & (joined[assignment.entity] | vacated[old_code])
        both_old, both_new = before[involved], new_entities[involved]
        pairs = np.unique(np.stack([both_old, both_new], axis=1), axis=0)
        sources_of = _counts(pairs[:, 1])
        targets_of = _counts(pairs[:, 0])
        for i in np.flatnonzero(moved):
            if sources_of.get(bytes(new_entities[i]), 0) > 1:
                reasons[i] = MERGE
            elif targets_of.get(bytes(before[i]), 0) > 1:
                reasons[i] = SPLIT
            else:
                reasons[i] = RELINKED
    changed = np.flatnonzero(reasons != "")
    rows = list(_with_tokens(tx, record_ids[changed]))
    by_id = {rid: (token, org) for rid, token, org in rows}
    tx.executemany(
        "INSERT INTO key_changes (project_id, run_id, organisation, token, old_entity_id, "
        "new_entity_id, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (
                project_id,
                run_id,
                by_id[int(record_ids[i])][1],
                by_id[int(record_ids[i])][0],
                bytes(before[i]).decode("ascii"),
                bytes(new_entities[i]).decode("ascii"),
                str(reasons[i]),
            )
            for i in changed
            if int(record_ids[i]) in by_id
        ),
    )
    lineage = {
        (bytes(before[i]).decode("ascii"), bytes(new_entities[i]).decode("ascii"), reasons[i])
        for i in np.flatnonzero(moved)
    }
    tx.executemany(
        "INSERT INTO key_lineage VALUES (?, ?, ?, ?, ?)",
        ((project_id, run_id, old, new, reason) for old, new, reason in sorted(lineage)),
    )
    left = dict(
        tx.execute(
            "SELECT reason, COUNT(*) FROM key_changes WHERE project_id = ? AND run_id = '' "
            "GROUP BY reason",
            (project_id,),
        ).fetchall()
    )
    tx.execute(
        "UPDATE key_changes SET run_id = ? WHERE project_id = ? AND run_id = ''",
        (run_id, project_id),
    )
    counts = {
        "kept": int(present.sum() - moved.sum()),
        ADDED: int((~present).sum()),
        MERGE: int((reasons == MERGE).sum()),
        SPLIT: int((reasons == SPLIT).sum()),
        RELINKED: int((reasons == RELINKED).sum()),
        WITHDRAWN: int(left.get(WITHDRAWN, 0)),
        LEFT: int(left.get(LEFT, 0)),
    }
    tx.audit(event(caller, "keys.lineage", project_id, {"run_id": run_id, "records": counts}))
    # The previous rows no record of this run holds: marked from the lookup above, not searched.
    orphaned = np.ones(len(previous.record_ids), dtype=bool)
    orphaned[at[present]] = False
    departed = np.unique(
        np.concatenate([before[moved].astype(ID_DTYPE), previous.entity_ids[orphaned]])
    )
    return Rewrite(counts, ~present | moved, previous.record_ids[orphaned], departed)


def changes_since(
    store: Store, project_id: str, organisation: str, since: int, scope: str | None
) -> tuple[list[KeyChange], int]:
    """The organisation's key changes after sequence ``since``, and the latest sequence."""
    secret = store.query_one("SELECT project_key FROM projects WHERE id = ?", (project_id,))
    assert secret is not None
    head = store.query_one(
        "SELECT COALESCE(MAX(seq), 0) AS n FROM key_changes WHERE project_id = ? AND run_id != ''",
        (project_id,),
    )
    assert head is not None
    rows = store.query(
        "SELECT seq, token, old_entity_id, new_entity_id, reason FROM key_changes "
        "WHERE project_id = ? AND organisation = ? AND seq > ? AND seq <= ? "
        "AND run_id != '' ORDER BY seq",
        (project_id, organisation, since, int(head["n"])),
    )
    key = bytes(secret["project_key"])
    old = _keys(key, [str(r["old_entity_id"]) for r in rows], scope)
    new = _keys(key, [str(r["new_entity_id"]) for r in rows], scope)
    return [
        KeyChange(int(r["seq"]), str(r["token"]), o, n, str(r["reason"]))
        for r, o, n in zip(rows, old, new, strict=True)
    ], int(head["n"])


def _keys(secret: bytes, entity_ids: list[str], scope: str | None) -> list[str]:
    """Keys of the entities, "" for none."""
    present = [e for e in entity_ids if e]
    made = iter(keys.linkage_keys(secret, present, scope))
    return [next(made) if e else "" for e in entity_ids]


def _previous(tx: Transaction, project_id: str) -> Previous:
    return Previous.from_blobs(
        tx.execute(
            "SELECT record_id, CAST(entity_id AS BLOB) FROM entities WHERE project_id = ?",
            (project_id,),
        ).fetchall()
    )


def _counts(values: np.ndarray) -> dict[bytes, int]:
    unique, counts = np.unique(values, return_counts=True)
    return {bytes(u): int(c) for u, c in zip(unique, counts, strict=True)}


def _with_tokens(tx: Transaction, record_ids: np.ndarray) -> Iterator[tuple[int, str, str]]:
    ids = [int(i) for i in record_ids]
    for start in range(0, len(ids), _IDS_AT_ONCE):
        part = ids[start : start + _IDS_AT_ONCE]
        marks = ",".join("?" * len(part))
        for rid, token, org in tx.execute(
            "SELECT r.id, r.token, u.organisation FROM records r "
            f"JOIN uploads u ON u.id = r.upload_id WHERE r.id IN ({marks})",
            tuple(part),
        ):
            yield int(rid), str(token), str(org)
