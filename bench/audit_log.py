"""Print what the Merkle audit log costs at scale: appends, checkpoints, proofs, verification.

Usage: python bench/audit_log.py [ENTRIES]   (default 100000)

Appends ENTRIES audit events to a fresh coordinator store (100 a transaction;
the store signs a checkpoint after every entry), then times an inclusion and a
consistency proof from the stored subtree hashes, exporting the log, and
verifying the export offline the way ``hublink audit verify`` does.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from coordinator.core.audit import AuditEvent
from coordinator.core.store import Store
from hublink.audit.log import export_jsonl, read_jsonl
from hublink.audit.merkle import verify_consistency, verify_inclusion
from hublink.audit.verify import verify_log
from hublink.cli.audit import load_source


def main(entries: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "coordinator.db"
        store = Store(path)
        started = time.perf_counter()
        for batch in range(0, entries, 100):
            with store.transaction() as tx:
                for i in range(batch, min(batch + 100, entries)):
                    action = "upload.committed" if i % 10 == 9 else "upload.started"
                    tx.audit(
                        AuditEvent(action, f"org-{i % 7}", "node", "p", {"upload_id": f"u{i}"})
                    )
        append = time.perf_counter() - started
        print(
            f"append {entries} entries: {append:.1f} s ({append / entries * 1e6:.0f} µs each, "
            f"with {len(store.audit_checkpoints())} checkpoints signed)"
        )

        verifier = store.signer.verifier
        started = time.perf_counter()
        for _ in range(100):
            signed = store.audit_checkpoint()
            [entry] = store.audit_entries(entries // 3, entries // 3)
            proof = store.audit_inclusion_proof(entries // 3, signed.size)
        inclusion = (time.perf_counter() - started) / 100
        checkpoint = verifier.open_checkpoint(signed.note)
        verify_inclusion(
            entries // 3, checkpoint.size, bytes.fromhex(entry.entry_hash), proof, checkpoint.root
        )
        started = time.perf_counter()
        for _ in range(100):
            consistency = store.audit_consistency_proof(entries // 2 + 1, entries)
        proving = (time.perf_counter() - started) / 100
        old = store.audit_entries(0, entries // 2)
        from hublink.audit.merkle import MemoryTree

        old_root = MemoryTree(bytes.fromhex(e.entry_hash) for e in old).root()
        verify_consistency(entries // 2 + 1, entries, old_root, checkpoint.root, consistency)
        print(
            f"checkpoint + entry + inclusion proof ({len(proof)} hashes): "
            f"{inclusion * 1000:.2f} ms; consistency proof ({len(consistency)} hashes): "
            f"{proving * 1000:.2f} ms"
        )
        store.close()

        started = time.perf_counter()
        source = load_source(None, path, None)
        export = Path(folder) / "audit.jsonl"
        export_jsonl(source.entries, source.checkpoints, export)
        exported = time.perf_counter() - started
        started = time.perf_counter()
        log, notes = read_jsonl(export)
        report = verify_log(log, verifier, checkpoints=[("export", c) for c in notes])
        verified = time.perf_counter() - started
        assert report.ok, report.problems[:3]
        print(
            f"export {export.stat().st_size / 1e6:.1f} MB: {exported:.1f} s; offline verify of "
            f"{report.entries} entries and {report.checkpoints} checkpoints: {verified:.1f} s"
        )
        print(f"database: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
