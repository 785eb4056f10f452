"""Reading a TOML file into one of hublink.config's frozen dataclasses, strictly.

Kept apart from the settings themselves (hublink.config) because it is a
different job: it knows nothing of any setting, only how a TOML value becomes
a typed field. Unknown keys are refused and every error names the file and
the key; relative paths are resolved against the file's own directory.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from hublink.errors import HublinkError

T = TypeVar("T")


class ConfigError(HublinkError, ValueError):
    """A configuration file that cannot be used; the message names the file and key."""


def load(path: Path, kind: type[T]) -> T:
    """Read ``path`` as TOML into dataclass ``kind``; ConfigError names the file and key."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_mapping(data, kind, source=path, base=path.parent)


def from_mapping(data: Mapping[str, Any], kind: type[T], *, source: Path, base: Path) -> T:
    """Build dataclass ``kind`` from plain data, checking keys and types."""
    return typing.cast(T, _build(data, kind, source=source, base=base, prefix=""))


def _build(data: Any, kind: type[Any], *, source: Path, base: Path, prefix: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: [{where}] must be a table")
    hints = typing.get_type_hints(kind)
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {prefix}{unknown[0]!s}; "
            f"expected one of: {', '.join(sorted(fields))}"
        )
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        key = f"{prefix}{name}"
        if name not in data:
            has_default = (
                spec.default is not dataclasses.MISSING
                or spec.default_factory is not dataclasses.MISSING
            )
            if not has_default:
                raise ConfigError(f"{source}: missing required key {key}")
            continue
        values[name] = _convert(data[name], hints[name], source=source, base=base, key=key)
    return kind(**values)


def _convert(value: Any, hint: Any, *, source: Path, base: Path, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        return _convert(value, options[0], source=source, base=base, key=key)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(value, hint, source=source, base=base, prefix=f"{key}.")
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{source}: {key} must be a path (a non-empty string)")
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list")
        return tuple(
            _convert(item, args[0], source=source, base=base, key=f"{key}[{i}]")
            for i, item in enumerate(value)
        )
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {key} must be a table")
        return {
            str(k): _convert(v, args[1], source=source, base=base, key=f"{key}.{k}")
            for k, v in value.items()
        }
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: {key} must be a number")
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{source}: {key} must be {_describe(hint)}")
        return value
    raise ConfigError(f"{source}: {key} has an unsupported type")  # pragma: no cover


def _describe(hint: type[Any]) -> str:
    return {int: "a whole number", str: "a string", bool: "true or false"}.get(hint, str(hint))
