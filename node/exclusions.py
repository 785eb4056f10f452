"""The exclusion report an information-governance officer signs off: what was left out and why.

Every run (upload or dry run) writes ``exclusion-report.json`` and a readable
``exclusion-report.txt`` into the node's state folder, replacing the last
run's, and logs the counts in ``node.log``. The report holds counts, the
policy's and lists' hashes and file names — never a record — so it can be
attached to a data-sharing sign-off. Only the policy hash and the counts go
to the coordinator.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hublink.private import private_dir
from node import consent, locallog
from node.intake import Intake

JSON_NAME = "exclusion-report.json"
TEXT_NAME = "exclusion-report.txt"


def build(
    intake: Intake,
    *,
    mode: str,
    organisation: str,
    project_id: str,
    schema_sha256: str,
    upload_id: str = "",
) -> dict[str, Any]:
    """The report as plain data (what the JSON file holds)."""
    loaded = intake.policy
    policy: dict[str, Any] | None = None
    if loaded is not None:
        policy = {
            "path": str(loaded.path),
            "sha256": loaded.policy.sha256,
            "purpose": loaded.policy.purpose,
            "rules": [
                {
                    "name": r.name,
                    "action": r.action,
                    "kind": type(r.condition).__name__,
                    "line": r.line,
                }
                for r in loaded.policy.rules
            ],
            "lists": [
                {"rule": f.rule, "path": str(f.path), "sha256": f.sha256, "entries": f.entries}
                for f in loaded.lists
            ],
        }
    report: dict[str, Any] = {
        "mode": mode,
        "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "organisation": organisation,
        "project_id": project_id,
        "input": str(intake.input_path),
        "schema_sha256": schema_sha256,
        "policy": policy,
        "rows": intake.rows,
        "rejected": len(intake.rejects),
        "rejects_file": str(intake.rejects_path),
        "included": intake.included,
        "excluded": intake.excluded,
        "decisions": [{"rule": name, "count": n} for name, n in intake.decisions.items()],
        # Included records whose name was written only in a non-Latin script: sent with
        # that name missing, so they will link less well (node.normalise keeps a-z).
        "names_not_latin": dict(intake.names_not_latin),
        "fields": [counts.to_json() for counts in intake.field_counts],
        "warnings": list(intake.warnings),
    }
    if upload_id:
        report["upload_id"] = upload_id
    return report


def render_text(report: Mapping[str, Any]) -> str:
    """The report as text for people: one fact a line, counts right-aligned."""
    policy = report["policy"]
    lines = [
        f"hublink exclusion report ({report['mode']})",
        f"time:            {report['time']}",
        f"organisation:    {report['organisation']}",
        f"project:         {report['project_id']}",
        f"input:           {report['input']}",
        f"schema sha256:   {report['schema_sha256']}",
    ]
    if policy is None:
        lines.append("consent policy:  none (every readable record is included)")
    else:
        lines.append(f"consent policy:  {policy['path']}")
        lines.append(f"policy sha256:   {policy['sha256']}")
        if policy["purpose"]:
            lines.append(f"purpose:         {policy['purpose']}")
        for item in policy["lists"]:
            lines.append(
                f"list for {item['rule']}: {item['path']} ({item['entries']} entries, "
                f"sha256 {item['sha256']})"
            )
    lines += [
        "",
        f"rows read:       {report['rows']:>9,}",
        f"unreadable rows: {report['rejected']:>9,}  (listed in {report['rejects_file']})",
        f"included:        {report['included']:>9,}",
        f"excluded:        {report['excluded']:>9,}",
        "",
        "decision (first rule that excluded a record)      records",
    ]
    for item in report["decisions"]:
        lines.append(f"  {item['rule']:<46} {item['count']:>9,}")
    not_latin = report.get("names_not_latin") or {}
    if any(not_latin.values()):
        lines += ["", "included, but sent without a name written only in a non-Latin script:"]
        for name, count in not_latin.items():
            lines.append(f"  {name:<46} {count:>9,}")
    lines += field_table(report.get("fields", []))
    if report.get("warnings"):
        lines += ["", "Read before sending:"]
        lines += [f"  - {warning}" for warning in report["warnings"]]
    if "upload_id" in report:
        lines += ["", f"upload id:       {report['upload_id']}"]
    if "refresh" in report:
        r = report["refresh"]
        lines += [
            "",
            "refresh: what changed since the records the coordinator held",
            f"  added:                                 {r['added']:>9,}",
            f"    of which joined again (sent before): {r['rejoined']:>9,}",
            f"  changed (sent again, same token):      {r['changed']:>9,}",
            f"  removed:                               {r['removed']:>9,}",
            f"    left the extract:                    {r['left_extract']:>9,}",
            f"    left by consent or opt-out now:      {r['left_consent']:>9,}",
            f"  unchanged (nothing sent):              {r['unchanged']:>9,}",
        ]
    return "\n".join(lines) + "\n"


def field_table(fields: list[dict[str, Any]]) -> list[str]:
    """Per field, how many values were blank, placeholders or invalid (sent as missing)."""
    if not fields:
        return []
    lines = [
        "",
        "values not used, per field (sent as missing)    blank  placeholder    invalid",
    ]
    for item in fields:
        where = f"{item['field']} ({item['column']!r})" if item["column"] else item["field"]
        lines.append(
            f"  {where:<44} {item['blank']:>7,} {item['placeholder']:>12,} {item['invalid']:>10,}"
        )
    return lines


def write(state_dir: Path, report: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write both forms through temporary files and log the counts in node.log."""
    json_path = state_dir / JSON_NAME
    text_path = state_dir / TEXT_NAME
    _write_atomically(json_path, json.dumps(report, indent=2) + "\n")
    _write_atomically(text_path, render_text(report))
    policy = report["policy"]
    locallog.append(
        state_dir,
        "exclusions",
        mode=report["mode"],
        project=report["project_id"],
        policy_sha256=policy["sha256"] if policy else "none",
        rows=report["rows"],
        rejected=report["rejected"],
        names_not_latin=sum((report.get("names_not_latin") or {}).values()),
        **{
            (
                item["rule"] if item["rule"] in consent.RESERVED_NAMES else f"rule[{item['rule']}]"
            ): item["count"]
            for item in report["decisions"]
        },
    )
    return json_path, text_path


def _write_atomically(path: Path, text: str) -> None:
    private_dir(path.parent)  # the state folder
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def add_refresh(state_dir: Path, counts: Mapping[str, int], upload_id: str) -> None:
    """Add what a refresh changed (node.refresh) to the report this run wrote: who joined,
    who left and why (counts only)."""
    report = json.loads((state_dir / JSON_NAME).read_text(encoding="utf-8"))
    report["refresh"] = dict(counts)
    report["upload_id"] = upload_id
    _write_atomically(state_dir / JSON_NAME, json.dumps(report, indent=2) + "\n")
    _write_atomically(state_dir / TEXT_NAME, render_text(report))


def read_counts(state_dir: Path) -> dict[str, Any]:
    """The last report's policy hash and counts, for summaries (the demo's summary.json)."""
    report = json.loads((state_dir / JSON_NAME).read_text(encoding="utf-8"))
    policy = report["policy"]
    return {
        "policy_sha256": policy["sha256"] if policy else "",
        "rows": report["rows"],
        "rejected": report["rejected"],
        "included": report["included"],
        "excluded": report["excluded"],
        "decisions": {item["rule"]: item["count"] for item in report["decisions"]},
    }
