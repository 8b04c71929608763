"""The notifier interface: one per channel (email, SMS, push), each sending one message and
saying what became of it.

    NotifierError
     ├── TransientError      try again later (optionally not before ``retry_after`` seconds)
     │    └── OutcomeUnknown  the request may have reached the provider: settle it first
     └── PermanentError      do not try again
          └── DeviceGone      the push service no longer knows the device: forget it

``send`` returns the provider's id of what it accepted. ``settle`` is asked, before a message
is sent again after an attempt whose outcome was never recorded (a worker crashed between the
send and the record, or the answer was lost), whether the provider already has it: it returns
the provider id if so, None if not (send it), or raises ``OutcomeUnknown`` when the provider
cannot tell (the message is then given up rather than risk sending it twice).

Errors carry no personal data: no address, phone number or device token (``redact`` scrubs
what a library put in its message).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Protocol


class NotifierError(Exception):
    """A message could not be sent."""


class TransientError(NotifierError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutcomeUnknown(TransientError):
    """The request may or may not have been accepted."""


class PermanentError(NotifierError):
    pass


class DeviceGone(PermanentError):
    pass


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164
    body: str


@dataclass(frozen=True)
class PushMessage:
    token: str  # the device's FCM registration token
    platform: str  # "web", "android" or "ios"
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)
    collapse_id: str = ""  # the same for every attempt: a device shows one notification
    link: str = ""  # a relative link the notification opens (web)


class Notifier(Protocol):
    channel: str

    async def send(self, message: Any) -> str:
        """Send one message; the provider's id of it."""
        ...

    async def settle(self, message: Any, since: dt.datetime) -> str | None:
        """The provider id of ``message`` if it was accepted since ``since``, else None;
        ``OutcomeUnknown`` if the provider cannot tell."""
        ...

    async def close(self) -> None: ...


_EMAIL = re.compile(r"[^\s<>\"'@,;:]+@[^\s<>\"'@,;:]+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_TOKEN = re.compile(r"[A-Za-z0-9_:\-]{40,}")


def redact(text: str) -> str:
    """``text`` with anything that looks like an email address, a phone number or a device
    token replaced, for errors that are stored and logged."""
    text = _EMAIL.sub("<email>", text)
    text = _TOKEN.sub("<token>", text)
    return _PHONE.sub(_number, text)[:500]


def _number(found: re.Match[str]) -> str:
    """A run of digits long enough to be a phone number (not an SMTP code like 550 5.1.1)."""
    text = found.group(0)
    return "<number>" if sum(c.isdigit() for c in text) >= 7 else text
