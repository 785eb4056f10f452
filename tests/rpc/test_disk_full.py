"""The coordinator's disk fills during an upload: a clear error, nothing corrupted, resumable.

The database lives on a tmpfs of a few hundred kilobytes mounted for the test
(root is needed to mount it; the build machines run tests as root). When
SQLite cannot grow the file, the chunk's transaction is rolled back, the node
is told RESOURCE_EXHAUSTED with a sentence saying the disk is full, the
database still passes its integrity check and the audit log still verifies.
Once the operator makes room, the same upload resumes and commits.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import hublink
from coordinator.core.audit import verify
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.projects import load_project
from coordinator.rpc.server import create_server
from hublink.clients import RequestRefused
from hublink.identity import Identity, Role
from hublink.spec import LinkageSpec
from hublink.tls import secure_channel
from node.encoder import EncodedRecord, Encoder, new_token
from node.uploader import NodeClient, RetryPolicy

pytestmark = pytest.mark.root

NODE = Identity("health-visiting", Role.NODE)
RECORDS = 3000
CHUNK = 250


def mount(options: str, where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    # 600k: the schema, the log and a few chunks of 3072-bit records fit; 3,000 records do not.
    mounted = mount("size=600k,mode=0700", disk)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_refuses_clearly_keeps_everything_whole_and_resumes(
    small_disk: Path, tmp_path: Path, pilot_pki
) -> None:
    shutil.copyfile(
        Path(hublink.__file__).parent / "schemas" / "early-years.json", tmp_path / "s.json"
    )
    definition = tmp_path / "p.toml"
    definition.write_text(
        'id = "p"\npurpose = "Fill the disk"\n'
        f'organisations = {json.dumps([NODE.organisation, "childcare"])}\nschema = "s.json"\n'
        "field_scoring = false\n"
        f"max_chunk_records = {CHUNK}\n",
        encoding="utf-8",
    )
    store = Store(small_disk / "c.db")
    server, port = create_server(
        Coordinator(store, [load_project(definition)]),
        "127.0.0.1:0",
        pilot_pki.issue(Identity("coordinator", Role.COORDINATOR)),
    )
    server.start()
    channel = secure_channel(f"127.0.0.1:{port}", pilot_pki.issue(NODE))
    try:
        encoder = Encoder(LinkageSpec.default(), b"a-secret-of-16+chars")
        rows = [(f"child{i}", "jones", "01022021", "F", "CF10 1AA", "") for i in range(RECORDS)]
        records = [
            EncodedRecord(new_token(), f"local-{i}", (bits,))
            for i, bits in enumerate(encoder.encode(rows))
        ]
        client = NodeClient(
            channel, timeout=30, retry=RetryPolicy(2, 0.001, 0.002), sleep=lambda _: None
        )
        project = client.project("p")
        with pytest.raises(RequestRefused) as full:
            client.upload(
                project, project.encoding_sha256, records, chunk_records=CHUNK, upload_id="u-full-1"
            )
        assert full.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "disk is full" in str(full.value) and full.value.transient

        # Nothing corrupted: the file checks, the log verifies, and what the coordinator
        # reports holding is exactly what it holds (no half-stored chunk).
        assert store.query("PRAGMA integrity_check")[0][0] == "ok"
        assert verify(store.audit_entries()) is None
        status = client.upload_status("u-full-1")
        held = store.query("SELECT COUNT(*) FROM records WHERE upload_id = 'u-full-1'")[0][0]
        assert status.records_received == held == CHUNK * len(status.received_chunks)
        assert 0 < len(status.received_chunks) < RECORDS // CHUNK

        # The operator makes room; the same upload resumes and commits, each record once.
        assert mount("remount,size=64m", small_disk).returncode == 0
        receipt = client.upload(
            project, project.encoding_sha256, records, chunk_records=CHUNK, upload_id="u-full-1"
        )
        assert receipt.record_count == RECORDS
        tokens = store.query("SELECT token FROM records WHERE upload_id = 'u-full-1'")
        assert sorted(r[0] for r in tokens) == sorted(r.token for r in records)
        assert verify(store.audit_entries()) is None
    finally:
        channel.close()
        server.stop(None)
        store.close()
