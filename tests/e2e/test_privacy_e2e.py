"""No identifier crosses the wire, reaches the coordinator's storage, or lands in a log.

Every identifier value of five or more characters in the input CSVs is
searched for — names, postcodes with and without the space, dates of birth as
written and normalised, NHS numbers with and without spaces — in every
message the nodes sent, in the coordinator's database files (main, WAL and
shared memory) and in its log.

The record tokens and encodings are random by construction (a token is 16
random bytes; an encoding is a keyed hash), so a short name could turn up
inside one by chance; their bytes are blanked before searching, after
checking separately that they carry nothing else. The same goes for the other
random material the coordinator holds: entity ids, and the secret exchange's
public keys, certificates, signatures, sealed envelopes and their digests.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import tests.conftest
from hublink.clients import AdminClient
from hublink.demo import PROJECT_ID
from hublink.spec import LinkageSpec
from hublink.v1 import keys_pb2, upload_pb2
from node.secret_exchange import stored_secret
from tests.conftest import identifier_values, leaked

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def identifiers(linked_deployment) -> set[str]:
    return {v.lower() for v in identifier_values(linked_deployment.data)}


@pytest.fixture(scope="module")
def random_bytes(linked_deployment) -> tuple[set[bytes], set[bytes]]:
    return random_parts(linked_deployment)


def random_parts(deployment) -> tuple[set[bytes], set[bytes]]:
    """The tokens every node generated, and every encoding the coordinator stored."""
    tokens: set[bytes] = set()
    for organisation in deployment.organisations:
        state = deployment.node_config(organisation).state_dir / "tokens.sqlite"
        with closing(sqlite3.connect(state)) as db, db:
            tokens.update(t.encode() for (t,) in db.execute("SELECT token FROM tokens"))
    with closing(sqlite3.connect(deployment.database)) as db, db:
        encodings = {bytes(b) for (b,) in db.execute("SELECT encodings FROM records")}
        encodings.update(e.encode() for (e,) in db.execute("SELECT entity_id FROM entities"))
        for row in db.execute(
            "SELECT public_key, certificate_pem, signature, fingerprint FROM node_keys"
        ):
            encodings.update(v if isinstance(v, bytes) else v.encode() for v in row)
        for enc, ciphertext, signature, certificate in db.execute(
            "SELECT enc, ciphertext, signature, sender_certificate_pem FROM secret_envelopes"
        ):
            encodings.update({enc, ciphertext, signature, certificate.encode()})
            encodings.add(hashlib.sha256(enc + ciphertext).hexdigest().encode())
    return tokens, encodings


def blank(data: bytes, parts: set[bytes]) -> bytes:
    for part in sorted(parts, key=len, reverse=True):
        data = data.replace(part, b"\0" * len(part))
    return data


def leaked_outside(data: bytes, parts: set[bytes], values: set[str]) -> list[str]:
    """``leaked(blank(data, parts), values)``, blanking only when some value occurs at all.

    Blanking writes zero bytes, which no value holds, so it can hide a value but never make
    one: where ``data`` holds none, the blanked data holds none either. Blanking thousands of
    tokens and encodings out of a database file takes a minute; this skips it when clean.
    """
    assert not any("\0" in v for v in values)
    if not leaked(data, values):
        return []
    return leaked(blank(data, parts), values)


def held_outside(data: bytes, parts: set[bytes], forms: list[bytes]) -> bool:
    """Whether any of ``forms`` is in ``blank(data, parts)``, blanking only when it could be:
    blanking leaves every byte it does not zero, so a form's longest run of non-zero bytes
    is in the blanked data only if it is in ``data``."""
    if not any(max(form.split(b"\0"), key=len) in data for form in forms):
        return False
    blanked = blank(data, parts)
    return any(form in blanked for form in forms)


def test_the_search_would_find_a_leak(identifiers):
    values = identifiers
    assert len(values) > 1000
    sample = sorted(values)[0]
    assert leaked(b"xx" + sample.upper().encode() + b"yy", values) == [sample]


def test_the_one_pass_search_finds_what_searching_value_by_value_finds(identifiers, monkeypatch):
    """``leaked`` reads data once (tests.conftest); it must agree with the plain search,
    across the slices it reads in and whatever the case, and blanking must hide."""
    monkeypatch.setattr(tests.conftest, "SEARCH_SLICE", 4096)
    first, second, third, *rest = sorted(identifiers)
    hidden = next(v for v in rest if not any(v in w for w in (first, second, third)))
    part = f"<{hidden}>".encode()  # a value inside random bytes that blanking removes
    data = bytearray(random.Random(5).randbytes(3 * 4096 + 300))
    for at, value in ((0, first.upper()), (2 * 4096 - 3, second), (5000, part.decode())):
        data[at : at + len(value.encode())] = value.encode()
    data[-len(third.encode()) :] = third.encode()
    data = bytes(data)
    found = sorted(v for v in identifiers if v.encode() in data.lower())
    assert {first, second, third, hidden} <= set(found)
    assert leaked(data, identifiers) == found
    outside = sorted(v for v in identifiers if v.encode() in blank(data, {part}).lower())
    assert hidden not in outside
    assert leaked_outside(data, {part}, identifiers) == outside
    start = data[:4000]
    assert first in leaked_outside(start, {part}, identifiers)
    assert leaked_outside(start, {part}, identifiers) == leaked(start, identifiers)
    # A form the blanked data could only hold with zero bytes made by blanking.
    zeroed = b"\0" * len(part)
    assert held_outside(data, set(), [part]) and not held_outside(data, {part}, [part])
    assert held_outside(data, {part}, [zeroed[:-2] + data[5000 + len(part) : 5002 + len(part)]])
    assert not held_outside(data, set(), [zeroed[:-2] + b"\xff\xfe\xfd"])


@pytest.mark.slow
def test_nothing_but_tokens_encodings_and_counts_goes_on_the_wire(
    linked_deployment, identifiers, random_bytes
):
    tokens, _ = random_bytes
    chunks = [
        m for _, m in linked_deployment.wire.sent if isinstance(m, upload_pb2.PutChunkRequest)
    ]
    assert sum(len(c.records) for c in chunks) == len(tokens)
    encodings: set[bytes] = set()
    attributes_seen = 0
    # The layout the project's spec fixes (a balanced 3072-bit CLK, and with field_scoring, as
    # the demo sets it, two balanced 1024-bit filters for each of five comparisons), read from
    # the schema, hardening and field_scoring the nodes were configured with.
    node = linked_deployment.node_config(linked_deployment.organisations[0])
    spec = LinkageSpec.from_file(
        node.schema, hardening=node.hardening, field_scoring=node.field_scoring
    )
    layout = [(e.name, e.nbytes) for e in spec.encodings]
    variants = ("given@birth", "given@home", "family@birth", "family@home")
    variants += ("birth@home", "birth@family", "place@birth", "place@family")
    variants += ("nhs@birth", "nhs@family")
    assert layout == [("clk", 384), *((name, 128) for name in variants)]
    for chunk in chunks:
        for record in chunk.records:
            assert record.token.encode() in tokens
            # Only the released, coarse attributes: an age band, never a date.
            attributes = {a.name: a.value for a in record.attributes}
            assert set(attributes) <= {"age_band", "area"}
            assert attributes.get("age_band", "5+") in {"0-1", "1-2", "2-3", "3-4", "4-5", "5+"}
            attributes_seen += len(attributes)
            assert not record.blocking_keys
            assert [(e.name, len(e.bits)) for e in record.encodings] == layout
            encodings.update(e.bits for e in record.encodings)
    assert attributes_seen > 0.9 * len(tokens), "nodes send their age bands"
    values = identifiers
    secret_forms = exchanged_secret_forms(linked_deployment)
    for method, message in linked_deployment.wire.sent:
        payload = message.SerializeToString()
        assert leaked_outside(payload, tokens | encodings, values) == [], method
        assert not held_outside(payload, tokens | encodings, secret_forms), method
    methods = {method for method, _ in linked_deployment.wire.sent}
    assert methods == {
        # The secret exchange: signed public keys and sealed envelopes only.
        "/hublink.v1.SecretService/PublishNodeKey",
        "/hublink.v1.SecretService/ListNodeKeys",
        "/hublink.v1.SecretService/PutEnvelopes",
        "/hublink.v1.SecretService/GetEnvelope",
        "/hublink.v1.ProjectService/GetProject",
        "/hublink.v1.UploadService/BeginUpload",
        "/hublink.v1.UploadService/PutChunk",
        "/hublink.v1.UploadService/CommitUpload",
        "/hublink.v1.KeyService/GetLinkageKeys",
        "/hublink.v1.KeyService/GetKeyChanges",
        # After fetching keys the node checks the audit log still extends its receipt's
        # checkpoint; the request holds one number, the size of the log it saw.
        "/hublink.v1.AuditService/GetConsistencyProof",
    }
    for method, message in linked_deployment.wire.sent:
        if method.endswith("GetConsistencyProof"):
            assert [f.name for f, _ in message.ListFields()] == ["old_size"]
    assert any(
        isinstance(m, keys_pb2.GetLinkageKeysRequest) for _, m in linked_deployment.wire.sent
    )


@pytest.mark.slow
def test_coordinator_storage_holds_no_identifier(linked_deployment, identifiers, random_bytes):
    tokens, encodings = random_bytes
    values = identifiers
    files = [Path(f"{linked_deployment.database}{suffix}") for suffix in ("", "-wal", "-shm")]
    scanned = 0
    for path in files:
        if path.exists():
            data = path.read_bytes()
            scanned += len(data)
            assert leaked_outside(data, tokens | encodings, values) == [], path.name
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
    with closing(sqlite3.connect(linked_deployment.database)) as db, db:
        details = " ".join(d for (d,) in db.execute("SELECT details_json FROM audit"))
    tokens, _ = random_bytes
    assert not any(token.decode() in details for token in tokens)
    assert not any(key in details for key in set(linked_deployment.predicted().values()))
    assert leaked(details.encode(), identifiers) == []


def test_the_quality_report_holds_aggregates_only(linked_deployment, identifiers, random_bytes):
    """What the admin's quality report and run status carry: no identifier, token or key, and
    nothing sized by records (bins of a fixed grid, one row per organisation)."""
    admin = AdminClient(linked_deployment.client_channel("admin"))
    report = admin.quality_report(PROJECT_ID)
    status = admin.run_status(PROJECT_ID)
    assert status.quality is not None
    tokens, _ = random_bytes
    keys = {k.encode() for k in linked_deployment.predicted().values()}
    for message in (report, status.quality):
        payload = message.SerializeToString()
        assert leaked(payload, identifiers) == []
        assert not any(token in payload for token in tokens)
        assert not any(key in payload for key in keys)
    # Bins of 0.01 from the 0.6 floor (the salted record CLK's) to 1.
    assert len(report.bins) == 40 and len(report.curve) <= 41
    assert [d.organisation for d in report.datasets] == linked_deployment.organisations
    # Link rates by released attribute: coarse values only, under the project's rule
    # (hospital-statistics: 1-7 withheld, others rounded to 5), withheld cells empty.
    assert report.attributes
    assert {a.attribute for a in report.attributes} <= {"age_band", "area"}
    for cell in report.attributes:
        for count, withheld in (
            (cell.records, cell.records_withheld),
            (cell.linked, cell.linked_withheld),
            (cell.duplicates, cell.duplicates_withheld),
        ):
            assert count == 0 if withheld else (count == 0 or (count >= 8 and count % 5 == 0))
    with closing(sqlite3.connect(linked_deployment.database)) as db, db:
        (stored,) = db.execute("SELECT report FROM run_quality").fetchone()
    assert not any(token.decode() in stored for token in tokens)
    assert not any(key.decode() in stored for key in keys)


def exchanged_secret_forms(deployment) -> list[bytes]:
    """The secret the nodes agreed (the same at every node), raw and as hex or base64 text."""
    held = {
        stored_secret(deployment.node_config(org).state_dir, PROJECT_ID, 1)
        for org in deployment.organisations
    }
    assert len(held) == 1
    (secret,) = held
    assert secret is not None and len(secret) == 32
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


def test_secret_never_reaches_the_coordinator(linked_deployment):
    forms = exchanged_secret_forms(linked_deployment)
    files = [Path(f"{linked_deployment.database}{suffix}") for suffix in ("", "-wal", "-shm")]
    files.append(linked_deployment.log_file)
    for path in files:
        if path.exists():
            data = path.read_bytes()
            assert not any(form in data for form in forms), path.name
    with closing(sqlite3.connect(linked_deployment.database)) as db, db:
        envelopes = db.execute("SELECT COUNT(*) FROM secret_envelopes").fetchone()[0]
    assert envelopes == len(linked_deployment.organisations)  # only sealed copies are held
    coordinator_config = linked_deployment.configs["coordinator"].read_text()
    assert "secret-exchange" not in coordinator_config


def test_node_reports_and_local_log_hold_no_identifier_local_id_or_token(
    linked_deployment, identifiers, random_bytes
):
    """The exclusion report, rejects file and node.log are for sharing: counts only."""
    tokens, _ = random_bytes
    local_ids = {local_id for (_, local_id) in linked_deployment.data.truth()}
    for organisation in linked_deployment.organisations:
        state = linked_deployment.node_config(organisation).state_dir
        files = ["exclusion-report.json", "exclusion-report.txt", "node.log", "rejects.csv"]
        data = b"".join((state / name).read_bytes() for name in files)
        assert b"included" in data and b"upload.committed" in data
        assert leaked(data, identifiers) == []
        assert not any(token in data for token in tokens)
        text = data.decode()
        assert not any(re.search(rf"\b{re.escape(i)}\b", text) for i in local_ids)
