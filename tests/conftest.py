"""What tests in several folders share: fakes, the identifier-leak search, the CLI runner.

Plain helpers are imported by name (``from tests.conftest import InjectedRpcError``);
pytest also reads this file for its hooks. The one hook here makes the ``root`` marker
visible: a test that needs root (network namespaces, mounting a tmpfs) is reported as
skipped, with the reason, when the suite does not run as root, and ``-m root`` or
``-m "not root"`` selects it either way.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import settings

from node import normalise

# Property tests check properties, not speed (bench/ measures speed): no per-example deadline,
# which a loaded shared machine can miss on an example that passes (a 429 ms audit-chain case).
settings.register_profile("hublink", deadline=None)
settings.load_profile("hublink")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    needs_root = pytest.mark.skip(reason="needs root (marker `root`); run the suite as root")
    for item in items:
        if item.get_closest_marker("root") is not None:
            item.add_marker(needs_root)


# --- parsing each clkhash schema once a session ----------------------------------------------


@dataclass
class SchemaParses:
    """clkhash's own parser, and what it returned for each schema text this session."""

    parse: Callable[..., Any]
    parsed: dict[str, Any] = dataclass_field(default_factory=dict)

    def __call__(self, dct: dict[str, Any], validate: bool = True) -> Any:
        text = json.dumps([dct, validate], sort_keys=True)
        if text not in self.parsed:
            self.parsed[text] = self.parse(dct, validate=validate)
        return self.parsed[text]


@pytest.fixture(scope="session", autouse=True)
def schemas_parsed_once() -> Iterator[SchemaParses]:
    """Every encoder the tests build parses each clkhash schema text once a session.

    A node's ``Encoder`` parses fourteen schemas (the record CLK's parts and the per-field
    filters), and clkhash checks each against its JSON meta-schema twice on the way: about
    half a second an encoder, and the tests build hundreds of encoders from a handful of
    schemas. Parsing is a function of the schema text alone and clkhash only reads what it
    returns, so an encoder given a remembered parse encodes exactly as it would have
    (tests/unit/test_suite_caches.py). Only this process remembers: encoding workers and
    command-line subprocesses parse as usual.
    """
    from node import encoder

    parses = SchemaParses(encoder.from_json_dict)
    encoder.from_json_dict = parses  # type: ignore[attr-defined]
    try:
        yield parses
    finally:
        encoder.from_json_dict = parses.parse  # type: ignore[attr-defined]


# --- fakes for the node's gRPC client ---------------------------------------------------------


class InjectedRpcError(grpc.RpcError):
    """A failure as a node's stub raises it, with the status code a test chooses."""

    def __init__(
        self, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, details: str = "injected"
    ) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class ScriptedChannel:
    """A channel whose every call takes the next entry of a script.

    A unary call returns the entry, or raises it if it is an exception. A streaming call
    takes a list of items and yields them, raising any exception among them at that point
    of the stream. ``calls`` records (method, timeout) for every call made.
    """

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[tuple[str, float | None]] = []

    def unary_unary(self, method: str, **_: Any) -> Any:
        def call(request: Any, timeout: float | None = None) -> Any:
            self.calls.append((method, timeout))
            outcome = self.script.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        return call

    def unary_stream(self, method: str, **_: Any) -> Any:
        def call(request: Any, timeout: float | None = None) -> Iterator[Any]:
            self.calls.append((method, timeout))
            items = self.script.pop(0)

            def stream() -> Iterator[Any]:
                for item in items:
                    if isinstance(item, Exception):
                        raise item
                    yield item

            return stream()

        return call

    @property
    def methods(self) -> list[str]:
        """The methods called, in order."""
        return [method for method, _ in self.calls]


# --- searching for identifiers where none may be -----------------------------------------------

SHORTEST_SEARCHED = 5
"""Values shorter than this are left out: random bytes (tokens, encodings, ciphertext)
hold a given four-letter name by chance far too often for the search to mean anything."""


def identifier_values(data: Any) -> set[str]:
    """Every identifier in synthetic input, as written and as a node normalises it.

    ``data`` is what ``hublink.synthetic.generate`` returned. Names, postcodes, NHS numbers
    and dates of birth are taken as written, without their spaces, and in the forms the node
    normalises them to (dates in three layouts), case as found.
    """
    values: set[str] = set()
    for layout in data.layouts:
        with data.csv_paths[layout.organisation].open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                for field, column in layout.columns.items():
                    raw = row[column].strip()
                    if not raw:
                        continue
                    values.update({raw, raw.replace(" ", "")})
                    if field in ("given_name", "family_name"):
                        name = normalise.given_name(raw) or ""
                        values.update({name, name.replace(" ", "")})
                    elif field == "postcode":
                        code = normalise.postcode(raw) or ""
                        values.update({code, code.replace(" ", "")})
                    elif field == "nhs_number":
                        values.add(re.sub(r"\D", "", raw))
                    elif field == "date_of_birth":
                        born = normalise.date_of_birth(raw)
                        if born:
                            values.update(
                                born.strftime(f) for f in ("%d%m%Y", "%Y-%m-%d", "%d/%m/%Y")
                            )
    return {v for v in values if len(v) >= SHORTEST_SEARCHED}


SEARCH_SLICE = 1 << 22
"""Bytes ``leaked`` looks at in one step (it reads large files a slice at a time)."""


def leaked(haystack: bytes, values: set[str]) -> list[str]:
    """The values (lower case) found anywhere in ``haystack``, ignoring case.

    Searching a database file for thousands of values one at a time reads it thousands of
    times (over a minute for the e2e deployment's); this reads it once, noting where any
    value's first ``SHORTEST_SEARCHED`` bytes occur, and compares whole values only there.
    The answer is the same as ``[v for v in values if v.encode() in haystack.lower()]``.
    """
    text = haystack.lower()
    wanted = {v.encode(): v for v in values}
    found = {v for b, v in wanted.items() if len(b) < SHORTEST_SEARCHED and b in text}
    by_prefix: dict[int, list[bytes]] = {}
    for b in wanted:
        if len(b) >= SHORTEST_SEARCHED:
            by_prefix.setdefault(_window_key(b[:SHORTEST_SEARCHED]), []).append(b)
    for start in _prefix_positions(text, by_prefix):
        key = _window_key(text[start : start + SHORTEST_SEARCHED])
        found.update(wanted[b] for b in by_prefix[key] if text.startswith(b, start))
    return sorted(found)


def _window_key(window: bytes) -> int:
    return int.from_bytes(window, "big")


def _prefix_positions(text: bytes, by_prefix: dict[int, list[bytes]]) -> list[int]:
    """Offsets in ``text`` where one of the ``by_prefix`` windows starts (in slices, so a
    large file needs a few tens of megabytes of memory, not a few hundred)."""
    span = SHORTEST_SEARCHED
    if not by_prefix or len(text) < span:
        return []
    keys = np.array(sorted(by_prefix), dtype=np.uint64)
    raw = np.frombuffer(text, dtype=np.uint8)
    out: list[int] = []
    step = SEARCH_SLICE
    for begin in range(0, len(raw) - span + 1, step):
        part = raw[begin : begin + step + span - 1].astype(np.uint64)
        count = len(part) - span + 1
        window = np.zeros(count, dtype=np.uint64)
        for i in range(span):
            window = (window << np.uint64(8)) | part[i : i + count]
        slot = np.minimum(np.searchsorted(keys, window), len(keys) - 1)
        out.extend(int(i) + begin for i in np.flatnonzero(keys[slot] == window))
    return out


# --- the command line as a separate process ---------------------------------------------------


def run_hublink(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m hublink ARGS…`` in a child process, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "hublink", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command, asserting it failed in one readable line."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
