"""The bridge attack: a salted per-field filter joined across its salts by the record CLK.

What the outside attack of issue 20 did, written from its description. A salt
re-permutes a filter's bits, so near-identical given-name filters still cluster
within each salt value (a duplicate's 2% flipped bits leave Dice near 0.96).
Each such cluster is a handful of records sharing a given name. The record
CLK, unsalted, carries the same name on the same positions in every record, so
a cluster is a seed for a block (``hublink.privacy.blocks``) of the record CLK:
the positions its records agree on, then every record, whatever its salt, that
agrees on them. That block is the given name's full set of records, known to
be a given name (it grew from a given-name cluster), with the positions of the
name's q-grams as its signature. Graph matching (``hublink.privacy.graph``) of
the blocks' signatures against a public name list's q-gram graph then names
the blocks, and so every record in them.
"""

from __future__ import annotations

import numpy as np

from hublink.privacy.atoms import block_matrix, polarised
from hublink.privacy.bits import Bits, dice_matrix
from hublink.privacy.blocks import Block, grow_blocks, name_by_size, thresholds
from hublink.privacy.frequency import near_duplicate_clusters
from hublink.privacy.graph import match_graph
from hublink.privacy.names import NameList
from hublink.privacy.unbalance import as_unbalanced, estimated_flip


def field_blocks(
    field_bits: Bits,
    clk: Bits,
    *,
    alike: float = 0.9,
    same_block: float = 0.5,
    flip: float = 0.0,
) -> list[Block]:
    """Blocks of the (unbalanced) record CLK seeded by clusters of a field filter.

    Every cluster of two or more near-identical filters seeds one block; blocks
    whose records mostly coincide (Jaccard ``same_block``) are one value's and
    only the largest is kept. ``flip``: the record CLK's flip rate, if any.
    """
    agree, member = thresholds(flip)
    roots = np.asarray(near_duplicate_clusters(field_bits, alike))
    order = np.argsort(roots, kind="stable")
    starts = np.flatnonzero(np.r_[True, roots[order][1:] != roots[order][:-1]])
    signs = 2 * clk.astype(np.float32) - 1
    seeds, partners = [], []
    for begin, end in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        if end - begin >= 2:
            # The two members least alike on the record CLK: duplicates of one person
            # agree on every field and would grow that person's block, not the name's.
            members = order[begin:end]
            closeness = signs[members] @ signs[members].T
            i, j = np.unravel_index(np.argmin(closeness), closeness.shape)
            seeds.append(int(members[i]))
            partners.append(int(members[j]))
    if not seeds:
        return []
    grown: list[Block] = []
    for k in range(0, len(seeds), 256):
        part = grow_blocks(
            clk,
            np.array(seeds[k : k + 256]),
            np.array(partners[k : k + 256]),
            agree=agree,
            member=member,
            min_records=2,
        )
        grown.extend(b for b in part if b is not None)
    grown.sort(key=lambda b: -len(b.records))
    kept: list[Block] = []
    owner = np.full(len(clk), -1)
    for block in grown:
        holders = owner[block.records]
        if len(holders) and (holders >= 0).mean() >= same_block:
            continue
        owner[block.records[holders < 0]] = len(kept)
        kept.append(block)
    return kept


def name_blocks(clk: Bits, blocks: list[Block], public: NameList) -> list[str | None]:
    """Each block's name by graph matching its significant positions' similarity graph."""
    bits = polarised(clk, blocks)
    signatures = block_matrix(bits, blocks)
    sizes = np.array([len(b.records) for b in blocks], dtype=np.int64)
    return match_graph(
        dice_matrix(signatures, signatures).astype(np.float64),
        sizes,
        signatures.sum(axis=1).astype(np.float64),
        public,
    )


def bridge_attack(
    field_bits: Bits,
    clk_bits: Bits,
    public: NameList,
    *,
    min_records: int = 3,
    by_graph: bool = False,
) -> list[str | None]:
    """Name each record's field value from a (salted) field filter bridged by the record CLK.

    The blocks are named by frequency rank (their sizes are the names' full
    counts, whatever the salt), or with ``by_graph`` by graph matching of their
    signatures. Records outside every block of ``min_records`` or more stay unnamed.
    """
    clk = as_unbalanced(clk_bits)
    found = field_blocks(field_bits, clk, flip=estimated_flip(clk_bits))
    blocks = [b for b in found if len(b.records) >= min_records]
    if not blocks:
        return [None] * len(clk)
    if not by_graph:
        return name_by_size(len(clk), blocks, public.counts(), min_records)
    names = name_blocks(clk, blocks, public)
    out: list[str | None] = [None] * len(clk)
    for block, name in sorted(zip(blocks, names, strict=True), key=lambda bn: len(bn[0].records)):
        for r in block.records:
            out[int(r)] = name
    return out
