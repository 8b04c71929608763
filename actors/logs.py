"""Log records that name their request: the request id of the work under way, and one JSON
line per record.

The gateway sets the request id for the whole of a request (``request_context``); the show
client stamps it on every command the request sends, and the host sets it again while it
applies that command, so a record logged anywhere on the way, in the gateway's process or in
a host's, carries the id the caller got back in ``X-Request-Id``::

    with request_context("3f9a0c1b22d4-1a"):
        log.info("show %d activated", 12)
    # {"ts": "2026-03-01T18:00:00.123+00:00", "level": "INFO", "logger": "actors.host",
    #  "message": "show 12 activated", "request_id": "3f9a0c1b22d4-1a"}

``configure_logging("json")`` installs the formatter on the process's root logger (the
``seatserver`` command does, and so does every show host in its own Ray worker process);
``"text"`` keeps the classic one-line format for people, with ``req=`` appended.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "FORMATS",
    "REQUEST_ID",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "current_request_id",
    "request_context",
]

#: The request id of the work under way in this task (None outside a request).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "seatserver_request_id", default=None
)
FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every LogRecord has: anything else on a record came in through ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
}


def current_request_id() -> str | None:
    return REQUEST_ID.get()


@contextlib.contextmanager
def request_context(request_id: str | None) -> Iterator[None]:
    """Records logged inside carry ``request_id``."""
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


def _request_id(record: logging.LogRecord) -> str | None:
    given = record.__dict__.get("request_id")
    return given if given is not None else REQUEST_ID.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, milliseconds), ``level``, ``logger``,
    ``message``, ``request_id`` (null outside a request), the ``fields`` given here (the
    host's name, say), the record's ``extra=`` values, and ``exc_info``/``stack_info`` as
    text when there are any."""

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id(record),
        }
        out.update(self._fields)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value  # what came in through ``extra=``; "_..." are Ray's own
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with `` req=<id>`` when the record belongs to a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = _request_id(record)
        return line if request_id is None else f"{line} req={request_id}"


class _Ours(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure_logging`` installs (and replaces when called again)."""


def configure_logging(
    fmt: str = "json",
    level: int = logging.INFO,
    *,
    fields: Mapping[str, Any] | None = None,
    force: bool = False,
) -> None:
    """Log to stderr in ``fmt`` ("json" or "text") at ``level`` from the root logger. Like
    ``logging.basicConfig`` it leaves a root logger that someone else gave handlers alone
    (a test runner's), unless ``force``; calling it again replaces what it installed."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, not {fmt!r}")
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _Ours)]
    if len(ours) < len(root.handlers) and not force:
        return
    for handler in ours:
        root.removeHandler(handler)
    handler = _Ours(sys.stderr)
    handler.setFormatter(JsonFormatter(fields) if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
