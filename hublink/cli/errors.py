"""Exit statuses, which failures ``hublink`` reports as one line, and the decorator that does it.

Every command exits with one of three statuses, so a script (or an IG
officer's cron job) can tell a failed check from a check that never ran:

    0  EXIT_OK        done; a check's answer is yes (the log verifies)
    1  EXIT_FAILED    a check ran and its answer is no (verification failed,
                      a fork detected, a run that ended failed, a page out of date)
    2  EXIT_UNABLE    could not run: bad input or usage, a file missing, the
                      coordinator unreachable or refusing the call

A user's mistake (a bad config, a missing column, a refused call) ends as one
readable line on standard error and exit status 2, never a traceback; click's
own usage errors exit 2 already. A bug shows its traceback and also exits 2
(``HublinkGroup``), so status 1 always means a negative answer. Rather
than list every class, the CLI catches the root of each package's tree:

    hublink.errors.HublinkError       the shared package (its tree is documented there)
    FileExistsError, FileNotFoundError
                                      a file named on the command line, or missing beside it
    node.errors.NodeError             the node's tree (documented in node/errors.py)
    coordinator                       MigrationError (database from another version),
                                      BindError (listen address taken)

Anything else is a bug and shows its traceback. ``hublink node backup`` and
the other backup commands keep their own, wider rule (any ``OSError``), see
``hublink.cli.backup``.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from hublink.errors import HublinkError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNABLE = 2


class CouldNotRun(click.ClickException):
    """A command that could not do its work: one line on stderr and exit status 2."""

    exit_code = EXIT_UNABLE


def failed(*lines: str) -> NoReturn:
    """End a check whose answer is no: its lines on stderr and exit status 1."""
    for line in lines:
        click.echo(line, err=True)
    sys.exit(EXIT_FAILED)


class HublinkGroup(click.Group):
    """The top-level group: an unexpected error keeps its traceback but exits 2, not 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception:  # a bug: show it, and never let it pass for a failed check
            traceback.print_exc()
            sys.exit(EXIT_UNABLE)


#: Errors of the shared package and of files named on the command line.
SHARED_ERRORS: tuple[type[Exception], ...] = (HublinkError, FileExistsError, FileNotFoundError)


def node_errors() -> tuple[type[Exception], ...]:
    """The node's errors a user can fix (its inputs, consent policy, state, secret exchange)."""
    from node.errors import NodeError

    return (NodeError,)


def coordinator_errors() -> tuple[type[Exception], ...]:
    """The coordinator's start-up errors an operator can fix."""
    from coordinator.core.migrations import MigrationError
    from coordinator.rpc.server import BindError

    return (MigrationError, BindError)


def user_errors() -> tuple[type[Exception], ...]:
    """Every class the CLI prints as one line.

    The node's and coordinator's are imported only when a command fails (an
    ``except`` clause is evaluated only then), so that ``hublink --help`` does
    not load clkhash and anonlink.
    """
    return (*SHARED_ERRORS, *node_errors(), *coordinator_errors())


def friendly(command: F) -> F:
    """Turn the errors a user can cause into one line on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except user_errors() as exc:
            raise CouldNotRun(str(exc)) from None

    return wrapper  # type: ignore[return-value]
