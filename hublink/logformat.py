"""Log lines for services: plain text for people, one JSON object a line for collectors.

The JSON form carries time, level, logger and message (plus the exception's
type when there is one), and the ids a log call passes with ``extra=``
(project, upload, run, organisation, caller, epoch, certificate, peer) as
fields of their own, with the gRPC call's request id, so a pipeline can select
one upload's lines without parsing messages; message texts hold no ids
(``tests/rpc/test_log_fields.py`` checks). Only those named fields are taken:
hublink's ids are opaque (project names, random upload and run ids,
organisation names, certificate fingerprints, peer addresses), never a
person's data, and no other extra or argument is copied, so nothing
else can slip in. Tracebacks are left out of the JSON form for the same
reason (their local context is not ours to vet); the text form keeps them
and shows the ids after the message, ``[project=… upload=…]``.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: The fields a log call may attach with ``extra={...}``: opaque ids only (``certificate``:
#: a certificate's SHA-256 fingerprint; ``peer``: the network address a call came from).
ID_FIELDS = (
    "project",
    "upload",
    "run",
    "organisation",
    "caller",
    "epoch",
    "certificate",
    "peer",
    "request_id",
)

_REQUEST_ID: ContextVar[str | None] = ContextVar("hublink_request_id", default=None)


@contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Give every log line written inside the block (in this thread) one request id.

    The coordinator opens one per gRPC call, so the lines of one call can be
    found together, and an internal error's reference is that id.
    """
    value = request_id or uuid.uuid4().hex[:16]
    token = _REQUEST_ID.set(value)
    try:
        yield value
    finally:
        # A stream closed from another thread: its context, and the id, went with it.
        with suppress(ValueError):
            _REQUEST_ID.reset(token)


def current_request_id() -> str | None:
    """The request id of the call this thread is serving, if any."""
    return _REQUEST_ID.get()


def ids(record: logging.LogRecord) -> dict[str, str]:
    """The ids ``record`` carries (from ``extra=`` and the request scope), as text."""
    found: dict[str, str] = {}
    for name in ID_FIELDS:
        value = getattr(record, name, None)
        if value is None and name == "request_id":
            value = _REQUEST_ID.get()
        if value is not None and value != "":
            found[name] = str(value)
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, then ids."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(ids(record))
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The usual one-line text, with the record's ids after the message for people to read."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        found = {k: v for k, v in ids(record).items() if k != "request_id"}
        text = super().formatMessage(record)
        if not found:
            return text
        return text + " [" + " ".join(f"{k}={v}" for k, v in found.items()) + "]"


def configure(level: int, log_format: str = "text") -> None:
    """Send every log record at ``level`` or above to standard error in ``log_format``."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
