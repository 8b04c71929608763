"""The SMS channel: Twilio's Messages API through Twilio's Python SDK, asynchronously.

    >>> sms = TwilioNotifier(TwilioConfig("AC…", token, from_number="+15005550006"))
    >>> sid = await sms.send(SmsMessage("+14155550100", "Your show starts at 7:30 PM"))

``api_base`` points the SDK elsewhere than ``https://api.twilio.com`` (the loopback server of
``notifications.twilio_catcher`` in development and tests). A 429 or 5xx answer is transient
(honouring Retry-After), an error JSON with a 4xx is permanent (an invalid or unreachable
number, say), except a refused authentication (401), which a corrected setting mends. Twilio's
error messages quote the phone number: only the error's status and code are kept.

``settle`` finds a text Twilio already has, whatever its state. Twilio creates a text "queued"
(or "accepted") with no ``date_sent`` and dates it only once it is sent, so a DateSent filter
would miss one still queued and the text would go twice: the look-up lists the texts to the
number (from our number, when we have one) without a date filter and keeps those created since
the attempt began, reading at most ``settle_pages`` pages of ``settle_page_size``; when more
are listed than that, it cannot tell and says so (``OutcomeUnknown``: given up, never doubled).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from notifications.notifier import (
    OutcomeUnknown,
    PermanentError,
    SmsMessage,
    TransientError,
)

TWILIO_API = "https://api.twilio.com"

# The SDK logs each request's URL and query at INFO, which names the phone number of a look-up:
# its own logger, which says nothing.
_QUIET = logging.Logger("notifications.sms.http", level=logging.CRITICAL + 1)
_QUIET.propagate = False
_NOT_SENT = frozenset({"failed", "undelivered", "canceled"})  # Twilio will not send these
_RETRY_AFTER: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_retry_after", default=None
)


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    from_number: str | None = None  # E.164, or
    messaging_service_sid: str | None = None  # "MG…"
    api_base: str | None = None  # unset: Twilio's
    timeout_s: float = 15.0
    settle_page_size: int = 200  # texts per page when settling a send in doubt (up to 1,000)
    settle_pages: int = 5  # pages read at most; beyond them a settle cannot tell

    def __post_init__(self) -> None:
        if not (self.from_number or self.messaging_service_sid):
            raise ValueError("a Twilio sender needs a from number or a messaging service sid")
        if not (1 <= self.settle_page_size <= 1000 and self.settle_pages >= 1):
            raise ValueError("settle reads 1 to 1,000 texts a page, and at least one page")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class _HttpClient(AsyncTwilioHttpClient):
    """The SDK's aiohttp client, remembering the last answer's Retry-After for this task."""

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        response = await super().request(*args, **kwargs)
        _RETRY_AFTER.set(_seconds(response.headers.get("Retry-After")))
        return response


class TwilioNotifier:
    channel = "sms"

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config
        self._http: _HttpClient | None = None
        self._client: Client | None = None

    def _rest(self) -> Client:
        """The SDK's client, made on first use (its aiohttp session needs a running loop)."""
        if self._client is None:
            self._http = _HttpClient(timeout=self.config.timeout_s, logger=_QUIET)
            # A non-empty environment: the SDK would read TWILIO_* from os.environ otherwise.
            self._client = Client(
                self.config.account_sid,
                self.config.auth_token,
                http_client=self._http,
                environment={"_": ""},
            )
            self._client.api.base_url = (self.config.api_base or TWILIO_API).rstrip("/")
        return self._client

    def _sender(self) -> dict[str, str]:
        if self.config.messaging_service_sid:
            return {"messaging_service_sid": self.config.messaging_service_sid}
        assert self.config.from_number is not None
        return {"from_": self.config.from_number}

    async def send(self, message: SmsMessage) -> str:
        """Hand the text to Twilio; its message SID ("SM…")."""
        _RETRY_AFTER.set(None)
        try:
            created = await self._rest().messages.create_async(
                to=message.to, body=message.body, **self._sender()
            )
        except TwilioRestException as exc:
            raise _sorted(exc) from None
        except aiohttp.ClientConnectorError as exc:  # nothing reached Twilio
            raise TransientError(f"Twilio unreachable ({type(exc).__name__})") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OutcomeUnknown(f"no answer from Twilio ({type(exc).__name__})") from None
        return str(created.sid)

    async def settle(self, message: SmsMessage, since: dt.datetime) -> str | None:
        """The SID of a text to the same number with the same body created since ``since``
        (queued or sent: anything but failed or cancelled), as Twilio lists them; None if there
        is none; ``OutcomeUnknown`` if Twilio cannot say or lists more than ``settle`` reads."""
        after = since - dt.timedelta(minutes=1)  # the clocks of Twilio and ours may differ
        try:
            return await self._look_up(message, after)
        except TwilioRestException as exc:
            raise OutcomeUnknown(f"Twilio could not list messages ({exc.status})") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"Twilio unreachable ({type(exc).__name__})") from None

    async def _look_up(self, message: SmsMessage, after: dt.datetime) -> str | None:
        sender = {"from_": self.config.from_number} if self.config.from_number else {}
        messages = self._rest().messages
        page = await messages.page_async(
            to=message.to, page_size=self.config.settle_page_size, **sender
        )
        for _ in range(self.config.settle_pages):
            for listed in page:
                if self._same(listed, message, after):
                    return str(listed.sid)
            if not page.next_page_url:
                return None
            page = await page.next_page_async()
        raise OutcomeUnknown(
            f"Twilio lists more texts to the number than {self.config.settle_pages} pages"
        )

    def _same(self, listed: Any, message: SmsMessage, after: dt.datetime) -> bool:
        """Whether ``listed`` is ``message`` sent by us since ``after``, not failed."""
        created = listed.date_created
        service = self.config.messaging_service_sid
        return (
            listed.body == message.body
            and listed.status not in _NOT_SENT
            and (created is None or created >= after)
            and (service is None or listed.messaging_service_sid == service)
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = self._client = None


def _sorted(exc: TwilioRestException) -> Exception:
    status = int(exc.status or 0)
    what = f"Twilio answered {status}" + (f" (error {exc.code})" if exc.code else "")
    if status == 429 or status >= 500:
        return TransientError(what, retry_after=_RETRY_AFTER.get())
    if status == 401:
        return TransientError(what + ": check the account SID and auth token")
    return PermanentError(what)
