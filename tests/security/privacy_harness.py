"""Encodings for the attack tests and bench/privacy.py, made by the node's own encoder.

The attacks in ``hublink.privacy`` take bit arrays; this module is the one
place that turns people into exactly what a node sends (``node.encoder``) and
the one place that reads the project's generator (``hublink.synthetic``), so a
change to either touches only this file. Designs that the node cannot yet make
(BLIP on the record CLK, XOR folding) are applied here to what the encoder
made, as a node would apply them last.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hublink import synthetic
from hublink.config import ProjectConfig, default_of
from hublink.privacy.bits import Bits, unpack
from hublink.privacy.names import (
    NameList,
    ZipfPopulation,
    approximate_public,
    population_and_public,
    syllable_names,
    zipf_population,
)
from hublink.spec import RECORD_CLK, FieldGroup, LinkageSpec
from node.encoder import Encoder, flip_bits
from node.synthetic_input import prepared_records

SECRET = b"the project's secret, unknown to the attacker"
BASE = ("given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number")


@dataclass(frozen=True)
class People:
    """Normalised base values per record (``BASE`` order), the truth, and public name lists."""

    values: list[tuple[str, ...]]
    given: list[str]
    """What the given-name filter hashes (the canonical form), per record."""
    family: list[str]
    public_given: NameList
    public_family: NameList
    entity: list[str]
    """Who each record is (records of one person share it)."""
    organisation: list[str]
    added: Mapping[str, list[str]] = field(default_factory=dict)
    """Normalised values of fields a schema adds beyond the six (``with_places``), per record."""
    public_added: Mapping[str, NameList] = field(default_factory=dict)
    """The attacker's public list for each added field."""


def _canonical(given: str) -> str:
    from node.derived import canonical_given_name

    return canonical_given_name(given)


def zipf_people(size: int, seed: int = 0) -> People:
    """A Zipf-like population of thousands of synthetic names (``hublink.privacy.names``)."""
    pop: ZipfPopulation = zipf_population(size, seed=seed)
    values = [tuple(p.values()[f] for f in BASE) for p in pop.people]
    return People(
        values,
        [_canonical(p.given_name) for p in pop.people],
        [p.family_name for p in pop.people],
        pop.public_given,
        pop.public_family,
        [str(i) for i in range(len(values))],
        ["one"] * len(values),
    )


def generator_people(per_org: int, seed: int = 404, **options: object) -> People:
    """The project's generator (a few hundred given names), read and normalised as a node does.

    The public lists are the observed frequencies blurred (``approximate_public``).
    """
    spec = LinkageSpec.default()
    with tempfile.TemporaryDirectory() as folder:
        data = synthetic.generate(Path(folder), per_org, seed=seed, **options)  # type: ignore[arg-type]
        prepared = prepared_records(data, spec)
        truth = data.truth()
    fields = spec.all_fields
    values, entity, orgs = [], [], []
    for org, records in prepared.items():
        for p in records:
            values.append(tuple(p.values[fields.index(f)] for f in BASE))
            entity.append(truth[(org, p.local_id)])
            orgs.append(org)
    given = [_canonical(v[0]) for v in values]
    family = [v[1] for v in values]
    return People(
        values,
        given,
        family,
        approximate_public(given, seed=seed),
        approximate_public(family, seed=seed + 1),
        entity,
        orgs,
    )


# ------------------------------------------------------------------------------- designs
def shipped_spec() -> LinkageSpec:
    """What a node of a project with the defaults sends (a project file's ``field_scoring``
    and ``record_clk``: salted per-field filters beside the salted record CLK)."""
    return LinkageSpec.from_json(
        LinkageSpec.default().json_text,
        field_scoring=default_of(ProjectConfig, "field_scoring"),
        record_clk=default_of(ProjectConfig, "record_clk"),
    )


def unsalted_clk_spec() -> LinkageSpec:
    """Deliberately weak record CLK: the legacy ``record_clk = "unsalted"``, one filter over
    every field, balanced and permuted, beside the shipped field filters."""
    return LinkageSpec.from_json(
        LinkageSpec.default().json_text, field_scoring=True, record_clk="unsalted"
    )


def month_salted_spec() -> LinkageSpec:
    """The design shipped before per-record salts: one filter per field, the given name's
    salted by the smaller of day and month of birth (12 values), the others unsalted, and
    the record CLK unsalted. The outside attack of issue 20 named 86-90% of given names
    from it."""
    return unsalted_clk_spec().with_field_groups(
        (
            FieldGroup("given", ("given_name_canonical",), "day_month_smaller"),
            FieldGroup("family", ("family_name",)),
            FieldGroup("birth", ("date_of_birth_sorted", "date_of_birth_order", "sex")),
            FieldGroup("place", ("postcode", "postcode_outward", "nhs_number")),
        )
    )


def weak_given_spec() -> LinkageSpec:
    """Deliberately weak: the given-name filter unbalanced, unflipped and unsalted."""
    spec = dataclasses.replace(shipped_spec(), hardening="none", group_flip=0.0)
    return spec.with_field_groups((FieldGroup("given", ("given_name_canonical",)),))


def weak_pattern_spec() -> LinkageSpec:
    """Deliberately weak, as the published pattern-mining experiments encode (Vidanage et
    al., about 1,000 bits): the given-name filter alone, 1,024 bits, 20 hash positions per
    bigram (the schema's), unbalanced, unflipped and unsalted."""
    return dataclasses.replace(weak_given_spec(), group_bits=1024)


def shipped_name_filters(spec: LinkageSpec, field: str) -> list[str]:
    """The layouts of every shipped variant of one comparison ("given" -> given@birth, ...)."""
    return [g.name for g in spec.field_groups if g.comparison == field]


def names_only_clk_spec() -> LinkageSpec:
    """Deliberately weak: an unbalanced record CLK over the given and family names only."""
    schema = LinkageSpec.default().schema
    for feature in schema["features"]:
        if feature["identifier"] not in ("given_name", "given_name_canonical", "family_name"):
            identifier = feature["identifier"]
            feature.clear()
            feature.update({"identifier": identifier, "ignored": True})
    return LinkageSpec.from_json(json.dumps(schema), hardening="none")


def with_groups(
    spec: LinkageSpec, groups: Sequence[FieldGroup], flip: float | None = None
) -> LinkageSpec:
    """``spec`` with other per-field filters (and flip rate)."""
    return dataclasses.replace(
        spec,
        field_groups=tuple(groups),
        group_bits=spec.group_bits or 512,
        group_flip=spec.group_flip if flip is None else flip,
    )


@dataclass(frozen=True)
class Sent:
    """Every encoding of a design, as bit arrays keyed by layout name ("clk", group names)."""

    spec: LinkageSpec
    arrays: dict[str, Bits]


def encode(
    spec: LinkageSpec,
    people: People,
    *,
    secret: bytes = SECRET,
    clk_flip: float = 0.0,
    xor_fold: bool = False,
    clk_from_filters: bool = False,
) -> Sent:
    """What a node sends for each person under ``spec`` (tokens fixed, so runs repeat).

    ``clk_flip`` flips record-CLK bits at that rate (BLIP) after hardening;
    ``xor_fold`` sends the unbalanced record CLK folded in half (XOR of halves);
    ``clk_from_filters`` replaces the record CLK by a keyed subsample (2,048 positions) of
    the spec's salted field filters made without flips (a design measured, not shipped).
    """
    if xor_fold:
        spec = dataclasses.replace(spec, hardening="none")
    fields = spec.all_fields
    rows = [
        tuple(
            {
                **dict(zip(BASE, v, strict=True)),
                **{name: values[i] for name, values in people.added.items()},
            }.get(f, "")
            for f in fields
        )
        for i, v in enumerate(people.values)
    ]
    tokens = [f"record-{i}" for i in range(len(rows))]
    encoded = Encoder(spec, secret).encode_all(rows, tokens)
    names = [e.name for e in spec.encodings]
    arrays = {n: unpack([e[k] for e in encoded]) for k, n in enumerate(names)}
    if clk_from_filters:
        clear = dataclasses.replace(spec, group_flip=0.0)
        unflipped = Encoder(clear, secret).encode_all(rows, tokens)
        joined = np.concatenate(
            [unpack([e[k] for e in unflipped]) for k in range(1, len(names))], axis=1
        )
        chosen = np.random.default_rng(20).choice(joined.shape[1], 2048, replace=False)
        arrays[RECORD_CLK] = joined[:, chosen]
    if xor_fold:
        clk = arrays[RECORD_CLK]
        half = clk.shape[1] // 2
        arrays[RECORD_CLK] = clk[:, :half] ^ clk[:, half:]
    if clk_flip:
        seeds = [f"clk-{t}".encode() for t in tokens]
        packed = [r.tobytes() for r in np.packbits(arrays[RECORD_CLK], axis=1)]
        arrays[RECORD_CLK] = unpack(flip_bits(packed, clk_flip, seeds))
    return Sent(spec, arrays)


# ------------------------------------------------------------------------- added fields
#: Fields a project may add beyond the six, with the normaliser each names (node.fields).
ADDED_FIELDS = {"address_line": "number_and_street", "town": "free_text", "local_id": "code"}
_STREET_TYPES = ("street", "road", "lane", "close", "avenue", "drive", "terrace", "way")


def added_fields_spec() -> LinkageSpec:
    """The default schema with an address line, a town and a local id, field_scoring on:
    each added field sends its own two salted filters (``hublink.spec.added_field_groups``)."""
    schema = LinkageSpec.default().schema
    for name, rule in ADDED_FIELDS.items():
        schema["features"].append(
            {
                "identifier": name,
                "normaliser": rule,
                "format": {"type": "string", "encoding": "utf-8"},
                "hashing": {
                    "comparison": {"type": "ngram", "n": 2},
                    "strategy": {"bitsPerToken": 10},
                    "hash": {"type": "blakeHash"},
                },
            }
        )
    return LinkageSpec.from_json(json.dumps(schema), field_scoring=True)


def with_places(people: People, seed: int = 0) -> People:
    """``people`` given towns (Zipf over 300 made-up towns, the attacker holding a public list
    that approximates it, as a list of towns by population would), address lines (a number
    and a Zipf-distributed street; the public list is the population's own lines, blurred)
    and local ids (unique codes; the public list all of them), normalised as a node would."""
    rng = np.random.default_rng(seed + 101)
    towns = syllable_names(300, seed=seed + 102, endings=("ton", "ford", "by", "ham", "well"))
    own_towns, public_towns = population_and_public(towns, seed=seed + 103)
    streets = [
        f"{stem} {rng.choice(_STREET_TYPES)}"
        for stem in syllable_names(2000, seed=seed + 104, endings=("", "s", "field", "wood"))
    ]
    own_streets, _ = population_and_public(streets, seed=seed + 105)
    size = len(people.values)
    town = [towns[i] for i in rng.choice(len(towns), size, p=np.array(own_towns.frequencies))]
    street = rng.choice(len(streets), size, p=np.array(own_streets.frequencies))
    lines = [f"{rng.integers(1, 60)} {streets[i]}" for i in street]
    ids = [f"LA{100000 + k:06d}" for k in rng.permutation(size)]
    added = {"address_line": lines, "town": town, "local_id": ids}
    public = {
        "town": public_towns,
        "address_line": approximate_public(lines, seed=seed + 106),
        "local_id": approximate_public(ids, seed=seed + 107),
    }
    return dataclasses.replace(people, added=added, public_added=public)


def weak_added_spec() -> LinkageSpec:
    """Deliberately weak: one filter per added field, unbalanced, unflipped and unsalted."""
    spec = dataclasses.replace(added_fields_spec(), hardening="none", group_flip=0.0)
    return spec.with_field_groups(tuple(FieldGroup(name, (name,)) for name in ADDED_FIELDS))
