"""Service logs: ids travel as JSON fields (and after the text), never inside the message."""

from __future__ import annotations

import json
import logging
import sys

from hublink.identity import Identity, Role
from hublink.logformat import JsonFormatter, TextFormatter, current_request_id, request_scope


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("hublink.coordinator.test")
    made = logger.makeRecord(logger.name, logging.INFO, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(made, name, value)  # what extra={...} does
    return made


def test_json_lines_carry_the_ids_as_fields_beside_a_plain_message() -> None:
    caller = Identity("health-visiting", Role.NODE)
    line = JsonFormatter().format(
        record(
            "upload committed: %d records",
            1200,
            project="early-years",
            upload="up-1f3a",
            caller=caller,
        )
    )
    entry = json.loads(line)
    assert entry["message"] == "upload committed: 1200 records"
    assert entry["project"] == "early-years" and entry["upload"] == "up-1f3a"
    assert entry["caller"] == str(caller)
    assert "early-years" not in entry["message"] and "up-1f3a" not in entry["message"]


def test_only_the_named_id_fields_are_copied() -> None:
    # A stray extra (a value some future call passes by mistake) never reaches the log.
    entry = json.loads(JsonFormatter().format(record("x", project="p", given_name="Olivia")))
    assert entry["project"] == "p" and "given_name" not in entry
    assert "Olivia" not in json.dumps(entry)


def test_text_lines_show_the_ids_after_the_message_and_keep_tracebacks() -> None:
    formatter = TextFormatter()
    text = formatter.format(record("run completed", project="early-years", run="run-7"))
    assert text.endswith("hublink.coordinator.test: run completed [project=early-years run=run-7]")
    assert formatter.format(record("no ids here")).endswith(": no ids here")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = record("run failed", run="run-8")
        failed.exc_info = sys.exc_info()
    text = formatter.format(failed)
    assert text.splitlines()[0].endswith("run failed [run=run-8]")
    assert "RuntimeError: boom" in text


def test_lines_written_inside_a_request_scope_share_its_request_id() -> None:
    assert current_request_id() is None
    with request_scope() as request_id:
        first = json.loads(JsonFormatter().format(record("one")))
        second = json.loads(JsonFormatter().format(record("two", project="p")))
    assert first["request_id"] == second["request_id"] == request_id
    assert current_request_id() is None
    assert "request_id" not in json.loads(JsonFormatter().format(record("after")))
