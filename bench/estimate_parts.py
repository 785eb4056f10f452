"""Write beside each saved run (``bench/estimate_dump.py``) its candidates' record-CLK part Dice
and every true pair's, so dumps made before runs read them can be replayed with the parts'
hidden count (``bench/estimate_replay.py`` reads ``NAME.parts.npz`` when it is there).

The setting is generated again from its name (the generator is seeded), its record CLKs
encoded, and the part floors read from the data's chance level as a run reads them.

    python bench/estimate_parts.py DIR/o3-x2-ov0.9-s7-n2000.pkl [...]
"""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import quality as bench_quality
from run_pairs import rows_of

from coordinator.core import chance, hidden_cells


def true_pairs(enc: bench_quality.Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of records of one child (global rows), and whether it lies in one dataset."""
    person = [enc.truth.get(rid) for part in enc.ids for rid in part]
    dataset = np.concatenate([np.full(len(part), k) for k, part in enumerate(enc.ids)])
    rows: dict[object, list[int]] = {}
    for row, who in enumerate(person):
        if who is not None:
            rows.setdefault(who, []).append(row)
    left, right = [], []
    for members in rows.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                left.append(members[a])
                right.append(members[b])
    tl, tr = np.array(left, dtype=np.int64), np.array(right, dtype=np.int64)
    return tl, tr, (dataset[tl] == dataset[tr]).astype(np.int64)


def side_file(path: Path) -> None:
    started = time.monotonic()
    with open(path, "rb") as f:
        data = pickle.load(f)
    prepared = data["prepared"]
    orgs, factor, overlap, seed, records = data["name"].split("-")
    bench_quality.RECORD_CLK = "salted"
    enc = bench_quality.synthetic_setting(
        int(records[1:]), int(seed[1:]), float(overlap[2:]), float(factor[1:]), int(orgs[1:])
    )
    each = [rows_of(d) for d in enc.datasets]
    parts = chance.of_run(each, "salted").part_pass(field_scoring=True)
    assert parts is not None
    rows = np.concatenate(each)
    tl, tr, kind = true_pairs(enc)
    np.savez(
        path.with_suffix(".parts.npz"),
        cand=hidden_cells.part_dice(rows[prepared.left], rows[prepared.right], parts.count),
        floors=np.array(parts.part_floors),
        true_left=tl,
        true_right=tr,
        true_kind=kind,
        true_dice=hidden_cells.part_dice(rows[tl], rows[tr], parts.count),
    )
    print(f"{data['name']}: {time.monotonic() - started:.0f}s", flush=True)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        side_file(Path(name))
