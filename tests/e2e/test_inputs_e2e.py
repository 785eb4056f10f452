"""Exports as councils and NHS systems really write them, linked end to end over mutual TLS.

One project, seven organisations holding overlapping synthetic children. One
keeps the generator's plain UTF-8 CSV; each of the others sends the same kind
of records in one real-world form: Windows-1252 with CRLF and accented names
and no input.encoding, UTF-8 with a byte-order mark, semicolons, an XLSX
workbook (rows on its second sheet, dates as date cells), one full-name
column, and FHIR R4 Patient NDJSON. Every node plans, uploads and fetches
keys through the real coordinator; each form must read every row, give every
record a key and link to the reference organisation as well as plain CSV does.
One record carries an impossible date of birth and must still link.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from exports import write_fhir, write_full_name, write_text, write_xlsx

from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.clients import AdminClient
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.tls import TlsFiles, secure_channel
from node.keys import fetch_keys
from node.plan import plan
from node.workflow import upload

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REFERENCE = "reference"
FORMS = ("cp1252-crlf", "utf8-bom", "semicolon", "xlsx", "full-name", "fhir")
RECORDS = 150
BAD_DOB = "31/02/2021"


@dataclass
class Linked:
    data: synthetic.GeneratedData
    plans: dict[str, object]
    keys: dict[tuple[str, str], str]
    reports: dict[str, dict[str, object]]
    bad_dob: tuple[tuple[str, str], tuple[str, str]]


def _layouts() -> list[synthetic.OrganisationLayout]:
    base = synthetic.DEFAULT_LAYOUTS[0]  # health visiting: F/M, DD/MM/YYYY, NHS numbers
    return [
        dataclasses.replace(
            base,
            organisation=name,
            display_name=name,
            local_id_format=f"{name[:3].upper()}{{n:06d}}",
        )
        for name in (REFERENCE, *FORMS)
    ]


def _input_section(form: str, source: Path, layout: synthetic.OrganisationLayout) -> str:
    """Write ``form`` of ``source`` beside it and return the [input] section that reads it."""
    columns = dict(layout.columns)
    folder = source.parent
    extra = ""
    if form == "cp1252-crlf":
        path = write_text(source, folder / "cp1252.csv", encoding="cp1252", newline="\r\n")
    elif form == "utf8-bom":
        path = write_text(source, folder / "bom.csv", encoding="utf-8-sig")
    elif form == "semicolon":
        path = write_text(source, folder / "semicolon.csv", encoding="utf-8", delimiter=";")
    elif form == "xlsx":
        path = write_xlsx(source, folder / "export.xlsx", dob_column=columns["date_of_birth"])
        extra = 'sheet = "Children"\n'
    elif form == "full-name":
        path = write_full_name(
            source,
            folder / "fullname.csv",
            given=columns.pop("given_name"),
            family=columns.pop("family_name"),
            style=lambda n: "surname-comma" if n % 3 == 0 else "forename-first",
        )
        columns = {"full_name": "Child Name", **columns}
    else:
        path = write_fhir(
            source, folder / "Patient.ndjson", id_column=layout.id_column, columns=columns
        )
        return f'[input]\npath = {json.dumps(str(path))}\nid_column = "id"\n\n'
    mapping = "".join(f"{name} = {json.dumps(column)}\n" for name, column in columns.items())
    return (
        f"[input]\npath = {json.dumps(str(path))}\nid_column = {json.dumps(layout.id_column)}\n"
        f"{extra}\n[input.columns]\n{mapping}\n"
    )


def _corrupt_one_dob(
    data: synthetic.GeneratedData, form: str
) -> tuple[tuple[str, str], tuple[str, str]]:
    """Give one record of ``form``, whose child the reference also holds with the same name
    and NHS number, an impossible date of birth; returns (its key, the reference's key)."""
    layout = next(lay for lay in data.layouts if lay.organisation == form)
    truth = data.truth()
    reference_rows = {}
    with data.csv_paths[REFERENCE].open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            reference_rows[truth[(REFERENCE, row[layout.id_column])]] = row
    path = data.csv_paths[form]
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    nhs, dob = layout.columns["nhs_number"], layout.columns["date_of_birth"]
    names = (layout.columns["given_name"], layout.columns["family_name"])
    for row in rows:
        other = reference_rows.get(truth[(form, row[layout.id_column])])
        digits = "".join(ch for ch in row[nhs] if ch.isdigit())
        if (
            other
            and digits
            and digits == "".join(ch for ch in other[nhs] if ch.isdigit())
            and all(row[c] == other[c] for c in names)
        ):
            row[dob] = BAD_DOB
            break
    else:  # pragma: no cover - the generator always gives some
        raise AssertionError("no record to corrupt")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return (form, row[layout.id_column]), (REFERENCE, other[layout.id_column])


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linked]:
    root = tmp_path_factory.mktemp("inputs")
    data = synthetic.generate(root / "data", RECORDS, seed=11, layouts=_layouts())
    bad_dob = _corrupt_one_dob(data, "semicolon")
    configs = write_deployment(root, data, free_port(), secret_exchange=False)
    for layout in data.layouts:
        if layout.organisation == REFERENCE:
            continue
        path = configs[layout.organisation]
        text = re.sub(r"consent_policy = .*\n", "", path.read_text())
        section = _input_section(layout.organisation, data.csv_paths[layout.organisation], layout)
        start, end = text.index("[input]"), text.index("[tls]")
        text = text[:start] + section + text[end:]
        path.write_text(text)
    coordinator_config = load(configs["coordinator"], CoordinatorConfig)
    coordinator = start_coordinator(coordinator_config)
    try:
        plans: dict[str, object] = {}
        for layout in data.layouts:
            config = load(configs[layout.organisation], NodeConfig)
            plans[layout.organisation] = plan(config)
            upload(config)
        admin_config = load(configs["admin"], ClientConfig)
        tls = TlsFiles(admin_config.tls.ca, admin_config.tls.cert, admin_config.tls.key)
        admin = AdminClient(secure_channel(admin_config.coordinator, tls))
        admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID).run_id, timeout=120)
        keys: dict[tuple[str, str], str] = {}
        reports = {}
        for layout in data.layouts:
            config = load(configs[layout.organisation], NodeConfig)
            output = fetch_keys(config).output
            with output.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    keys[(layout.organisation, row["local_id"])] = row["linkage_key"]
            reports[layout.organisation] = json.loads(
                (config.state_dir / "exclusion-report.json").read_text(encoding="utf-8")
            )
        yield Linked(data, plans, keys, reports, bad_dob)
    finally:
        coordinator.stop()


@pytest.mark.parametrize("form", FORMS)
def test_the_plan_reads_every_row(linked: Linked, form: str) -> None:
    result = linked.plans[form]
    assert result.rows == linked.data.records[form]  # type: ignore[attr-defined]
    assert result.rejected == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("form", FORMS)
def test_every_record_gets_a_key_and_links_like_plain_csv(linked: Linked, form: str) -> None:
    keyed = [k for k in linked.keys if k[0] == form]
    assert len(keyed) == linked.data.records[form]
    two = {k: v for k, v in linked.keys.items() if k[0] in (REFERENCE, form)}
    truth = {k: v for k, v in linked.data.truth().items() if k[0] in (REFERENCE, form)}
    quality = synthetic.pairwise_quality(two, truth).cross
    assert quality.true_pairs > 30
    assert quality.precision >= 0.95, quality
    # About 35 true pairs a form, with the generator's harder errors (nicknames, spelling
    # variants, "Baby" placeholders): one missed pair costs three points of recall.
    assert quality.recall >= 0.85, quality


def test_accented_names_survive_windows_1252(linked: Linked) -> None:
    raw = (linked.data.csv_paths["cp1252-crlf"].parent / "cp1252.csv").read_bytes()
    assert b"\r\n" in raw and any(b > 0x7F for b in raw)
    report = linked.reports["cp1252-crlf"]
    assert report["rejected"] == 0 and report["included"] == linked.data.records["cp1252-crlf"]


def test_a_record_with_an_impossible_date_of_birth_links_on_its_other_fields(
    linked: Linked,
) -> None:
    mine, reference = linked.bad_dob
    assert linked.keys[mine] == linked.keys[reference]
    fields = {f["field"]: f for f in linked.reports["semicolon"]["fields"]}  # type: ignore[index]
    assert fields["date_of_birth"]["invalid_reasons"] == {"impossible calendar date": 1}
    assert BAD_DOB not in json.dumps(linked.reports["semicolon"])
