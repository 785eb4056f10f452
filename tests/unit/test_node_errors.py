"""The node's exception tree: one root to catch, the old built-in bases kept, documented once."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import node
from node import errors
from node.errors import NodeError, RunError

BUILT_IN_BASES = {
    "InputError": ValueError,
    "UnknownEncoding": ValueError,
    "WorkbookError": ValueError,
    "ResourceError": ValueError,
    "PolicyError": ValueError,
    "UndecidableRecord": ValueError,
    "NormalisationError": ValueError,
    "RowError": ValueError,
    "AttributeConfigError": ValueError,
    "InputChanged": RuntimeError,
    "UploadRejected": RuntimeError,
    "ReceiptRefused": RuntimeError,
    "ExchangeError": RuntimeError,
    "RunError": RuntimeError,
}


def _node_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.iter_modules(node.__path__):
        module = importlib.import_module(f"node.{info.name}")
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[name] = value
    return found


def test_every_node_exception_is_a_node_error() -> None:
    found = _node_exceptions()
    assert set(BUILT_IN_BASES) <= set(found)
    strays = [n for n, c in found.items() if not issubclass(c, NodeError)]
    assert strays == []


@pytest.mark.parametrize(("name", "base"), sorted(BUILT_IN_BASES.items()))
def test_each_keeps_the_built_in_base_callers_catch(name: str, base: type[Exception]) -> None:
    assert issubclass(_node_exceptions()[name], base)


def test_the_module_docstring_names_every_class_in_the_tree() -> None:
    doc = errors.__doc__ or ""
    for name, cls in _node_exceptions().items():
        assert name in doc, name
        assert cls.__module__ in doc, cls.__module__


def test_a_run_that_stops_is_caught_at_the_root() -> None:
    with pytest.raises(NodeError, match="cannot go on"):
        raise RunError("the upload cannot go on")
