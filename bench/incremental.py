"""Incremental matching benchmark: a refresh of a few percent against a project of 2 x N.

It measures what the monthly cycle costs at the coordinator:

1. two parties of ``--size`` real hardened encodings each (synthetic people,
   60% overlap, made the node's way and cached, as ``scale.py`` does) are
   uploaded into an in-process coordinator, and a full run links them;
2. a refresh of the first party with ``--change`` of its records touched —
   a third changed (new encodings under the same token: a few bits flipped,
   as a corrected name or a move flips some), a third removed, a third added
   (referrals of the other party's children) — is sent the way a node sends
   one: only added and changed records travel, removed ones as tokens;
3. an incremental run (only the changed records compared), timed;
4. a full re-link of the same data (``--full``), timed, and its entities
   compared with the incremental run's.

"The same entities" is an exact comparison, with or without blocking: a
blocked project's band plans are drawn once from its seed and kept, and its
estimate sample is fixed by its record ids (``coordinator.core.pinned_blocking``),
so the incremental run and the full re-link see the same candidate pairs and
the same threshold. ``records_differing`` counts records whose entity, as a
set of records, differs (0 when ``same_entities``). With ``--spread`` a second
full re-link is timed and compared too (``blocking_spread_records``: 0 now that
re-links are deterministic).

``stages`` gives each run's wall seconds per stage of ``coordinator.core.runs``
(load, compare, threshold, link, solve, assign, report, store, keep), timed by
wrapping the stage functions from here.

``keys_kept`` is the share of records the refresh did not touch whose key is
the same after the incremental run as before it. The output's JSON has
``full_run_s``, ``incremental_run_s``, ``delta_records``, ``records_sent`` and
``keys_kept``, with the machine's CPU beside them (speeds depend on it).

    python bench/incremental.py --size 100000 --change 0.01 --json out.json \
        [--seed 2026] [--workers 0] [--blocking auto] [--spread] [--cache ~/.cache/hublink-bench]
        [--field-scoring] [--record-clk unsalted|salted]

``--field-scoring`` and ``--record-clk salted`` encode with that project setting (per-field
filters beside the record CLK, or the salted record CLK; cached apart by schema hash) and
link with it; a changed record then has bits moved in every one of its encodings.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scale_data

from coordinator.core import incremental, resolve, runs
from coordinator.core.model import ConsentSummary, IncomingRecord, Project
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.parallel import ProcessEngine
from hublink.identity import Identity, Role
from hublink.spec import LinkageSpec, UploadDigest

ADMIN = Identity("linkage-unit", Role.ADMIN)
PROJECT = "incremental-bench"
CHUNK = 2000


def project(
    names: list[str], blocking: str, size: int, spec: LinkageSpec, record_clk: str = "unsalted"
) -> Project:
    return Project(
        id=PROJECT,
        purpose="Incremental matching benchmark",
        organisations=tuple(names),
        schema_json=spec.json_text,
        encoding_sha256=spec.sha256,
        encodings=spec.encodings,
        definition_sha256="0" * 64,
        blocking=blocking,
        max_records=max(10 * size, 1000),
        admins=(ADMIN.organisation,),
        record_clk=record_clk,
        field_flip=spec.group_flip,
    )


def send(
    core: Coordinator,
    organisation: str,
    upload_id: str,
    records: list[tuple[str, bytes]],
    *,
    refresh: bool = False,
    removed: list[str] | None = None,
) -> None:
    """Upload (or refresh) through the coordinator's own calls, in chunks, with the digest."""
    caller = Identity(organisation, Role.NODE)
    layout = core._projects[PROJECT].encodings
    cuts = np.cumsum([0] + [e.nbytes for e in layout])
    core.begin_upload(
        caller,
        PROJECT,
        upload_id,
        core._projects[PROJECT].encoding_sha256,
        len(records),
        ConsentSummary("", {"included": len(records)}),
        refresh=refresh,
    )
    digest = UploadDigest()
    chunks = 0
    for start in range(0, len(records), CHUNK):
        part = records[start : start + CHUNK]
        core.put_chunk(
            caller,
            upload_id,
            chunks,
            [IncomingRecord(t, split(b, layout, cuts)) for t, b in part],
        )
        for token, bits in part:
            digest.add(token, [b for _, b in split(bits, layout, cuts)])
        chunks += 1
    core.commit_upload(caller, upload_id, chunks, len(records), digest.hexdigest(), removed or [])


def split(bits: bytes, layout: Any, cuts: np.ndarray) -> list[tuple[str, bytes]]:
    """A row of the spec's encodings side by side as (name, bytes) per encoding."""
    return [(e.name, bits[cuts[k] : cuts[k + 1]]) for k, e in enumerate(layout)]


def keys(core: Coordinator, organisation: str) -> dict[str, str]:
    caller = Identity(organisation, Role.NODE)
    return {t: k for batch in core.linkage_keys(caller, PROJECT) for t, k in batch.keys}


def entities(core: Coordinator) -> dict[int, frozenset[int]]:
    """Each record's entity, as the set of records in it."""
    groups: dict[str, set[int]] = {}
    for record_id, entity_id in core.store.iterate(
        "SELECT record_id, entity_id FROM entities WHERE project_id = ?", (PROJECT,)
    ):
        groups.setdefault(entity_id, set()).add(int(record_id))
    return {record: frozenset(g) for g in groups.values() for record in g}


def differing(one: dict[int, frozenset[int]], other: dict[int, frozenset[int]]) -> int:
    """Records whose entity differs between two runs (or that only one run holds)."""
    return sum(one.get(r) != other.get(r) for r in set(one) | set(other))


#: The run's stage functions, by the stage they time: (module, attribute).
STAGES = {
    "load": (runs, "load_datasets"),
    "compare": (runs, "find_candidates"),
    "compare_changes": (incremental, "find"),
    "threshold": (runs, "choose_threshold"),
    "link": (runs, "link"),
    "read_previous": (resolve, "read_previous"),
    "solve": (resolve, "solve_changed"),
    "assign": (runs, "assign"),
    "report": (runs, "report"),
    "store": (runs, "store_results"),
    "keep": (incremental, "keep"),
}
_seconds: dict[str, float] = {}


def _timed(stage: str, function: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _seconds[stage] = _seconds.get(stage, 0.0) + time.perf_counter() - started

    return wrapper


for _stage, (_module, _name) in STAGES.items():
    setattr(_module, _name, _timed(_stage, getattr(_module, _name)))


def timed_run(core: Coordinator, *, full: bool) -> tuple[float, dict[str, Any]]:
    _seconds.clear()
    started = time.perf_counter()
    state = core.start_run(ADMIN, PROJECT, background=False, full=full)
    seconds = time.perf_counter() - started
    if state.state != "completed":
        raise SystemExit(f"run ended {state.state}: {state.message}")
    entry = [e for e in core.store.audit_entries() if e.event.action == "run.completed"][-1]
    stages = {k: round(v, 2) for k, v in _seconds.items()}
    stages["other"] = round(seconds - sum(_seconds.values()), 2)
    return seconds, {
        **entry.event.details["matching"],
        "threshold": entry.event.details["threshold"],
        "spread_carried": entry.event.details["quality"].get("spread_carried"),
        "stages": stages,
    }


def flipped(bits: bytes, rng: np.random.Generator, share: float = 0.04) -> bytes:
    """The encodings with about ``share`` of their set bits moved: a changed record."""
    if len(_LAYOUT_CUTS) > 2:  # several encodings: each changes
        return b"".join(
            _flipped_one(bits[a:b], rng, share) for a, b in itertools.pairwise(_LAYOUT_CUTS)
        )
    return _flipped_one(bits, rng, share)


#: Byte offsets of each encoding in a row (set from the spec in ``main``).
_LAYOUT_CUTS: list[int] = []


def _flipped_one(bits: bytes, rng: np.random.Generator, share: float) -> bytes:
    """One encoding with about ``share`` of its set bits moved (an empty one, a field the
    record lacks, stays empty)."""
    array = np.unpackbits(np.frombuffer(bits, dtype=np.uint8))
    ones, zeros = np.flatnonzero(array), np.flatnonzero(array == 0)
    moves = min(max(1, int(share * len(ones))), len(ones), len(zeros))
    array[rng.choice(ones, moves, replace=False)] = 0
    array[rng.choice(zeros, moves, replace=False)] = 1
    return np.packbits(array).tobytes()


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""
    model = next(
        (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line), ""
    )
    return f"{model}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="records per party")
    parser.add_argument("--change", type=float, default=0.01, help="share of party 1 touched")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: a core each)")
    parser.add_argument("--blocking", default="auto", choices=("auto", "lsh", "none"))
    parser.add_argument(
        "--spread", action="store_true", help="time and compare a second full re-link too"
    )
    parser.add_argument(
        "--field-scoring", action="store_true", help="per-field filters and the field model"
    )
    parser.add_argument(
        "--profile", type=Path, help="write cProfile stats of the incremental run here"
    )
    parser.add_argument("--record-clk", default="unsalted", choices=("unsalted", "salted"))
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "hublink-bench")
    args = parser.parse_args()

    load_before = os.getloadavg()
    made = time.perf_counter()
    spec = LinkageSpec.from_json(
        LinkageSpec.default().json_text,
        field_scoring=args.field_scoring,
        record_clk=args.record_clk,
    )
    _LAYOUT_CUTS[:] = [int(c) for c in np.cumsum([0] + [e.nbytes for e in spec.encodings])]
    encodings = scale_data.real(args.size, 2, args.seed, args.cache, spec)
    encode_s = time.perf_counter() - made
    names = encodings.names
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        engine = ProcessEngine(args.workers)
        core = Coordinator(
            Store(Path(folder) / "c.db"),
            [project(names, args.blocking, args.size, spec, args.record_clk)],
            engine,
        )
        tokens: dict[str, list[str]] = {}
        for party, (name, rows) in enumerate(zip(names, encodings.parties, strict=True)):
            tokens[name] = [f"p{party}-{i:09d}" for i in range(len(rows))]
            send(
                core,
                name,
                f"upload-{party}-first",
                list(zip(tokens[name], (r.tobytes() for r in rows), strict=True)),
            )
        first_full_s, first_details = timed_run(core, full=True)
        before = {name: keys(core, name) for name in names}

        first = names[0]
        rows = encodings.parties[0]
        touched = round(args.change * len(rows))
        picked = rng.choice(len(rows), touched, replace=False)
        changed, removed = picked[: touched // 3], picked[touched // 3 : 2 * touched // 3]
        added_from = rng.choice(
            len(encodings.parties[1]), touched - 2 * (touched // 3), replace=False
        )
        delta = [(tokens[first][i], flipped(rows[i].tobytes(), rng)) for i in changed]
        delta += [
            (f"p0-new-{n:09d}", flipped(encodings.parties[1][i].tobytes(), rng, 0.02))
            for n, i in enumerate(added_from)
        ]
        removed_tokens = [tokens[first][i] for i in removed]
        send(core, first, "upload-0-refresh-1", delta, refresh=True, removed=removed_tokens)

        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        incremental_s, details = timed_run(core, full=False)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        after = {name: keys(core, name) for name in names}
        quick = entities(core)
        untouched = {tokens[first][i] for i in picked}
        stable = [
            (name, token)
            for name in names
            for token in before[name]
            if token in after[name] and token not in untouched
        ]
        kept = sum(before[n][t] == after[n][t] for n, t in stable) / max(1, len(stable))
        full_s, full_details = timed_run(core, full=True)
        relinked = entities(core)
        same = relinked == quick
        records_differing = differing(quick, relinked)
        spread: int | None = None
        second: dict[str, Any] = {}
        if args.spread:
            _, second = timed_run(core, full=True)
            spread = differing(relinked, entities(core))
        core.store.close()
    figures: dict[str, object] = {
        "size": args.size,
        "parties": 2,
        "change": args.change,
        "encodings": encodings.method,
        "blocking": args.blocking,
        "field_scoring": args.field_scoring,
        "record_clk": args.record_clk,
        "blocked": bool(full_details.get("blocked")),
        "engine": f"{engine.name} x {engine.workers}",
        "first_full_run_s": round(first_full_s, 3),
        "full_run_s": round(full_s, 3),
        "incremental_run_s": round(incremental_s, 3),
        "speedup": round(full_s / incremental_s, 2) if incremental_s else None,
        "incremental": bool(details.get("incremental")),
        "delta_records": len(delta) + len(removed_tokens),
        "records_sent": len(delta),
        "records_removed": len(removed_tokens),
        "compared_afresh": details.get("compared_afresh"),
        "solved_afresh": details.get("solved_afresh"),
        "keys_kept": round(kept, 5),
        "same_entities": same,
        "records_differing": records_differing,
        "blocking_spread_records": spread,
        # Each run's threshold: a blocked run estimates it from the project's fixed sample.
        "spread_carried": details.get("spread_carried"),
        "stages": {"incremental": details["stages"], "full": full_details["stages"]},
        "thresholds": {
            "first_full": first_details["threshold"],
            "incremental": details["threshold"],
            "full": full_details["threshold"],
            "second_full": second.get("threshold"),
        },
        "encode_or_cache_s": round(encode_s, 1),
        "cpu": cpu(),
        # 1, 5 and 15-minute load averages before and after: the machine may be shared.
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
