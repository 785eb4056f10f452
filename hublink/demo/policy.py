"""Consent policies for the demo's organisations, written as an IG officer would write them.

Each organisation gets a policy with an opt-out list and an age rule, chosen
to match the law that applies to it:

* health visiting (NHS, England) applies the National Data Opt-out: a list
  of opted-out NHS numbers, and records without an NHS number are included
  (the opt-out cannot be checked for them, and the organisation has chosen
  to include them); children must be under 5 on 31 March;
* Flying Start (Welsh council) is outside the National Data Opt-out, so it
  keeps its own list of families who objected; Flying Start serves children
  under 4, so that is its age rule;
* the childcare provider keeps a local objections list and the under-5 rule.

Which records are on the lists is decided by a hash of the local id, so the
same data always gives the same lists without any randomness.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from hublink import synthetic

#: Share of records on each demo opt-out or objections list.
LIST_SHARE = 0.02


def _chosen(local_id: str, salt: str) -> bool:
    digest = hashlib.sha256(f"{salt}:{local_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < LIST_SHARE * 2**32


def _toml(value: str) -> str:
    return json.dumps(value)


def write_policy(node_dir: Path, layout: synthetic.OrganisationLayout, csv_path: Path) -> Path:
    """Write ``consent.toml`` and its list file into ``node_dir``; returns the policy's path."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    dob = layout.columns["date_of_birth"]
    nhs = layout.columns.get("nhs_number")
    if layout.organisation == "health-visiting" and nhs:
        numbers = sorted(
            {
                "".join(ch for ch in row[nhs] if ch.isdigit())
                for row in rows
                if row[nhs].strip() and _chosen(row[layout.id_column], "ndop")
            }
        )
        (node_dir / "ndop-opted-out.csv").write_text(
            "nhs_number\n" + "".join(f"{n}\n" for n in numbers), encoding="utf-8"
        )
        opt_out = (
            "[[rule]]\n"
            'name = "national-data-opt-out"\n'
            f"column = {_toml(nhs)}\n"
            'opt_out_file = "ndop-opted-out.csv"\n'
            'no_nhs_number = "include"\n'
        )
        age = 5
    else:
        objections = sorted(
            row[layout.id_column] for row in rows if _chosen(row[layout.id_column], "objection")
        )
        (node_dir / "objections.txt").write_text(
            "".join(f"{i}\n" for i in objections), encoding="utf-8"
        )
        opt_out = (
            "[[rule]]\n"
            'name = "local-objection"\n'
            'action = "exclude"\n'
            f"column = {_toml(layout.id_column)}\n"
            'in_file = "objections.txt"\n'
        )
        age = 4 if layout.organisation == "flying-start" else 5
    policy = node_dir / "consent.toml"
    policy.write_text(
        f"purpose = {_toml('Family Hub outreach planning (demo)')}\n\n"
        + opt_out
        + "\n[[rule]]\n"
        + f'name = "under-{age}-on-31-march"\n'
        + 'action = "require"\n'
        + f"column = {_toml(dob)}\n"
        + f"age_under = {age}\n"
        + f"on = {synthetic.REFERENCE_DATE.isoformat()}\n",
        encoding="utf-8",
    )
    return policy
