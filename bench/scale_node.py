"""One party of the scale benchmark's end-to-end run, as its own process (like a real node).

It maps the party's prepared encodings from a ``.npy`` file, uploads them to
the coordinator over mutual TLS with the node's own client
(``node.uploader.NodeClient``), prints one JSON line, waits for ``fetch`` on
standard input (the bench starts the matching run in between), fetches the
party's linkage keys, prints a second JSON line and exits. Timestamps are
wall-clock (``time.time``) so the bench can line up several parties.

Records are built per chunk from the array (``LazyRecords``), so the process
never holds a Python object per record of its upload; its peak memory
(``VmHWM``) is reported.

    python bench/scale_node.py --coordinator localhost:PORT --project ID \
        --ca ca.pem --cert node.pem --key node.key --encodings party.npy
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import overload

import numpy as np

from hublink.tls import TlsFiles, secure_channel
from node.encoder import EncodedRecord
from node.record_tokens import TokenSequence
from node.uploader import NodeClient


class LazyRecords(Sequence[EncodedRecord]):
    """Encoded records made on demand from a packed array (rows of encoding bytes)."""

    def __init__(self, rows: np.ndarray) -> None:
        self._rows = rows
        self._tokens = TokenSequence(len(rows))  # as a node makes them: ascending, random

    def __len__(self) -> int:
        return len(self._rows)

    def _record(self, index: int) -> EncodedRecord:
        return EncodedRecord(self._tokens(), f"r{index}", (self._rows[index].tobytes(),))

    @overload
    def __getitem__(self, index: int) -> EncodedRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[EncodedRecord]: ...

    def __getitem__(self, index: int | slice) -> EncodedRecord | Sequence[EncodedRecord]:
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._record(index)


def proc_mb(pid: int | str, file: str, field: str) -> float:
    """A kB figure of ``/proc/<pid>/<file>`` (``field``: its line's label) in MB, 0 if the
    process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a process in MB, 0 if it is gone."""
    return proc_mb(pid, "status", "VmHWM")


def _cpu_seconds() -> float:
    """CPU time this process has used so far (user and system)."""
    times = os.times()
    return times.user + times.system


def _say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coordinator", required=True, help="host:port of the coordinator")
    parser.add_argument("--project", required=True, help="project id")
    parser.add_argument("--ca", type=Path, required=True, help="CA certificate (PEM)")
    parser.add_argument("--cert", type=Path, required=True, help="this node's certificate")
    parser.add_argument("--key", type=Path, required=True, help="this node's private key")
    parser.add_argument("--encodings", type=Path, required=True, help=".npy of packed rows")
    args = parser.parse_args()

    rows = np.load(args.encodings, mmap_mode="r")
    channel = secure_channel(args.coordinator, TlsFiles(ca=args.ca, cert=args.cert, key=args.key))
    client = NodeClient(channel, timeout=600.0)
    project = client.project(args.project)
    started, cpu = time.time(), _cpu_seconds()
    receipt = client.upload(
        project,
        project.encoding_sha256,
        LazyRecords(rows),
        chunk_records=project.max_chunk_records,
    )
    _say(
        event="uploaded",
        started=started,
        finished=time.time(),
        records=receipt.record_count,
        encoding_bytes=int(rows.shape[0] * rows.shape[1]),
        cpu_s=_cpu_seconds() - cpu,
    )
    if sys.stdin.readline().strip() != "fetch":
        return
    started = time.time()
    keys = client.linkage_keys(args.project)
    _say(
        event="keys",
        started=started,
        finished=time.time(),
        keys=len(keys),
        distinct_keys=len({key for _, key in keys}),
        peak_rss_mb=peak_rss_mb(),
    )
    channel.close()


if __name__ == "__main__":
    main()
