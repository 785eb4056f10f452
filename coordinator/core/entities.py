"""A run's outcome as arrays: which records were linked, and each record's entity id.

A project of a million records a party has two million records and about a
million and a half entities. Held as Python objects (a list per group, a
dict from record to entity id, a set of ids taken) that costs over a
kilobyte a record, more than the encodings themselves. So after the solver,
a run works on flat arrays over its records in load order (dataset 0's
records, then dataset 1's, ...): the group each record fell in, the entity
each record belongs to, and a table of entity ids, 32 hex characters each.

``assign`` keeps entity ids stable across runs exactly as before: entities
choose in order (larger first, then by their lowest record id), each taking
the id most of its records had in the previous run, or its next choice if an
earlier entity took that one, else a fresh random id. That order is computed
as rounds of proposals (every entity proposes its best id not yet refused,
each id goes to the earliest entity proposing it, the others try their next):
because every id prefers earlier entities alike, this ends where choosing one
entity at a time would, but in a few array passes instead of a loop per
entity. Nothing here knows about SQLite or gRPC.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core import kept_rows

#: Entity ids: 16 random bytes as 32 lower-case hex characters.
ID_DTYPE = np.dtype("S32")

NewIds = Callable[[int], np.ndarray]
"""new_ids(n): ``n`` fresh entity ids (an ``ID_DTYPE`` array), for entities that inherit none."""


def ids_in(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``np.isin`` for entity ids, exactly, but sorting 64-bit integers rather than 32-byte
    strings: ids are first matched on their first 16 hex characters (``_prefix``), then
    each match is compared whole with the wanted id it met; only ids whose prefix several
    different wanted ids share (almost never) go to ``np.isin``, against those wanted ids
    alone. A run's lineage and release ask this of every record, and ``np.isin`` on the
    strings sorts all of ``wanted`` (a third of a second at 200,000 ids)."""
    values = np.ascontiguousarray(values, dtype=ID_DTYPE)
    wanted = np.ascontiguousarray(wanted, dtype=ID_DTYPE)
    out = np.zeros(len(values), dtype=bool)
    if not len(values) or not len(wanted):
        return out
    prefixes = _prefix(wanted)
    mine = _prefix(values)
    if len(values) < len(wanted):  # few values: keep the wanted ids they can meet
        near = _meets(prefixes, np.sort(mine))
        wanted, prefixes = wanted[near], prefixes[near]
        if not len(wanted):
            return out
    order = np.argsort(prefixes, kind="stable")
    keys = prefixes[order]
    at = np.minimum(np.searchsorted(keys, mine), len(keys) - 1)
    maybe = np.flatnonzero(keys[at] == mine)  # only the wanted side is sorted
    if not len(maybe):
        return out
    met = wanted[order[at[maybe]]]
    same = (_words(values[maybe]) == _words(met)).all(axis=1)
    out[maybe[same]] = True
    # A value whose prefix met a different id: another wanted id may share that prefix.
    unsure = maybe[~same]
    if len(unsure):
        shared = wanted[np.isin(prefixes, mine[unsure])]
        out[unsure] = np.isin(values[unsure], shared)
    return out


def _meets(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each value is among the sorted ``keys`` (integers)."""
    at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    found: np.ndarray = keys[at] == values
    return found


def _words(ids: np.ndarray) -> np.ndarray:
    """Each id as a row of four 64-bit words: equal rows are equal ids (compared without
    numpy's string comparison)."""
    return np.ascontiguousarray(ids, dtype=ID_DTYPE).view(np.uint64).reshape(len(ids), 4)


def unique_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids, return_inverse=True)`` for entity ids: the distinct ids in order and
    each id's place among them, sorting 64-bit prefixes (``_prefix``: they order as the
    ids do) and falling back to the strings only if two different ids share a prefix or
    an id is not hex."""
    ids = np.ascontiguousarray(ids, dtype=ID_DTYPE)
    if not len(ids):
        return ids.copy(), np.zeros(0, dtype=np.int64)
    first, inverse = sorted_codes(_prefix(ids))
    if not _all_hex(ids) or not np.array_equal(_words(ids[first][inverse]), _words(ids)):
        strings, places = np.unique(ids, return_inverse=True)
        return strings, places.astype(np.int64)
    return ids[first], inverse


def sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For integers: where each distinct value first occurs (distinct values in ascending
    order) and each value's place among the distinct ones, as ``np.unique`` with
    ``return_index`` and ``return_inverse`` gives them, by one stable sort (numpy's own
    takes about twice as long on a run's 200,000 ids)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.ones(len(values), dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return order[starts], inverse


#: Each byte's value as a hex digit (other bytes: their low four bits, and not ``_HEX_OK``).
_HEX = (np.arange(256) & 15).astype(np.uint8)
_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
_HEX_OK = np.zeros(256, dtype=bool)
_HEX_OK[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = True


def _prefix(ids: np.ndarray) -> np.ndarray:
    """Each id's first 16 hex characters as one 64-bit integer, which orders as the ids do
    when they are hex (``_all_hex``); two ids with different prefixes differ."""
    digits = _HEX[ids.view(np.uint8).reshape(len(ids), ID_DTYPE.itemsize)[:, :16]]
    packed = np.ascontiguousarray((digits[:, 0::2] << 4) | digits[:, 1::2])
    prefix: np.ndarray = packed.view(">u8").ravel().astype(np.uint64)
    return prefix


def _all_hex(ids: np.ndarray) -> bool:
    """Whether every id's first 16 characters are lower-case hex (so ``_prefix`` orders)."""
    chars = ids.view(np.uint8).reshape(len(ids), ID_DTYPE.itemsize)[:, :16]
    return bool(_HEX_OK[chars].all())


def random_ids(count: int) -> np.ndarray:
    """``count`` ids of 16 random bytes each, hex-encoded."""
    text = os.urandom(16 * count).hex().encode("ascii")
    ids: np.ndarray = np.frombuffer(text, dtype=ID_DTYPE).copy()
    return ids


@dataclass(frozen=True)
class Grouping:
    """Groups found by the solver, as arrays over the run's records in load order."""

    sizes: tuple[int, ...]
    """Records of each dataset."""
    group: np.ndarray
    """Each record's group number, or -1 for a record the solver left alone."""
    groups: int

    @classmethod
    def from_solution(
        cls, solution: Sequence[Sequence[tuple[int, int]]], sizes: Sequence[int]
    ) -> Grouping:
        """From anonlink's solution (groups of (dataset, row)); single-record groups dropped."""
        offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        group = np.full(int(offsets[-1]), -1, dtype=np.int64)
        number = 0
        for members in solution:
            if len(members) < 2:
                continue
            for dataset, row in members:
                group[offsets[dataset] + row] = number
            number += 1
        return cls(tuple(int(s) for s in sizes), group, number)

    @property
    def dataset(self) -> np.ndarray:
        """Each record's dataset index."""
        return np.repeat(np.arange(len(self.sizes)), self.sizes)

    def status(self) -> tuple[np.ndarray, np.ndarray]:
        """Per record: linked to another dataset? in a group with another of its own dataset?"""
        linked = np.zeros(len(self.group), dtype=bool)
        duplicated = np.zeros(len(self.group), dtype=bool)
        grouped = np.flatnonzero(self.group >= 0)
        if not len(grouped):
            return linked, duplicated
        per_dataset = self._per_dataset(grouped)
        ndata = per_dataset.shape[1]
        datasets_in_group = np.count_nonzero(per_dataset, axis=1)
        linked[grouped] = datasets_in_group[self.group[grouped]] > 1
        duplicated[grouped] = (
            per_dataset.ravel()[self.group[grouped] * ndata + self.dataset[grouped]] > 1
        )
        return linked, duplicated

    def linked_entities(self) -> int:
        """Groups holding records of more than one dataset."""
        grouped = np.flatnonzero(self.group >= 0)
        if not len(grouped):
            return 0
        return int(np.count_nonzero(np.count_nonzero(self._per_dataset(grouped), axis=1) > 1))

    def _per_dataset(self, grouped: np.ndarray) -> np.ndarray:
        """Records of each group (rows) from each dataset (columns), counted with one
        ``bincount`` over the ``grouped`` records rather than sorting them."""
        ndata = max(1, len(self.sizes))
        cell = self.group[grouped] * ndata + self.dataset[grouped]
        counts: np.ndarray = np.bincount(cell, minlength=self.groups * ndata)
        return counts.reshape(self.groups, ndata)


@dataclass(frozen=True)
class Entities:
    """Every record's entity: ``ids[entity[i]]`` is the id of record ``i`` (load order)."""

    entity: np.ndarray
    ids: np.ndarray
    inherited: int
    """Entities that kept an id from the previous run."""

    @property
    def count(self) -> int:
        return len(self.ids)

    def id_of(self, index: int) -> str:
        return bytes(self.ids[self.entity[index]]).decode("ascii")

    def rows(self, record_ids: np.ndarray, batch: int = 100_000) -> Iterator[tuple[int, str]]:
        """(record id, entity id) of every record in load order, built a batch at a time."""
        for start in range(0, len(self.entity), batch):
            ids = self.ids[self.entity[start : start + batch]]
            for record_id, entity_id in zip(
                record_ids[start : start + batch].tolist(), ids.tolist(), strict=True
            ):
                yield record_id, entity_id.decode("ascii")


KEPT_COLUMNS = ("<i8", ID_DTYPE.str)
"""The entity map a run keeps for the next (``kept_rows`` 'entities'): record id, entity id."""


@dataclass(frozen=True)
class Previous:
    """The previous run's entity of each record it covered: record ids and their entity ids."""

    record_ids: np.ndarray
    entity_ids: np.ndarray
    kept: kept_rows.Kept | None = None
    """The kept table these were read from (``kept_rows``): the run writes its change to it."""

    def warmed(self, record_ids: np.ndarray) -> Previous:
        """This, with what a run looks up in it worked out now (``order``, ``codes``, the
        rows of ``record_ids``): a run does it on a spare core while it links."""
        self.rows_of(record_ids)
        _ = self.codes
        return self

    def change_to(self, record_ids: np.ndarray, entity_ids: np.ndarray) -> kept_rows.Change:
        """How the map of ``record_ids`` to ``entity_ids`` (this run's) differs from this one:
        the records gone or moved to another entity are dropped, then written again after
        the rest with their new entity (``kept_rows.Change.applied`` gives the new map)."""
        entity_ids = np.ascontiguousarray(entity_ids, dtype=ID_DTYPE)
        at, known = self.rows_of(record_ids)
        same = known.copy()
        same[known] = (_words(self.entity_ids[at[known]]) == _words(entity_ids[known])).all(axis=1)
        held = np.zeros(len(self.record_ids), dtype=bool)
        held[at[same]] = True
        return kept_rows.Change(np.flatnonzero(~held), (record_ids[~same], entity_ids[~same]))

    @functools.cached_property
    def order(self) -> np.ndarray:
        """The rows in record id order, sorted once: solving, lineage and the kept map's
        change each look the run's records up here."""
        return np.argsort(self.record_ids, kind="stable")

    def rows_of(self, record_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of ``record_ids``: its row here (0 where it has none), and whether it
        has one. The last answer is kept: a run asks it of the same records four times."""
        last = self.__dict__.get("_rows_of")
        if last is not None and last[0] is record_ids:
            kept: tuple[np.ndarray, np.ndarray] = last[1]
            return kept
        found = self._rows_of(record_ids)
        self.__dict__["_rows_of"] = (record_ids, found)  # as cached_property stores its value
        return found

    def _rows_of(self, record_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.record_ids):
            return np.zeros(len(record_ids), np.int64), np.zeros(len(record_ids), bool)
        sorter = self.order
        at = np.searchsorted(self.record_ids, record_ids, sorter=sorter)
        row = sorter[np.minimum(at, len(sorter) - 1)]
        return row, self.record_ids[row] == record_ids

    @functools.cached_property
    def codes(self) -> tuple[np.ndarray, np.ndarray]:
        """``unique_ids(entity_ids)``, worked out once: the partial solve and id inheritance
        both need it."""
        return unique_ids(self.entity_ids)

    @classmethod
    def empty(cls) -> Previous:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=ID_DTYPE))

    @classmethod
    def from_blobs(cls, rows: Sequence[tuple[int, bytes]]) -> Previous:
        """From fetched (record id, entity id as bytes) rows, converted in C, not row by row
        (a project's entity table is read at every run)."""
        if not rows:
            return cls.empty()
        ids, entity_ids = zip(*rows, strict=True)
        return cls(np.array(ids, dtype=np.int64), np.array(entity_ids, dtype=ID_DTYPE))

    @classmethod
    def from_rows(cls, rows: Iterator[tuple[int, str]] | Sequence[tuple[int, str]]) -> Previous:
        """From (record id, entity id) rows, read in batches into arrays."""
        ids: list[np.ndarray] = []
        entities: list[np.ndarray] = []
        batch_ids: list[int] = []
        batch_entities: list[str] = []
        for record_id, entity_id in rows:
            batch_ids.append(int(record_id))
            batch_entities.append(str(entity_id))
            if len(batch_ids) == 100_000:
                ids.append(np.array(batch_ids, dtype=np.int64))
                entities.append(np.array(batch_entities, dtype=ID_DTYPE))
                batch_ids, batch_entities = [], []
        ids.append(np.array(batch_ids, dtype=np.int64))
        entities.append(np.array(batch_entities, dtype=ID_DTYPE))
        return cls(np.concatenate(ids), np.concatenate(entities))


def assign(
    grouping: Grouping,
    record_ids: np.ndarray,
    previous: Previous,
    *,
    new_ids: NewIds = random_ids,
) -> Entities:
    """Give every record an entity id, keeping ids stable across runs (module docstring).

    ``record_ids`` are the records' ids in load order. Every record gets an id,
    linked or not, because every uploaded record gets a key.
    """
    n = len(record_ids)
    record_ids = np.asarray(record_ids, dtype=np.int64)
    # Entities: the solver's groups, then one per record left alone.
    alone = grouping.group < 0
    entity = grouping.group.copy()
    entity[alone] = grouping.groups + np.arange(int(alone.sum()))
    count = grouping.groups + int(alone.sum())
    size = np.bincount(entity, minlength=count)
    lowest = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(lowest, entity, record_ids)
    # Rank: larger entities first, then by lowest record id; ``entity`` becomes the rank.
    order = np.lexsort((lowest, -size))
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count)
    entity = rank[entity]

    chosen = np.full(count, -1, dtype=np.int64)
    codes = np.zeros(0, dtype=ID_DTYPE)
    if len(previous.record_ids) and n:
        codes, chosen = _inherit(entity, record_ids, previous, count)
    fresh = np.flatnonzero(chosen < 0)
    ids = np.empty(count, dtype=ID_DTYPE)
    held = chosen >= 0
    ids[held] = codes[chosen[held]]
    ids[fresh] = _fresh(len(fresh), codes[chosen[held]], new_ids)
    return Entities(entity, ids, int(held.sum()))


def _inherit(
    entity: np.ndarray, record_ids: np.ndarray, previous: Previous, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """The previous id each entity inherits (an index into the returned codes, -1 for none)."""
    row, known = previous.rows_of(record_ids)  # previous.order: sorted once a run
    codes, every_code = previous.codes  # ids no record still holds get no vote
    code_of = every_code[row[known]]
    voter = entity[known]
    chosen = np.full(count, -1, dtype=np.int64)
    if not len(voter):
        return codes, chosen
    # Votes: (entity, code, how many of its records had that id), best first per entity;
    # ties go to the smaller id, and codes are in id order.
    ncodes = len(codes)
    distinct, votes = np.unique(voter * ncodes + code_of, return_counts=True)
    vote_entity, vote_code = distinct // ncodes, distinct % ncodes
    best_first = np.lexsort((vote_code, -votes, vote_entity))
    vote_entity, vote_code = vote_entity[best_first], vote_code[best_first]
    start = np.searchsorted(vote_entity, np.arange(count), "left")
    end = np.searchsorted(vote_entity, np.arange(count), "right")
    pointer = start.copy()
    holder = np.full(ncodes, count, dtype=np.int64)  # count: nobody holds it
    proposing = np.flatnonzero(start < end)
    while len(proposing):
        wanted = vote_code[pointer[proposing]]
        before = holder[wanted]
        np.minimum.at(holder, wanted, proposing)
        won = holder[wanted] == proposing
        # Losers: proposers beaten to their id, and earlier holders an earlier entity displaced.
        displaced = np.unique(before[(before < count) & (holder[wanted] != before)])
        losers = np.concatenate([proposing[~won], displaced])
        pointer[losers] += 1
        proposing = losers[pointer[losers] < end[losers]]
    held = holder < count
    chosen[holder[held]] = np.flatnonzero(held)
    return codes, chosen


def _fresh(count: int, taken: np.ndarray, new_ids: NewIds) -> np.ndarray:
    """``count`` new ids, none of them ``taken`` and no two alike."""
    out = np.asarray(new_ids(count), dtype=ID_DTYPE)
    while True:
        clash = ids_in(out, taken)
        _, first = np.unique(out, return_index=True)
        repeated = np.ones(len(out), dtype=bool)
        repeated[first] = False
        redo = np.flatnonzero(clash | repeated)
        if not len(redo):
            return out
        out[redo] = np.asarray(new_ids(len(redo)), dtype=ID_DTYPE)
