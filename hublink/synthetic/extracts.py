"""``generate``: one CSV per organisation and a ground-truth file, from one seed."""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from hublink.synthetic.layouts import (
    DEFAULT_LAYOUTS,
    ErrorRates,
    OrganisationLayout,
    check_probability,
)
from hublink.synthetic.mistakes import copy_of
from hublink.synthetic.population import Population, PopulationSettings, allocate


@dataclass(frozen=True)
class GeneratedData:
    """Where ``generate`` wrote its files, and how many rows each organisation got."""

    csv_paths: Mapping[str, Path]
    truth_path: Path
    layouts: tuple[OrganisationLayout, ...]
    records: Mapping[str, int]

    def truth(self) -> dict[tuple[str, str], str]:
        """(organisation, local_id) -> person_id for every row written, read back from disk."""
        with self.truth_path.open(newline="", encoding="utf-8") as handle:
            return {
                (row["organisation"], row["local_id"]): row["person_id"]
                for row in csv.DictReader(handle)
            }


_DEFAULT_RATES = ErrorRates()
_DEFAULT_POPULATION = PopulationSettings()


def generate(
    out_dir: Path,
    records_per_org: int = 5000,
    *,
    seed: int = 0,
    overlap: float = 0.6,
    rates: ErrorRates = _DEFAULT_RATES,
    layouts: Sequence[OrganisationLayout] = DEFAULT_LAYOUTS,
    twin_rate: float = 0.02,
    population: PopulationSettings = _DEFAULT_POPULATION,
) -> GeneratedData:
    """Write one CSV per organisation and a ground-truth CSV into ``out_dir``.

    Population. Children are invented family by family: a family has one to
    four births (weights 50/33/13/4) at least 300 days apart, all within the
    five years ending ``REFERENCE_DATE``; each birth is twins with probability
    ``twin_rate`` (same date of birth, different given names and NHS numbers;
    ``population`` says how often twins are of one sex and have names with one
    first letter). Siblings share the family name and postcode; a girl bears
    the feminine form of a Polish name (Kowalska). ``population`` also sets how
    often the mother has another family name (seen in "Baby" records), how
    often the children's name is double-barrelled, and how often unrelated
    families share a postcode.

    Sampling. Each organisation first draws how many of its
    ``records_per_org`` rows are duplicate referrals (each row is one with
    probability ``rates.duplicate_referral``), leaving ``distinct`` children.
    It then wants ``round(overlap * distinct)`` children that at least one
    other organisation also holds. Whole families are dealt out in turn to the
    organisations furthest from that target: to two of them, or with
    probability 0.35 to three or more. When one organisation is left short it
    joins families already shared by others. Families therefore stay together
    (twins are held by the same organisations), and the shared share of each
    organisation's distinct children lands within a few children of
    ``overlap``. The rest of its children are families nobody else holds.
    Duplicates are copies of randomly chosen children it already holds.

    Errors. Every row, duplicates included, is an independent copy of the
    child's true details with ``rates`` applied, then written in the
    organisation's layout. NHS numbers appear with probability
    ``layout.nhs_number_coverage * (1 - rates.missing_nhs_number)``.

    Files. ``<organisation>.csv`` per layout (UTF-8, header row, random row
    order, random unique local ids in the layout's format) and ``truth.csv``
    with columns ``organisation,local_id,person_id``. The same arguments and
    seed always give byte-identical files. Errors use a random stream of their
    own, so two runs with the same seed that differ only in error rates
    (``duplicate_referral`` aside) hold the same children in the same rows
    under the same local ids, and ``truth.csv`` is identical: useful for
    measuring how linkage degrades as errors rise on one fixed population.
    """
    if records_per_org < 0:
        raise ValueError("records_per_org must not be negative")
    check_probability("overlap", overlap)
    check_probability("twin_rate", twin_rate)
    layouts = tuple(layouts)
    if not layouts:
        raise ValueError("need at least one organisation layout")
    organisations = [layout.organisation for layout in layouts]
    if len(set(organisations)) != len(organisations):
        raise ValueError("organisation names must be unique")

    rng = random.Random(seed)
    # Errors draw from their own stream, so changing error rates (other than
    # duplicate_referral) keeps the same children, rows and local ids.
    error_rng = random.Random(rng.getrandbits(64))
    people = Population(rng, twin_rate, population)
    held = allocate(rng, people, organisations, records_per_org, overlap, rates.duplicate_referral)

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_paths: dict[str, Path] = {}
    records: dict[str, int] = {}
    truth_rows: list[tuple[str, str, str]] = []
    for layout in layouts:
        children = held[layout.organisation]
        numbers = rng.sample(range(1, max(10 * len(children), 1000)), len(children))
        fields = list(layout.columns)
        path = out_dir / f"{layout.organisation}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            area = [layout.area_column] if layout.area_column else []
            writer.writerow([layout.id_column, *layout.columns.values(), *area])
            for child, number in zip(children, numbers, strict=True):
                local_id = layout.local_id_format.format(n=number)
                values = copy_of(error_rng, child, rates, layout)
                writer.writerow(
                    [local_id, *(values[name] for name in fields), *(values["area"] for _ in area)]
                )
                truth_rows.append((layout.organisation, local_id, child.person_id))
        csv_paths[layout.organisation] = path
        records[layout.organisation] = len(children)

    truth_path = out_dir / "truth.csv"
    with truth_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["organisation", "local_id", "person_id"])
        writer.writerows(truth_rows)

    return GeneratedData(
        csv_paths=MappingProxyType(csv_paths),
        truth_path=truth_path,
        layouts=layouts,
        records=MappingProxyType(records),
    )
