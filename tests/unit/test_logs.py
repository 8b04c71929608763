"""JSON log lines: the fields, the request id from the context, extras; the text line; and
``configure_logging`` leaving a root logger that others set up alone."""

from __future__ import annotations

import json
import logging

from actors.logs import (
    REQUEST_ID,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    request_context,
)


def _record(
    message: str = "show %d activated", *args: object, **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord(
        "actors.host", logging.INFO, __file__, 1, message, args or (12,), None
    )
    record.__dict__.update(extra)
    return record


def test_a_json_line_has_the_fields_and_the_request_id_of_its_context() -> None:
    formatter = JsonFormatter({"host": "seatserver-host-0"})
    with request_context("3f9a0c1b22d4-1a"):
        line = formatter.format(_record(show_id=12))
    out = json.loads(line)
    assert out["message"] == "show 12 activated"
    assert out["level"] == "INFO" and out["logger"] == "actors.host"
    assert out["request_id"] == "3f9a0c1b22d4-1a"
    assert out["host"] == "seatserver-host-0" and out["show_id"] == 12
    assert out["ts"].endswith("+00:00") and "T" in out["ts"]
    assert "\n" not in line
    assert REQUEST_ID.get() is None
    assert json.loads(formatter.format(_record()))["request_id"] is None


def test_an_explicit_request_id_wins_and_tracebacks_are_kept() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    record.request_id = "given"
    with request_context("ambient"):
        out = json.loads(JsonFormatter().format(record))
    assert out["request_id"] == "given"
    assert "ValueError: boom" in out["exc_info"]


def test_the_text_line_ends_with_the_request_id() -> None:
    formatter = TextFormatter()
    with request_context("abc"):
        assert formatter.format(_record()).endswith("actors.host: show 12 activated req=abc")
    assert formatter.format(_record()).endswith("show 12 activated")


def test_configure_logging_replaces_its_own_handler_and_respects_others() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        root.handlers = []
        configure_logging("json", logging.INFO)
        configure_logging("text", logging.WARNING)
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, TextFormatter)
        assert root.level == logging.WARNING
        foreign = logging.NullHandler()
        root.handlers = [foreign]
        configure_logging("json")
        assert root.handlers == [foreign]  # a test runner's (or Ray's) setup stays as it is
    finally:
        root.handlers, level = saved
        root.setLevel(level)
