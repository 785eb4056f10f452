"""The configuration reference page (docs/configuration.md), generated from hublink.config.

Every setting's key, type and default come from the typed dataclasses
themselves, and its description from the docstring written under the field
in hublink/config.py, or, for fields that have none, from ``HELP`` here. So
the page cannot drift from the code: tests/unit/test_config_reference.py
fails when the committed page differs from what ``render()`` produces, and
when a field has no description at all. Regenerate with
``hublink config-reference --output docs/configuration.md``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hublink import config

HELP: dict[str, str] = {
    # TlsSection
    "TlsSection.ca": "PEM file of the certificate authority every peer's certificate must "
    "chain to.",
    "TlsSection.cert": "PEM certificate of this party (its organisation and role are in it).",
    "TlsSection.key": "PEM private key of that certificate; readable only by the account "
    "that runs hublink.",
    # ProjectConfig
    "ProjectConfig.id": "Project identifier the nodes name in their config (`project`).",
    "ProjectConfig.purpose": "The single purpose the organisations agreed; recorded in the "
    "audit log.",
    "ProjectConfig.organisations": "Organisation slugs (from their certificates) that take part.",
    "ProjectConfig.schema": "The clkhash linkage schema (JSON); its hash is pinned by every node.",
    "ProjectConfig.threshold": "Dice similarity at or above which two records of different "
    "organisations match.",
    "ProjectConfig.within_threshold": "Similarity at which two records of the same "
    "organisation are the same person.",
    "ProjectConfig.merge_threshold": "Similarity at which groups are merged when within-"
    "organisation duplicates are linked.",
    "ProjectConfig.suppression_threshold": "Counts from 1 to this minus 1 are withheld; 0 takes "
    "the disclosure preset's.",
    "ProjectConfig.max_chunk_records": "Most records a node may send in one chunk.",
    "ProjectConfig.max_records": "Most records one upload may hold.",
    "ProjectConfig.released_attributes": "Coarse attributes (age_band, area, …) nodes may send "
    "beside the encodings.",
    "ProjectConfig.key_scope": '"project": one linkage key per person across the project; '
    '"organisation": a different key per organisation for the same person.',
    "ProjectConfig.retention_days": "Days after which uploads are erased by the retention sweep.",
    "ProjectConfig.normalisation": "Version of the normalisation the encodings assume (empty: "
    "this hublink's); part of the pinned hash.",
    "ProjectConfig.encoding_sha256": "Encoding hash to pin; loading fails if the schema hashes "
    "otherwise (empty: not pinned).",
    # CoordinatorConfig
    "CoordinatorConfig.tls": "The coordinator's certificate files ([tls] table).",
    "CoordinatorConfig.listen": "host:port of the gRPC server (mutual TLS only).",
    "CoordinatorConfig.database": "SQLite file holding uploads, runs, keys and the audit log; "
    "keep it on local disk.",
    "CoordinatorConfig.projects": "Project definition files (TOML) this coordinator serves.",
    "CoordinatorConfig.max_workers": "Threads serving gRPC calls.",
    "CoordinatorConfig.revocation_list": "File of revoked certificate fingerprints or "
    "`serial:<hex>` lines, read again when it changes; calls are refused while a configured "
    "file is missing.",
    "CoordinatorConfig.organisation_cas": "Organisation -> CA file its certificates must chain "
    "to, for organisations that run their own CA.",
    # InputSection
    "InputSection.path": "The extract to read: CSV, XLSX or FHIR NDJSON (see format).",
    "InputSection.id_column": 'Column holding the local record id (never sent); "id" for FHIR.',
    "InputSection.columns": "Linkage field -> column (given_name, family_name, "
    "date_of_birth, sex, postcode, nhs_number, or full_name for a column of whole names; "
    "empty for FHIR: its standard mapping).",
    "InputSection.encoding": 'Text encoding of a CSV file; "auto" detects UTF-8 (with or '
    "without BOM), UTF-16 and Windows-1252/Latin-1, and stops naming the encoding to set "
    "when it cannot tell.",
    "InputSection.format": '"csv", "xlsx", "fhir-ndjson" (FHIR R4 Bulk Data Patient '
    'resources), or "auto" (from the file\'s first bytes, then its suffix).',
    "InputSection.delimiter": "CSV delimiter; empty detects comma, semicolon, tab or pipe.",
    "InputSection.sheet": "XLSX sheet to read; empty for the first.",
    "InputSection.date_formats": "strptime formats tried for dates, in order (empty: the "
    "built-in list).",
    # AttributeSection
    "AttributeSection.column": "CSV column the attribute is derived from.",
    "AttributeSection.derive": '"age_band", "code" or "flag" (see the section\'s description).',
    # NodeConfig
    "NodeConfig.coordinator": "host:port of the coordinator.",
    "NodeConfig.project": "Project identifier to upload into.",
    "NodeConfig.schema": "The project's linkage schema (JSON), as the coordinator serves it.",
    "NodeConfig.input": "Where the records come from ([input] table).",
    "NodeConfig.tls": "The node's certificate files ([tls] table).",
    "NodeConfig.state_dir": "Token store, receipts and the node's log; keep it and back it up.",
    "NodeConfig.output": "Where `hublink node keys` writes local id -> linkage key.",
    "NodeConfig.secret_file": "File holding the project's linkage secret.",
    "NodeConfig.secret_env": "Environment variable holding the linkage secret instead.",
    "NodeConfig.server_name": "Name to expect in the coordinator's certificate, if not the "
    "host in `coordinator`.",
    "NodeConfig.chunk_records": "Records per chunk sent (capped by the project's "
    "max_chunk_records).",
    # ClientConfig
    "ClientConfig.coordinator": "host:port of the coordinator.",
    "ClientConfig.tls": "The client's certificate files ([tls] table).",
    "ClientConfig.server_name": "Name to expect in the coordinator's certificate, if not the "
    "host in `coordinator`.",
    "ClientConfig.timeout_seconds": "Deadline of each call to the coordinator.",
}

FILES: tuple[tuple[str, type[Any], str], ...] = (
    (
        "Coordinator",
        config.CoordinatorConfig,
        "`hublink coordinator serve --config coordinator.toml`",
    ),
    ("Project", config.ProjectConfig, "each file listed in the coordinator's `projects`"),
    ("Node", config.NodeConfig, "`hublink node … --config node.toml`"),
    (
        "Client (admin, analyst, auditor)",
        config.ClientConfig,
        "`hublink admin|analyst|audit … --config client.toml`",
    ),
)


def field_docstrings(kind: type[Any]) -> dict[str, str]:
    """The string literal written under each field of ``kind`` in its source, if any."""
    tree = ast.parse(inspect.getsource(kind))
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    found: dict[str, str] = {}
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.target.id] = " ".join(following.value.value.split())
    return found


def describe(kind: type[Any], name: str) -> str:
    """A field's description: its docstring in hublink.config, else ``HELP``; '' if neither."""
    return field_docstrings(kind).get(name) or HELP.get(f"{kind.__name__}.{name}", "")


def missing_descriptions() -> list[str]:
    """Every ``Class.field`` that has no description (the test requires none)."""
    return [
        f"{kind.__name__}.{f.name}"
        for kind in _all_kinds()
        for f in dataclasses.fields(kind)
        if not describe(kind, f.name)
    ]


def render() -> str:
    """The whole reference page as Markdown."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `hublink config-reference` from hublink/config.py; do not edit. -->",
        "",
        "Every hublink process reads one TOML file. Unknown keys are refused, and every error",
        "names the file and the key. Relative paths are resolved against the directory of the",
        "file that names them. Keys without a default are required.",
        "",
    ]
    for title, kind, used_by in FILES:
        lines += [f"## {title}", "", f"Read by {used_by}.", ""]
        lines += _table(kind, prefix="")
        for section, sub in _sections(kind):
            lines += [f"### `[{section}]`", ""]
            doc = inspect.getdoc(sub)
            if doc and sub is not config.TlsSection:
                lines += [" ".join(doc.split()), ""]
            lines += _table(sub, prefix=f"{section}.")
    return "\n".join(lines).rstrip() + "\n"


def _all_kinds() -> Iterator[type[Any]]:
    seen: set[type[Any]] = set()
    for _, kind, _ in FILES:
        for each in (kind, *(sub for _, sub in _sections(kind))):
            if each not in seen:
                seen.add(each)
                yield each


def _sections(kind: type[Any]) -> list[tuple[str, type[Any]]]:
    """Nested tables of ``kind``: (TOML name, dataclass)."""
    hints = typing.get_type_hints(kind)
    out = []
    for f in dataclasses.fields(kind):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            out.append((f.name, hint))
        elif typing.get_origin(hint) is Mapping:
            value = typing.get_args(hint)[1]
            if dataclasses.is_dataclass(value) and isinstance(value, type):
                out.append((f"{f.name}.NAME", value))
    return out


def _table(kind: type[Any], *, prefix: str) -> list[str]:
    hints = typing.get_type_hints(kind)
    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(kind):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            continue  # documented as its own section
        text = describe(kind, f.name).replace("|", "\\|")
        lines.append(f"| `{prefix}{f.name}` | {_type(hint)} | {_default(f)} | {text} |")
    return [*lines, ""]


def _type(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return f"{_type(options[0])} (optional)"
    if origin is tuple:
        return f"list of {_plural(args[0])}"
    if origin is Mapping or hint is Mapping:
        value = args[1]
        if dataclasses.is_dataclass(value):
            return "table of tables"
        return f"table of {_plural(value)}"
    return {Path: "path", str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        hint, str(hint)
    )


def _plural(hint: Any) -> str:
    return {Path: "paths", str: "strings", int: "integers", float: "numbers"}.get(hint, str(hint))


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path | str):
        return f'`"{value}"`'
    if isinstance(value, tuple):
        return "`[]`" if not value else f"`{list(value)}`"
    if isinstance(value, Mapping):
        return "`{}`" if not value else f"`{dict(value)}`"
    if isinstance(value, int):
        return f"`{value}`"
    return f"`{value}`"
