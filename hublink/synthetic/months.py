"""Next month's extracts: the same services a month on, with the truth kept up to date.

``next_month`` rewrites each organisation's CSV in place as its system would
export it a month later, and ``truth.csv`` with it:

* **births** (new arrivals): new children, each held by one service or,
  most often, shared with another, written in each service's house style
  with the usual errors;
* **leavers** (aged out, moved away): every row of a few children goes;
* **moves and name changes**: a few children get a new postcode or family
  name, in every service that holds them;
* **duplicate referrals**: a few children are referred again, a second row
  under a new local id with a typo;
* **withdrawals**: a few local ids whose consent is withdrawn this month
  (returned; the caller withdraws them through the node).

Rows not touched are written back exactly as they were, so a node sees
them as unchanged. The same data, month and seed always give the same files.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from hublink.synthetic.extracts import GeneratedData
from hublink.synthetic.layouts import ErrorRates, OrganisationLayout
from hublink.synthetic.mistakes import copy_of
from hublink.synthetic.population import Population


@dataclass(frozen=True)
class MonthRates:
    """Shares of children (or rows) each kind of change touches in a month."""

    births: float = 0.005
    leavers: float = 0.005
    moves: float = 0.004
    name_changes: float = 0.002
    duplicates: float = 0.002
    withdrawals: int = 2
    """Local ids per organisation whose consent is withdrawn (a count, not a share)."""


@dataclass
class Month:
    """What ``next_month`` did: counts per kind, local ids edited, ids to withdraw."""

    number: int
    counts: dict[str, int] = field(default_factory=dict)
    edited: set[tuple[str, str]] = field(default_factory=set)
    """(organisation, local id) of rows whose values changed, or that are new."""
    withdraw: dict[str, list[str]] = field(default_factory=dict)


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def next_month(
    data: GeneratedData, number: int, *, seed: int = 0, rates: MonthRates | None = None
) -> Month:
    """Rewrite every extract and the truth as of month ``number`` (1, 2, …)."""
    rates = rates or MonthRates()
    rng = random.Random(f"{seed}:{number}")
    month = Month(number, defaultdict(int))
    truth = data.truth()
    person_of = dict(truth)
    files = {
        layout.organisation: _read(data.csv_paths[layout.organisation]) for layout in data.layouts
    }
    layouts = {layout.organisation: layout for layout in data.layouts}
    held: dict[str, list[tuple[str, int]]] = defaultdict(list)  # person -> (org, row)
    for organisation, (_, rows) in files.items():
        for i, row in enumerate(rows):
            person = person_of.get((organisation, row[0]))
            if person is not None:
                held[person].append((organisation, i))
    people = sorted(held)
    total = len(people)

    def pick(share: float) -> list[str]:
        return rng.sample(people, min(len(people), round(share * total)))

    gone: set[tuple[str, int]] = set()
    for person in pick(rates.leavers):
        gone.update(held[person])
        month.counts["leavers"] += 1
    for kind, share in (("moves", rates.moves), ("name_changes", rates.name_changes)):
        for person in pick(share):
            if any(place in gone for place in held[person]):
                continue
            donor_org, donor_rows = rng.choice(list(files.items()))
            donor = rng.choice(donor_rows[1])
            for organisation, i in held[person]:
                header, rows = files[organisation]
                layout = layouts[organisation]
                field_name = "postcode" if kind == "moves" else "family_name"
                column = layout.columns.get(field_name)
                donor_column = layouts[donor_org].columns.get(field_name)
                if column is None or donor_column is None:
                    continue
                value = donor[files[donor_org][0].index(donor_column)]
                rows[i][header.index(column)] = value
                month.edited.add((organisation, rows[i][0]))
            month.counts[kind] += 1
    new_rows: dict[str, list[list[str]]] = defaultdict(list)
    new_truth: list[tuple[str, str, str]] = []
    taken = {organisation: {row[0] for row in rows} for organisation, (_, rows) in files.items()}

    def local_id(layout: OrganisationLayout) -> str:
        while True:
            candidate = layout.local_id_format.format(n=rng.randrange(10_000, 999_999))
            if candidate not in taken[layout.organisation]:
                taken[layout.organisation].add(candidate)
                return candidate

    def row_for(layout: OrganisationLayout, values: dict[str, str], lid: str) -> list[str]:
        area = [values.get("area", "")] if layout.area_column else []
        return [lid, *(values[name] for name in layout.columns), *area]

    for person in pick(rates.duplicates):
        organisation, i = rng.choice(held[person])
        if (organisation, i) in gone:
            continue
        header, rows = files[organisation]
        copy = list(rows[i])
        given = layouts[organisation].columns.get("given_name")
        if given is not None and len(copy[header.index(given)]) > 3:
            name = copy[header.index(given)]
            copy[header.index(given)] = name[:-1]  # retyped in a hurry
        copy[0] = local_id(layouts[organisation])
        new_rows[organisation].append(copy)
        new_truth.append((organisation, copy[0], person))
        month.edited.add((organisation, copy[0]))
        month.counts["duplicate_referrals"] += 1
    known_nhs = {
        "".join(ch for ch in cell if ch.isdigit())
        for _, rows in files.values()
        for row in rows
        for cell in row
        if cell.replace(" ", "").isdigit() and len(cell.replace(" ", "")) == 10
    }
    births = round(rates.births * total)
    families = Population(rng, 0.02).families()
    born = 0
    organisations = list(layouts)
    while born < births:
        for child in next(families):
            if child.nhs_number in known_nhs:
                continue
            person = f"M{number:02d}-{child.person_id}"
            shared = rng.random() < 0.6 and len(organisations) > 1
            holders = rng.sample(organisations, 2 if shared else 1)
            for organisation in holders:
                layout = layouts[organisation]
                values = copy_of(rng, child, ErrorRates(), layout)
                lid = local_id(layout)
                new_rows[organisation].append(row_for(layout, values, lid))
                new_truth.append((organisation, lid, person))
                month.edited.add((organisation, lid))
            born += 1
    month.counts["births"] = born
    for organisation, (header, rows) in files.items():
        kept = [row for i, row in enumerate(rows) if (organisation, i) not in gone]
        candidates = [row[0] for row in kept if (organisation, row[0]) not in month.edited]
        month.withdraw[organisation] = rng.sample(
            candidates, min(len(candidates), rates.withdrawals)
        )
        _write(data.csv_paths[organisation], header, kept + new_rows[organisation])
    month.counts["withdrawals"] = sum(len(v) for v in month.withdraw.values())
    removed = {(organisation, files[organisation][1][i][0]) for organisation, i in gone}
    rows_out = [(o, lid, p) for (o, lid), p in truth.items() if (o, lid) not in removed]
    with data.truth_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["organisation", "local_id", "person_id"])
        writer.writerows(rows_out + new_truth)
    month.counts = dict(month.counts)
    return month
