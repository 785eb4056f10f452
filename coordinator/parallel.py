"""Engines that run a matching run's comparison tasks on every core, or on a Dask cluster.

The tasks and what they compute live in ``coordinator.core.comparison``; an
engine only decides where they run.

* :class:`ProcessEngine` (the default) keeps a pool of worker processes for
  the run. The run's encodings sit in shared memory that the workers map, so
  nothing is copied or pickled per task and no encoding is written to disk.
  anonlink's native Dice holds the GIL, so threads would not help.
* :class:`DaskEngine` sends the same tasks to a Dask cluster whose scheduler
  the coordinator is configured with, over Dask's TLS with certificates
  (encodings are personal data). The encodings are scattered to the workers
  once per run.

A coordinator killed with SIGKILL runs no clean-up of its own, so the pool is
built to leave nothing behind: each worker asks the kernel to kill it when its
parent dies (Linux ``PR_SET_PDEATHSIG``) and also watches its parent's pid;
each shared-memory segment is named ``hublink.<pid>.<instance>.<n>`` and the
next coordinator to start removes the segments of instances that are gone
(:func:`sweep_stale_segments`).
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import multiprocessing
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np

from coordinator.core import comparison
from coordinator.core.candidates import InlineEngine, Session
from coordinator.core.comparison import Outcome, Task

log = logging.getLogger("hublink.coordinator.matching")

#: Below this many tasks, or this many all-pairs comparisons (about two seconds of one
#: core), a run is done in-process: starting workers would cost more than they save.
MIN_TASKS_FOR_WORKERS = 4
MIN_COMPARISONS_FOR_WORKERS = 50_000_000


#: Where POSIX shared memory is visible as files (Linux).
SHM_DIR = Path("/dev/shm")
#: Prefix of every shared-memory segment a coordinator creates.
SEGMENT_PREFIX = "hublink."
_SEGMENT = re.compile(r"^hublink\.(\d+)\.([0-9a-f]+)\.\d+$")
#: This coordinator process's instance: a random tag, so a later process with the same
#: pid (pid 1 in a container, say) can tell the segments of an earlier one from its own.
_INSTANCE = secrets.token_hex(6)
_SEGMENTS = itertools.count()
#: Seconds between a worker's checks that its parent is still alive.
PARENT_CHECK_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def segment_name() -> str:
    """A fresh name for a shared-memory segment of this coordinator instance."""
    return f"{SEGMENT_PREFIX}{os.getpid()}.{_INSTANCE}.{next(_SEGMENTS)}"


def sweep_stale_segments(directory: Path = SHM_DIR) -> list[str]:
    """Remove the shared-memory segments of coordinator instances that no longer run.

    A segment is stale when the process named in it is gone, or when it is this
    process's pid under another instance tag (the pid was reused). Called at
    start-up; returns the names removed. Does nothing where there is no ``directory``.
    """
    removed: list[str] = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        match = _SEGMENT.fullmatch(path.name)
        if match is None:
            continue
        pid, instance = int(match[1]), match[2]
        if instance == _INSTANCE or (pid != os.getpid() and _alive(pid)):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path.name)
    if removed:
        log.warning(
            "removed %d shared-memory segment(s) left by a coordinator that stopped mid-run",
            len(removed),
        )
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_start(parent: int) -> None:
    """A worker's first act: die with the coordinator that started it.

    On Linux the kernel sends SIGKILL when the parent goes (``PR_SET_PDEATHSIG``);
    everywhere, a daemon thread checks the parent's pid every second, which also
    covers a parent that died before the request was made.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog alone
            pass
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


@dataclass(frozen=True)
class SharedArray:
    """Where a worker finds one of the run's arrays."""

    name: str
    shape: tuple[int, ...]


class _ProcessSession:
    def __init__(self, workers: int, min_comparisons: int) -> None:
        self._workers = workers
        self._min_comparisons = min_comparisons
        self.tasks_in_workers = 0
        self._blocks: dict[int, tuple[SharedMemory, np.ndarray]] = {}
        self._copied: list[np.ndarray] = []
        self._pool: ProcessPoolExecutor | None = None
        self._abandon = False

    def array(self, shape: tuple[int, ...]) -> np.ndarray:
        size = max(1, int(np.prod(shape)))
        block = SharedMemory(name=segment_name(), create=True, size=size)
        view: np.ndarray = np.ndarray(shape, dtype=np.uint8, buffer=block.buf)
        view[...] = 0
        self._blocks[id(view)] = (block, view)
        return view

    def _shared(self, array: np.ndarray) -> SharedArray:
        """Where workers find ``array``: its segment, copied there on first use if it was not
        made by ``array`` (a patched load's arrays: ``coordinator.core.loading``)."""
        if id(array) not in self._blocks:
            copy = self.array(array.shape)
            copy[...] = array
            # Under the original's id too (kept alive, so the id is not reused): copied once.
            self._blocks[id(array)] = self._blocks[id(copy)]
            self._copied.append(array)
        block, view = self._blocks[id(array)]
        return SharedArray(block.name, view.shape)

    def run(
        self,
        tasks: Sequence[Task],
        datasets: Sequence[np.ndarray],
        on_done: Callable[[int, Outcome], None],
        cancelled: Callable[[], bool],
    ) -> None:
        if (
            self._workers < 2
            or len(tasks) < MIN_TASKS_FOR_WORKERS
            or _small(tasks, self._min_comparisons)
        ):
            with InlineEngine().session() as inline:
                inline.run(tasks, datasets, on_done, cancelled)
            return
        shared = tuple(self._shared(d) for d in datasets)
        self.tasks_in_workers += len(tasks)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start,
                initargs=(os.getpid(),),
            )
        pending: dict[Future[Outcome], int] = {}
        queue = iter(enumerate(tasks))
        # Until every task is done: a run that stops early (cancelled, over budget, failed)
        # abandons the tasks in flight instead of waiting for them.
        self._abandon = True
        # Keep two tasks per worker in flight: enough to stay busy, few enough to cancel fast.
        for index, task in queue:
            pending[self._pool.submit(_work, task, shared)] = index
            if len(pending) >= 2 * self._workers:
                break
        while pending:
            # Wake at least twice a second so a cancel is seen even while tasks are long.
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                on_done(pending.pop(future), future.result())
            if cancelled():
                for future in pending:
                    future.cancel()
                return
            for index, task in queue:
                pending[self._pool.submit(_work, task, shared)] = index
                if len(pending) >= 2 * self._workers:
                    break
        self._abandon = False

    def close(self) -> None:
        """Stop the workers (killing them if the run stopped early) and remove every segment."""
        try:
            if self._pool is not None:
                if self._abandon:
                    # The executor offers no way to stop a task in flight; its worker
                    # processes are the only handle (a private attribute, read defensively).
                    workers = getattr(self._pool, "_processes", None) or {}
                    for process in list(workers.values()):
                        process.kill()
                self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            # A copied array's segment is held under two ids: closed and removed once.
            for block in {id(b): b for b, _ in self._blocks.values()}.values():
                block.close()
                with suppress(FileNotFoundError):  # already removed by a sweep
                    block.unlink()
            self._blocks.clear()


def _small(tasks: Sequence[Task], least: int) -> bool:
    if not all(isinstance(t, comparison.PairChunk) for t in tasks):
        return False
    return sum(t.comparisons for t in tasks if isinstance(t, comparison.PairChunk)) < least


class ProcessEngine:
    """Tasks in a pool of worker processes, one per core by default."""

    name = "processes"

    def __init__(
        self, workers: int = 0, *, min_comparisons: int = MIN_COMPARISONS_FOR_WORKERS
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.min_comparisons = min_comparisons
        self.tasks_in_workers = 0
        """Tasks sent to worker processes so far (the rest ran in-process)."""

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = _ProcessSession(self.workers, self.min_comparisons)
        try:
            yield session
        finally:
            session.close()
            self.tasks_in_workers += session.tasks_in_workers


# Worker side: arrays attached once per worker process, by shared-memory name.
_ATTACHED: dict[str, tuple[SharedMemory, np.ndarray]] = {}


def _attach(spec: SharedArray) -> np.ndarray:
    if spec.name not in _ATTACHED:
        # Python 3.11 registers every attached block with the resource tracker, which
        # would then unlink the parent's memory when this worker exits; only the
        # creating process owns it.
        register = resource_tracker.register
        resource_tracker.register = lambda *args, **kwargs: None
        try:
            block = SharedMemory(name=spec.name)
        finally:
            resource_tracker.register = register
        view: np.ndarray = np.ndarray(spec.shape, dtype=np.uint8, buffer=block.buf)
        _ATTACHED[spec.name] = (block, view)
    return _ATTACHED[spec.name][1]


def _work(task: Task, shared: tuple[SharedArray, ...]) -> Outcome:
    return comparison.perform(task, [_attach(s) for s in shared])


# ------------------------------------------------------------------------ Dask
@dataclass(frozen=True)
class DaskSettings:
    """How the coordinator reaches a Dask scheduler: its address and TLS files."""

    scheduler: str
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


def dask_security(settings: DaskSettings) -> Any:
    """Dask's TLS settings from the coordinator's: encryption required, certificates both ways."""
    from distributed.security import Security

    if settings.ca is None or settings.cert is None or settings.key is None:
        raise ValueError(
            "a Dask scheduler needs dask_ca, dask_cert and dask_key: encodings are personal "
            "data and must not cross the cluster's network in the clear"
        )
    return Security(  # type: ignore[no-untyped-call]
        tls_ca_file=str(settings.ca),
        tls_client_cert=str(settings.cert),
        tls_client_key=str(settings.key),
        require_encryption=True,
    )


class _DaskSession:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._scattered: dict[int, Any] = {}

    def array(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.uint8)

    def run(
        self,
        tasks: Sequence[Task],
        datasets: Sequence[np.ndarray],
        on_done: Callable[[int, Outcome], None],
        cancelled: Callable[[], bool],
    ) -> None:
        from distributed import as_completed

        data = []
        for array in datasets:
            if id(array) not in self._scattered:
                self._scattered[id(array)] = self._client.scatter(array, broadcast=True)
            data.append(self._scattered[id(array)])
        futures = [
            self._client.submit(comparison.perform, task, data, pure=False) for task in tasks
        ]
        index = {future.key: n for n, future in enumerate(futures)}
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            on_done(index[future.key], future.result())
            if cancelled():
                self._client.cancel(futures)
                return

    def close(self) -> None:
        if self._scattered:
            self._client.cancel(list(self._scattered.values()))
        self._scattered.clear()


class DaskEngine:
    """Tasks on a Dask cluster, reached over TLS; one client per run."""

    name = "dask"

    def __init__(self, settings: DaskSettings, *, client_factory: Callable[[], Any] | None = None):
        self.settings = settings
        self._client_factory = client_factory
        self.workers = 0

    def _client(self) -> Any:
        if self._client_factory is not None:
            return self._client_factory()
        from distributed import Client

        return Client(  # type: ignore[no-untyped-call]
            self.settings.scheduler, security=dask_security(self.settings), timeout=30
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        client = self._client()
        try:
            self.workers = len(client.scheduler_info().get("workers", {}))
            log.info(
                "matching on the Dask cluster at %s (%d workers)",
                client.scheduler.address,
                self.workers,
            )
            session = _DaskSession(client)
            try:
                yield session
            finally:
                session.close()
        finally:
            if self._client_factory is None:
                client.close()
