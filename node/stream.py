"""The upload's records, read, normalised, encoded and given tokens a batch (a chunk) at a time.

Between the intake (``node.intake``, which has already read, decided and
normalised the whole file once, in this process, to report on it) and the
sender (``node.uploader``). The second pass decides consent here and leaves
normalising and encoding to ``node.encode_pool``'s workers, which get only
the raw linkage cells of rows consent lets leave; tokens are drawn here, in
file order, exactly as when everything ran in one process.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence

from hublink.config import NodeConfig
from hublink.spec import LinkageSpec
from node import attributes
from node.encode_pool import EncodePool
from node.encoder import EncodedRecord
from node.intake import Consented, IncludedCheck, Intake, consented_rows
from node.prepare import PreparedRecord
from node.record_tokens import TokenSequence
from node.refresh import Fingerprint
from node.tokens import TokenStore
from node.uploader import RemoteProject


def stream(
    config: NodeConfig,
    spec: LinkageSpec,
    pool: EncodePool,
    intake: Intake,
    project: RemoteProject,
    store: TokenStore,
    upload_id: str,
    *,
    resumed: bool,
    batch: int,
    encoded: Callable[[int], None],
    fingerprint: Fingerprint,
    only: Mapping[str, str | None] | None = None,
) -> Iterator[EncodedRecord]:
    """The upload's records, in file order, ``batch`` rows at a time.

    Each batch's tokens are recorded in the token store before any of its
    records is handed on to be sent, so a key that comes back always maps to
    a local record. A resumed upload's records keep the tokens recorded for
    them; the rest draw fresh ones. Raises InputChanged at the end if the file
    changed since the intake read it (``node.intake.IncludedCheck``).

    ``only`` (a refresh) limits the records sent to those local ids; one mapped
    to a token keeps it (a changed record), one mapped to None draws a new one.
    The others are still normalised (in the workers), to check the file.
    Each record's fingerprint (node.refresh) is kept with its token.
    """
    tokens = TokenSequence(intake.included if only is None else len(only))
    rows = consented_rows(config, spec.all_fields, intake, withdrawn=store.withdrawn_local_ids())
    check = IncludedCheck(intake)

    def batches() -> Iterator[tuple[list[Consented], dict[str, str], list[str | None]]]:
        while part := list(itertools.islice(rows, batch)):
            # Tokens first: they seed the bits flipped in per-field filters, so a resumed
            # record is sent again exactly as before, and a changed one keeps its token.
            # A row the intake found unusable, or one a refresh leaves alone, draws none.
            sent = [c for c in part if not c.was_bad and (only is None or c.row.local_id in only)]
            known = store.tokens_for(upload_id, [c.row.local_id for c in sent]) if resumed else {}
            if only:
                known.update((c.row.local_id, t) for c in sent if (t := only[c.row.local_id]))
            chosen = {c.row.local_id: known.get(c.row.local_id) or tokens() for c in sent}
            yield part, known, [chosen.get(c.row.local_id) for c in part]

    # The pool works on the next batch while this one is sent (node.encode_pool).
    for (part, known, chosen), prepared in pool.prepare(
        batches(), lambda b: ([c.row for c in b[0]], b[2])
    ):
        records: list[EncodedRecord] = []
        kept: list[PreparedRecord] = []
        for consented, token, done in zip(part, chosen, prepared, strict=True):
            if done is None:
                continue  # no usable identifier: a bad row, never sent
            check.add(consented.row.local_id)
            values, encodings = done
            if token is None or encodings is None:
                continue  # left alone by a refresh (or bad at intake: the check will say)
            record = PreparedRecord(consented.row.local_id, values, consented.kept)
            records.append(EncodedRecord(token, record.local_id, encodings))
            kept.append(record)
        records = _recorded(config, project, store, upload_id, records, kept, known, fingerprint)
        encoded(len(records))
        yield from records
    check.finish()


def _recorded(
    config: NodeConfig,
    project: RemoteProject,
    store: TokenStore,
    upload_id: str,
    records: list[EncodedRecord],
    part: Sequence[PreparedRecord],
    known: Mapping[str, str],
    fingerprint: Fingerprint,
) -> list[EncodedRecord]:
    """A batch's records with their attributes, once their tokens and fingerprints are kept."""
    if config.attributes:
        records = attributes.attach(
            records,
            part,
            config.attributes,
            project.released_attributes,
            project.reference_date,
            config.input.date_formats,
        )
    fresh = [(r.token, r.local_id) for r in records if r.local_id not in known]
    if fresh:
        store.add_tokens(upload_id, fresh)
    store.add_fingerprints(
        upload_id,
        [(r.token, p.local_id, fingerprint(p)) for r, p in zip(records, part, strict=True)],
    )
    return records
