"""A progress display for long staged work (an upload, a matching run, the demo).

It goes to standard error and switches itself off when that is not a
terminal, so logs, pipes and CI see only the results.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn


class StageProgress:
    """A progress display for staged work; ``progress(stage, done, total)`` updates it.

    Disabled (a no-op) when output is not a terminal, so logs and CI stay clean.
    """

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console or Console(stderr=True),
            transient=False,
            disable=not enabled,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> StageProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, stage: str, done: int, total: int) -> None:
        task = self._tasks.get(stage)
        if task is None:
            task = self._progress.add_task(stage, total=total or None)
            self._tasks[stage] = task
        self._progress.update(task, completed=done, total=total or None)
