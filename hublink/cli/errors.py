"""Which failures ``hublink`` reports as one line, and the decorator that does it.

A user's mistake (a bad config, a missing column, a refused call) ends as one
readable line on standard error and exit status 1, never a traceback. Rather
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
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hublink.errors import HublinkError

F = TypeVar("F", bound=Callable[..., Any])

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
    """Turn the errors a user can cause into one line on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except user_errors() as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]
