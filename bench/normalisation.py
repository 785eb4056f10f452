"""Linkage quality with and without the node's normalisation, on clean and messy synthetic data.

The same generated records (three organisations, the demo's layouts) are
encoded three ways with the node's own encoder and matched with the
coordinator's own matching functions at the project's default thresholds:

* raw: every value exactly as the export wrote it;
* raw + dates: as raw, but each file's dates of birth read with that file's
  own declared format (what a node with only ``input.date_formats`` would do);
* normalised: the node's normalisers (node/normalise.py), as an upload does.

Each runs on data with the generator's usual errors only (messy 0) and with
the messy input kinds on (``ErrorRates.messy``: placeholders, titles, spaces,
case, stripped accents, postcodes without the space, spaced or hyphenated
NHS numbers, mixed date formats within a file, other sex codes).

    python bench/normalisation.py [--records 3000] [--seed 2026] [--messy 0.0 0.3]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import grouped

from coordinator.core import matching
from hublink import synthetic
from hublink.config import ProjectConfig
from hublink.spec import LinkageSpec
from node.encoder import Encoder
from node.prepare import RowError, normalise_row, normalisers
from node.source import SourceRow, read_rows

SECRET = b"bench-only secret, never used for real data"
Pipeline = Callable[[synthetic.OrganisationLayout], dict[str, Callable[[str], str | None]]]


def raw(layout: synthetic.OrganisationLayout) -> dict[str, Callable[[str], str | None]]:
    return {name: (lambda value: value) for name in synthetic.FIELDS}


def raw_dates(layout: synthetic.OrganisationLayout) -> dict[str, Callable[[str], str | None]]:
    def dob(value: str) -> str | None:
        text = value.strip()
        for month, number in zip(
            ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
            range(1, 13),
            strict=True,
        ):
            text = text.replace(month, f"{number:02d}")
        fmt = layout.date_format.replace("%b", "%m")
        try:
            return datetime.strptime(text, fmt).strftime("%d%m%Y")
        except ValueError:
            return ""

    return {**raw(layout), "date_of_birth": dob}


def normalised(layout: synthetic.OrganisationLayout) -> dict[str, Callable[[str], str | None]]:
    return dict(normalisers())


PIPELINES: dict[str, Pipeline] = {"raw": raw, "raw + dates": raw_dates, "normalised": normalised}


def encode(data: synthetic.GeneratedData, spec: LinkageSpec, pipeline: Pipeline):
    encoder = Encoder(spec, SECRET)
    datasets, ids, dropped = [], [], 0
    for layout in data.layouts:
        rules = pipeline(layout)
        values, keep = [], []
        rows: list[SourceRow] = list(
            read_rows(
                data.csv_paths[layout.organisation],
                id_column=layout.id_column,
                columns=layout.columns,
                fields=spec.all_fields,
            )
        )
        for row in rows:
            try:
                values.append(normalise_row(row, spec.all_fields, rules))
            except RowError:
                dropped += 1  # an unreadable date: a real node lists it in rejects.csv
                continue
            keep.append((layout.organisation, row.local_id))
        datasets.append(matching.unpack(encoder.encode(values)))
        ids.append(keep)
    return datasets, ids, dropped


def link(datasets, ids, truth, project: ProjectConfig) -> synthetic.LinkageQuality:
    candidates = matching.candidate_pairs(datasets, project.threshold, project.within_threshold)
    groups = matching.solve(candidates, merge_threshold=project.merge_threshold)
    return synthetic.pairwise_quality(grouped.predicted(groups, ids), truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--messy", type=float, nargs="+", default=[0.0, 0.3])
    args = parser.parse_args()
    defaults = {f.name: f.default for f in dataclasses.fields(ProjectConfig)}
    project = ProjectConfig(
        id="bench", purpose="bench", organisations=(), schema=Path("."), **{
            k: defaults[k] for k in ("threshold", "within_threshold", "merge_threshold")
        }
    )  # fmt: skip
    spec = LinkageSpec.default()
    print(
        f"records per organisation {args.records}, seed {args.seed}, thresholds "
        f"{project.threshold}/{project.within_threshold}/{project.merge_threshold}"
    )
    print("messy | pipeline     | cross precision recall  F1     | dropped | seconds")
    for rate in args.messy:
        rates = dataclasses.replace(synthetic.ErrorRates(), messy=rate)
        with tempfile.TemporaryDirectory() as folder:
            data = synthetic.generate(Path(folder), args.records, seed=args.seed, rates=rates)
            truth = data.truth()
            for name, pipeline in PIPELINES.items():
                started = time.monotonic()
                datasets, ids, dropped = encode(data, spec, pipeline)
                q = link(datasets, ids, truth, project).cross
                print(
                    f"{rate:5.2f} | {name:12} | {q.precision:15.4f} {q.recall:.4f} {q.f1:.4f} | "
                    f"{dropped:7d} | {time.monotonic() - started:7.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
