"""``hublink node plan``: everything an upload does short of hashing and sending.

An information-governance officer runs this before signing off an upload.
It reads the same files and makes the same decisions as ``upload`` (the
same ``node.workflow.take_in_and_report``), writes the same exclusion report and rejects
file, and shows what would leave: which fields would be hashed from which
columns, which attributes would be released, the counts per consent rule,
and the policy and schema hashes. It opens no connection, so it works with
no coordinator running, and it never hashes a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hublink.config import NodeConfig
from hublink.spec import LinkageSpec, SpecError
from node import exclusions
from node.checks import FieldCounts
from node.credentials import own_identity, read_secret
from node.derived import DERIVATIONS
from node.errors import RunError
from node.refresh_preview import RefreshPreview, preview
from node.source import FULL_NAME
from node.workflow import take_in_and_report


@dataclass(frozen=True)
class Plan:
    """What an upload would send, in counts and names only."""

    organisation: str
    project_id: str
    input_path: Path
    schema_sha256: str
    policy_path: Path | None
    policy_sha256: str
    hashed_fields: tuple[tuple[str, str], ...]
    encodings: tuple[tuple[str, int], ...]
    released_attributes: tuple[str, ...]
    rows: int
    rejected: int
    rejects_path: Path
    decisions: tuple[tuple[str, int], ...]
    included: int
    report_path: Path
    fields: tuple[FieldCounts, ...] = ()
    warnings: tuple[str, ...] = ()
    refresh: RefreshPreview | None = None
    """What a refresh would send, when this node has uploaded before (node.refresh_preview)."""


def _column(columns: Mapping[str, str], name: str) -> str:
    """The column a field is hashed from: a derived feature (node.derived) is made from
    another field's; names split from a full-name column say so."""
    source = DERIVATIONS[name].source if name in DERIVATIONS else name
    if source in columns:
        return repr(columns[source])
    if source in ("given_name", "family_name") and FULL_NAME in columns:
        return f"{columns[FULL_NAME]!r} (split from full names)"
    return ""


def plan(config: NodeConfig) -> Plan:
    """Read, decide and normalise as an upload would; send nothing and hash nothing."""
    identity = own_identity(config)
    try:
        spec = LinkageSpec.from_file(config.schema)
    except SpecError as exc:
        raise RunError(str(exc)) from None
    read_secret(config)  # an upload would need it: say so now rather than at upload time
    intake = take_in_and_report(config, spec, mode="plan")
    hashed = tuple((name, _column(intake.columns, name)) for name in spec.fields)
    return Plan(
        organisation=identity.organisation,
        project_id=config.project,
        input_path=config.input.path,
        schema_sha256=spec.sha256,
        policy_path=intake.policy.path if intake.policy else None,
        policy_sha256=intake.policy.policy.sha256 if intake.policy else "",
        hashed_fields=hashed,
        encodings=tuple((e.name, e.bits) for e in spec.encodings),
        # Attributes the node's config derives; the project must also release them
        # (checked against the project when uploading, as the plan contacts nobody).
        released_attributes=tuple(
            f"{name} ({a.derive} of column {a.column!r})" for name, a in config.attributes.items()
        ),
        rows=intake.rows,
        rejected=len(intake.rejects),
        rejects_path=intake.rejects_path,
        decisions=tuple(intake.decisions.items()),
        included=intake.included,
        report_path=config.state_dir / exclusions.TEXT_NAME,
        fields=intake.field_counts,
        warnings=intake.warnings,
        refresh=preview(config, intake),
    )


def render(result: Plan) -> str:
    """The plan as text for the officer who signs it off."""
    lines = [
        f"Dry run for {result.organisation} in project {result.project_id}: NOTHING WAS SENT.",
        f"input:          {result.input_path}",
        f"schema sha256:  {result.schema_sha256}",
        "consent policy: "
        + (
            f"{result.policy_path} (sha256 {result.policy_sha256})"
            if result.policy_path
            else "none"
        ),
        "",
        "Would be hashed (keyed Bloom-filter encodings; no value leaves in clear):",
    ]
    for name, column in result.hashed_fields:
        lines.append(
            f"  {name:<20} from column {column}" if column else f"  {name:<20} (not in this export)"
        )
    lines.append(
        "Encodings sent: " + ", ".join(f"{name} ({bits} bits)" for name, bits in result.encodings)
    )
    lines.append(
        "Attributes released: "
        + (
            ", ".join(result.released_attributes)
            + " (sent in clear beside the encodings, if the project releases them)"
            if result.released_attributes
            else "none"
        )
    )
    lines += [
        "",
        f"rows read:       {result.rows:>9,}",
        f"unreadable rows: {result.rejected:>9,}  (listed in {result.rejects_path})",
        f"would be sent:   {result.included:>9,}",
        "decisions (first rule that excluded a record):",
    ]
    lines += [f"  {rule:<40} {count:>9,}" for rule, count in result.decisions]
    lines += exclusions.field_table([counts.to_json() for counts in result.fields])
    if result.refresh is not None:
        lines += result.refresh.lines()
    if result.warnings:
        lines += ["", "Read before sending:"]
        lines += [f"  - {warning}" for warning in result.warnings]
    lines.append(f"Exclusion report: {result.report_path}")
    return "\n".join(lines)
