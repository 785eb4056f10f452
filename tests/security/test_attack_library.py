"""The attacks of hublink.privacy against what a node sends, each shown to work on a weak encoding.

Populations are Zipf-like with thousands of synthetic names (hublink.privacy.names),
encoded with the node's own encoder (privacy_harness). The attacker holds a public
name list whose frequencies only approximate the population's. The measure is the
share of ALL records whose given name the attacker names correctly; the ceiling
(issue 20) is 1%.

Where an encoding does not meet the ceiling (the previous design, kept as proof that an
attack works), or an attack does not yet reach what a published (or outside) attack
reached, the test says so with ``xfail(strict=True)`` and the measured figure, so it flips
when that changes. ``previous`` is the design before per-record salts (one filter per
field, the given name salted by the smaller of day and month, the family name unsalted,
the record CLK one unsalted filter); ``unsalted`` is the shipped field filters beside that
unsalted record CLK; ``shipped`` is what a node sends today, whose record CLK is made of
parts each salted by a near-unique value (hublink/schemas/record-clk.json).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from privacy_harness import (
    SECRET,
    People,
    Sent,
    encode,
    month_salted_spec,
    shipped_name_filters,
    shipped_spec,
    unsalted_clk_spec,
    weak_given_spec,
    weak_pattern_spec,
    zipf_people,
)

from hublink.privacy.atoms import find_atoms, polarised
from hublink.privacy.bits import grouped, qgrams, reidentified
from hublink.privacy.blocks import Block, find_blocks, name_by_size
from hublink.privacy.bridge import bridge_attack, field_blocks
from hublink.privacy.frequency import cluster_frequency_attack
from hublink.privacy.graph import filter_attack
from hublink.privacy.patterns import pattern_attack, pattern_attacks
from hublink.privacy.unbalance import unbalance
from hublink.spec import LinkageSpec
from node.hardening import keyed_permutation, permutation_key

pytestmark = pytest.mark.slow

CEILING = 0.01
RECORDS = 3000


@pytest.fixture(scope="module")
def people() -> People:
    return zipf_people(RECORDS, seed=0)


@pytest.fixture(scope="module")
def shipped(people: People) -> Sent:
    return encode(shipped_spec(), people)


@pytest.fixture(scope="module")
def previous(people: People) -> Sent:
    return encode(month_salted_spec(), people)


@pytest.fixture(scope="module")
def weak(people: People) -> Sent:
    return encode(weak_given_spec(), people)


def clk_parts(clk: np.ndarray, spec: LinkageSpec) -> list[np.ndarray]:
    """The record CLK cut at its part boundaries, which an attacker knows: each part is
    balanced on its own (node.encoder), so each is 2 x its bits wide."""
    widths = [2 * p.bits for p in spec.record_parts]
    cuts = np.cumsum([0, *widths])
    assert cuts[-1] == clk.shape[1]
    return [clk[:, a:b] for a, b in itertools.pairwise(cuts)]


def test_unbalancing_recovers_the_record_clk_without_the_key(people: People, shipped: Sent) -> None:
    # The key holder's view: each part's balancing permutation undone, its complement half
    # dropped (each part is balanced on its own, with its own key).
    spec = shipped_spec()
    clear = np.concatenate(
        [
            sent[
                :,
                np.argsort(
                    keyed_permutation(
                        permutation_key(SECRET, f"{spec.sha256}/{p.name}"), 2 * p.bits
                    )
                ),
            ][:, : p.bits]
            for sent, p in zip(
                clk_parts(shipped.arrays["clk"], spec), spec.record_parts, strict=True
            )
        ],
        axis=1,
    )
    found = unbalance(shipped.arrays["clk"])
    # Every pair found is an exact complement, and each kept column is a column of the
    # unhardened CLK (up to polarity): the key hid nothing.
    assert (found.disagreement == 1.0).all()
    columns = {clear[:, j].tobytes() for j in range(clear.shape[1])}
    columns |= {(1 - clear[:, j]).tobytes() for j in range(clear.shape[1])}
    recovered = sum(found.bits[:, j].tobytes() in columns for j in range(found.bits.shape[1]))
    print(f"\nunbalance: {len(found.pairs)} pairs, {recovered} are columns of the clear CLK")
    assert recovered == len(found.pairs) > 0.85 * clear.shape[1]
    # Columns that are not complements are not paired.
    noise = np.random.default_rng(0).integers(0, 2, size=(RECORDS, 256), dtype=np.uint8)
    assert len(unbalance(noise).pairs) == 0


def test_graph_matching_names_almost_every_record_of_a_weak_filter(
    people: People, weak: Sent, shipped: Sent
) -> None:
    rate = reidentified(filter_attack(weak.arrays["given"], people.public_given), people.given)
    print(f"\ngraph matching, unsalted unflipped given filter: {rate:.2%}")
    assert rate > 0.5
    # A second population: seeding from one start named 12% here, trying several and
    # keeping the most self-consistent names 99.9%.
    other = zipf_people(RECORDS, seed=3)
    filters = encode(weak_given_spec(), other).arrays["given"]
    again = reidentified(filter_attack(filters, other.public_given), other.given)
    print(f"graph matching, weak filter, second population: {again:.2%}")
    assert again > 0.5
    # The record CLK alone is attacked by block mining below (graph matching on its
    # thousands of singleton clusters takes minutes and names nobody).
    for layout in shipped_name_filters(shipped_spec(), "given"):
        sent = reidentified(
            filter_attack(shipped.arrays[layout], people.public_given), people.given
        )
        print(f"graph matching, shipped {layout!r}: {sent:.2%}")
        assert sent <= CEILING


@pytest.mark.xfail(
    strict=True,
    reason="previous design's family filter (unsalted, 2% flips): graph matching, seeded "
    "several ways, names 39.6% of family names (3.7% with one seeding)",
)
def test_family_names_by_graph_matching_on_the_previous_design(
    people: People, previous: Sent
) -> None:
    """Unsalted, the family filter reads like the weak given filter: proof the attack works."""
    rate = reidentified(
        filter_attack(previous.arrays["family"], people.public_family), people.family
    )
    print(f"\ngraph matching, previous design's family filter: {rate:.2%}")
    assert rate <= CEILING


def test_family_names_by_graph_matching_on_the_shipped_filters(
    people: People, shipped: Sent
) -> None:
    for layout in shipped_name_filters(shipped_spec(), "family"):
        rate = reidentified(
            filter_attack(shipped.arrays[layout], people.public_family), people.family
        )
        print(f"\ngraph matching, shipped {layout!r}: {rate:.2%}")
        assert rate <= CEILING


def test_cluster_frequency_attack_succeeds_on_a_weak_filter(people: People, weak: Sent) -> None:
    public = people.public_given.counts()
    rate = reidentified(cluster_frequency_attack(weak.arrays["given"], public), people.given)
    print(f"\ncluster frequency, weak given filter: {rate:.2%}")
    assert rate > 0.05


@pytest.mark.xfail(
    strict=True,
    reason="cluster frequency on the previous design's given filter names 1.13% of given "
    "names at 3,000 records (0.58% at 4,000): over the ceiling",
)
def test_cluster_frequency_attack_on_the_previous_design(people: People, previous: Sent) -> None:
    for layout, truth, public in (
        ("given", people.given, people.public_given),
        ("family", people.family, people.public_family),
    ):
        rate = reidentified(
            cluster_frequency_attack(previous.arrays[layout], public.counts()), truth
        )
        print(f"\ncluster frequency, previous design's {layout!r} filter: {rate:.2%}")
        assert rate <= CEILING


def test_cluster_frequency_attack_on_the_shipped_filters(people: People, shipped: Sent) -> None:
    for field, truth, public in (
        ("given", people.given, people.public_given),
        ("family", people.family, people.public_family),
    ):
        for layout in shipped_name_filters(shipped_spec(), field):
            rate = reidentified(
                cluster_frequency_attack(shipped.arrays[layout], public.counts()), truth
            )
            print(f"\ncluster frequency, shipped {layout!r}: {rate:.2%}")
            assert rate <= CEILING


def test_pattern_mining_names_most_records_of_a_weak_filter(people: People) -> None:
    """The weak case is encoded as the published pattern-mining experiments encode (Vidanage
    et al., ICDE 2019: about 1,000 bits, one field per filter): the given name alone in an
    unsalted, unbalanced, unflipped filter of 1,024 bits, 20 positions per bigram (the
    schema's). Mining finds each frequent bigram's positions, graph matching on their
    co-occurrence names them, and each record is decoded to the public name that fits."""
    weak = encode(weak_pattern_spec(), people).arrays["given"]
    rate = reidentified(pattern_attack(weak, people.public_given), people.given)
    print(f"\npattern mining, weak 1,024-bit given filter: {rate:.2%}")
    assert rate > 0.3  # 100% measured (99.97% on a second population)


def test_pattern_mining_names_many_records_of_a_dense_weak_filter(
    weak: Sent, people: People
) -> None:
    """The same weak filter at 512 bits: a third of its bits set, each position carrying
    about 18 bigrams, so any large set of records shares the commonest bigrams' positions.
    Growing itemsets by what the records share beyond chance still finds the bigrams."""
    rate = reidentified(pattern_attack(weak.arrays["given"], people.public_given), people.given)
    print(f"\npattern mining, weak 512-bit given filter: {rate:.2%}")
    assert rate > 0.3  # 70.8% measured (59.0% on a second population)


def test_pattern_mining_tolerates_flipped_bits_on_a_weak_filter(people: People) -> None:
    """The 1,024-bit weak filter with the shipped flip rate: no two records are alike and a
    bigram's positions are seldom all set, yet with a tolerance of a tenth of an itemset's
    positions missing the attack names nearly everyone, so its figures on what is sent
    (which flips bits) measure the encoding, not an attack that cannot see through noise."""
    spec = dataclasses.replace(weak_pattern_spec(), group_flip=shipped_spec().group_flip)
    assert spec.group_flip > 0
    weak = encode(spec, people).arrays["given"]
    rate = reidentified(pattern_attack(weak, people.public_given, tolerance=0.1), people.given)
    print(f"\npattern mining, flipped weak 1,024-bit given filter, tolerance 0.1: {rate:.2%}")
    assert rate > 0.3  # 99.97% measured


def test_pattern_mining_on_what_is_sent(people: People, shipped: Sent, unsalted: Sent) -> None:
    """Pattern mining on every filter a node sends with the defaults: each field filter, the
    salted record CLK whole and each of its parts alone (their boundaries are known); and on
    the legacy unsalted record CLK (``record_clk = "unsalted"``), the known-weak case."""
    publics = [people.public_given, people.public_family]
    truths = [people.given, people.family]
    spec = shipped_spec()
    sent = [
        *((layout, shipped.arrays[layout]) for layout in shipped_name_filters(spec, "given")),
        *((layout, shipped.arrays[layout]) for layout in shipped_name_filters(spec, "family")),
        ("record CLK", shipped.arrays["clk"]),
        *(
            (f"record CLK part {p.name}", part)
            for p, part in zip(
                spec.record_parts, clk_parts(shipped.arrays["clk"], spec), strict=True
            )
        ),
        ("legacy unsalted record CLK", unsalted.arrays["clk"]),
    ]
    for name, bits in sent:
        for field, guesses, truth in zip(
            ("given", "family"), pattern_attacks(bits, publics), truths, strict=True
        ):
            rate = reidentified(guesses, truth)
            print(f"\npattern mining, {name}, {field} names: {rate:.2%}")
            assert rate <= CEILING


def test_pattern_mining_with_tolerance_on_the_flipped_filters_sent(
    people: People, shipped: Sent
) -> None:
    """The shipped field filters flip bits (the record CLK does not), so they are attacked
    again allowing a tenth of each itemset's positions missing, the tolerance that names
    nearly everyone in the flipped weak filter above."""
    publics = [people.public_given, people.public_family]
    truths = [people.given, people.family]
    spec = shipped_spec()
    assert spec.group_flip > 0
    for layout in [*shipped_name_filters(spec, "given"), *shipped_name_filters(spec, "family")]:
        named = pattern_attacks(shipped.arrays[layout], publics, tolerance=0.1)
        for field, guesses, truth in zip(("given", "family"), named, truths, strict=True):
            rate = reidentified(guesses, truth)
            print(f"\npattern mining, tolerance 0.1, {layout}, {field} names: {rate:.2%}")
            assert rate <= CEILING


@pytest.mark.xfail(
    strict=True,
    reason="legacy unsalted record CLK (not the default): pattern mining with tolerance 0.1 "
    "names 1.27% of given names (0.50% on a second population), above the 1% ceiling",
)
def test_pattern_mining_with_tolerance_on_the_legacy_unsalted_record_clk(
    people: People, unsalted: Sent
) -> None:
    """Tolerance lets an itemset survive the positions other fields' q-grams clear or
    collide with in the unbalanced legacy CLK; the default salted CLK stays at 0.00%."""
    rate = reidentified(
        pattern_attack(unsalted.arrays["clk"], people.public_given, tolerance=0.1), people.given
    )
    print(f"\npattern mining, tolerance 0.1, legacy unsalted record CLK: {rate:.2%}")
    assert rate <= CEILING


@pytest.fixture(scope="module")
def unsalted(people: People) -> Sent:
    return encode(unsalted_clk_spec(), people)


@pytest.fixture(scope="module")
def weak_clk_blocks(unsalted: Sent) -> list[Block]:
    return find_blocks(unbalance(unsalted.arrays["clk"]).bits, max_seeds=1000)


@pytest.fixture(scope="module")
def clk_blocks(shipped: Sent) -> list[Block]:
    return find_blocks(unbalance(shipped.arrays["clk"]).bits, max_seeds=1000)


@pytest.fixture(scope="module")
def part_blocks(shipped: Sent) -> list[list[Block]]:
    """Block mining on each part of the shipped record CLK alone (its boundaries are known)."""
    return [
        find_blocks(unbalance(part).bits, max_seeds=1000)
        for part in clk_parts(shipped.arrays["clk"], shipped_spec())
    ]


def test_block_mining_groups_records_by_name_only_on_an_unsalted_record_clk(
    people: People, weak_clk_blocks: list[Block], clk_blocks: list[Block]
) -> None:
    """Block mining on the record CLK, without the key or any name list: records sharing
    a name share a block of positions when the CLK is one unsalted filter. In the shipped
    CLK every part is salted by a near-unique value, so a name sits on unrelated positions
    in records that do not share the salt, and no block gathers a name's records."""
    weak = [b.records.tolist() for b in weak_clk_blocks]
    given, family = grouped(weak, people.given), grouped(weak, people.family)
    print(
        f"\nunsalted record CLK blocks: {given:.1%} grouped by given name, {family:.1%} by family"
    )
    assert given > 0.3
    assert family > 0.2
    sent = [b.records.tolist() for b in clk_blocks]
    given, family = grouped(sent, people.given), grouped(sent, people.family)
    print(f"shipped record CLK blocks: {given:.1%} grouped by given name, {family:.1%} by family")
    assert given <= CEILING
    assert family <= CEILING


@pytest.mark.xfail(
    strict=True,
    reason="the name part alone (salted by the full name) groups 1.37% of records with others "
    "of their given name, 1.27% of their family name: records sharing a full name share its "
    "permutation, so a salt class of 3+ namesakes forms a block. Not a re-identification "
    "(naming the blocks by size names 0.17% / 0.07%, below); the ceiling is held on grouping "
    "too, so this records the figure (docs/benchmarks.md, 'Candidates from the best part')",
)
def test_block_mining_on_each_part_of_the_record_clk_alone(
    people: People, part_blocks: list[list[Block]]
) -> None:
    """The coordinator scores each part alone, so an attacker knows where parts start
    (each is balanced on its own): block mining runs on each part too."""
    worst = 0.0
    for part, blocks in zip(shipped_spec().record_parts, part_blocks, strict=True):
        sent = [b.records.tolist() for b in blocks]
        given, family = grouped(sent, people.given), grouped(sent, people.family)
        print(f"\nshipped {part.name} alone: {given:.2%} grouped by given, {family:.2%} by family")
        worst = max(worst, given, family)
    assert worst <= CEILING


def test_record_clk_blocks_named_by_frequency(
    people: People,
    weak_clk_blocks: list[Block],
    clk_blocks: list[Block],
    part_blocks: list[list[Block]],
) -> None:
    """Blocks lined up with public frequencies: on the unsalted record CLK the largest
    blocks are named right; on the shipped one, whether or not field filters are sent,
    there are no name blocks to line up."""
    public = people.public_given.counts()
    weak = reidentified(name_by_size(RECORDS, weak_clk_blocks, public), people.given)
    print(f"\nrecord CLK blocks by frequency, unsalted CLK, given names: {weak:.2%}")
    assert weak > 3 * CEILING  # 8.3% measured
    record_only = encode(LinkageSpec.default(), people).arrays["clk"]
    parts = [p.name for p in shipped_spec().record_parts]
    for name, blocks in (
        ("shipped", clk_blocks),
        ("record CLK only", find_blocks(unbalance(record_only).bits, max_seeds=1000)),
        *((f"shipped {part} alone", found) for part, found in zip(parts, part_blocks, strict=True)),
    ):
        for field, truth, names in (
            ("given", people.given, people.public_given),
            ("family", people.family, people.public_family),
        ):
            rate = reidentified(name_by_size(RECORDS, blocks, names.counts()), truth)
            print(f"record CLK blocks by frequency, {name}, {field} names: {rate:.2%}")
            assert rate <= CEILING


def test_the_bridge_joins_salted_given_name_clusters_into_whole_names(
    people: People, previous: Sent
) -> None:
    """Clusters of the month-salted given filter seed record-CLK blocks: each block is one
    given name across all 12 salts, with its full count. Proof that the bridge works."""
    clk = unbalance(previous.arrays["clk"]).bits
    blocks = [b for b in field_blocks(previous.arrays["given"], clk) if len(b.records) >= 3]
    rate = grouped([b.records.tolist() for b in blocks], people.given)
    print(f"\nbridge: {rate:.1%} of records grouped by given name across salts")
    assert rate > 0.3


def test_bridge_attack_on_the_shipped_encoding(
    people: People, previous: Sent, shipped: Sent
) -> None:
    """The bridge names given names on the previous design (month-salted given filter,
    unsalted record CLK); on the shipped encoding no field filter clusters by name and
    the record CLK has no name blocks to grow, so it names no more than the ceiling."""
    guesses = bridge_attack(previous.arrays["given"], previous.arrays["clk"], people.public_given)
    weak = reidentified(guesses, people.given)
    print(f"\nbridge (record CLK across salts), previous design: {weak:.2%}")
    assert weak > 3 * CEILING  # 7.8% measured
    for field, truth, public in (
        ("given", people.given, people.public_given),
        ("family", people.family, people.public_family),
    ):
        for layout in shipped_name_filters(shipped_spec(), field):
            guesses = bridge_attack(shipped.arrays[layout], shipped.arrays["clk"], public)
            rate = reidentified(guesses, truth)
            print(f"bridge (record CLK across salts), shipped {layout!r}: {rate:.2%}")
            assert rate <= CEILING


def test_bigram_atoms_mined_from_the_record_clk_mark_who_holds_a_bigram(
    people: People, previous: Sent
) -> None:
    """Pattern mining's first step on what is shipped: the positions of single bigrams,
    found as bicliques of name blocks x positions, then read off every record. Naming the
    atoms is the step still missing (see hublink.privacy.atoms)."""
    clk = unbalance(previous.arrays["clk"]).bits
    blocks = [b for b in field_blocks(previous.arrays["given"], clk) if len(b.records) >= 3]
    atoms = find_atoms(polarised(clk, blocks), blocks)
    vocabulary = sorted({g for name in set(people.given) for g in qgrams(name)})
    holds = np.array([[g in qgrams(n) for g in vocabulary] for n in people.given], dtype=float)
    present = atoms.records.astype(float)
    both = present.T @ holds
    jaccard = both / np.maximum(present.sum(0)[:, None] + holds.sum(0)[None, :] - both, 1)
    clean = int((jaccard.max(axis=1) >= 0.9).sum())
    print(
        f"\natoms: {len(atoms.members)} mined, {clean} mark one bigram's holders (Jaccard >= 0.9)"
    )
    assert clean >= 10  # 15 of 68 measured
