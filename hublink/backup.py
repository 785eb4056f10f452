"""Backups of a coordinator's or a node's state, and restoring them.

What must survive a lost disk: the coordinator's database (uploads, runs,
entities, project keys, the audit log) and the key that signs the audit log's
checkpoints; a node's state folder, above all its token store, without which
the linkage keys the coordinator returns cannot be joined back to local
records. SQLite files are copied with SQLite's online backup API, so a
backup taken while the coordinator serves is consistent; every file's
SHA-256 goes into manifest.json, checked before anything is restored.

A backup is written to a temporary folder beside its destination and renamed
into place, so a backup that failed half-way is never mistaken for a whole
one; a restore never overwrites existing state.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hublink import __version__
from hublink.errors import HublinkError

MANIFEST = "manifest.json"
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


class BackupError(HublinkError, ValueError):
    """A backup that cannot be made or restored; the message names the file and why."""


@dataclass(frozen=True)
class Manifest:
    kind: str
    created: str
    hublink: str
    files: Mapping[str, str]
    """Path inside the backup -> SHA-256 (hex)."""


def create(out: Path, kind: str, entries: Mapping[str, Path]) -> Manifest:
    """Back up ``entries`` (name in the backup -> file or folder) into the new folder ``out``."""
    if out.exists():
        raise BackupError(f"{out}: already exists; name a new folder for the backup")
    for source in entries.values():
        if not source.exists():
            raise BackupError(f"{source}: not found; nothing to back up")
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        os.chmod(temp, 0o700)
        for name, source in entries.items():
            _copy(source, temp / name)
        manifest = Manifest(
            kind,
            datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            __version__,
            _hashes(temp),
        )
        (temp / MANIFEST).write_text(
            json.dumps(
                {
                    "kind": manifest.kind,
                    "created": manifest.created,
                    "hublink": manifest.hublink,
                    "files": dict(manifest.files),
                },
                indent=2,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
        os.rename(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return manifest


def verify(backup: Path, kind: str) -> Manifest:
    """Check ``backup`` is a whole, unchanged backup of ``kind``; returns its manifest."""
    try:
        data = json.loads((backup / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{backup}: no {MANIFEST}; not a hublink backup") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{backup / MANIFEST}: unreadable: {exc}") from None
    if data.get("kind") != kind:
        raise BackupError(f"{backup}: a backup of a {data.get('kind')!r}, not of a {kind!r}")
    files: dict[str, str] = dict(data.get("files", {}))
    found = _hashes(backup)
    for name, digest in sorted(files.items()):
        if name not in found:
            raise BackupError(f"{backup / name}: missing from the backup")
        if found[name] != digest:
            raise BackupError(f"{backup / name}: changed since the backup was made")
    extra = sorted(set(found) - set(files))
    if extra:
        raise BackupError(f"{backup / extra[0]}: not part of the backup")
    return Manifest(kind, str(data.get("created", "")), str(data.get("hublink", "")), files)


def restore(backup: Path, kind: str, targets: Mapping[str, Path]) -> Manifest:
    """Put each ``targets`` entry (name in the backup -> destination) back, never overwriting."""
    manifest = verify(backup, kind)
    for name, target in targets.items():
        if not (backup / name).exists():
            raise BackupError(f"{backup / name}: missing from the backup")
        if target.exists():
            raise BackupError(f"{target}: already exists; move it away before restoring over it")
    for name, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.restore.tmp")
        if temp.exists():
            shutil.rmtree(temp) if temp.is_dir() else temp.unlink()
        source = backup / name
        if source.is_dir():
            shutil.copytree(source, temp)
        else:
            shutil.copy2(source, temp)
        os.rename(temp, target)
    return manifest


def _copy(source: Path, target: Path) -> None:
    """Copy a file or folder; SQLite databases through the online backup API."""
    if source.is_dir():
        target.mkdir(mode=0o700)
        for child in sorted(source.iterdir()):
            if child.name.endswith(SQLITE_SIDE_FILES):
                continue  # folded into the database by the backup API
            _copy(child, target / child.name)
    elif source.suffix in SQLITE_SUFFIXES:
        _sqlite_backup(source, target)
    else:
        shutil.copy2(source, target)


def _sqlite_backup(source: Path, target: Path) -> None:
    try:
        src = sqlite3.connect(str(source), timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"{source}: cannot open the database: {exc}") from None
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
        except sqlite3.Error as exc:
            raise BackupError(f"{source}: cannot back up the database: {exc}") from None
        finally:
            dst.close()
    finally:
        src.close()
    os.chmod(target, 0o600)


def _hashes(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path != root / MANIFEST:
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
