"""A project that adds an address line, a town and a local id, linked end to end.

Two organisations hold overlapping synthetic children. The project's schema adds
three fields beyond the six (address_line: number_and_street, town: free_text,
local_id: code) with field_scoring on, so each goes into the record CLK and gets
its own two salted filters. Each organisation writes them its own way (a flat as
"Flat 2, 10 High St" or "2/10 HIGH STREET", Welsh towns with and without
accents, the id with and without separators), some are placeholders and the
second organisation lacks the local id for a quarter of its children. Both
nodes plan, upload and fetch keys through the real coordinator over mutual TLS;
every record must get a key, the linkage must still work, and the plan and
exclusion report must count the placeholders by field and reason.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from coordinator.app import start as start_coordinator
from hublink import synthetic
from hublink.clients import AdminClient
from hublink.config import ClientConfig, CoordinatorConfig, NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.reports.quality import estimate_line, html_page
from hublink.spec import LinkageSpec
from hublink.tls import TlsFiles, secure_channel
from hublink.v1 import admin_pb2
from node.keys import fetch_keys
from node.plan import Plan, plan
from node.workflow import upload

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RECORDS = 150
ORGANISATIONS = ("health", "council")
ADDED = {"address_line": "number_and_street", "town": "free_text", "local_id": "code"}
COLUMNS = {"address_line": "Address 1", "town": "Town", "local_id": "Child Ref"}
STREETS = (
    "High St",
    "Heol y Felin",
    "Stryd-y-Castell",
    "St Mary's Rd",
    "Mill Ln",
    "Ffordd Glyndŵr",
)
TOWNS = ("Ynys Môn", "Pen-y-bont ar Ogwr", "Merthyr Tudful", "Llanfair-ym-Muallt", "Caerdydd")


@dataclass
class Linked:
    data: synthetic.GeneratedData
    plans: dict[str, Plan]
    keys: dict[tuple[str, str], str]
    reports: dict[str, dict[str, object]]
    spec: LinkageSpec
    quality: admin_pb2.QualityReport


def _layouts() -> list[synthetic.OrganisationLayout]:
    base = synthetic.DEFAULT_LAYOUTS[0]
    return [
        dataclasses.replace(
            base,
            organisation=name,
            display_name=name,
            local_id_format=f"{name[:3].upper()}{{n:05d}}",
        )
        for name in ORGANISATIONS
    ]


def _schema() -> str:
    schema = LinkageSpec.default().schema
    for name, rule in ADDED.items():
        schema["features"].append(
            {
                "identifier": name,
                "normaliser": rule,
                "format": {"type": "string", "encoding": "utf-8"},
                "hashing": {
                    "comparison": {"type": "ngram", "n": 2},
                    "strategy": {"bitsPerToken": 10},
                    "hash": {"type": "blakeHash"},
                },
            }
        )
    return json.dumps(schema, indent=2, ensure_ascii=False)


def _added_cells(person: str, second: bool, row: int) -> list[str]:
    """One child's address line, town and local id, as one organisation writes them."""
    n = zlib.crc32(person.encode())
    number, flat = 1 + n % 60, 1 + (n >> 8) % 4
    street, town = STREETS[(n >> 12) % len(STREETS)], TOWNS[(n >> 16) % len(TOWNS)]
    if second:
        line = f"{flat}/{number} {street}".upper() if n % 3 == 0 else f"{number} {street}"
        town = town.upper().replace("Ô", "O")
        ref = f"la{n % 1_000_000:06d}" if row % 4 else ""
        if row % 9 == 0:
            town = "N/A"
    else:
        line = f"Flat {flat}, {number} {street}" if n % 3 == 0 else f"{number}, {street}."
        ref = f"LA-{n % 1_000_000:06d}"
        if row % 11 == 0:
            ref = "UNKNOWN"
    return [line, town, ref]


def _add_columns(data: synthetic.GeneratedData, organisation: str, second: bool) -> None:
    layout = next(lay for lay in data.layouts if lay.organisation == organisation)
    truth = data.truth()
    path = data.csv_paths[organisation]
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    at = header.index(layout.id_column)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, *COLUMNS.values()])
        for k, row in enumerate(rows):
            person = truth.get((organisation, row[at]), row[at])
            writer.writerow([*row, *_added_cells(person, second, k)])


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linked]:
    root = tmp_path_factory.mktemp("added-fields")
    data = synthetic.generate(root / "data", RECORDS, seed=23, layouts=_layouts())
    for k, organisation in enumerate(ORGANISATIONS):
        _add_columns(data, organisation, second=k == 1)
    configs = write_deployment(root, data, free_port())
    schema_path = root / "config" / "early-years.json"
    schema_path.write_text(_schema() + "\n", encoding="utf-8")
    spec = LinkageSpec.from_file(schema_path, field_scoring=True)
    project = root / "config" / "project.toml"
    project.write_text(
        re.sub(r'encoding_sha256 = ".*"', f'encoding_sha256 = "{spec.sha256}"', project.read_text())
    )
    mapping = "".join(f"{field} = {json.dumps(column)}\n" for field, column in COLUMNS.items())
    for organisation in ORGANISATIONS:
        path = configs[organisation]
        # No consent policy: every row is sent, so every row must come back with a key.
        text = re.sub(r"consent_policy = .*\n", "", path.read_text(encoding="utf-8"))
        path.write_text(text.replace("[input.columns]\n", "[input.columns]\n" + mapping, 1))
    coordinator = start_coordinator(load(configs["coordinator"], CoordinatorConfig))
    try:
        plans = {}
        for organisation in ORGANISATIONS:
            config = load(configs[organisation], NodeConfig)
            plans[organisation] = plan(config)
            upload(config)
        admin_config = load(configs["admin"], ClientConfig)
        tls = TlsFiles(admin_config.tls.ca, admin_config.tls.cert, admin_config.tls.key)
        admin = AdminClient(secure_channel(admin_config.coordinator, tls))
        admin.wait(PROJECT_ID, admin.start_run(PROJECT_ID).run_id, timeout=120)
        quality = admin.quality_report(PROJECT_ID)
        keys: dict[tuple[str, str], str] = {}
        reports = {}
        for organisation in ORGANISATIONS:
            config = load(configs[organisation], NodeConfig)
            with fetch_keys(config).output.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    keys[(organisation, row["local_id"])] = row["linkage_key"]
            reports[organisation] = json.loads(
                (config.state_dir / "exclusion-report.json").read_text(encoding="utf-8")
            )
        yield Linked(data, plans, keys, reports, spec, quality)
    finally:
        coordinator.stop()


def test_the_plan_hashes_the_added_fields_from_their_columns(linked: Linked) -> None:
    for organisation in ORGANISATIONS:
        hashed = dict(linked.plans[organisation].hashed_fields)
        for field, column in COLUMNS.items():
            assert hashed[field] == repr(column)
        assert linked.plans[organisation].rejected == 0
    layouts = [e.name for e in linked.spec.encodings]
    for field in ADDED:
        assert f"{field}@birth" in layouts and f"{field}@family" in layouts


def test_every_record_gets_a_key_and_the_linkage_still_works(linked: Linked) -> None:
    for organisation in ORGANISATIONS:
        assert sum(k[0] == organisation for k in linked.keys) == linked.data.records[organisation]
    quality = synthetic.pairwise_quality(linked.keys, linked.data.truth()).cross
    print(f"\nadded fields, cross-organisation pairs: {quality}")
    assert quality.true_pairs > 40
    assert quality.precision >= 0.95, quality
    assert quality.recall >= 0.85, quality


def test_placeholders_and_blanks_are_counted_by_field_and_reason(linked: Linked) -> None:
    def counts(organisation: str) -> dict[str, dict[str, object]]:
        fields = linked.reports[organisation]["fields"]
        return {f["field"]: f for f in fields}  # type: ignore[index,union-attr]

    health, council = counts("health"), counts("council")
    rows = linked.data.records
    assert health["local_id"]["placeholder"] == len(range(0, rows["health"], 11))
    assert council["town"]["placeholder"] == len(range(0, rows["council"], 9))
    assert council["local_id"]["blank"] == len(range(0, rows["council"], 4))
    assert health["address_line"]["invalid"] == council["address_line"]["invalid"] == 0
    text = json.dumps(linked.reports)
    assert "UNKNOWN" not in text and "N/A" not in text


def test_the_report_says_the_added_fields_lifted_the_floors(linked: Linked) -> None:
    # Three added fields fill the record CLK's parts, so strangers agree on more of its bits
    # than the shipped floors were tuned at (coordinator.core.chance): the field model's
    # figures must say which floors the run used and why, not only the record-level ones.
    caveats = {c.code: c for c in linked.quality.quality.caveats}
    print(f"\nadded fields, report: {estimate_line(linked.quality.quality)}")
    assert "field_model_figures" in caveats
    said = caveats.get("floors_lifted") or caveats["dense_record_clk"]
    assert "floor" in said.message
    page = html_page(linked.quality)
    assert html.escape(said.message) in page
