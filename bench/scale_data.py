"""Encodings for the scale benchmark: real ones made the node's way, cached, and a model above them.

Real encodings: synthetic people from ``hublink.synthetic.generate`` (60%
overlap between organisations), read, normalised and hashed by the node's own
code (``node.source``, ``node.encoder``) into hardened (balanced, permuted)
2048-bit encodings, exactly what a node uploads. Encoding is slow (clkhash,
about a thousand records a second on one core), so each set is cached on disk
by size, parties, seed and schema hash, with the encode rate measured when it
was made.

Modelled encodings (sizes above ``--model-above``, 100,000 by default): two
million clkhash encodings would take over half an hour to make, so larger
parties are built from a real set used as templates. Copy ``c`` of the
templates is every party's real encodings with one random permutation of the
2048 bit positions, the same for all parties. A permutation applied to both
sides keeps every Dice score, so inside a copy the matches and non-matches
are exactly the real ones; it also keeps each encoding balanced (1024 ones).
The permutation only shuffles positions among runs of ``STRATUM`` positions
that are set about equally often, so every position keeps its frequency and
two records of different copies agree about as often as two real unrelated
people do (about 0.59 of positions, against 0.5 for random vectors; this
matters to blocking, whose chance collisions grow steeply with agreement).
A record and its own copy elsewhere agree a little more (about 0.60) but far
below any threshold. ``agreement`` reports the mean agreement of random pairs
of each set, so real and modelled can be compared. What the model cannot keep
is structure between records of different copies beyond position
frequencies (families, shared postcodes), so it is a model, and the output
says which sizes used it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import resource
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from hublink import synthetic
from hublink.spec import LinkageSpec
from node.encode_pool import EncodePool
from node.encoder import Encoder
from node.prepare import RowError, normalisers, prepare_rows
from node.source import SourceRow, read_rows

#: Bench-only linkage secret; the people are synthetic, so nothing real is ever hashed with it.
SECRET = b"hublink scale bench secret, synthetic people only"
OVERLAP = 0.6
#: Positions set about equally often that a modelled copy may shuffle among themselves.
STRATUM = 64
T = TypeVar("T")


@dataclass(frozen=True)
class Encodings:
    """One packed array (records x bytes) per party, and how they were made."""

    parties: list[np.ndarray]
    names: list[str]
    method: str
    """"real" (clkhash on synthetic people) or "modelled" (permuted copies of real ones)."""
    encode_records_per_s: float
    """Node encode rate measured when the real encodings were made (read+normalise+hash)."""
    encode_records: int


def _cache_file(
    cache: Path, size: int, parties: int, seed: int, spec: LinkageSpec | None = None
) -> Path:
    spec = spec or LinkageSpec.default()
    return cache / f"real-{size}x{parties}-seed{seed}-{spec.sha256[:12]}.npz"


def real(
    size: int, parties: int, seed: int, cache: Path, spec: LinkageSpec | None = None
) -> Encodings:
    """Real encodings of ``parties`` organisations of ``size`` people each (cached); with a
    ``spec`` of several encodings (per-field filters), each row is all of them side by side,
    in the spec's layout order."""
    path = _cache_file(cache, size, parties, seed, spec)
    names = [layout.organisation for layout in layouts(parties)]
    if path.exists():
        with np.load(path) as held:
            meta = json.loads(str(held["arr_0"]))
            arrays = [np.ascontiguousarray(held[f"arr_{i + 1}"]) for i in range(parties)]
        return Encodings(arrays, names, "real", meta["encode_records_per_s"], meta["records"])
    arrays, rate, records = _encode(size, parties, seed, spec)
    cache.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"encode_records_per_s": rate, "records": records})
    # Written under a temporary name and renamed: a cache file is whole or absent.
    handle, temporary = tempfile.mkstemp(dir=cache, suffix=".npz.part")
    with os.fdopen(handle, "wb") as out:
        np.savez(out, np.array(meta), *arrays)  # arr_0: meta, arr_1...: the parties
    os.replace(temporary, path)
    return Encodings(arrays, names, "real", rate, records)


def layouts(parties: int) -> tuple[synthetic.OrganisationLayout, ...]:
    """The demo's three organisations' extract layouts, and beyond three, more organisations
    keeping those layouts in turn (``childcare-2``, ...), for runs of more parties."""
    base = synthetic.DEFAULT_LAYOUTS
    return tuple(
        base[n]
        if n < len(base)
        else dataclasses.replace(
            base[n % len(base)],
            organisation=f"{base[n % len(base)].organisation}-{n // len(base) + 1}",
            display_name=f"{base[n % len(base)].display_name} ({n // len(base) + 1})",
        )
        for n in range(parties)
    )


def _encode(
    size: int, parties: int, seed: int, spec: LinkageSpec | None = None
) -> tuple[list[np.ndarray], float, int]:
    """Generate people and encode them the node's way; the encode rate excludes generation."""
    spec = spec or LinkageSpec.default()
    encoder = Encoder(spec, SECRET)
    rules = normalisers()
    with tempfile.TemporaryDirectory() as folder:
        data = synthetic.generate(
            Path(folder),
            size,
            seed=seed,
            overlap=OVERLAP,
            layouts=layouts(parties),
        )
        arrays = []
        seconds = 0.0
        records = 0
        for layout in data.layouts:
            started = time.perf_counter()
            prepared = []
            for row in read_rows(
                data.csv_paths[layout.organisation],
                id_column=layout.id_column,
                columns=layout.columns,
                fields=spec.all_fields,
            ):
                try:
                    prepared.extend(prepare_rows([row], spec.all_fields, rules))
                except RowError:
                    continue  # the generator plants unreadable rows; a node rejects them
            values = [p.values for p in prepared]
            tokens = [f"{layout.organisation}-{n:09d}" for n in range(len(values))]
            packed = (
                [b"".join(parts) for parts in encoder.encode_all(values, tokens)]
                if len(spec.encodings) > 1
                else encoder.encode(values)
            )
            seconds += time.perf_counter() - started
            records += len(packed)
            arrays.append(np.frombuffer(b"".join(packed), dtype=np.uint8).reshape(len(packed), -1))
    return arrays, records / seconds if seconds else 0.0, records


def modelled(size: int, templates: Encodings, seed: int) -> Encodings:
    """Parties of ``size`` records built from permuted copies of real templates (module doc)."""
    rng = np.random.default_rng(seed)
    nbits = templates.parties[0].shape[1] * 8
    copies = math.ceil(size / min(len(t) for t in templates.parties))
    out = [np.empty((size, t.shape[1]), dtype=np.uint8) for t in templates.parties]
    # Positions ranked by how often they are set; each copy shuffles only within runs of
    # STRATUM positions set about equally often, keeping every position's frequency.
    sample = np.concatenate([t[:20000] for t in templates.parties])
    ranked = np.argsort(np.unpackbits(sample, axis=1).mean(axis=0), kind="stable")
    for copy in range(copies):
        order = np.arange(nbits)
        if copy:
            for start in range(0, nbits, STRATUM):
                stratum = ranked[start : start + STRATUM]
                order[stratum] = rng.permutation(stratum)
        for party, template in zip(out, templates.parties, strict=True):
            start = copy * len(template)
            if start >= size:
                continue
            take = min(len(template), size - start)
            bits = np.unpackbits(template[:take], axis=1)[:, order]
            party[start : start + take] = np.packbits(bits, axis=1)
    return Encodings(
        out,
        templates.names,
        f"modelled ({copies} copies of {len(templates.parties[0]):,})",
        templates.encode_records_per_s,
        templates.encode_records,
    )


def agreement(left: np.ndarray, right: np.ndarray, pairs: int, seed: int) -> float:
    """Mean share of bit positions random (left, right) pairs agree on."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(left), pairs)
    j = rng.integers(0, len(right), pairs)
    differ = np.bitwise_count(left[i] ^ right[j]).sum(axis=1)
    return float(1.0 - differ.mean() / (left.shape[1] * 8))


# ------------------------------------------------------------------ encoding on every core
def encode_rate(
    records: int,
    seed: int,
    workers: Sequence[int],
    *,
    spec: LinkageSpec | None = None,
    chunk: int = 1000,
) -> dict[str, Any]:
    """The node's own encoding path on ``records`` synthetic people, once per worker count.

    What ``hublink node upload`` does between reading and sending: rows read
    in this process (``node.source``), tokens fixed (so runs can be compared
    byte for byte), and normalised (``node.prepare``) and encoded a chunk at a
    time in ``node.encode_pool.EncodePool`` (the node's default chunk, 1,000
    rows; two chunks in flight), rows with no usable identifier left out as a
    node leaves them out. The time runs from the first row read to the last
    encoding back, pool start-up included, as an upload pays it. The
    encodings of every worker count are checked to be the same bytes.
    ``spec``: the project's layout (default: the shipped schema, unsalted record CLK).
    """
    spec = spec or LinkageSpec.default()
    figures: dict[str, Any] = {"node_encode_records": 0}
    digests: dict[int, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        data = synthetic.generate(
            Path(folder), records, seed=seed, overlap=OVERLAP, layouts=synthetic.DEFAULT_LAYOUTS[:1]
        )
        layout = data.layouts[0]

        def rows() -> Iterator[SourceRow]:
            return read_rows(
                data.csv_paths[layout.organisation],
                id_column=layout.id_column,
                columns=layout.columns,
                fields=spec.all_fields,
            )

        for count in workers:
            digest = hashlib.sha256()
            cpu = _cpu()
            started = time.perf_counter()
            done = 0
            chunks = _chunks(rows(), chunk)
            # Tokens fixed by position (they seed per-field filters' flips; a node draws
            # random ones), so every worker count must give the same bytes.
            jobs = (
                (part, [f"bench-{n}-{i}" for i in range(len(part))])
                for n, part in enumerate(chunks)
            )
            with EncodePool(spec, SECRET, count) as pool:
                for _, prepared in pool.prepare(jobs, lambda job: job):
                    for one in prepared:
                        if one is None or one[1] is None:
                            continue  # the generator plants unusable rows; a node rejects them
                        done += 1
                        digest.update(b"".join(one[1]))
            seconds = time.perf_counter() - started
            main_cpu, workers_cpu = (now - before for now, before in zip(_cpu(), cpu, strict=True))
            digests[count] = digest.hexdigest()
            figures[f"node_encode_{count}w_records_per_s"] = done / seconds
            figures[f"node_encode_{count}w_cpu_s"] = {"main": main_cpu, "workers": workers_cpu}
            # What an idle machine would give: the busiest of the main process (reading,
            # one core at most) and the whole work spread over the cores.
            busiest = max(main_cpu, (main_cpu + workers_cpu) / min(count + 1, _cores()))
            figures[f"node_encode_{count}w_idle_ceiling_records_per_s"] = done / busiest
            figures["node_encode_records"] = done
    figures["node_encode_same_bytes"] = len(set(digests.values())) == 1
    return figures


def _chunks(records: Iterator[T], size: int) -> Iterator[list[T]]:
    while part := list(itertools.islice(records, size)):
        yield part


def _cpu() -> tuple[float, float]:
    """CPU seconds so far of this process and of its reaped children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _cores() -> int:
    return len(os.sched_getaffinity(0))
