"""Files and folders only their owner can read: databases, state, keys and outputs.

Everything hublink keeps on disk is personal data or guards it (tokens mapped
to local ids, encodings, linkage keys, exclusion counts), so it is created
owner-only whatever the process's umask: files 0600, folders 0700. SQLite
creates a database's ``-wal`` and ``-shm`` files with the database file's own
mode, so creating the database file first, owner-only, covers them too;
existing ones are tightened as well, for databases made by older versions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

FILE_MODE = 0o600
DIR_MODE = 0o700
#: The files SQLite keeps beside a database.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) and leave it 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty if it is missing; either way leave it 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def private_sqlite(path: Path) -> Path:
    """Ready a SQLite database file before it is opened: it and its companions 0600."""
    private_file(path)
    tighten_sqlite(path)
    return path


def tighten_sqlite(path: Path) -> None:
    """Set the companions SQLite made (or an older hublink made) beside ``path`` to 0600."""
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.chmod(companion, FILE_MODE)


def append_private(path: Path) -> TextIO:
    """Open ``path`` for appending text, created 0600 (and tightened if it was not)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "a", encoding="utf-8")
