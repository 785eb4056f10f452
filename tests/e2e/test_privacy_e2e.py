"""No identifier crosses the wire, reaches the coordinator's storage, or lands in a log.

Every identifier value of five or more characters in the input CSVs is
searched for — names, postcodes with and without the space, dates of birth as
written and normalised, NHS numbers with and without spaces — in every
message the nodes sent, in the coordinator's database files (main, WAL and
shared memory) and in its log.

The record tokens and encodings are random by construction (a token is 16
random bytes; an encoding is a keyed hash), so a short name could turn up
inside one by chance; their bytes are blanked before searching, after
checking separately that they carry nothing else.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from pathlib import Path

import pytest

from hublink.v1 import keys_pb2, upload_pb2
from node import normalise

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def identifiers(linked_deployment) -> set[str]:
    return identifier_values(linked_deployment)


@pytest.fixture(scope="module")
def random_bytes(linked_deployment) -> tuple[set[bytes], set[bytes]]:
    return random_parts(linked_deployment)


def identifier_values(deployment) -> set[str]:
    """Every identifier in the input, as written and as the node normalises it."""
    values: set[str] = set()
    for layout in deployment.data.layouts:
        with deployment.data.csv_paths[layout.organisation].open(newline="") as handle:
            for row in csv.DictReader(handle):
                for field, column in layout.columns.items():
                    raw = row[column].strip()
                    if not raw:
                        continue
                    values.add(raw)
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
    return {v.lower() for v in values if len(v) >= 5}


def random_parts(deployment) -> tuple[set[bytes], set[bytes]]:
    """The tokens every node generated, and every encoding the coordinator stored."""
    tokens: set[bytes] = set()
    for organisation in deployment.organisations:
        state = deployment.node_config(organisation).state_dir / "tokens.sqlite"
        with sqlite3.connect(state) as db:
            tokens.update(t.encode() for (t,) in db.execute("SELECT token FROM tokens"))
    with sqlite3.connect(deployment.database) as db:
        encodings = {bytes(b) for (b,) in db.execute("SELECT encodings FROM records")}
    return tokens, encodings


def blank(data: bytes, parts: set[bytes]) -> bytes:
    for part in sorted(parts, key=len, reverse=True):
        data = data.replace(part, b"\0" * len(part))
    return data


def leaked(haystack: bytes, values: set[str]) -> list[str]:
    text = haystack.lower()
    return sorted(v for v in values if v.encode() in text)


def test_the_search_would_find_a_leak(identifiers):
    values = identifiers
    assert len(values) > 1000
    sample = sorted(values)[0]
    assert leaked(b"xx" + sample.upper().encode() + b"yy", values) == [sample]


def test_nothing_but_tokens_encodings_and_counts_goes_on_the_wire(
    linked_deployment, identifiers, random_bytes
):
    tokens, _ = random_bytes
    chunks = [
        m for _, m in linked_deployment.wire.sent if isinstance(m, upload_pb2.PutChunkRequest)
    ]
    assert sum(len(c.records) for c in chunks) == len(tokens)
    encodings: set[bytes] = set()
    for chunk in chunks:
        for record in chunk.records:
            assert record.token.encode() in tokens
            assert not record.attributes
            assert not record.blocking_keys
            assert [(e.name, len(e.bits)) for e in record.encodings] == [("clk", 128)]
            encodings.update(e.bits for e in record.encodings)
    values = identifiers
    secret = linked_deployment.node_config(linked_deployment.organisations[0]).secret_file
    assert secret is not None
    secret_text = secret.read_text().strip().lower()
    for method, message in linked_deployment.wire.sent:
        payload = blank(message.SerializeToString(), tokens | encodings)
        assert leaked(payload, values) == [], method
        assert secret_text.encode() not in payload.lower(), method
    methods = {method for method, _ in linked_deployment.wire.sent}
    assert methods == {
        "/hublink.v1.ProjectService/GetProject",
        "/hublink.v1.UploadService/BeginUpload",
        "/hublink.v1.UploadService/PutChunk",
        "/hublink.v1.UploadService/CommitUpload",
        "/hublink.v1.KeyService/GetLinkageKeys",
    }
    assert any(
        isinstance(m, keys_pb2.GetLinkageKeysRequest) for _, m in linked_deployment.wire.sent
    )


def test_coordinator_storage_holds_no_identifier(linked_deployment, identifiers, random_bytes):
    tokens, encodings = random_bytes
    values = identifiers
    files = [Path(f"{linked_deployment.database}{suffix}") for suffix in ("", "-wal", "-shm")]
    scanned = 0
    for path in files:
        if path.exists():
            data = path.read_bytes()
            scanned += len(data)
            assert leaked(blank(data, tokens | encodings), values) == [], path.name
    assert scanned > 100_000


def test_coordinator_log_holds_no_identifier_token_or_key(
    linked_deployment, identifiers, random_bytes
):
    log = linked_deployment.log_file.read_bytes()
    assert b"upload" in log and b"committed" in log
    assert leaked(log, identifiers) == []
    tokens, _ = random_bytes
    assert not any(token in log for token in tokens)
    keys = set(linked_deployment.predicted().values())
    assert not any(key.encode() in log for key in keys)


def test_audit_details_hold_no_token_or_key(linked_deployment, identifiers, random_bytes):
    with sqlite3.connect(linked_deployment.database) as db:
        details = " ".join(d for (d,) in db.execute("SELECT details_json FROM audit"))
    tokens, _ = random_bytes
    assert not any(token.decode() in details for token in tokens)
    assert not any(key in details for key in set(linked_deployment.predicted().values()))
    assert leaked(details.encode(), identifiers) == []


def test_secret_never_reaches_the_coordinator(linked_deployment):
    secret_file = linked_deployment.node_config(linked_deployment.organisations[0]).secret_file
    assert secret_file is not None
    secret = secret_file.read_text().strip().encode()
    for path in [linked_deployment.log_file, linked_deployment.database]:
        assert secret not in path.read_bytes()
    coordinator_config = linked_deployment.configs["coordinator"].read_text()
    assert str(secret_file) not in coordinator_config
