"""Logs without personal data: the access log, the libraries' chatter, errors named without
their messages, and a last safety net.

The access log (``aiohttp.access``, written when the log level is INFO, i.e. ``-v``) names the
method, the route's template (``/api/v1/shows/{show_id}/holds``: never a raw path, a query
string or the client's address), the status, the duration and the request id, which leads to
everything else about the call::

    POST /api/v1/shows/{show_id}/holds 201 12.3ms req=3f9a0c1b22d4-1a

Some libraries log requests with their bodies or addresses: the Stripe SDK's bodies at DEBUG,
the mail catcher every recipient at INFO, the Anthropic SDK the customer's messages at DEBUG.
``quiet_libraries`` raises their loggers above that. ``Redactor``, around the formatter of
each root handler, masks what looks like an email address, a phone number, a bearer or JSON
web token, or the client address in aiohttp's own error line, whatever logger wrote it: a net
under the rule that no log line carries them, not the way they are kept out.

Where an error may quote what a customer wrote (the assistant, the models' inputs), a log line
names it by ``why`` (its type and status, never its message) and ``stack`` (its frames)::

    log.error("assistant: tool %s failed: %s\n%s", name, why(exc), stack(exc))

    runner = web.AppRunner(app, access_log_class=AccessLogger)
    install_log_hygiene()
"""

from __future__ import annotations

import copy
import logging
import re
import traceback

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway import keys

# Library loggers and the least level they may log at: below it they print bodies or addresses.
QUIET: dict[str, int] = {
    "stripe": logging.INFO,  # DEBUG: request and response bodies
    "anthropic": logging.INFO,  # DEBUG: request options, the conversation included
    "httpx": logging.WARNING,  # INFO: every URL, query strings included
    "httpx2": logging.WARNING,
    "httpcore": logging.WARNING,
    "twilio": logging.WARNING,  # INFO: request URLs and parameters (phone numbers)
    "mail.log": logging.WARNING,  # aiosmtpd, INFO: senders, recipients, SMTP lines
    "urllib3": logging.INFO,
    "google": logging.INFO,
}

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"(?<![\w+])\+[1-9][0-9 ().-]{6,18}[0-9]")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_CLIENT_ERROR = "Error handling request from %s"


def redact(text: str) -> str:
    """``text`` with emails, phone numbers and tokens masked."""
    text = _EMAIL.sub("<email>", text)
    text = _JWT.sub("<token>", text)
    text = _BEARER.sub(r"\1 <token>", text)
    return _PHONE.sub("<phone>", text)


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, route template, status, duration, request id."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = "-"
        match_info = getattr(request, "match_info", None)
        resource = None if match_info is None else match_info.route.resource
        if resource is not None:
            route = resource.canonical
        self.logger.info(
            "%s %s %d %.1fms req=%s",
            request.method,
            route,
            response.status,
            time * 1000,
            request.get(keys.REQUEST_ID, "-"),
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class Redactor(logging.Formatter):
    """Wraps a handler's formatter: what it writes has personal data masked (the record
    itself is left alone, for the other handlers)."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "aiohttp.server" and record.msg == _CLIENT_ERROR:
            record = copy.copy(record)
            record.args = ("<client>",)
        return redact(self.inner.format(record))


def why(exc: BaseException) -> str:
    """An error for a log line: its type, and its cause's (and an HTTP status when it has one),
    never its message, which may quote what a customer wrote."""
    named = type(exc).__name__
    cause = exc.__cause__
    if cause is not None:
        named += f" from {type(cause).__name__}"
    status = getattr(cause if cause is not None else exc, "status_code", None)
    return named + (f" {status}" if isinstance(status, int) else "")


def stack(exc: BaseException) -> str:
    """Where ``exc`` was raised: its traceback's frames, without its message."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


def quiet_libraries() -> None:
    """Raise the libraries' loggers of ``QUIET`` to their least level (never lower them)."""
    for name, least in QUIET.items():
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < least:
            logger.setLevel(least)


def install_log_hygiene(root: logging.Logger | None = None) -> None:
    """``quiet_libraries``, and a ``Redactor`` around the formatter of each handler of
    ``root`` (once)."""
    quiet_libraries()
    for handler in (root or logging.getLogger()).handlers:
        if not isinstance(handler.formatter, Redactor):
            handler.setFormatter(Redactor(handler.formatter))


__all__ = [
    "QUIET",
    "AccessLogger",
    "Redactor",
    "install_log_hygiene",
    "quiet_libraries",
    "redact",
    "stack",
    "why",
]
