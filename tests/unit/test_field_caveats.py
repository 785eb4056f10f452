"""The field model's figures on a default run carry every caveat that applies to them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from coordinator.core import chance, field_caveats, field_estimate
from coordinator.core.caveats import Caveat
from coordinator.core.field_estimate import KindFigures, Prepared, on_output
from coordinator.core.field_model import ACROSS, MIN_CUT
from coordinator.core.quality import DuplicateEstimate, RunQuality
from coordinator.core.score_model import SALTED_FLOOR, SALTED_PART_FLOOR
from coordinator.rpc import convert
from hublink.reports.quality import estimate_line, html_page


def base(*caveats: Caveat) -> RunQuality:
    return RunQuality(
        auto=True, threshold_used=0.8, threshold_fixed=0.8, fitted=True, reason="",
        threshold_estimated=0.8, threshold_sd=0.01, precision=0.999, precision_sd=0.0,
        recall=0.999, recall_sd=0.0, scores=900, near_threshold=0, several_candidates=0,
        caveats=caveats,
    )  # fmt: skip


DUPLICATES = DuplicateEstimate(("given",), 10, 5, 5.0, 0.99, 0.99, 50, 3)
ACROSS_FIGURES = KindFigures(0.98, 0.95, (0.97, 0.99), (0.94, 0.96), 2000, 2100.0, 12.0)


def test_few_candidates_of_a_kind_withholds_trust_and_enough_says_nothing() -> None:
    found = field_caveats.few_candidates("within", 40)
    assert found is not None and found.untrusted
    assert found.code == "few_field_candidates_within" and "40 candidate pairs" in found.message
    assert field_caveats.few_candidates("within", field_caveats.FEW_CANDIDATES) is None


def test_a_cut_pinned_at_its_lowest_is_said_and_one_above_is_not() -> None:
    found = field_caveats.cut_at_bound("across", MIN_CUT, MIN_CUT)
    assert found is not None and found.untrusted and found.code == "cut_at_bound_across"
    assert field_caveats.cut_at_bound("across", 0.62, MIN_CUT) is None


def test_the_run_checks_each_kind_it_weighed() -> None:
    p = np.ones(3)
    prepared = Prepared(
        left=np.array([0, 1, 2]), right=np.array([3, 4, 5]), kinds=np.full(3, ACROSS),
        chance=p, draws=np.tile(p, (4, 1)).astype(np.float32),
        broken=np.zeros(3, dtype=np.int64), parts=3, cuts=(MIN_CUT, 0.5),
    )  # fmt: skip
    found = on_output(prepared, np.array([0, 1, 2, 0, 1, 2]), np.repeat([0, 1], 3))
    codes = {c.code for c in found.caveats}
    assert {"few_field_candidates_across", "cut_at_bound_across"} <= codes
    # no within candidates: nothing is said about a kind the run did not weigh
    assert not any(c.endswith("_within") for c in codes)


def test_floors_lifted_are_said_with_the_chance_level_and_the_floors_used() -> None:
    level = chance.Chance(whole=0.63, part=0.69, pairs=2_000)
    said = level.lifted()
    assert said is not None and not said.untrusted
    assert f"{level.whole_floor:.3f}" in said.message and "63%" in said.message
    assert [c.code for c in level.caveats()] == ["floors_lifted"]
    assert chance.SHIPPED.lifted() is None and chance.SHIPPED.caveats() == ()
    assert (chance.SHIPPED.whole_floor, chance.SHIPPED.part_floor) == (
        SALTED_FLOOR,
        SALTED_PART_FLOOR,
    )
    # the unsalted record CLK's floors are fixed: nothing was lifted
    assert chance.Chance(whole=0.7, part=0.75, record_clk="unsalted").lifted() is None


def test_the_field_figures_keep_the_caveats_about_which_pairs_were_compared() -> None:
    dense = chance.CAVEAT
    record_only = Caveat("no_valley", "the record-level mixture's", untrusted=True)
    report, _ = field_estimate.reported(
        base(record_only, dense),
        DUPLICATES,
        field_estimate.FieldEstimate(ACROSS_FIGURES, None, ()),
    )
    codes = [c.code for c in report.caveats]
    assert codes == ["field_model_figures", "dense_record_clk"]


def test_wide_within_figures_are_said_and_narrow_ones_are_not() -> None:
    wide = KindFigures(0.91, 0.87, (0.82, 0.97), (0.71, 0.95), 60, 70.0, 0.0)
    narrow = KindFigures(0.99, 0.98, (0.985, 0.995), (0.97, 0.99), 600, 700.0, 0.0)
    codes = {c.code for c in field_estimate.caveats_for(ACROSS_FIGURES, wide)}
    assert "wide_interval_within" in codes
    assert not {c.code for c in field_estimate.caveats_for(ACROSS_FIGURES, narrow)}


def test_a_figure_a_caveat_doubts_is_printed_as_about_with_its_interval() -> None:
    within = dataclasses.replace(
        DUPLICATES, precision_interval=(0.9, 0.99), recall_interval=(0.8, 0.97)
    )
    doubted = dataclasses.replace(
        base(chance.CAVEAT, Caveat("wide_interval_within", "wide")),
        precision=0.9634,
        precision_interval=(0.95, 0.97),
        recall=0.9412,
        recall_interval=(0.92, 0.96),
        duplicates=within,
    )
    line = estimate_line(convert.run_quality(doubted))
    assert line.startswith("NOT TO BE TRUSTED") and "precision about 0.963 (0.950 to 0.970)" in line
    text = html_page(convert.quality_report("p", "run-1", doubted, ()))
    assert "Estimated precision (not to be relied on)</th><td>about 0.963 (0.950" in text
    assert "strangers&#x27; record encodings" in text
    assert "<td>about 0.990 (0.900 to 0.990)</td>" in text
    # the same figures with no caveat against them are printed plainly
    sure = dataclasses.replace(doubted, caveats=())
    assert "precision 0.963 (0.950 to 0.970)" in estimate_line(convert.run_quality(sure))
    assert (
        "about"
        not in html_page(convert.quality_report("p", "run-1", sure, ())).split(
            "Estimated precision"
        )[1][:40]
    )


def test_figures_on_a_few_dozen_pairs_say_one_pair_moves_them_by_more_than_half_a_point() -> None:
    found = field_caveats.coarse("within", 70.0)
    assert found is not None and not found.untrusted
    assert found.code == "coarse_figures_within" and "1.4 points" in found.message
    assert field_caveats.coarse("across", float(field_caveats.COARSE_MATCHES)) is None


def test_recall_that_chance_alone_spreads_past_the_tolerance_says_so() -> None:
    # 120 pairs held, all but certain; ten left out at 0.5 each and two hidden: which of
    # them are matches moves recall by about 2.5 points (95%) however right the model is.
    probability = np.array([0.999] * 120 + [0.5] * 10)
    held = np.array([True] * 120 + [False] * 10)
    spread = field_estimate.recall_chance_spread(probability, held, 2.0)
    found = 119.88
    missed = 5.0 + 2.0
    sd = (
        np.sqrt(missed**2 * 120 * 0.999 * 0.001 + found**2 * (10 * 0.25 + 2.0))
        / (found + missed) ** 2
    )
    assert spread == pytest.approx(1.96 * sd)
    assert 0.02 < spread < 0.04
    said = field_caveats.chance_spread("within", spread)
    assert said is not None and said.code == "chance_spread_within" and not said.untrusted
    assert f"{spread * 100:.1f} points" in said.message
    # Thousands of sure pairs and a handful of doubtful ones: nothing to say.
    many = np.array([0.999] * 3000 + [0.5] * 10)
    sure = field_estimate.recall_chance_spread(many, many > 0.9, 2.0)
    assert sure < field_caveats.CHANCE_SPREAD
    assert field_caveats.chance_spread("across", sure) is None
    # Nothing to find: no spread.
    assert field_estimate.recall_chance_spread(np.zeros(0), np.zeros(0, dtype=bool), 0.0) == 0.0
