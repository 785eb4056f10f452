"""The files that say how hublink is installed, tested and built, checked against each other.

The README's two commands are the supported way in; CI runs the second one
verbatim; the locks are what those commands install; the generated stubs
must match the .proto files. Each of these drifts silently unless a test
reads them, so these tests do.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CI_SCRIPT = ROOT / ".ci" / "run"
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"

MAIN_COMMAND = "pip install --no-deps -r requirements.lock -e . && hublink demo"
TEST_COMMAND = "pip install --no-deps -r requirements-dev.lock -e . && python -m pytest"

PROTO_COMMAND = (
    "python -m grpc_tools.protoc -I proto --python_out=. --pyi_out=. --grpc_python_out=. "
    "proto/hublink/v1/*.proto"
)

_FENCE = re.compile(r"^```[^\n`]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[0-9][A-Za-z0-9.+!-]*)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def fenced_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, stripped body) of every ``` fenced block, in order."""
    return [
        (text.count("\n", 0, match.start()) + 1, match.group("body").strip())
        for match in _FENCE.finditer(text)
    ]


def requirement_lines(path: Path) -> list[str]:
    """The lines of a requirements file that are not blank and not comments."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def normalised(name: str) -> str:
    """A distribution name as packaging tools compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def release(version: str) -> tuple[int, ...]:
    """The leading numeric release of a version string: "46.0.5rc1" -> (46, 0, 5)."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    if match is None:
        raise ValueError(f"cannot read a release number from version {version!r}")
    return tuple(int(part) for part in match.group().split("."))


# --- the README's commands and CI -----------------------------------------------------------


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = fenced_blocks(text)
    assert len(blocks) >= 2, "README.md must open with two fenced commands"
    (main_line, main), (test_line, test) = blocks[:2]
    assert main == MAIN_COMMAND, f"README's first fenced block should be: {MAIN_COMMAND}"
    assert test == TEST_COMMAND, f"README's second fenced block should be: {TEST_COMMAND}"
    first_section = next(
        (i + 1 for i, line in enumerate(text.splitlines()) if line.startswith("## ")),
        len(text.splitlines()) + 1,
    )
    assert test_line < first_section, "both commands must come before the first ## section"
    assert test_line <= 30, "both commands must be near the top of README.md"
    assert main_line < test_line


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme_test_command = fenced_blocks(README.read_text(encoding="utf-8"))[1][1]
    lines = [line.strip() for line in CI_SCRIPT.read_text(encoding="utf-8").splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    assert commands.count(readme_test_command) == 1, (
        f".ci/run must run the README's test command exactly once, as written: "
        f"{readme_test_command}"
    )


@pytest.mark.parametrize("script", [".ci/run", "scripts/check"])
def test_scripts_are_strict_executable_bash(script: str) -> None:
    path = ROOT / script
    assert os.access(path, os.X_OK), f"{script} must be executable (chmod +x)"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines


# --- what got installed ---------------------------------------------------------------------

# Floors from pyproject.toml. clkhash 0.18.3 asks for cryptography<41 and bitarray<3;
# installing hublink any way other than the README's lets a resolver honour that.
MINIMUM_VERSIONS = [
    ("cryptography", (46, 0, 5), "cryptography 40 and older have published vulnerabilities"),
    ("bitarray", (3, 0), "hublink is tested against bitarray 3, not the 2.x clkhash asks for"),
]


@pytest.mark.parametrize(("distribution", "minimum", "why"), MINIMUM_VERSIONS)
def test_installed_dependency_is_current(
    distribution: str, minimum: tuple[int, ...], why: str
) -> None:
    installed = importlib.metadata.version(distribution)
    wanted = ".".join(map(str, minimum))
    assert release(installed) >= minimum, (
        f"{distribution} {installed} is installed but hublink needs >= {wanted} ({why}). "
        "Something resolved clkhash's old pins; reinstall with the README's command: "
        f"{TEST_COMMAND}"
    )


def test_installed_setuptools_still_has_pkg_resources() -> None:
    installed = importlib.metadata.version("setuptools")
    assert release(installed) < (82,), (
        f"setuptools {installed} is installed; anonlink 0.15.3 imports pkg_resources, "
        "which setuptools 82 removed. Reinstall from requirements.lock (setuptools<82)."
    )


def test_release_parsing() -> None:
    assert release("50.0.2") == (50, 0, 2)
    assert release("46.0.5rc1") == (46, 0, 5)
    assert release("3.12.3") > (3, 0)
    assert release("40.0.2") < (46, 0, 5)
    with pytest.raises(ValueError):
        release("dev")


def test_anonlink_native_dice_on_bitarrays() -> None:
    from anonlink.similarities import dice_coefficient_accelerated
    from bitarray import bitarray

    # 1024-bit filters, as hublink's CLKs are. Per byte: 4 bits, 4 bits and 2 bits set;
    # the third shares 2 bits with the first and 1 with the second.
    left = [bitarray("11110000" * 128), bitarray("10101010" * 128)]
    right = [bitarray("11000000" * 128)]

    scores, (left_index, right_index) = dice_coefficient_accelerated([left, right], 0.0)

    assert list(left_index) == [0, 1]
    assert list(right_index) == [0, 0]
    assert list(scores) == pytest.approx([2 * 256 / (512 + 256), 2 * 128 / (512 + 256)])
    above, _ = dice_coefficient_accelerated([left, right], 0.5)
    assert list(above) == pytest.approx([2 / 3])


# --- generated code -------------------------------------------------------------------------


def test_generated_stubs_match_the_protos(tmp_path: Path) -> None:
    protos = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("proto/hublink/v1/*.proto"))
    assert protos, "no .proto files found under proto/hublink/v1"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            "proto",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *protos,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"protoc failed:\n{result.stderr}"

    def stubs(directory: Path) -> dict[str, bytes]:
        return {
            path.name: path.read_bytes()
            for pattern in ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")
            for path in directory.glob(pattern)
        }

    fresh = stubs(tmp_path / "hublink" / "v1")
    committed = stubs(ROOT / "hublink" / "v1")
    advice = f"regenerate the stubs from the repository root with: {PROTO_COMMAND}"
    assert sorted(committed) == sorted(fresh), f"stub files differ from the .proto set; {advice}"
    stale = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not stale, f"stale generated stubs {stale}; {advice}"


# --- the locks ------------------------------------------------------------------------------


def pins(lines: list[str], path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        match = _PIN.fullmatch(line)
        assert match, f"{path.name}: {line!r} is not an exact pin (name==version)"
        name = normalised(match.group("name"))
        assert name not in found, f"{path.name}: {name} is pinned twice"
        found[name] = match.group("version")
    return found


def declared(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        match = _NAME.match(requirement)
        assert match, f"pyproject.toml: cannot read a name from {requirement!r}"
        names.add(normalised(match.group()))
    return names


def test_runtime_lock_pins_every_package_exactly() -> None:
    locked = pins(requirement_lines(RUNTIME_LOCK), RUNTIME_LOCK)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    missing = sorted(declared(project["dependencies"]) - set(locked))
    assert not missing, f"requirements.lock lacks dependencies pyproject.toml declares: {missing}"


def test_dev_lock_adds_exact_pins_to_the_runtime_lock() -> None:
    lines = requirement_lines(DEV_LOCK)
    assert lines[:1] == ["-r requirements.lock"], (
        "requirements-dev.lock must start with -r requirements.lock"
    )
    runtime = pins(requirement_lines(RUNTIME_LOCK), RUNTIME_LOCK)
    dev = pins(lines[1:], DEV_LOCK)
    twice = sorted(set(runtime) & set(dev))
    assert not twice, f"pinned in both locks (keep runtime pins in requirements.lock): {twice}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    missing = sorted(declared(project["optional-dependencies"]["dev"]) - set(dev) - set(runtime))
    assert not missing, f"requirements-dev.lock lacks dev tools pyproject.toml declares: {missing}"
