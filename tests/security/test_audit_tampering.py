"""Probe: structural tampering with a real audit export is caught, at the right entry.

A real coordinator serves a small project over mutual TLS; two nodes upload,
the linkage unit runs matching, the nodes fetch their keys and an analyst is
refused the audit log. The IG officer then does what docs/ig-officers.md
says: fetches the coordinator's public key, takes the whole log as the operator
exports it from the coordinator's database, and keeps a checkpoint over the
network with an auditor certificate. Every tampering below is
applied to a copy of that export and checked with ``hublink audit verify``
exactly as the officer runs it: each must exit 1 (a failed check, not 2, a
check that could not run) and name the right first bad entry.

Run with ``-s`` to see the table of tamperings tried and caught; issue 21's
note carries it.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.audit import merkle
from hublink.audit.checkpoint import Signer
from hublink.audit.log import LogEntry, content_leaf, entry_content
from hublink.cli import main
from hublink.clients import AdminClient, AuditClient, RequestRefused, open_channel
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from node import receipts
from node.keys import fetch_keys
from node.workflow import upload

pytestmark = pytest.mark.e2e

FLIPS = 60
"""Single-bit flips, each in a different randomly chosen entry line and byte."""


@dataclass
class Officer:
    """What the IG officer holds: an export, the key, a kept checkpoint, the nodes' evidence."""

    root: Path
    export: Path
    key: Path
    kept: Path
    node_evidence: list[str]

    def lines(self) -> list[str]:
        return self.export.read_text().splitlines()

    def entries(self) -> int:
        return sum('"kind": "entry"' in line for line in self.lines())


@pytest.fixture(scope="module")
def officer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Officer]:
    root = tmp_path_factory.mktemp("audit-probe")
    data = synthetic.generate(root / "data", 60, seed=21, layouts=synthetic.DEFAULT_LAYOUTS[:2])
    configs = write_deployment(root, data, free_port())
    coordinator_config = load(configs["coordinator"], CoordinatorConfig)
    coordinator = start_coordinator(coordinator_config)
    organisations = [layout.organisation for layout in data.layouts]
    try:
        for organisation in organisations:
            upload(load(configs[organisation], NodeConfig))
        admin_config = load(configs["admin"], ClientConfig)
        admin = AdminClient(open_channel(admin_config))
        admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID).run_id, timeout=120)
        for organisation in organisations:
            fetch_keys(load(configs[organisation], NodeConfig))
        with pytest.raises(RequestRefused, match="PERMISSION_DENIED"):
            list(AuditClient(open_channel(load(configs["analyst"], ClientConfig))).entries())

        runner = CliRunner()
        key, export, kept = root / "coordinator.pub", root / "audit.jsonl", root / "kept.note"
        for args in (
            [
                "audit",
                "public-key",
                "--coordinator-config",
                str(configs["coordinator"]),
                "--out",
                str(key),
            ],
            # The whole log, as the coordinator's operator hands it to the IG officer: over
            # --config an auditor sees only its projects' entries (proved one by one with
            # `audit verify --config`), and this probe tampers with the chain as a whole.
            [
                "audit",
                "export",
                "--database",
                str(coordinator_config.database),
                "--out",
                str(export),
            ],
            [
                "audit",
                "checkpoint",
                "--config",
                str(configs["auditor"]),
                "--key",
                str(key),
                "--out",
                str(kept),
            ],
        ):
            result = runner.invoke(main, args)
            assert result.exit_code == 0, result.output
        evidence = []
        for organisation in organisations:
            state = load(configs[organisation], NodeConfig).state_dir
            evidence += ["--checkpoint", str(state / receipts.CHECKPOINTS_FILE)]
            evidence += [a for p in receipts.receipts(state) for a in ("--receipt", str(p))]
        yield Officer(root, export, key, kept, evidence)
    finally:
        coordinator.stop()


# --- the tamperings ------------------------------------------------------------------------


def _split(lines: list[str]) -> tuple[list[dict[str, object]], list[str]]:
    entries = [json.loads(line) for line in lines if '"kind": "entry"' in line]
    return entries, [line for line in lines if '"kind": "checkpoint"' in line]


def _dump(entries: list[dict[str, object]], checkpoints: list[str]) -> str:
    return "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries) + "".join(
        line + "\n" for line in checkpoints
    )


def _rehash(entries: list[dict[str, object]], renumber: bool = True) -> None:
    """What a careful forger does: renumber and recompute every entry's hash."""
    for position, entry in enumerate(entries):
        if renumber:
            entry["index"] = position
        entry["entry_hash"] = LogEntry.from_json(entry).leaf().hex()


def _forged_entry(index: int, time: str) -> dict[str, object]:
    content = entry_content(index, time, "keys.released", "flying-start", "node", PROJECT_ID, {})
    return {"kind": "entry", **content, "entry_hash": content_leaf(content).hex()}


@dataclass
class Tampering:
    name: str
    apply: Callable[[list[str]], str | bytes]
    first_bad: int | None
    """The entry verify must name first (None: a checkpoint, no entry, is what is bad)."""
    evidence: bool = False
    """Verify with the kept checkpoint and the nodes' receipts and checkpoints too."""
    expect: str = ""
    """A phrase the failure must contain."""


def _entry_edit(k: int, rehash: bool) -> Callable[[list[str]], str]:
    def apply(lines: list[str]) -> str:
        entries, checkpoints = _split(lines)
        entries[k]["time"] = str(entries[k]["time"]).replace(":", ";", 1)
        if rehash:
            _rehash(entries)
        return _dump(entries, checkpoints)

    return apply


def _delete(k: int, rehash: bool) -> Callable[[list[str]], str]:
    def apply(lines: list[str]) -> str:
        entries, checkpoints = _split(lines)
        del entries[k]
        if rehash:
            _rehash(entries)
        return _dump(entries, checkpoints)

    return apply


def _swap(k: int, rehash: bool) -> Callable[[list[str]], str]:
    def apply(lines: list[str]) -> str:
        entries, checkpoints = _split(lines)
        entries[k], entries[k + 1] = entries[k + 1], entries[k]
        if rehash:
            _rehash(entries)
        return _dump(entries, checkpoints)

    return apply


def _truncate(m: int, keep_checkpoints: str) -> Callable[[list[str]], str]:
    def apply(lines: list[str]) -> str:
        entries, checkpoints = _split(lines)
        if keep_checkpoints == "none":
            checkpoints = []
        elif keep_checkpoints == "covering":
            checkpoints = [c for c in checkpoints if _note_size(c) <= m]
        return _dump(entries[:m], checkpoints)

    return apply


def _note_size(line: str) -> int:
    return int(json.loads(line)["note"].split("\n")[1])


def _fabricate(signed: bool) -> Callable[[list[str]], str]:
    def apply(lines: list[str]) -> str:
        entries = [_forged_entry(i, f"2026-01-01T00:00:0{i}.000Z") for i in range(3)]
        checkpoints = []
        if signed:
            tree = merkle.MemoryTree(LogEntry.from_json(e).leaf() for e in entries)
            note = Signer.generate().sign_checkpoint(3, tree.root(), "2026-01-01T00:00:03.000Z")
            checkpoints = [json.dumps({"kind": "checkpoint", "note": note, "time": ""})]
        return _dump(entries, checkpoints)

    return apply


def _forged_tail(lines: list[str]) -> str:
    entries, checkpoints = _split(lines)
    entries.append(_forged_entry(len(entries), str(entries[-1]["time"])))
    return _dump(entries, checkpoints)


def _checkpoint_edit(what: str) -> Callable[[list[str]], str]:
    """Edit the newest checkpoint line: its stated time, or its note's size, root or signature."""

    def apply(lines: list[str]) -> str:
        entries, checkpoints = _split(lines)
        last = json.loads(checkpoints[-1])
        note: str = last["note"]
        body, signature = note.split("\n\n")
        origin, size, root, *extension = body.split("\n")
        if what == "time":
            last["time"] = "2020-01-01T00:00:00.000Z"
        elif what == "signed time":
            extension[0] = "time 2020-01-01T00:00:00.000Z"
        elif what == "size":
            size = str(int(size) + 1)
        elif what == "root":
            root = ("B" if root[0] == "A" else "A") + root[1:]
        else:
            cut = signature.rindex(" ") + 24  # inside the signature, past the key id
            signature = (
                signature[:cut] + ("B" if signature[cut] == "A" else "A") + signature[cut + 1 :]
            )
        last["note"] = "\n".join([origin, size, root, *extension]) + "\n\n" + signature
        return _dump(entries, [*checkpoints[:-1], json.dumps(last, sort_keys=True)])

    return apply


def _invalid_utf8(k: int) -> Callable[[list[str]], bytes]:
    def apply(lines: list[str]) -> bytes:
        raw = [line.encode() for line in lines]
        raw[k] = raw[k].replace(b'"action": "', b'"action": "\xc3(', 1)
        return b"".join(line + b"\n" for line in raw)

    return apply


def _flip(k: int, offset: int) -> Callable[[list[str]], bytes]:
    def apply(lines: list[str]) -> bytes:
        raw = [bytearray(line.encode()) for line in lines]
        raw[k][offset] ^= 0x01
        return b"".join(bytes(line) + b"\n" for line in raw)

    return apply


def tamperings(n: int, lines: list[str]) -> list[tuple[str, Tampering]]:
    k = n // 2
    cases = [
        ("deletion", Tampering("entry deleted", _delete(k, False), k)),
        ("deletion", Tampering("entry deleted, rest renumbered and rehashed", _delete(k, True), k)),
        ("reordering", Tampering("two entries swapped", _swap(k, False), k)),
        ("reordering", Tampering("two entries swapped and rehashed", _swap(k, True), k)),
        ("change", Tampering("entry's time changed", _entry_edit(k, False), k)),
        ("change", Tampering("entry's time changed and rehashed", _entry_edit(k, True), k)),
        ("truncation", Tampering("tail cut, checkpoints kept", _truncate(k, "all"), k)),
        (
            "truncation",
            Tampering(
                "tail and its checkpoints cut (kept checkpoint given)",
                _truncate(k, "covering"),
                k,
                evidence=True,
                expect="truncated",
            ),
        ),
        (
            "truncation",
            Tampering("tail cut, every checkpoint removed", _truncate(k, "none"), 0),
        ),
        ("fabrication", Tampering("three-entry log, unsigned", _fabricate(False), 0)),
        (
            "fabrication",
            Tampering(
                "three-entry log signed by another key", _fabricate(True), 0, expect="not signed by"
            ),
        ),
        (
            "forged tail",
            Tampering(
                "entry appended after the last checkpoint (with kept checkpoint and receipts)",
                _forged_tail,
                n,
                evidence=True,
                expect="unsigned tail",
            ),
        ),
    ]
    cases.append(
        (
            "checkpoint edit",
            Tampering("newest checkpoint's stated time edited", _checkpoint_edit("time"), None),
        )
    )
    for what in ("signed time", "size", "root", "signature"):
        # The edited checkpoint no longer verifies, so the last entry is left unsigned.
        cases.append(
            (
                "checkpoint edit",
                Tampering(
                    f"newest checkpoint's {what} edited",
                    _checkpoint_edit(what),
                    n - 1,
                    expect="does not verify",
                ),
            )
        )
    cases.append(
        ("invalid UTF-8", Tampering("bytes that are not UTF-8 in an entry", _invalid_utf8(k), k))
    )
    rng = random.Random(21)
    for _ in range(FLIPS):
        line = rng.randrange(n)
        offset = rng.randrange(len(lines[line].encode()))
        cases.append(
            (
                "byte flip",
                Tampering(
                    f"bit flipped in entry {line} at byte {offset}", _flip(line, offset), line
                ),
            )
        )
    return cases


FIRST_BAD = re.compile(r"first bad entry: entr(?:y|ies) (\d+)")


def test_structural_tampering_of_a_real_export_is_caught_at_the_right_entry(
    officer: Officer, tmp_path: Path
) -> None:
    runner = CliRunner()
    honest = runner.invoke(
        main,
        [
            "audit",
            "verify",
            str(officer.export),
            "--key",
            str(officer.key),
            "--checkpoint",
            str(officer.kept),
            *officer.node_evidence,
        ],
    )
    assert honest.exit_code == 0, honest.output
    n = officer.entries()
    assert n >= 8, "the project's life wrote a log worth tampering with"
    lines = officer.lines()
    assert len(lines) == 2 * n, "the export holds a signed checkpoint for every entry"

    table: dict[str, list[int]] = {}
    misses: list[str] = []
    for kind, tampering in tamperings(n, lines):
        copy = tmp_path / "tampered.jsonl"
        content = tampering.apply(lines)
        if isinstance(content, bytes):
            copy.write_bytes(content)
        else:
            copy.write_text(content)
        args = ["audit", "verify", str(copy), "--key", str(officer.key)]
        if tampering.evidence:
            args += ["--checkpoint", str(officer.kept), *officer.node_evidence]
        result = runner.invoke(main, args)
        named = FIRST_BAD.search(result.output)
        first = int(named.group(1)) if named else None
        caught = (
            result.exit_code == 1
            and first == tampering.first_bad
            and tampering.expect in result.output
            and "Traceback" not in result.output
        )
        tried, held = table.setdefault(kind, [0, 0])
        table[kind] = [tried + 1, held + caught]
        if not caught:
            misses.append(
                f"{tampering.name}: exit {result.exit_code}, first bad {first} "
                f"(expected {tampering.first_bad})\n{result.output}"
            )

    print(f"\naudit tampering probe: {n} entries, {n} signed checkpoints, export over mTLS")
    print(f"{'tampering':<18}{'tried':>7}{'caught':>8}")
    for kind, (tried, held) in table.items():
        print(f"{kind:<18}{tried:>7}{held:>8}")
    total = [sum(v[i] for v in table.values()) for i in (0, 1)]
    print(f"{'total':<18}{total[0]:>7}{total[1]:>8}")
    assert not misses, "\n\n".join(misses[:5])
