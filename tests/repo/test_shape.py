"""The shape of the code: no import cycles, no oversized modules, layers that point one way.

The conventions (docs/development.md, "The shape of the code") say that the node never
imports the coordinator nor the coordinator the node, that coordinator/core knows nothing
of gRPC, that the shared hublink/ package imports neither (only the CLI and the demo sit on
top of both), that no module in node/, coordinator/ or hublink/ is over 600 lines
(generated hublink/v1 aside), and that there are no import cycles. Each of these decays one
reasonable-looking commit at a time, so this test reads the source with ``ast`` and fails
on the first new breach, naming it.

Imports anywhere in a module count: at the top, inside functions, and under
``if TYPE_CHECKING:`` (a type-only import is still a dependency a reader has to follow).

``scripts/check`` runs this file on its own as well, so a quick
``scripts/check -m "not e2e"`` cannot skip it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("node", "coordinator", "hublink")
GENERATED = ("hublink.v1",)
MAX_LINES = 600

# --- reading the source ----------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "coordinator.core.store"
    path: Path  # the file
    is_package: bool  # an __init__.py


def modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Module]:
    """Every module of the given top-level packages under ``root``, generated code left out."""
    found: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            if any(name == g or name.startswith(g + ".") for g in GENERATED):
                continue
            found[name] = Module(name, path, is_package)
    return found


def imported_names(module: Module) -> Iterator[str]:
    """Every dotted name the module imports, at any depth, relative imports resolved.

    ``from a.b import c`` yields ``a.b.c``, whether ``c`` is a submodule or a name defined
    in ``a.b``; import_graph resolves it to the nearest enclosing module of the project.
    """
    tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                yield base if alias.name == "*" else f"{base}.{alias.name}"


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the project modules it imports (external imports and itself left out).

    A name that is not itself a module resolves to the nearest enclosing project module,
    so ``from a.b import function`` is an edge to ``a.b``.
    """
    known = modules(root, packages)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, module in known.items():
        for imported in imported_names(module):
            target = imported
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def external_imports(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """Module -> every dotted name it imports, project or not (for the layer rules)."""
    return {name: set(imported_names(m)) for name, m in modules(root, packages).items()}


# --- the rules -------------------------------------------------------------------------------


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One concrete cycle (a, b, …, a) for each strongly connected component of 2+ modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0

    def connect(start: str) -> None:  # Tarjan, iteratively (deep chains overflow recursion)
        nonlocal counter
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)

    for name in sorted(graph):
        if name not in index:
            connect(name)
    return [cycle_through(graph, component) for component in components]


def cycle_through(graph: Mapping[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle from the component's first module back to itself, for the message."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for successor in sorted(graph[node] & component):
                if successor == start:
                    return [*paths[node], start]
                if successor not in paths:
                    paths[successor] = [*paths[node], successor]
                    following.append(successor)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def long_modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, int]:
    """Path -> line count of every module over MAX_LINES."""
    found = {}
    for module in modules(root, packages).values():
        lines = len(module.path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            found[module.path.relative_to(root).as_posix()] = lines
    return found


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def points_upward(importer: str, target: str) -> bool:
    """Whether a project-internal import crosses between the node, the coordinator and hublink."""
    if within(importer, "node"):
        return within(target, "coordinator")
    if within(importer, "coordinator"):
        return within(target, "node")
    on_top = within(importer, "hublink.cli") or within(importer, "hublink.demo")
    return not on_top and (within(target, "node") or within(target, "coordinator"))


def layer_breaches(root: Path, packages: Iterable[str] = PACKAGES) -> set[tuple[str, str]]:
    """(importer, imported) pairs that break one of the layer rules.

    - coordinator/core imports neither grpc nor any generated *_pb2 module;
    - node never imports coordinator, and coordinator never imports node;
    - hublink/, outside hublink.cli and hublink.demo, imports neither node nor coordinator.
    """
    graph = import_graph(root, packages)
    breaches: set[tuple[str, str]] = set()
    for importer, names in external_imports(root, packages).items():
        if within(importer, "coordinator.core"):
            for name in names:
                last = name.rpartition(".")[2]
                if within(name, "grpc") or last.endswith(("_pb2", "_pb2_grpc")):
                    breaches.add((importer, name))
        breaches.update((importer, t) for t in graph[importer] if points_upward(importer, t))
    return breaches


# --- the repository --------------------------------------------------------------------------


def test_no_import_cycle() -> None:
    found = cycles(import_graph(ROOT))
    assert not found, "import cycles (break them):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found
    )


def test_no_module_over_the_limit() -> None:
    found = long_modules(ROOT)
    assert not found, f"modules over {MAX_LINES} lines (split them): " + ", ".join(
        f"{path} ({lines})" for path, lines in sorted(found.items())
    )


def test_no_layer_breach() -> None:
    found = sorted(layer_breaches(ROOT))
    assert not found, "imports that cross a layer the wrong way:\n" + "\n".join(
        f"{importer} imports {imported}" for importer, imported in found
    )


# --- the checker itself, on a made-up tree ---------------------------------------------------


def write(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


CLEAN = {
    "node/__init__.py": "",
    "node/encode.py": "import hashlib\nfrom hublink import spec\n",
    "coordinator/__init__.py": "",
    "coordinator/core/__init__.py": "",
    "coordinator/core/store.py": "import sqlite3\nfrom . import model\n",
    "coordinator/core/model.py": "from dataclasses import dataclass\n",
    "coordinator/rpc/__init__.py": "",
    "coordinator/rpc/servicer.py": "import grpc\nfrom hublink.v1 import upload_pb2\n"
    "from ..core import store\n",
    "hublink/__init__.py": "",
    "hublink/spec.py": "import json\n",
    "hublink/v1/__init__.py": "",
    "hublink/v1/upload_pb2.py": "from coordinator.core import store\n" * 700,
    "hublink/cli/__init__.py": "from node import encode\nfrom coordinator.core import store\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = write(tmp_path, CLEAN)
    assert cycles(import_graph(root)) == []
    assert long_modules(root) == {}  # the generated module's 700 lines do not count
    assert layer_breaches(root) == set()


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **CLEAN,
            "coordinator/core/model.py": "def late():\n    from .store import x\n",
            "coordinator/core/store.py": "from coordinator.core.model import late\n",
        },
    )
    assert cycles(import_graph(root)) == [
        ["coordinator.core.model", "coordinator.core.store", "coordinator.core.model"]
    ]


def test_a_cycle_under_type_checking_and_relative_imports_is_found(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **CLEAN,
            "hublink/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from .b import B\n",
            "hublink/b.py": "from hublink import c\n",
            "hublink/c.py": "from . import a\n",
        },
    )
    (cycle,) = cycles(import_graph(root))
    assert cycle == ["hublink.a", "hublink.b", "hublink.c", "hublink.a"]


def test_a_module_over_the_limit_is_found(tmp_path: Path) -> None:
    root = write(tmp_path, {**CLEAN, "node/big.py": "x = 1\n" * (MAX_LINES + 1)})
    assert long_modules(root) == {"node/big.py": MAX_LINES + 1}
    root = write(tmp_path, {"node/big.py": "x = 1\n" * MAX_LINES})
    assert long_modules(root) == {}


@pytest.mark.parametrize(
    ("path", "text", "breach"),
    [
        ("coordinator/core/runs.py", "import grpc\n", ("coordinator.core.runs", "grpc")),
        (
            "coordinator/core/runs.py",
            "def f():\n    from hublink.v1 import run_pb2\n",
            ("coordinator.core.runs", "hublink.v1.run_pb2"),
        ),
        (
            "node/keys.py",
            "from coordinator.core import store\n",
            ("node.keys", "coordinator.core.store"),
        ),
        (
            "coordinator/core/runs.py",
            "import node.encode\n",
            ("coordinator.core.runs", "node.encode"),
        ),
        ("hublink/reports.py", "from node.encode import x\n", ("hublink.reports", "node.encode")),
        ("hublink/cli/node.py", "from node.encode import x\n", None),
        ("hublink/demo/run.py", "from coordinator.core import store\n", None),
    ],
)
def test_a_layer_breach_is_found(
    tmp_path: Path, path: str, text: str, breach: tuple[str, str] | None
) -> None:
    root = write(tmp_path, {**CLEAN, path: text})
    if breach is None:  # the CLI and the demo sit on top of both sides
        assert layer_breaches(root) == set()
    else:
        assert layer_breaches(root) == {breach}
