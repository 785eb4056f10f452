"""What the next upload would send as a refresh, worked out locally for ``hublink node plan``.

A node that has uploaded before sends only what changed (``node.refresh``).
Before a monthly upload, the officer who signs it off wants to see how much
that is: records added, changed, removed and unchanged. The preview makes the
same comparison the upload makes, against the node's own token store and with
the same keyed fingerprints, so its counts are the refresh's counts. It
contacts no coordinator, hashes no value into an encoding and sends nothing.

Fingerprints are keyed by the linkage secret: a node that exchanges its secret
uses the one it stored for the epoch its last upload was encoded under; if it
holds none, the preview says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from hublink.config import NodeConfig
from hublink.spec import LinkageSpec, SpecError
from node import refresh
from node.credentials import read_secret
from node.intake import InputChanged, Intake, included_records
from node.prepare import normalisers
from node.secret_exchange import stored_secret
from node.tokens import TokenStore


@dataclass(frozen=True)
class RefreshPreview:
    """The counts a refresh would send now, or why they cannot be worked out."""

    counts: dict[str, int]
    """added, changed, removed, unchanged (and left_extract, left_consent, rejoined)."""
    sent: int = 0
    """Encodings that would travel: the added and the changed."""
    unavailable: str = ""

    def lines(self) -> list[str]:
        if self.unavailable:
            return ["", f"Refresh preview: not available ({self.unavailable})."]
        c = self.counts
        return [
            "",
            "Refresh preview (this node uploaded before: only the changes would be sent):",
            f"  added:      {c['added']:>9,}  (rejoined after leaving: {c['rejoined']:,})",
            f"  changed:    {c['changed']:>9,}  (same token, new encodings)",
            f"  removed:    {c['removed']:>9,}  (token only; left the extract: "
            f"{c['left_extract']:,}, left by consent: {c['left_consent']:,})",
            f"  unchanged:  {c['unchanged']:>9,}  (nothing sent)",
            f"  encodings that would travel: {self.sent:,}",
        ]


def preview(config: NodeConfig, intake: Intake) -> RefreshPreview | None:
    """The refresh the next upload would send, or None if this node has not uploaded yet."""
    path = config.state_dir / "tokens.sqlite"
    if not path.exists():
        return None
    with TokenStore(path) as store:
        committed = store.committed_upload(config.project)
        if committed is None:
            return None
        secret = _secret(config, store.upload_epoch(committed))
        if secret is None:
            return RefreshPreview({}, unavailable="no stored linkage secret for the last upload")
        try:
            spec = LinkageSpec.from_file(
                config.schema,
                hardening=config.hardening,
                field_scoring=config.field_scoring,
                record_clk=config.record_clk,
            )
        except SpecError as exc:
            return RefreshPreview({}, unavailable=str(exc))
        withdrawn = store.withdrawn_local_ids()
        try:
            delta, _ = refresh.plan(
                included_records(
                    config,
                    spec.all_fields,
                    normalisers(config.input.date_formats),
                    intake,
                    withdrawn=withdrawn,
                ),
                store.held_records(config.project),
                refresh.fingerprinter(secret),
                in_file=refresh.local_ids_in_file(config),
                withdrawn_tokens=store.withdrawn_tokens(config.project),
                sent_before=store.ever_sent(config.project),
            )
        except InputChanged as exc:
            return RefreshPreview({}, unavailable=str(exc))
    return RefreshPreview(delta.counts(), delta.sent)


def _secret(config: NodeConfig, epoch: int | None) -> bytes | None:
    if not config.secret_exchange:
        return read_secret(config)
    if epoch is None:
        return None
    return stored_secret(config.state_dir, config.project, epoch)
