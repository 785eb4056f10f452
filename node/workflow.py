"""What a node does, step by step, from its configuration.

``upload``: check the project's encoding hash against our own schema, read
and normalise the CSV, encode with the project's secret, remember tokens,
send in chunks. ``fetch_keys``: fetch our records' linkage keys and write
``linked.csv`` (local record id, linkage key — no identifiers).
"""

from __future__ import annotations

import csv
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from hublink.config import NodeConfig
from hublink.identity import Identity, identity_from_certificate
from hublink.spec import LinkageSpec, SpecError
from hublink.tls import TlsFiles, secure_channel
from node.encoder import (
    Encoder,
    PreparedRecord,
    RowError,
    encode_records,
    normalisers,
    prepare_rows,
)
from node.source import InputError, read_rows
from node.tokens import TokenStore
from node.uploader import NodeClient, Receipt

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work advances, for a progress display."""


class NodeError(RuntimeError):
    """A node run that cannot go on; the message says what and where, in one line."""


@dataclass(frozen=True)
class UploadSummary:
    organisation: str
    project_id: str
    upload_id: str
    records: int
    digest_sha256: str


@dataclass(frozen=True)
class KeysSummary:
    organisation: str
    project_id: str
    keys: int
    output: Path


def read_secret(config: NodeConfig) -> bytes:
    """The project's linkage secret, from the file or environment variable the config names."""
    if config.secret_file is not None:
        try:
            secret = config.secret_file.read_bytes().strip()
        except OSError as exc:
            raise NodeError(
                f"{config.secret_file}: cannot read the linkage secret: {exc.strerror}"
            ) from None
        where = str(config.secret_file)
    elif config.secret_env:
        secret = os.environ.get(config.secret_env, "").strip().encode()
        where = f"environment variable {config.secret_env}"
    else:
        raise NodeError("the node config names no linkage secret (secret_file or secret_env)")
    if len(secret) < 16:
        raise NodeError(f"{where}: the linkage secret must be at least 16 characters")
    return secret


def own_identity(config: NodeConfig) -> Identity:
    try:
        return identity_from_certificate(config.tls.cert.read_bytes())
    except OSError as exc:
        raise NodeError(f"{config.tls.cert}: cannot read certificate: {exc.strerror}") from None


def _client(config: NodeConfig, channel: grpc.Channel | None) -> NodeClient:
    if channel is None:
        tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
        channel = secure_channel(config.coordinator, tls, server_name=config.server_name or None)
    return NodeClient(channel, timeout=config.timeout_seconds)


def upload(
    config: NodeConfig, *, progress: Progress | None = None, channel: grpc.Channel | None = None
) -> UploadSummary:
    """Encode the node's records and upload them to the project.

    ``channel`` replaces the mutual-TLS channel the config describes, for
    callers that wrap it (the privacy tests record every message sent).
    """
    identity = own_identity(config)
    try:
        spec = LinkageSpec.from_file(config.schema)
    except SpecError as exc:
        raise NodeError(str(exc)) from None
    secret = read_secret(config)
    prepared = _prepare(config, spec)
    client = _client(config, channel)
    project = client.project(config.project)
    if project.encoding_sha256 != spec.sha256:
        raise NodeError(
            f"{config.schema}: this node's linkage schema hashes to {spec.sha256[:12]}… but "
            f"project {project.project_id!r} pins {project.encoding_sha256[:12]}…; refusing to "
            "encode (use the schema file the project's coordinator serves)"
        )
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        if store.committed_upload(project.project_id):
            raise NodeError(
                f"this node already uploaded to project {project.project_id!r}; "
                "a second upload would replace the first"
            )
        done = 0

        def encoded(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress("encode", done, len(prepared))

        records = encode_records(prepared, Encoder(spec, secret), progress=encoded)
        upload_id = str(uuid.uuid4())
        store.record_upload(upload_id, project.project_id, [(r.token, r.local_id) for r in records])
        sent = 0

        def uploaded(n: int) -> None:
            nonlocal sent
            sent += n
            if progress:
                progress("upload", sent, len(records))

        try:
            receipt: Receipt = client.upload(
                project,
                spec.sha256,
                records,
                chunk_records=config.chunk_records,
                upload_id=upload_id,
                progress=uploaded,
            )
        except Exception:
            store.mark_failed(upload_id)
            raise
        store.mark_committed(
            upload_id,
            {
                "upload_id": receipt.upload_id,
                "records": receipt.record_count,
                "digest_sha256": receipt.digest_sha256,
                "audit_index": receipt.audit_index,
            },
        )
    return UploadSummary(
        identity.organisation,
        project.project_id,
        upload_id,
        receipt.record_count,
        receipt.digest_sha256,
    )


def _prepare(config: NodeConfig, spec: LinkageSpec) -> list[PreparedRecord]:
    """Read and normalise the whole input, so bad input stops the run before any contact."""
    rows = read_rows(
        config.input.path,
        id_column=config.input.id_column,
        columns=config.input.columns,
        fields=spec.all_fields,
        encoding=config.input.encoding,
    )
    try:
        prepared = prepare_rows(rows, spec.all_fields, normalisers(config.input.date_formats))
    except RowError as exc:
        column = config.input.columns.get(exc.field, exc.field)
        raise InputError(
            config.input.path, exc.reason, row=exc.row, field=f"{exc.field} (column {column!r})"
        ) from None
    if not prepared:
        raise InputError(config.input.path, "the file has no records")
    return prepared


def fetch_keys(config: NodeConfig, *, channel: grpc.Channel | None = None) -> KeysSummary:
    """Fetch the linkage key of every uploaded record and write ``linked.csv``."""
    identity = own_identity(config)
    client = _client(config, channel)
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        upload_id = store.committed_upload(config.project)
        if upload_id is None:
            raise NodeError(f"this node has not uploaded to project {config.project!r} yet")
        local = store.local_ids(upload_id)
    rows: list[tuple[str, str]] = []
    for token, key in client.linkage_keys(config.project):
        local_id = local.get(token)
        if local_id is None:
            raise NodeError("the coordinator returned a key for a token this node never sent")
        rows.append((local_id, key))
    if len(rows) != len(local):
        raise NodeError(f"the coordinator returned {len(rows)} keys for {len(local)} records")
    _write_atomically(config.output, rows)
    return KeysSummary(identity.organisation, config.project, len(rows), config.output)


def _write_atomically(path: Path, rows: list[tuple[str, str]]) -> None:
    """Write linked.csv through a temporary file, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["local_id", "linkage_key"])
            writer.writerows(rows)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
