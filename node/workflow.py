"""The node's upload, step by step, from its configuration.

``upload``: check the project's encoding hash against our own schema, read
the CSV (``node.source``), decide consent (``node.consent``), normalise
(``node.prepare``), encode with the project's secret (``node.encoder``),
remember tokens (``node.tokens``), send in chunks (``node.uploader``) and keep
the signed receipt (``node.receipts``). Fetching the keys back is
``node.keys``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from hublink.clients import RequestRefused
from hublink.config import NodeConfig
from hublink.spec import LinkageSpec, SpecError, warn_if_legacy
from node import attributes, credentials, exclusions, locallog, refresh
from node.credentials import own_identity, read_secret
from node.encode_pool import EncodePool, workers_for
from node.errors import RunError
from node.intake import InputChanged, Intake, included_records, take_in
from node.prepare import normalisers
from node.receipts import ReceiptRefused, keep_receipt
from node.refresh import fingerprinter
from node.stream import stream
from node.tokens import TokenStore
from node.uploader import (
    NodeClient,
    Receipt,
    RefreshTally,
    RemoteProject,
    UploadRejected,
)

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work advances, for a progress display."""


@dataclass(frozen=True)
class UploadSummary:
    organisation: str
    project_id: str
    upload_id: str
    records: int
    digest_sha256: str
    excluded: int = 0
    rejected: int = 0
    notes: tuple[str, ...] = ()
    """One line each about an interrupted upload resumed or abandoned, for the operator."""
    refresh: RefreshTally | None = None
    """A refresh (node.refresh) only: records added, changed, removed and unchanged."""


def upload(
    config: NodeConfig,
    *,
    progress: Progress | None = None,
    channel: grpc.Channel | None = None,
    warn: Callable[[str], None] | None = None,
) -> UploadSummary:
    """Encode the node's records and upload them to the project.

    ``channel`` replaces the mutual-TLS channel the config describes, for
    callers that wrap it (the privacy tests record every message sent).
    ``warn`` is given each of the intake's warnings (rows that would be left
    out, unusable values, a mapping that links badly) after the file is read
    and before the coordinator is contacted; without it they are among the
    summary's notes.
    """
    identity = own_identity(config)
    try:
        spec = LinkageSpec.from_file(
            config.schema,
            hardening=config.hardening,
            field_scoring=config.field_scoring,
            record_clk=config.record_clk,
        )
    except SpecError as exc:
        raise RunError(str(exc)) from None
    warn_if_legacy(config.record_clk, f"node config of project {config.project}")
    secret = b"" if config.secret_exchange else read_secret(config)
    _encode_workers(config, 0)  # a bad encode_workers is refused before any contact
    # The first pass counts and fingerprints what may leave; records are read again
    # a chunk at a time as they are encoded and sent, never held all at once.
    intake = take_in_and_report(config, spec, keep=False)
    for warning in intake.warnings:
        locallog.append(config.state_dir, "intake.warning", text=warning)
        if warn is not None:
            warn(warning)
    if not intake.included:
        raise RunError(
            f"{config.input.path}: no record may be sent: all {intake.rows} rows were excluded "
            f"or unreadable (see {config.state_dir / exclusions.TEXT_NAME})"
        )
    client = credentials.client(config, channel)
    project = client.project(config.project)
    if project.encoding_sha256 != spec.sha256:
        raise RunError(
            f"{config.schema}: this node's linkage schema hashes to {spec.sha256[:12]}… but "
            f"project {project.project_id!r} pins {project.encoding_sha256[:12]}…; refusing to "
            "encode (use the schema file the project's coordinator serves)"
        )
    if config.secret_exchange:
        # Imported here: only nodes that exchange secrets need the HPKE machinery.
        from node.secret_workflow import secret_for_epoch

        secret = secret_for_epoch(config, project.secret_epoch, channel=channel)
    elif project.secret_epoch:
        raise RunError(
            f"project {project.project_id!r} uses an exchanged linkage secret (epoch "
            f"{project.secret_epoch}); set secret_exchange = true in this node's config"
        )
    if config.attributes:
        try:
            attributes.check(config.attributes, project.released_attributes)
        except attributes.AttributeConfigError as exc:
            raise RunError(f"node config: {exc}") from None
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        if store.committed_upload(project.project_id):
            # Sent before: this is next month's extract, and only what changed travels.
            return _refresh(config, spec, secret, intake, client, project, store, progress)
        upload_id, resumed, notes = _resume_or_record(
            config,
            store,
            project.project_id,
            (intake.included, intake.included_sha256),
            project.secret_epoch,
        )
        if warn is None:
            notes[:0] = intake.warnings
        receipt = _encode_and_send(
            config, spec, secret, intake, client, project, store, upload_id,
            resumed=resumed, count=intake.included, progress=progress,
        )  # fmt: skip
        store.mark_committed(upload_id, _receipt_json(receipt))
        store.settle(project.project_id, upload_id)
    locallog.append(
        config.state_dir,
        "upload.committed",
        project=project.project_id,
        upload_id=upload_id,
        records=receipt.record_count,
        audit_index=receipt.audit_index,
    )
    _keep_receipt(config, receipt)
    if receipt.chunks_already_held:
        notes.append(
            f"resumed upload {upload_id}: the coordinator already held "
            f"{receipt.chunks_already_held} chunk(s); only the rest were sent"
        )
    return UploadSummary(
        identity.organisation,
        project.project_id,
        upload_id,
        receipt.record_count,
        receipt.digest_sha256,
        intake.excluded,
        len(intake.rejects),
        tuple(notes),
    )


def _refresh(
    config: NodeConfig,
    spec: LinkageSpec,
    secret: bytes,
    intake: Intake,
    client: NodeClient,
    project: RemoteProject,
    store: TokenStore,
    progress: Progress | None,
) -> UploadSummary:
    """Send what changed since the records the coordinator holds (node.refresh), as one
    refresh it applies whole or not at all; resumable like any upload."""
    project_id = project.project_id
    fingerprint = fingerprinter(secret)
    withdrawn = store.withdrawn_local_ids()
    delta, _ = refresh.plan(
        included_records(
            config,
            spec.all_fields,
            normalisers(config.input.date_formats, spec),
            intake,
            withdrawn=withdrawn,
        ),
        store.held_records(project_id),
        fingerprint,
        in_file=refresh.local_ids_in_file(config),
        withdrawn_tokens=store.withdrawn_tokens(project_id),
        sent_before=store.ever_sent(project_id),
    )
    upload_id, resumed, notes = _resume_or_record(
        config, store, project_id, (delta.sent, delta.fingerprint()), project.secret_epoch
    )
    only: dict[str, str | None] = {local: None for local in delta.added}
    only.update(delta.changed)
    receipt = _encode_and_send(
        config, spec, secret, intake, client, project, store, upload_id,
        resumed=resumed, count=delta.sent, progress=progress,
        only=only, removed_tokens=sorted(delta.removed.values()),
    )  # fmt: skip
    store.mark_committed(upload_id, _receipt_json(receipt))
    store.settle(project_id, upload_id, [*delta.removed, *withdrawn])
    counts = delta.counts()
    locallog.append(
        config.state_dir,
        "upload.refreshed",
        project=project_id,
        upload_id=upload_id,
        audit_index=receipt.audit_index,
        **counts,
    )
    exclusions.add_refresh(config.state_dir, counts, upload_id)
    _keep_receipt(config, receipt)
    if receipt.chunks_already_held:
        notes.append(
            f"resumed refresh {upload_id}: the coordinator already held "
            f"{receipt.chunks_already_held} chunk(s); only the rest were sent"
        )
    return UploadSummary(
        own_identity(config).organisation,
        project_id,
        upload_id,
        receipt.record_count,
        receipt.digest_sha256,
        intake.excluded,
        len(intake.rejects),
        tuple(notes),
        receipt.refresh,
    )


def _encode_and_send(
    config: NodeConfig,
    spec: LinkageSpec,
    secret: bytes,
    intake: Intake,
    client: NodeClient,
    project: RemoteProject,
    store: TokenStore,
    upload_id: str,
    *,
    resumed: bool,
    count: int,
    progress: Progress | None,
    only: dict[str, str | None] | None = None,
    removed_tokens: Sequence[str] | None = None,
) -> Receipt:
    """Encode ``count`` records on the node's workers and send them as one upload (a
    refresh when ``removed_tokens`` is given: ``only`` the added and changed records),
    reporting encode and upload progress as they go. The same path serves a first upload
    and a refresh, so both resume, chunk and fail alike."""
    size = max(1, min(config.chunk_records, project.max_chunk_records))
    done = {"encode": 0, "upload": 0}

    def tick(stage: str, n: int) -> None:
        done[stage] += n
        if progress:
            progress(stage, done[stage], count)

    with _pool(config, spec, secret, count) as pool:
        records = stream(
            config,
            spec,
            pool,
            intake,
            project,
            store,
            upload_id,
            resumed=resumed,
            batch=size,
            encoded=lambda n: tick("encode", n),
            fingerprint=fingerprinter(secret),
            only=only,
        )
        return _sending(
            config,
            store,
            project.project_id,
            upload_id,
            lambda: client.upload(
                project,
                spec.sha256,
                records,
                count=count,
                chunk_records=size,
                consent=intake.summary(),
                upload_id=upload_id,
                progress=lambda n: tick("upload", n),
                refresh=removed_tokens is not None,
                removed_tokens=removed_tokens or (),
            ),
        )


def _receipt_json(receipt: Receipt) -> dict[str, object]:
    return {
        "upload_id": receipt.upload_id,
        "records": receipt.record_count,
        "digest_sha256": receipt.digest_sha256,
        "audit_index": receipt.audit_index,
        **(receipt.audit.to_json() if receipt.audit else {}),
    }


def _sending(
    config: NodeConfig,
    store: TokenStore,
    project_id: str,
    upload_id: str,
    send: Callable[[], Receipt],
) -> Receipt:
    """``send()``, with a failure recorded: a transient one leaves the upload to resume,
    any other marks it failed, so the next run starts afresh."""
    try:
        return send()
    except RequestRefused as exc:
        if not exc.transient:
            store.mark_failed(upload_id)
        locallog.append(
            config.state_dir,
            "upload.interrupted" if exc.transient else "upload.failed",
            project=project_id,
            upload_id=upload_id,
        )
        if exc.transient:
            raise RunError(
                f"{exc}; the upload was interrupted and resumes where it stopped when "
                "`hublink node upload` is run again"
            ) from None
        raise
    except InputChanged as exc:
        store.mark_failed(upload_id)
        locallog.append(config.state_dir, "upload.failed", project=project_id, upload_id=upload_id)
        raise RunError(str(exc)) from None
    except UploadRejected as exc:
        store.mark_failed(upload_id)
        locallog.append(config.state_dir, "upload.failed", project=project_id, upload_id=upload_id)
        raise RunError(f"{exc}; run `hublink node upload` again to start afresh") from None
    except Exception:
        store.mark_failed(upload_id)
        locallog.append(config.state_dir, "upload.failed", project=project_id, upload_id=upload_id)
        raise


def _resume_or_record(
    config: NodeConfig,
    store: TokenStore,
    project_id: str,
    sending: tuple[int, str],
    secret_epoch: int,
) -> tuple[str, bool, list[str]]:
    """The upload to send the intake's records under, an interrupted one resumed or a new
    one, and whether it is resumed.

    An earlier run that stopped half-way left its upload 'sending' with the
    tokens of the records it had reached. If the same records are to be sent
    again (the same included local ids in the same order), they take the
    same tokens under the same upload id, so the coordinator sees the chunks
    it already holds as repeats and only the rest as new. Encodings are the
    same because clkhash is deterministic for the same secret and values. If
    the input changed in between, the old upload is abandoned (the
    coordinator never uses an uncommitted upload) and a new one begins.

    So is one encoded under another linkage-secret epoch than the project's
    now (or under an epoch not recorded): its chunks at the coordinator and
    the ones still to send would be encodings under two secrets, which never
    match each other.
    """
    notes: list[str] = []
    upload_id = store.interrupted_upload_id(project_id)
    if upload_id is not None:
        epoch = store.upload_epoch(upload_id)
        recorded = store.upload_input(upload_id)
        if epoch != secret_epoch:
            reason = "secret epoch changed"
            notes.append(
                f"abandoned interrupted upload {upload_id}: its records were encoded under "
                f"linkage-secret epoch {'unknown' if epoch is None else epoch} but project "
                f"{project_id!r} is now at epoch {secret_epoch}; starting a new upload"
            )
        elif recorded == sending:
            locallog.append(
                config.state_dir, "upload.resumed", project=project_id, upload_id=upload_id
            )
            return upload_id, True, notes
        elif not recorded[1]:
            reason = "recorded by an earlier hublink"
            notes.append(
                f"abandoned interrupted upload {upload_id}: an earlier hublink recorded it "
                "without the fingerprint of its input, so it cannot be resumed safely; "
                "starting a new upload"
            )
        else:
            reason = "input changed"
            notes.append(
                f"abandoned interrupted upload {upload_id}: the input changed since; "
                "starting a new upload"
            )
        store.mark_failed(upload_id)
        locallog.append(
            config.state_dir,
            "upload.abandoned",
            project=project_id,
            upload_id=upload_id,
            reason=reason,
        )
    upload_id = str(uuid.uuid4())
    store.record_upload(
        upload_id,
        project_id,
        secret_epoch=secret_epoch,
        records=sending[0],
        included_sha256=sending[1],
    )
    return upload_id, False, notes


def _pool(config: NodeConfig, spec: LinkageSpec, secret: bytes, records: int) -> EncodePool:
    """The processes that normalise and encode ``records`` (node.encode_pool)."""
    return EncodePool(spec, secret, _encode_workers(config, records), config.input.date_formats)


def _encode_workers(config: NodeConfig, records: int) -> int:
    """Processes encoding ``records`` (node.encode_pool), the setting checked here."""
    try:
        return workers_for(config.encode_workers, records)
    except ValueError as exc:
        raise RunError(str(exc)) from None


def _keep_receipt(config: NodeConfig, receipt: Receipt) -> None:
    """Check the coordinator's signed receipt against its key and keep it (node.receipts)."""
    if receipt.audit is None:
        raise RunError(
            f"upload {receipt.upload_id} was committed but the coordinator sent no signed receipt"
        )
    try:
        kept = keep_receipt(
            config.state_dir, config.coordinator_key, receipt.audit, receipt.coordinator_key
        )
    except ReceiptRefused as exc:
        locallog.append(config.state_dir, "receipt.refused", upload_id=receipt.upload_id)
        raise RunError(str(exc)) from None
    locallog.append(
        config.state_dir,
        "receipt.verified",
        upload_id=receipt.upload_id,
        audit_index=receipt.audit_index,
        key="trusted on first use" if kept.trusted_on_first_use else "pinned",
        file=kept.path.name,
    )


def take_in_and_report(
    config: NodeConfig,
    spec: LinkageSpec,
    *,
    mode: str = "upload",
    upload_id: str = "",
    keep: bool = True,
) -> Intake:
    """Read, decide consent and normalise the whole input before any contact, and report it.

    Bad rows go to the rejects file (too many stop the run here); the
    exclusion report is written whatever the outcome of the upload.
    """
    with TokenStore(config.state_dir / "tokens.sqlite") as store:
        withdrawn = store.withdrawn_local_ids()
    intake = take_in(
        config,
        spec.all_fields,
        normalisers(config.input.date_formats, spec),
        withdrawn=withdrawn,
        keep=keep,
    )
    exclusions.write(
        config.state_dir,
        exclusions.build(
            intake,
            mode=mode,
            organisation=own_identity(config).organisation,
            project_id=config.project,
            schema_sha256=spec.sha256,
            upload_id=upload_id,
        ),
    )
    return intake
