"""Ten nodes upload at once to one coordinator over mutual TLS; each record is stored once."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import hublink
from coordinator.core.audit import verify
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.projects import load_project
from coordinator.rpc.server import create_server
from hublink.identity import Identity, Role
from hublink.spec import LinkageSpec
from hublink.tls import secure_channel
from node.encoder import EncodedRecord, Encoder, new_token
from node.uploader import NodeClient, Receipt

ORGANISATIONS = tuple(f"organisation-{n}" for n in range(10))
RECORDS = 120
CHUNK = 15


@pytest.fixture
def ten_way(pilot_pki, tmp_path: Path):
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copyfile(
        Path(hublink.__file__).parent / "schemas" / "early-years.json", folder / "s.json"
    )
    definition = folder / "ten.toml"
    definition.write_text(
        'id = "ten"\npurpose = "Ten organisations upload at once"\n'
        f'organisations = {json.dumps(list(ORGANISATIONS))}\nschema = "s.json"\n'
        "field_scoring = false\n"
        f"max_chunk_records = {CHUNK}\n",
        encoding="utf-8",
    )
    store = Store(tmp_path / "c.db")
    core = Coordinator(store, [load_project(definition)])
    server, port = create_server(
        core, "127.0.0.1:0", pilot_pki.issue(Identity("coordinator", Role.COORDINATOR))
    )
    server.start()
    try:
        yield core, store, port
    finally:
        server.stop(None)
        store.close()


def test_ten_nodes_uploading_at_once_each_store_every_record_once(ten_way, pilot_pki) -> None:
    _, store, port = ten_way
    encoder = Encoder(LinkageSpec.default(), b"a-secret-of-16+chars")

    def one_node(organisation: str) -> tuple[Receipt, list[str]]:
        rows = [
            (f"child{i}", organisation.replace("-", ""), "01022021", "F", "CF10 1AA", "")
            for i in range(RECORDS)
        ]
        records = [
            EncodedRecord(new_token(), f"local-{i}", (bits,))
            for i, bits in enumerate(encoder.encode(rows))
        ]
        channel = secure_channel(
            f"127.0.0.1:{port}", pilot_pki.issue(Identity(organisation, Role.NODE))
        )
        try:
            client = NodeClient(channel, timeout=60)
            project = client.project("ten")
            receipt = client.upload(project, project.encoding_sha256, records, chunk_records=CHUNK)
        finally:
            channel.close()
        return receipt, [r.token for r in records]

    with ThreadPoolExecutor(max_workers=len(ORGANISATIONS)) as pool:
        results = list(pool.map(one_node, ORGANISATIONS))

    for organisation, (receipt, tokens) in zip(ORGANISATIONS, results, strict=True):
        assert receipt.record_count == RECORDS
        rows = store.query(
            "SELECT r.token FROM records r JOIN uploads u ON u.id = r.upload_id "
            "WHERE u.organisation = ? AND u.state = 'committed'",
            (organisation,),
        )
        assert sorted(row["token"] for row in rows) == sorted(tokens)
    assert verify(store.audit_entries()) is None
    committed = [e for e in store.audit_entries() if e.event.action == "upload.committed"]
    assert len(committed) == len(ORGANISATIONS)
