"""Released attributes at the coordinator: storing them per record, reading them per entity.

A node may send, with each record, the coarse attributes its project
releases (an age band, a local-authority code, a service flag). They are kept
in ``record_attributes`` keyed by record id, deleted with their record, and
covered by the chunk and upload digests. For counting, each entity gets one
value per attribute from its records' values (``queries.resolve``: the
project's precedence, else the most common).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from coordinator.core import disclosure, queries
from coordinator.core.store import Store, Transaction

#: SQL giving one record's attributes as "name=value" joined by \x1f, ordered by name.
ATTRIBUTES_OF_RECORD = (
    "(SELECT group_concat(pair, char(31)) FROM (SELECT a.name || '=' || a.value AS pair "
    "FROM record_attributes a WHERE a.record_id = r.id ORDER BY a.name))"
)


def parse_attributes(text: str | None) -> tuple[tuple[str, str], ...]:
    """Undo ``ATTRIBUTES_OF_RECORD`` (names and values never hold '=' or \\x1f)."""
    if not text:
        return ()
    return tuple(
        (name, value) for name, _, value in (pair.partition("=") for pair in text.split("\x1f"))
    )


def store_attributes(
    tx: Transaction,
    upload_id: str,
    above_id: int,
    attributes: Mapping[str, Sequence[tuple[str, str]]],
) -> None:
    """Store a just-inserted chunk's attributes against its records' ids.

    The chunk's records are those of the upload with ids above ``above_id``
    (the largest id before the chunk went in): a range of the primary key, so
    finding them costs the chunk's size, not the upload's.
    """
    ids = dict(
        tx.execute(
            "SELECT token, id FROM records WHERE id > ? AND upload_id = ?",
            (above_id, upload_id),
        ).fetchall()
    )
    tx.executemany(
        "INSERT INTO record_attributes (record_id, name, value) VALUES (?, ?, ?)",
        [(ids[token], name, value) for token, pairs in attributes.items() for name, value in pairs],
    )


def entity_facts(
    store: Store,
    project_id: str,
    organisations: Sequence[str],
    precedence: Sequence[str],
    project_key: bytes,
) -> list[queries.Entity]:
    """Every entity of the project's latest run: its datasets, attributes and record key."""
    datasets: dict[str, set[str]] = defaultdict(set)
    values: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for entity_id, organisation, attributes in store.iterate(
        f"SELECT e.entity_id, u.organisation, {ATTRIBUTES_OF_RECORD} FROM entities e "
        "JOIN records r ON r.id = e.record_id JOIN uploads u ON u.id = r.upload_id "
        "WHERE e.project_id = ? ORDER BY e.record_id",
        (project_id,),
    ):
        datasets[entity_id].add(organisation)
        for name, value in parse_attributes(attributes):
            values[entity_id][name].append((organisation, value))
    return [
        queries.Entity(
            frozenset(members),
            {
                name: queries.resolve(pairs, precedence, organisations)
                for name, pairs in values[entity_id].items()
            },
            disclosure.record_key(project_key, entity_id),
        )
        for entity_id, members in datasets.items()
    ]
