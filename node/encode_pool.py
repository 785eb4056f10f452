"""Normalising and encoding on every core: the node's batches shared out over processes, in order.

clkhash hashes about a thousand records a second on one core and holds the
GIL while it does, so threads do not help; worker processes do. Each worker
builds its own ``node.encoder.Encoder`` and normalisers once (from the spec,
the input's date formats and the secret, handed over the pool's pipe, never
written anywhere) and normalises and encodes slices of a batch. What comes
back is exactly what one process makes from the same rows and tokens,
because normalising is a function of the raw cells (``node.prepare``) and
encoding one of the secret, the values and the record's token
(``Encoder.encode_all``), and the slices are put back together in the order
they were given.

Normalising costs about as much as encoding, so it goes to the workers too
(``prepare``): the caller reads rows and decides consent, and only the raw
linkage cells of the rows consent lets leave cross to a worker. A row with no
usable identifier comes back as None (or, asked for ``strict``, as the same
``RowError`` one process raises, naming its row), so errors read as before.
``encode`` still takes values already normalised. At most ``AHEAD`` batches
are in flight, so memory follows the chunk size, not the size of the
extract: the workers work on the next batch while the caller sends the last.

Workers are started with ``spawn`` (the node holds a gRPC channel, whose
threads a ``fork`` would copy mid-flight) and ask the kernel to end them if
the node dies (Linux ``PR_SET_PDEATHSIG``), so a killed upload leaves no
encoder behind.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import suppress
from typing import Any, TypeVar

from hublink.spec import LinkageSpec
from node.encoder import Encoder
from node.prepare import Normaliser, RowError, normalise_row, normalisers
from node.source import SourceRow

#: Batches being worked on at once: the one the caller waits for and the next.
AHEAD = 2
#: Smallest slice of a batch handed to one worker (below it the pipe costs more than it saves).
MIN_SLICE = 100
#: With ``encode_workers = 0``, uploads of fewer records than this encode in the calling
#: process: starting workers (each imports clkhash and builds its encoder) costs a second.
MIN_RECORDS_FOR_WORKERS = 5000

Values = Sequence[tuple[str, ...]]
Encodings = list[tuple[bytes, ...]]
Prepared = tuple[tuple[str, ...], tuple[bytes, ...] | None] | None
"""One row prepared: None if it has no usable identifier, else its normalised values and
its encodings (None for a row given no token: normalised to be checked, not encoded)."""
B = TypeVar("B")
T = TypeVar("T")
R = TypeVar("R")

_PR_SET_PDEATHSIG = 1


class _Stage:
    """What one process keeps for the whole upload: the encoder and the normalisers."""

    def __init__(self, spec: LinkageSpec, secret: bytes, date_formats: Sequence[str]) -> None:
        self.encoder = Encoder(spec, secret)
        self.fields = spec.all_fields
        self.rules: dict[str, Normaliser] = normalisers(date_formats, spec)

    def encode(self, values: Values, tokens: Sequence[str]) -> Encodings:
        return self.encoder.encode_all(values, tokens)

    def prepare(
        self, rows: Sequence[SourceRow], tokens: Sequence[str | None], strict: bool
    ) -> list[Prepared]:
        """Each row normalised (``node.prepare.normalise_row``) and, if it has a token, encoded
        under it; the usable rows of a slice are encoded together, as clkhash likes."""
        if len(tokens) != len(rows):
            raise ValueError(f"expected {len(rows)} tokens, not {len(tokens)}")
        out: list[Prepared] = []
        wanted: list[int] = []
        for row, token in zip(rows, tokens, strict=True):
            try:
                values = normalise_row(row, self.fields, self.rules)
            except RowError:
                if strict:
                    raise
                out.append(None)
                continue
            if token is not None:
                wanted.append(len(out))
            out.append((values, None))
        encodings = self.encoder.encode_all(
            [_values(out[i]) for i in wanted], [_token(tokens[i]) for i in wanted]
        )
        for i, encoding in zip(wanted, encodings, strict=True):
            out[i] = (_values(out[i]), encoding)
        return out


def _values(prepared: Prepared) -> tuple[str, ...]:
    assert prepared is not None
    return prepared[0]


def _token(token: str | None) -> str:
    assert token is not None
    return token


_stage: _Stage | None = None


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


def _start_worker(spec: LinkageSpec, secret: bytes, date_formats: Sequence[str]) -> None:
    """A worker's first act: die with the node, leave Ctrl-C to the node (which stops the
    pool), then build the encoder and normalisers it keeps."""
    global _stage
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    _stage = _Stage(spec, secret, date_formats)


def _encode_slice(values: Values, tokens: Sequence[str]) -> Encodings:
    assert _stage is not None, "worker started without its encoder"
    return _stage.encode(values, tokens)


def _prepare_slice(
    strict: bool, rows: Sequence[SourceRow], tokens: Sequence[str | None]
) -> list[Prepared]:
    assert _stage is not None, "worker started without its encoder"
    return _stage.prepare(rows, tokens, strict)


class EncodePool:
    """Normalises and encodes batches on ``workers`` processes (one: in this process).

    Use as a context manager; ``prepare`` (raw rows) and ``encode`` (values
    already normalised) yield each batch with its results, in the order the
    batches came, with the same bytes one process makes. ``date_formats``: the
    input's (``[input] date_formats``), for normalising dates of birth.
    """

    def __init__(
        self,
        spec: LinkageSpec,
        secret: bytes,
        workers: int = 1,
        date_formats: Sequence[str] = (),
    ) -> None:
        if workers < 1:
            raise ValueError(f"an encode pool needs at least one worker, not {workers}")
        self.workers = workers
        # Built here first, so a bad spec, secret or date format is refused before any worker.
        self._inline = _Stage(spec, secret, date_formats)
        self._start = (spec, secret, tuple(date_formats))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> EncodePool:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=self._start,
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
        return self._run(batches, job, self._inline.encode, _encode_slice)

    def prepare(
        self,
        batches: Iterable[B],
        job: Callable[[B], tuple[Sequence[SourceRow], Sequence[str | None]]],
        *,
        strict: bool = False,
    ) -> Iterator[tuple[B, list[Prepared]]]:
        """Each batch with its rows (``job(batch)``) normalised and encoded under their tokens,
        one ``Prepared`` a row, in order. A row with no usable identifier is None, or with
        ``strict`` raises the ``RowError`` that ``node.prepare`` raises for it."""
        return self._run(
            batches,
            job,
            functools.partial(self._inline.prepare, strict=strict),
            functools.partial(_prepare_slice, strict),
        )

    def _run(
        self,
        batches: Iterable[B],
        job: Callable[[B], tuple[Sequence[T], Sequence[Any]]],
        inline: Callable[..., list[R]],
        remote: Callable[..., list[R]],
    ) -> Iterator[tuple[B, list[R]]]:
        if self._pool is None:
            for batch in batches:
                items, tokens = job(batch)
                _check_tokens(items, tokens)
                yield batch, inline(items, tokens)
            return
        pending: deque[tuple[B, list[Future[list[R]]]]] = deque()
        try:
            for batch in batches:
                pending.append((batch, self._submit(remote, *job(batch))))
                if len(pending) >= AHEAD:
                    yield self._collect(pending.popleft())
            while pending:
                yield self._collect(pending.popleft())
        finally:
            for _, futures in pending:
                for future in futures:
                    future.cancel()

    def _submit(
        self,
        remote: Callable[..., list[R]],
        items: Sequence[T],
        tokens: Sequence[Any],
    ) -> list[Future[list[R]]]:
        assert self._pool is not None
        _check_tokens(items, tokens)
        step = max(MIN_SLICE, -(-len(items) // self.workers))
        return [
            self._pool.submit(
                remote, list(items[start : start + step]), list(tokens[start : start + step])
            )
            for start in range(0, len(items), step)
        ]

    @staticmethod
    def _collect(item: tuple[B, list[Future[list[R]]]]) -> tuple[B, list[R]]:
        batch, futures = item
        out: list[R] = []
        for future in futures:
            out.extend(future.result())
        return batch, out


def _check_tokens(items: Sequence[object], tokens: Sequence[object]) -> None:
    if tokens and len(tokens) != len(items):
        raise ValueError(f"expected {len(items)} tokens, not {len(tokens)}")
