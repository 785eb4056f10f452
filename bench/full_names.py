"""Linkage quality with one full-name column against separate given and family name columns.

Many childcare and school systems export a child's name in one column. This
generates the demo's synthetic data, rewrites each organisation's given and
family name columns as one "Child Name" column (a third of rows "SURNAME,
Forename", a third "Forename Surname", a third "Forename SURNAME"), reads it
back through the node's own reader (``full_name`` mapping, split by
``node.names``), and matches both versions with the coordinator's own
functions at the project defaults. With ``--nameparser`` (if installed) it
also scores nameparser's split, for comparison.

    python bench/full_names.py [--records 5000] [--seed 2026] [--nameparser]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import grouped

from coordinator.core import matching
from hublink import synthetic
from hublink.spec import LinkageSpec
from node import source
from node.encoder import Encoder
from node.prepare import RowError, normalisers, prepare_rows
from node.source import read_rows

SECRET = b"bench-only secret, never used for real data"
THRESHOLD, WITHIN, MERGE = 0.83, 0.9, 0.9


def full_name(given: str, family: str, n: int) -> str:
    if not family:
        return given
    style = n % 3
    if style == 0:
        return f"{family.upper()}, {given}"
    if style == 1:
        return f"{given} {family}"
    return f"{given} {family.upper()}"


def rewrite(data: synthetic.GeneratedData, folder: Path) -> dict[str, Path]:
    out = {}
    for layout in data.layouts:
        with data.csv_paths[layout.organisation].open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        given, family = layout.columns["given_name"], layout.columns["family_name"]
        path = folder / f"{layout.organisation}-full.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            names = [c for c in rows[0] if c not in (given, family)]
            writer = csv.DictWriter(handle, fieldnames=["Child Name", *names])
            writer.writeheader()
            for n, row in enumerate(rows):
                name = full_name(row.pop(given), row.pop(family), n)
                writer.writerow({"Child Name": name, **row})
        out[layout.organisation] = path
    return out


def encode(data, spec, paths: dict[str, Path] | None) -> tuple[list, list]:
    encoder = Encoder(spec, SECRET)
    datasets, ids = [], []
    if paths is None:
        prepared_by_org = synthetic.prepared_records(data, spec)
    else:
        prepared_by_org = {}
        for layout in data.layouts:
            columns = {
                k: v for k, v in layout.columns.items() if k not in ("given_name", "family_name")
            }
            rows = read_rows(
                paths[layout.organisation],
                id_column=layout.id_column,
                columns={"full_name": "Child Name", **columns},
                fields=spec.all_fields,
            )
            kept = []
            for row in rows:
                with contextlib.suppress(RowError):  # no usable identifier: left out
                    kept.extend(prepare_rows([row], spec.all_fields, normalisers()))
            prepared_by_org[layout.organisation] = kept
    for organisation, prepared in prepared_by_org.items():
        packed = encoder.encode([p.values for p in prepared])
        datasets.append(matching.unpack(packed))
        ids.append([(organisation, p.local_id) for p in prepared])
    return datasets, ids


def score(data, datasets, ids) -> synthetic.LinkageQuality:
    candidates = matching.candidate_pairs(datasets, THRESHOLD, WITHIN)
    groups = matching.solve(candidates, merge_threshold=MERGE)
    return synthetic.pairwise_quality(grouped.predicted(groups, ids), data.truth())


def nameparser_split() -> Callable[[str], tuple[str, str]]:
    from nameparser import HumanName

    def split(raw: str) -> tuple[str, str]:
        name = HumanName(raw)
        return " ".join(p for p in (name.first, name.middle) if p), name.last

    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--nameparser", action="store_true")
    args = parser.parse_args()
    spec = LinkageSpec.default()
    with tempfile.TemporaryDirectory() as folder:
        data = synthetic.generate(Path(folder), args.records, seed=args.seed)
        paths = rewrite(data, Path(folder))
        runs = [("separate columns", None), ("full_name (node.names)", paths)]
        if args.nameparser:
            runs.append(("full_name (nameparser)", paths))
        print("names                     | cross P R F1           | within P R F1")
        for label, chosen in runs:
            if "nameparser" in label:
                source.split_full_name = nameparser_split()  # type: ignore[attr-defined]
            q = score(data, *encode(data, spec, chosen))
            print(
                f"{label:25} | {q.cross.precision:.4f} {q.cross.recall:.4f} {q.cross.f1:.4f} | "
                f"{q.within.precision:.4f} {q.within.recall:.4f} {q.within.f1:.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
