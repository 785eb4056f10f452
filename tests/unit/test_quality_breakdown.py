"""Link and duplicate rates by released attribute: exact where allowed, protected where not.

Pure functions on crafted groups first, then one run over the core with real
encodings of made-up people and their released area, in real SQLite.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from coordinator.core import disclosure
from coordinator.core.model import ConsentSummary, IncomingRecord, Project
from coordinator.core.quality import RunQuality
from coordinator.core.quality_breakdown import (
    AttributeRate,
    attribute_rates,
    record_status,
)
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from hublink.identity import Identity, Role
from hublink.spec import RECORD_CLK, LinkageSpec, UploadDigest
from node.encoder import Encoder

EXACT = disclosure.Rule("exact", threshold=1, rounding=1)
UNROUNDED = disclosure.Rule("unrounded", threshold=3, rounding=1)
ROUNDED = disclosure.Rule("hospital-statistics", threshold=8, rounding=5)


def rates(
    groups: Sequence[Sequence[tuple[int, int]]],
    record_ids: Sequence[Sequence[int]],
    values: dict[int, str],
    rule: disclosure.Rule,
) -> list[AttributeRate]:
    dataset_of, linked, duplicated = record_status(groups, record_ids)
    return list(
        attribute_rates(
            [(rid, "area", v) for rid, v in values.items()]
            + [(rid, "other", "x") for rid in values],
            dataset_of=dataset_of,
            names=["org-a", "org-b"],
            linked=linked,
            duplicated=duplicated,
            record_key=lambda rid: rid % 256,
            released=["area"],
            rule=rule,
        )
    )


def test_record_status_follows_the_groups() -> None:
    record_ids = [[10, 11, 12], [20, 21]]
    groups = [[(0, 0), (1, 0)], [(0, 1), (0, 2)], [(1, 1)]]
    dataset_of, linked, duplicated = record_status(groups, record_ids)
    assert dataset_of == {10: 0, 11: 0, 12: 0, 20: 1, 21: 1}
    assert linked == {10, 20}
    assert duplicated == {11, 12}


def test_counts_by_value_are_exact_under_a_rule_that_withholds_nothing() -> None:
    record_ids = [[1, 2, 3, 4], [5, 6]]
    groups = [[(0, 0), (1, 0)], [(0, 1), (0, 2), (1, 1)]]
    values = {1: "north", 2: "north", 3: "south", 4: "south", 5: "north", 6: "south"}

    out = rates(groups, record_ids, values, EXACT)

    assert out == [
        AttributeRate("org-a", "area", "north", 2, 2, 1),
        AttributeRate("org-a", "area", "south", 2, 1, 1),
        AttributeRate("org-b", "area", "north", 1, 1, 0),
        AttributeRate("org-b", "area", "south", 1, 1, 0),
    ]  # only the released attribute ("other" is not released)


def test_a_small_cell_is_withheld_and_so_is_a_second_one_when_it_is_alone() -> None:
    # org-a: 6 in "north" (4 linked), 2 in "south" (1 linked), 5 in "west" (5 linked).
    ids = list(range(1, 14))
    area = ["north"] * 6 + ["south"] * 2 + ["west"] * 5
    record_ids = [ids, [100 + i for i in ids]]
    linked_rows = [0, 1, 2, 3, 6, 8, 9, 10, 11, 12]
    groups = [[(0, r), (1, r)] for r in linked_rows]
    out = {
        a.value: a for a in rates(groups, record_ids, dict(zip(ids, area, strict=True)), UNROUNDED)
    }

    # records: south (2) is primary; the total is public, so the smallest other (west, 5) goes.
    assert out["south"].records is None and out["west"].records is None
    assert out["north"].records == 6
    # linked: south (1) primary; north (4, the smallest other) secondary; west's 5 shown.
    assert out["south"].linked is None and out["north"].linked is None
    assert out["west"].linked == 5
    # duplicates: all zero, shown as 0 (an empty cell points at nobody).
    assert {a.duplicates for a in out.values()} == {0}


def test_two_withheld_cells_need_no_third() -> None:
    ids = list(range(1, 12))
    area = ["a"] * 2 + ["b"] * 2 + ["c"] * 7
    out = {
        a.value: a
        for a in rates([], [ids, []], dict(zip(ids, area, strict=True)), UNROUNDED)
        if a.organisation == "org-a"
    }
    assert (out["a"].records, out["b"].records, out["c"].records) == (None, None, 7)


def test_a_rounded_rule_rounds_to_its_base_and_withholds_small_cells() -> None:
    ids = list(range(1, 40))
    area = ["big"] * 33 + ["small"] * 6
    out = {a.value: a for a in rates([], [ids, []], dict(zip(ids, area, strict=True)), ROUNDED)}
    assert out["small"].records is None
    big = out["big"].records
    assert big is not None and big % 5 == 0 and abs(big - 33) <= 3


def test_the_breakdown_round_trips_through_the_stored_json() -> None:
    cells = (AttributeRate("org-a", "area", "W1", 10, None, 0),)
    report = RunQuality(
        True, 0.8, 0.83, True, "", 0.8, 0.0, 0.9, 0.0, 0.9, 0.0, 100, 1, 1, attributes=cells
    )
    assert RunQuality.from_json(report.to_json()).attributes == cells
    # Reports stored before the breakdown existed read back with none.
    raw = json.loads(report.to_json())
    del raw["attributes"]
    assert RunQuality.from_json(json.dumps(raw)).attributes == ()


# --- a run over the core ------------------------------------------------------------------

ORGANISATIONS = ("org-a", "org-b")
SECRET = b"a-test-secret-of-16+chars"
ADMIN = Identity("hub-admin", Role.ADMIN)


def made_up(count: int, seed: int) -> list[tuple[str, ...]]:
    rng = random.Random(seed)
    syllables = ["ka", "ri", "mo", "la", "en", "dy", "sa", "tho", "wen", "ar", "is", "ol"]

    def name() -> str:
        return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 3)))

    return [
        (
            name(),
            name(),
            f"{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}{rng.randint(2019, 2024)}",
            rng.choice("FM"),
            f"CF{rng.randint(1, 48)} {rng.randint(1, 9)}"
            f"{rng.choice('ABDEFG')}{rng.choice('HJLNPQ')}",
            "",
        )
        for _ in range(count)
    ]


def project() -> Project:
    spec = LinkageSpec.default()
    return Project(
        id="by-area",
        purpose="Check link rates by area",
        organisations=ORGANISATIONS,
        admins=("hub-admin",),
        schema_json=spec.json_text,
        encoding_sha256=spec.sha256,
        encodings=spec.encodings,
        definition_sha256="0" * 64,
        released_attributes=("area",),
        disclosure=UNROUNDED,
    )


def upload(
    core: Coordinator, organisation: str, people: Sequence[tuple[str, ...]], areas: Sequence[str]
) -> None:
    encoder = Encoder(LinkageSpec.default(), SECRET)
    sent = [
        IncomingRecord(f"{organisation}-tok-{i:04d}", [(RECORD_CLK, bits)], [("area", area)])
        for i, (bits, area) in enumerate(zip(encoder.encode(list(people)), areas, strict=True))
    ]
    caller = Identity(organisation, Role.NODE)
    core.begin_upload(
        caller,
        "by-area",
        f"upload-{organisation}",
        core._projects["by-area"].encoding_sha256,
        len(sent),
        ConsentSummary("c0ffee" * 8 + "0" * 16, {"consented": len(sent)}),
    )
    core.put_chunk(caller, f"upload-{organisation}", 0, sent)
    digest = UploadDigest()
    for record in sent:
        digest.add(record.token, [bits for _, bits in record.encodings], record.attributes)
    core.commit_upload(caller, f"upload-{organisation}", 1, len(sent), digest.hexdigest())


def test_a_run_reports_link_rates_by_area_that_add_up_and_withhold_small_cells(
    tmp_path: Path,
) -> None:
    people = made_up(60, seed=5)
    # org-a holds everyone; org-b holds the first 30 (all in area "east") and nobody else.
    # Area "north" in org-a has 2 records: withheld, with a second cell to protect it.
    a_areas = ["east"] * 30 + ["west"] * 28 + ["north"] * 2
    core = Coordinator(Store(tmp_path / "c.db"), [project()])
    try:
        upload(core, "org-a", people, a_areas)
        upload(core, "org-b", people[:30], ["east"] * 30)
        run = core.start_run(ADMIN, "by-area", background=False)
        assert run.state == "completed", run.message
        _, report, _ = core.quality_report(ADMIN, "by-area")
        read = core.store.audit_entries()[-1].event
    finally:
        core.store.close()

    cells = {(a.organisation, a.value): a for a in report.attributes}
    assert set(cells) == {
        ("org-a", "east"),
        ("org-a", "west"),
        ("org-a", "north"),
        ("org-b", "east"),
    }
    assert cells[("org-a", "east")].records == 30
    assert cells[("org-a", "east")].linked == pytest.approx(30, abs=1)  # east is held by both
    assert cells[("org-a", "north")].records is None
    assert cells[("org-a", "west")].records is None  # secondary: the totals are shown
    # west is held by org-a alone: withheld count or not, nobody there is linked.
    assert cells[("org-a", "west")].linked == 0
    assert cells[("org-b", "east")].records == 30
    # The read is audited with how much of the breakdown was shown and withheld, no counts.
    assert read.action == "quality.read"
    assert read.details["attribute_cells"] == 4
    assert read.details["attribute_counts_withheld"] == sum(
        c is None for a in report.attributes for c in (a.records, a.linked, a.duplicates)
    )
    assert read.details["attribute_counts_withheld"] >= 2
    org_a = next(d for d in report.datasets if d.organisation == "org-a")
    assert org_a.records == 60 and org_a.linked == cells[("org-a", "east")].linked
