"""Encoding on every core: the node's batches shared out over worker processes, in order.

clkhash hashes about a thousand records a second on one core and holds the
GIL while it does, so threads do not help; worker processes do. Each worker
builds its own ``node.encoder.Encoder`` once (from the spec and the secret,
handed over the pool's pipe, never written anywhere) and encodes slices of a
batch. What comes back is exactly what one process makes from the same values
and tokens, because encoding is a function of the secret, the values and the
record's token (``Encoder.encode_all``), and the slices are put back together
in the order they were given.

Reading, consent and normalising stay in the calling process, so a bad row is
reported as before (file, row, field), and only normalised values cross to a
worker. At most ``AHEAD`` batches are in flight, so memory follows the chunk
size, not the size of the extract: the workers encode the next batch while
the caller sends the last.

Workers are started with ``spawn`` (the node holds a gRPC channel, whose
threads a ``fork`` would copy mid-flight) and ask the kernel to end them if
the node dies (Linux ``PR_SET_PDEATHSIG``), so a killed upload leaves no
encoder behind.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import suppress
from typing import TypeVar

from hublink.spec import LinkageSpec
from node.encoder import Encoder

#: Batches being encoded at once: the one the caller waits for and the next.
AHEAD = 2
#: Smallest slice of a batch handed to one worker (below it the pipe costs more than it saves).
MIN_SLICE = 100
#: With ``encode_workers = 0``, uploads of fewer records than this encode in the calling
#: process: starting workers (each imports clkhash and builds its encoder) costs a second.
MIN_RECORDS_FOR_WORKERS = 5000

Values = Sequence[tuple[str, ...]]
Encodings = list[tuple[bytes, ...]]
B = TypeVar("B")

_PR_SET_PDEATHSIG = 1
_encoder: Encoder | None = None


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def workers_for(setting: int, records: int) -> int:
    """How many processes encode an upload of ``records``: the node's ``encode_workers``,
    never more than the records fill slices for. 0 means every core, except for an upload
    too small to repay starting workers, which is encoded in this process."""
    if setting < 0:
        raise ValueError(f"encode_workers must be 0 (every core) or more, not {setting}")
    if setting == 0 and records < MIN_RECORDS_FOR_WORKERS:
        return 1
    return max(1, min(setting or cores(), records // MIN_SLICE))


def _start_worker(spec: LinkageSpec, secret: bytes) -> None:
    """A worker's first act: die with the node, leave Ctrl-C to the node (which stops the
    pool), then build the encoder it keeps."""
    global _encoder
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    _encoder = Encoder(spec, secret)


def _encode_slice(values: Values, tokens: Sequence[str]) -> Encodings:
    assert _encoder is not None, "worker started without its encoder"
    return _encoder.encode_all(values, tokens)


class EncodePool:
    """Encodes batches of normalised values on ``workers`` processes (one: in this process).

    Use as a context manager; ``encode`` yields each batch with its encodings,
    in the order the batches came, with the same bytes one process makes.
    """

    def __init__(self, spec: LinkageSpec, secret: bytes, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"an encode pool needs at least one worker, not {workers}")
        self.workers = workers
        self._inline = Encoder(spec, secret)  # checks spec and secret here, before any worker
        self._spec = spec
        self._secret = secret
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> EncodePool:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self._spec, self._secret),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def encode(
        self,
        batches: Iterable[B],
        job: Callable[[B], tuple[Values, Sequence[str]]],
    ) -> Iterator[tuple[B, Encodings]]:
        """Each batch with the encodings of its values under its tokens (``job(batch)``),
        in order; up to ``AHEAD`` batches are read and encoding at once."""
        if self._pool is None:
            for batch in batches:
                values, tokens = job(batch)
                yield batch, self._inline.encode_all(values, tokens)
            return
        pending: deque[tuple[B, list[Future[Encodings]]]] = deque()
        try:
            for batch in batches:
                pending.append((batch, self._submit(*job(batch))))
                if len(pending) >= AHEAD:
                    yield self._collect(pending.popleft())
            while pending:
                yield self._collect(pending.popleft())
        finally:
            for _, futures in pending:
                for future in futures:
                    future.cancel()

    def _submit(self, values: Values, tokens: Sequence[str]) -> list[Future[Encodings]]:
        assert self._pool is not None
        if tokens and len(tokens) != len(values):
            raise ValueError(f"expected {len(values)} tokens, not {len(tokens)}")
        step = max(MIN_SLICE, -(-len(values) // self.workers))
        return [
            self._pool.submit(
                _encode_slice,
                list(values[start : start + step]),
                list(tokens[start : start + step]),
            )
            for start in range(0, len(values), step)
        ]

    @staticmethod
    def _collect(item: tuple[B, list[Future[Encodings]]]) -> tuple[B, Encodings]:
        batch, futures = item
        out: Encodings = []
        for future in futures:
            out.extend(future.result())
        return batch, out
