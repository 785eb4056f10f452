"""The audit log in words: every action has a label, times carry their date and zone.

Issue 24: an IG officer met "records.withdrawn" and "04:22" with no date or
zone. The first test reads coordinator/ itself for every action it can write,
so an action added later without a label fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hublink.audit.words import ACTION_LABELS, action_label, format_time, time_filter

COORDINATOR = Path(__file__).resolve().parents[2] / "coordinator"

#: Actions built with an f-string, and every value the f-string takes.
FORMATTED = {"run.": {"run.failed", "run.cancelled"}}


def _action_argument(call: ast.Call) -> ast.expr | None:
    name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
    for keyword in call.keywords:
        if keyword.arg == "action" and name in ("event", "AuditEvent"):
            return keyword.value
    if name == "event" and len(call.args) >= 2:
        return call.args[1]
    if name == "AuditEvent" and call.args:
        return call.args[0]
    return None


def coordinator_actions() -> set[str]:
    """Every action coordinator/ passes to ``event(...)`` or ``AuditEvent(...)``."""
    actions: set[str] = set()
    unreadable: list[str] = []
    for path in sorted(COORDINATOR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            argument = _action_argument(node)
            if argument is None:
                continue
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                actions.add(argument.value)
            elif isinstance(argument, ast.JoinedStr) and isinstance(
                argument.values[0], ast.Constant
            ):
                prefix = str(argument.values[0].value)
                assert prefix in FORMATTED, f"{path}:{node.lineno}: list f-string {prefix}…"
                actions |= FORMATTED[prefix]
            elif isinstance(argument, ast.Subscript):
                continue  # an entry read back from the database, not a new action
            elif not (isinstance(argument, ast.Name) and argument.id == "action"):
                unreadable.append(f"{path}:{node.lineno}")
    assert not unreadable, f"actions this test cannot read: {unreadable}"
    return actions


def test_every_action_the_coordinator_can_write_has_a_plain_english_label() -> None:
    actions = coordinator_actions()
    assert {"records.withdrawn", "access.refused", "upload.started", "run.failed"} <= actions
    missing = sorted(actions - set(ACTION_LABELS))
    assert not missing, f"add labels to hublink.audit.words.ACTION_LABELS for {missing}"


def test_labels_are_words_not_dotted_names() -> None:
    assert action_label("records.withdrawn") == "Records withdrawn"
    assert all("." not in label and label[0].isupper() for label in ACTION_LABELS.values())
    assert action_label("something.new_thing") == "Something new thing"


def test_times_show_date_time_and_zone() -> None:
    assert format_time("2026-12-07T04:22:33.123Z") == "2026-12-07 04:22:33 UTC"
    assert format_time("2026-12-07T05:22:33+01:00") == "2026-12-07 04:22:33 UTC"
    assert format_time("not a time") == "not a time"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-06-01", "2026-06-01"),
        ("2026-06", "2026-06"),
        ("2026-06-01T09:30", "2026-06-01T09:30:00"),
        ("2026-06-01T09:30:00Z", "2026-06-01T09:30:00"),
        ("2026-06-01T10:30:00+01:00", "2026-06-01T09:30:00"),
        ("", ""),
    ],
)
def test_time_filters_become_utc_prefixes(given: str, expected: str) -> None:
    assert time_filter(given) == expected


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "01/06/2026", "2026-06-01T25:00"])
def test_a_bad_time_filter_names_the_expected_format(bad: str) -> None:
    with pytest.raises(ValueError, match="expected a date or time in ISO 8601"):
        time_filter(bad)
