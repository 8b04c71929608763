"""A loopback Twilio Messages API (``/2010-04-01/Accounts/{AccountSid}/Messages.json``): create
and list, as Twilio's SDK calls them, with Twilio's answers.

Strict like Twilio: HTTP basic auth AccountSid:AuthToken for the account in the path (401 error
20003), form-encoded parameters, ``To`` in E.164 (21604 missing, 21211 invalid), a ``From`` the
account owns (21603 missing, 21606 not its number) or a ``MessagingServiceSid`` it has (21701),
a ``Body`` (21602) of at most 1,600 characters (21617). A created message answers 201 with the
message resource ("SM…" SID, RFC 2822 dates); an error answers Twilio's error JSON
``{"code", "message", "more_info", "status"}``. Tests can make numbers refuse (21211, 21614) and
the next requests fail (429, 503 with Retry-After).

A message goes the way Twilio's does: created "queued" ("accepted" through a messaging service)
with ``date_sent`` null, it is "sent", with its ``date_sent``, only ``send_delay_s`` later (a
test may hold it queued). The list filters on To, From and DateSent (a message not yet sent has
no date and matches no DateSent filter), newest first (the unsent ones first), in pages
(PageSize up to 1,000, ``next_page_uri`` while more match).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from collections import deque
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from notifications.catchers import CatcherServer

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
BODY_LIMIT = 1600
_MESSAGES = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number is not a valid phone number.",
    21266: "'To' and 'From' number cannot be the same",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone "
    "number for this destination/account.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21701: "The Messaging Service Sid is invalid.",
}


def _error(status: int, code: int, headers: dict[str, str] | None = None) -> web.Response:
    body = {
        "code": code,
        "message": _MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)


def _rfc2822(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.UTC))


def _date(text: str) -> dt.datetime | None:
    for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


class TwilioCatcher(CatcherServer):
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_numbers: tuple[str, ...] = (),
        messaging_services: tuple[str, ...] = (),
        record: Path | None = None,
        send_delay_s: float = 0.5,
    ) -> None:
        super().__init__(record)
        self.send_delay_s = send_delay_s  # queued → sent after this long
        self.account_sid = account_sid
        self._auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.from_numbers = set(from_numbers)
        self.messaging_services = set(messaging_services)
        self.refused: dict[str, int] = {}  # number → error code (21211, 21614, …)
        self._failures: deque[tuple[int, float | None]] = deque()
        self.requests = 0  # create requests that reached the catcher, accepted or not
        self._stored: list[dict[str, Any]] = []  # the resources, as listed

    def refuse(self, number: str, code: int = 21211) -> None:
        """Answer 400 with ``code`` for texts to ``number``."""
        self.refused[number] = code

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``count`` create requests with ``status`` (429 or 5xx)."""
        self._failures.extend([(status, retry_after)] * count)

    def app(self) -> web.Application:
        app = web.Application()
        base = f"/{API_VERSION}/Accounts/{{sid}}"
        app.router.add_post(base + "/Messages.json", self._create)
        app.router.add_get(base + "/Messages.json", self._list)
        app.router.add_get(base + "/Messages/{message}.json", self._fetch)
        return app

    def _authorized(self, request: web.Request) -> bool:
        return (
            request.headers.get("Authorization") == self._auth
            and request.match_info["sid"] == self.account_sid
        )

    def _refusal(self, request: web.Request) -> web.Response | None:
        if not self._authorized(request):
            return _error(401, 20003, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        return None

    async def _create(self, request: web.Request) -> web.Response:
        self.requests += 1
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if self._failures:
            status, after = self._failures.popleft()
            headers = {"Retry-After": str(after)} if after is not None else None
            return _error(status, 20429 if status == 429 else 20500, headers)
        form = (
            await request.post()
            if request.content_type == ("application/x-www-form-urlencoded")
            else {}
        )
        to, body = str(form.get("To") or ""), str(form.get("Body") or "")
        sender, service = str(form.get("From") or ""), str(form.get("MessagingServiceSid") or "")
        code = self._check(to, body, sender, service)
        if code is not None:
            return _error(400, code)
        now = dt.datetime.now(dt.UTC)
        sid = "SM" + secrets.token_hex(16)
        resource = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": None,
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "num_media": "0",
            "num_segments": str(1 + (len(body) - 1) // 153 if len(body) > 160 else 1),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": to,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self._stored.append({**resource, "_at": now})
        await self.keep({"sid": sid, "to": to, "from": sender, "service": service, "body": body})
        return web.json_response(resource, status=201)

    def _check(self, to: str, body: str, sender: str, service: str) -> int | None:
        if not to:
            return 21604
        if not E164.fullmatch(to):
            return 21211
        if service:
            if service not in self.messaging_services:
                return 21701
        elif not sender:
            return 21603
        if sender and sender not in self.from_numbers:
            return 21606
        if sender == to:
            return 21266
        if not body:
            return 21602
        if len(body) > BODY_LIMIT:
            return 21617
        return self.refused.get(to)

    def _as_of(self, stored: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        """A stored message as Twilio would show it at ``now`` (with its "_at", "_sent")."""
        created: dt.datetime = stored["_at"]
        sent_at = created + dt.timedelta(seconds=self.send_delay_s)
        if now < sent_at:
            return {**stored, "_sent": None}
        return {
            **stored,
            "status": "sent",
            "date_sent": _rfc2822(sent_at),
            "date_updated": _rfc2822(sent_at),
            "_sent": sent_at,
        }

    async def _list(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        query = request.query
        now = dt.datetime.now(dt.UTC)
        found = [m for m in (self._as_of(s, now) for s in self._stored) if _matches(m, query)]
        # Newest first, as Twilio lists by date sent; those not yet sent first.
        found.sort(key=lambda m: (m["_sent"] is None, m["_sent"] or m["_at"], m["_at"]))
        found.reverse()
        size, number = _bounded(query.get("PageSize"), 50, 1, 1000), _bounded(query.get("Page"))
        start = size * number
        page = [_public(m) for m in found[start : start + size]]
        return web.json_response(
            {
                "messages": page,
                "start": start,
                "end": start + max(len(page) - 1, 0),
                "page": number,
                "page_size": size,
                "first_page_uri": self._page_uri(query, size, 0),
                "previous_page_uri": self._page_uri(query, size, number - 1) if number else None,
                "next_page_uri": (
                    self._page_uri(query, size, number + 1) if start + size < len(found) else None
                ),
                "uri": self._page_uri(query, size, number),
            }
        )

    def _page_uri(self, query: Any, size: int, number: int) -> str:
        filters = {k: query[k] for k in ("To", "From", "DateSent", "DateSent<", "DateSent>")
                   if k in query}  # fmt: skip
        params = urlencode({**filters, "PageSize": size, "Page": number,
                            "PageToken": f"PA{number * size}"})  # fmt: skip
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json?{params}"

    async def _fetch(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        now = dt.datetime.now(dt.UTC)
        for message in self._stored:
            if message["sid"] == request.match_info["message"]:
                return web.json_response(_public(self._as_of(message, now)))
        return web.json_response(
            {
                "code": 20404,
                "message": "The requested resource was not found",
                "more_info": "https://www.twilio.com/docs/errors/20404",
                "status": 404,
            },
            status=404,
        )


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _bounded(text: str | None, default: int = 0, low: int = 0, high: int = 10**6) -> int:
    try:
        return max(low, min(high, int(text))) if text else default
    except ValueError:
        return default


def _matches(message: dict[str, Any], query: Any) -> bool:
    """Whether ``message`` passes the list's filters; one not yet sent matches no DateSent."""
    if "To" in query and message["to"] != query["To"]:
        return False
    if "From" in query and message["from"] != query["From"]:
        return False
    sent: dt.datetime | None = message["_sent"]
    for key in ("DateSent>", "DateSent<", "DateSent"):
        if key in query:
            bound = _date(query[key])
            if sent is None or bound is None or not _DATE_SENT[key](sent, bound):
                return False
    return True


_DATE_SENT: dict[str, Callable[[dt.datetime, dt.datetime], bool]] = {
    "DateSent>": lambda at, bound: at >= bound,
    "DateSent<": lambda at, bound: at <= bound,
    "DateSent": lambda at, bound: at.date() == bound.date(),
}
