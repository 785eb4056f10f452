"""Frequency attacks on what a default project sends, beside the same attacks on weak encodings.

Christen et al. re-identified values from field-level Bloom filters by lining
up the most frequent filters with the most frequent plaintext values (and by
mining frequent bit patterns). Here the attacker has the strongest version of
that knowledge: the exact frequency of every (normalised) given name among the
20,000 synthetic records it attacks. A record counts as re-identified when the
attack assigns it its own given name.

Every test runs over every encoding a default project sends (the salted record
CLK plus the per-field filters, each salted per record, balanced and with bits
flipped afresh per record) and over the record CLK alone (``field_scoring =
false``), so any encoding that leaves a node is attacked. Each attack is
also run on an unhardened given-name-only filter, and must succeed there: that
is what shows the attack is real and the defaults are what stop it.

Figures are printed (run with ``-s`` to see them); the attack figures in
docs/design.md and docs/benchmarks.md come from this module.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from coordinator.core import keys
from hublink import synthetic
from hublink.config import ProjectConfig, default_of
from hublink.privacy.bits import unpack
from hublink.privacy.frequency import cluster_alignment, frequency_alignment
from hublink.privacy.frequency import near_duplicate_clusters as _clusters
from hublink.spec import LinkageSpec
from node.derived import derived_value
from node.encoder import Encoder, encode_records
from node.prepare import PreparedRecord
from node.synthetic_input import prepared_records

pytestmark = pytest.mark.slow

RECORDS = 20_000
PROJECT_SECRET = b"the project's secret, unknown to the attacker"
ATTACKER_GUESS = b"the attacker's best guess at the secret"
#: The feature of the default schema that hashes the given name.
GIVEN_NAME_HASHED = "given_name_canonical"


@dataclass(frozen=True)
class Population:
    prepared: list[PreparedRecord]
    given_names: list[str]
    frequencies: Counter[str]


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Population:
    """20,000 synthetic records across the three default organisations, normalised."""
    folder = tmp_path_factory.mktemp("attack")
    per_org = -(-RECORDS // len(synthetic.DEFAULT_LAYOUTS))
    data = synthetic.generate(folder, per_org, seed=404)
    spec = LinkageSpec.default()
    # The generator plants a few unreadable rows; like a node, this leaves them out.
    prepared: list[PreparedRecord] = [
        record for part in prepared_records(data, spec).values() for record in part
    ][:RECORDS]
    assert len(prepared) == RECORDS
    # What the default schema hashes for the given name: its canonical form (node.derived),
    # so the attacker is given the exact frequency of every hashed value, and guessing it
    # counts as re-identifying the record (it names the child up to short forms).
    given = spec.all_fields.index(GIVEN_NAME_HASHED)
    names = [p.values[given] for p in prepared]
    return Population(prepared, names, Counter(names))


def encodings_sent(
    spec: LinkageSpec,
    prepared: Sequence[PreparedRecord],
    secret: bytes,
    tokens: Sequence[str] = (),
) -> list:
    """Per encoding of the spec's layout, that encoding of every record (what goes on the wire).

    ``tokens`` fix the bits flipped in per-field filters (fresh random ones otherwise).
    """
    records = encode_records(prepared, Encoder(spec, secret), tokens=tokens)
    assert all(len(r.encodings) == len(spec.encodings) for r in records)
    return [[r.encodings[i] for r in records] for i in range(len(spec.encodings))]


def given_name_filter_spec() -> LinkageSpec:
    """An unhardened field-level Bloom filter of the given name alone (the classic weak case)."""
    schema = LinkageSpec.default().schema
    for feature in schema["features"]:
        # given_name is read (and ignored) so that the hashed canonical form derives from it.
        if feature["identifier"] not in ("given_name", GIVEN_NAME_HASHED):
            feature.clear()
            feature.update({"identifier": feature_name(schema, feature), "ignored": True})
    # One plain filter: the salted record CLK's parts need the fields this schema ignores.
    return LinkageSpec.from_json(json.dumps(schema), hardening="none", record_clk="unsalted")


def feature_name(schema: dict, feature: dict) -> str:
    return str(LinkageSpec.default().all_fields[schema["features"].index(feature)])


def project_default_spec() -> LinkageSpec:
    """What a default project sends: the salted record CLK and the per-field filters."""
    return LinkageSpec.from_json(
        LinkageSpec.default().json_text,
        field_scoring=default_of(ProjectConfig, "field_scoring"),
        record_clk=default_of(ProjectConfig, "record_clk"),
    )


#: The default, and the record CLK alone (``field_scoring = false``).
SPECS = {"default": project_default_spec, "record_only": LinkageSpec.default}


#: The tokens the population is encoded under (fixed, so the flipped bits and figures repeat).
TOKENS = [f"record-{i}" for i in range(RECORDS)]


@pytest.fixture(scope="module")
def sent_as(population: Population) -> Callable[[str], list[list[bytes]]]:
    """Every encoding of a ``SPECS`` layout, for all 20,000 records, under the project secret.

    Encoding 20,000 records with per-field filters is the slowest step here, so each layout
    is encoded once a module and the tests that look at fewer records take the first ones
    (a record's encodings depend only on its values, its token and the secret).
    """
    made: dict[str, list[list[bytes]]] = {}

    def sent(name: str) -> list[list[bytes]]:
        if name not in made:
            made[name] = encodings_sent(SPECS[name](), population.prepared, PROJECT_SECRET, TOKENS)
        return made[name]

    return sent


@pytest.fixture(scope="module", params=sorted(SPECS))
def sent_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def sent_spec(sent_name: str) -> LinkageSpec:
    return SPECS[sent_name]()


@pytest.fixture(scope="module")
def default_sent(sent_as: Callable[[str], list[list[bytes]]], sent_name: str) -> list[list[bytes]]:
    """Every encoding of the layout, for all 20,000 records, under the project secret."""
    return sent_as(sent_name)


@pytest.fixture(scope="module")
def weak_sent(population: Population) -> list[bytes]:
    """The unhardened given-name filter of every record."""
    return encodings_sent(given_name_filter_spec(), population.prepared, PROJECT_SECRET)[0]


# ------------------------------------------------------------------------------- the attacks
def pattern_match(
    encodings: Sequence[bytes], candidates: Sequence[str], candidate_encodings: Sequence[bytes]
) -> list[str]:
    """Guess each record's name as the candidate whose filter shares most bits with it.

    The attacker builds one filter per candidate name with the hashing it
    believes was used (known for a public hash; a guess when the hash is
    keyed with a secret it does not have) and matches bit patterns by Dice.
    """
    records = _bits(encodings)
    names = _bits(candidate_encodings)
    name_weights = names.sum(axis=1)
    guesses: list[str] = []
    for start in range(0, len(records), 2000):
        part = records[start : start + 2000]
        shared = part @ names.T
        dice = 2 * shared / (part.sum(axis=1)[:, None] + name_weights[None, :] + 1e-9)
        guesses.extend(candidates[i] for i in dice.argmax(axis=1))
    return guesses


def _bits(encodings: Sequence[bytes]) -> np.ndarray:
    raw = np.frombuffer(b"".join(encodings), dtype=np.uint8).reshape(len(encodings), -1)
    return np.unpackbits(raw, axis=1).astype(np.float32)


def sent_where_held(
    spec: LinkageSpec, name: str, *columns: Sequence[bytes]
) -> tuple[np.ndarray, list[list[bytes]]]:
    """The rows of a filter a record sent with a value, and those rows of ``columns``.

    A filter of a group that is empty when missing (the NHS number's, an added field's) is
    all zeros for every record without the value: one constant, the same whatever the name,
    so it carries nothing an attack could use, and an attack that maps that one "cluster" to
    the commonest name only guesses the prior. Those rows are checked to be all zeros here and
    left out of the rates; every other filter keeps every row."""
    empty = {g.name for g in spec.field_groups if g.empty_when_missing}
    held = np.array([name not in empty or any(row) for row in columns[0]])
    for column in columns:
        missing = [row for row, h in zip(column, held, strict=True) if not h]
        assert not any(any(row) for row in missing), name
    return held, [[row for row, h in zip(c, held, strict=True) if h] for c in columns]


def reidentified(guesses: Sequence[str | None], truth: Sequence[str]) -> float:
    return sum(1 for g, t in zip(guesses, truth, strict=True) if g == t) / len(truth)


def candidate_filters(
    spec: LinkageSpec, names: Sequence[str], secret: bytes, layout: int = 0
) -> list[bytes]:
    """One encoding per candidate name (all other fields empty), made as the attacker would;
    ``layout`` picks which of the spec's encodings.

    The name goes in the given-name field; the encoder derives the hashed canonical form
    from it, which for a canonical candidate is the candidate itself.
    """
    given = spec.all_fields.index("given_name")
    rows = [tuple(n if i == given else "" for i in range(len(spec.all_fields))) for n in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [e[layout] for e in Encoder(spec, secret).encode_all(rows)]


# --------------------------------------------------------------------------------- the tests
def test_frequency_alignment_reidentifies_under_1_percent_of_default_encodings(
    population: Population,
    sent_spec: LinkageSpec,
    default_sent: list[list[bytes]],
    weak_sent: list[bytes],
) -> None:
    spec = sent_spec
    sent, weak = default_sent, weak_sent
    weak_rate = reidentified(
        frequency_alignment(weak, population.frequencies), population.given_names
    )
    print(f"\nfrequency alignment, unhardened given-name filter: {weak_rate:.2%} re-identified")
    for layout, encodings in zip(spec.encodings, sent, strict=True):
        held, (kept,) = sent_where_held(spec, layout.name, encodings)
        truth = [n for n, h in zip(population.given_names, held, strict=True) if h]
        rate = reidentified(frequency_alignment(kept, population.frequencies), truth) * (
            len(kept) / len(encodings)
        )
        print(f"frequency alignment, default encoding {layout.name!r}: {rate:.2%} re-identified")
        assert rate < 0.01, layout.name
    # The attack is real: on field-level filters it recovers a large share of records.
    assert weak_rate > 0.10


def test_bit_pattern_matching_reidentifies_under_1_percent_of_default_encodings(
    population: Population,
    sent_spec: LinkageSpec,
    default_sent: list[list[bytes]],
    weak_sent: list[bytes],
) -> None:
    candidates = sorted(population.frequencies)
    weak_spec = given_name_filter_spec()
    weak = weak_sent
    # A public (or leaked) hash: the attacker hashes every candidate name exactly as nodes do.
    known = pattern_match(
        weak, candidates, candidate_filters(weak_spec, candidates, PROJECT_SECRET)
    )
    weak_rate = reidentified(known, population.given_names)
    print(f"\nbit patterns, given-name filter with a known hash: {weak_rate:.2%} re-identified")

    spec = sent_spec
    sent = default_sent
    # Without the project's secret the attacker can only hash (and permute) under a guess.
    for index, (layout, encodings) in enumerate(zip(spec.encodings, sent, strict=True)):
        guessed = candidate_filters(spec, candidates, ATTACKER_GUESS, index)
        held, (kept,) = sent_where_held(spec, layout.name, encodings)
        truth = [n for n, h in zip(population.given_names, held, strict=True) if h]
        rate = reidentified(pattern_match(kept, candidates, guessed), truth) * (
            len(kept) / len(encodings)
        )
        print(f"bit patterns, default encoding {layout.name!r}: {rate:.2%} re-identified")
        assert rate < 0.01, layout.name
    assert weak_rate > 0.90


def test_the_same_child_gets_unrelated_encodings_in_two_projects(
    population: Population, sent_spec: LinkageSpec, default_sent: list[list[bytes]]
) -> None:
    spec = sent_spec
    sample = population.prepared[:2000]
    ours = [column[: len(sample)] for column in default_sent]
    theirs = encodings_sent(spec, sample, b"another project's different secret")
    again = encodings_sent(spec, sample, PROJECT_SECRET)
    # The same project encodes the same child's record CLK identically; per-field filters
    # differ where exactly one of the two encodings flipped a bit: 2 x 0.02 x 0.98 = 3.9%.
    assert ours[0] == again[0]
    for layout, mine, repeat in zip(spec.encodings[1:], ours[1:], again[1:], strict=True):
        _, (mine, repeat) = sent_where_held(spec, layout.name, mine, repeat)
        changed = (_bits(mine) != _bits(repeat)).mean(axis=1)
        assert 0.03 < changed.mean() < 0.05
    for layout, mine, other in zip(spec.encodings, ours, theirs, strict=True):
        _, (mine, other) = sent_where_held(spec, layout.name, mine, other)
        a, b = _bits(mine), _bits(other)
        differing = (a != b).mean(axis=1)
        print(
            f"\n{layout.name!r} across projects: {differing.mean():.3f} of bits differ "
            f"(min {differing.min():.3f}, max {differing.max():.3f})"
        )
        assert 0.47 < differing.mean() < 0.53
        assert differing.min() > 0.35


def test_the_same_child_gets_unrelated_linkage_keys_in_two_projects() -> None:
    first, second = keys.new_project_key(), keys.new_project_key()
    entities = [f"entity-{i:05d}" for i in range(2000)]
    ours = [keys.linkage_key(first, e) for e in entities]
    theirs = [keys.linkage_key(second, e) for e in entities]
    assert ours == [keys.linkage_key(first, e) for e in entities]  # stable within a project
    assert len(set(ours)) == len(entities)
    assert not set(ours) & set(theirs)
    same_place = sum(
        a == b for x, y in zip(ours, theirs, strict=True) for a, b in zip(x, y, strict=True)
    )
    # 26 base32 characters: unrelated keys agree in about 1 place in 32.
    assert same_place / (26 * len(entities)) < 0.05


def test_the_attack_data_is_what_a_default_project_would_send(population: Population) -> None:
    spec = LinkageSpec.default()
    sent = encodings_sent(spec, population.prepared[:10], PROJECT_SECRET)
    assert [(e.name, e.nbytes) for e in spec.encodings] == [
        (e.name, len(sent[i][0])) for i, e in enumerate(spec.encodings)
    ]
    assert spec.hardening == "balance"
    assert GIVEN_NAME_HASHED in spec.fields
    assert "given_name" in spec.all_fields  # the source it is derived from, as the attack uses


def near_duplicate_clusters(encodings: Sequence[bytes], alike: float) -> list[int]:
    """Records joined when their encodings reach Dice ``alike`` (hublink.privacy.frequency)."""
    return _clusters(unpack(encodings), alike)


CLUSTERED = 5000


def test_clustering_near_identical_name_filters(
    population: Population, sent_as: Callable[[str], list[list[bytes]]]
) -> None:
    """Flipped bits stop counting equal filters, not clustering near-identical ones.

    An attacker who joins filters at Dice 0.9 (same value: about 0.96 after 2% flips;
    different names: about 0.65) and lines cluster sizes up with the exact name
    frequencies names a good share of given names when the filter is only flipped. Every
    shipped name filter is salted per record (the date of birth, or the full postcode), so
    near-identical filters gather only the records of one child: the same attack, even by
    an attacker who knows how often each name comes with each salt value, names under 1%.
    """
    spec = project_default_spec()
    salts = {g.name: g.salt for g in spec.field_groups}
    assert all(salts.values()), "every shipped per-field filter is salted"
    names = [n for n in salts if n.partition("@")[0] in ("given", "family")]
    unsalted = spec.with_salts({g.name: "" for g in spec.field_groups})
    sample = population.prepared[:CLUSTERED]
    # Fixed tokens fix the flipped bits, so the figures are the same on every run.
    tokens = [f"record-{i}" for i in range(len(sample))]
    family_at = spec.all_fields.index("family_name")
    truths = {
        "given": population.given_names[:CLUSTERED],
        "family": [p.values[family_at] for p in sample],
    }
    layouts = [e.name for e in spec.encodings]
    alike = 0.9

    def attack(sent: Sequence[bytes], truth: Sequence[str]) -> float:
        clusters = near_duplicate_clusters(sent, alike)
        return reidentified(cluster_alignment(clusters, Counter(truth)), truth)

    control = encodings_sent(unsalted, sample, PROJECT_SECRET, tokens)
    control_rate = attack(control[layouts.index("given@birth")], truths["given"])
    print(f"\nclustering, flipped but unsalted given-name filter: {control_rate:.2%} re-identified")
    assert control_rate > 0.10  # the attack works on what salting protects
    # The same tokens as ``tokens``: the first records of the module's default encodings.
    assert tokens == TOKENS[:CLUSTERED]
    default = sent_as("default")
    sent = {layout: column[:CLUSTERED] for layout, column in zip(layouts, default, strict=True)}
    for layout in names:
        truth = truths[layout.partition("@")[0]]
        rate = attack(sent[layout], truth)
        # Knowing the salt's values, the attacker lines clusters up with (name, salt) counts.
        salt = [derived_value(salts[layout], spec.all_fields, p.values) for p in sample]
        named = [f"{name}|{value}" for name, value in zip(truth, salt, strict=True)]
        guesses = cluster_alignment(near_duplicate_clusters(sent[layout], alike), Counter(named))
        informed = reidentified([g.split("|")[0] if g else None for g in guesses], truth)
        print(f"clustering {layout!r}: {rate:.2%}; knowing names by salt value: {informed:.2%}")
        assert rate < 0.01, layout
        assert informed < 0.01, layout
