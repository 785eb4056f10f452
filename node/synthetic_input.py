"""The synthetic generator's files read and normalised the node's way, for benches and tests.

Why here and not in ``hublink.synthetic``: generating data needs nothing of
the node, and the shared package must not import it. Tests and benchmarks
that feed the coordinator prepared records without running whole nodes use
this, so they read the CSVs exactly as a node would.
"""

from __future__ import annotations

from hublink.spec import LinkageSpec
from hublink.synthetic import GeneratedData
from node.prepare import PreparedRecord, RowError, normalisers, prepare_rows
from node.source import read_rows


def prepared_records(data: GeneratedData, spec: LinkageSpec) -> dict[str, list[PreparedRecord]]:
    """Each organisation's generated rows read and normalised the node's way, for benches and tests.

    Rows the generator planted as unreadable are left out, as a node rejects them.
    """
    out: dict[str, list[PreparedRecord]] = {}
    for layout in data.layouts:
        rows = read_rows(
            data.csv_paths[layout.organisation],
            id_column=layout.id_column,
            columns=layout.columns,
            fields=spec.all_fields,
        )
        kept: list[PreparedRecord] = []
        for row in rows:
            try:
                kept.extend(prepare_rows([row], spec.all_fields, normalisers(spec=spec)))
            except RowError:
                continue
        out[layout.organisation] = kept
    return out
