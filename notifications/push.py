"""The push channel: Firebase Cloud Messaging's HTTP v1 API, with an OAuth2 access token from a
service account.

    >>> account = ServiceAccount.from_file(Path("service-account.json"))
    >>> push = FcmNotifier(FcmConfig(account))
    >>> name = await push.send(PushMessage(token, "android", "Your tickets", "Dune, 7:30 PM"))

The token: a JWT assertion (RS256, signed with the service account's private key, naming the
account, the messaging scope and the token endpoint) traded at the account's ``token_uri``
(``urn:ietf:params:oauth:grant-type:jwt-bearer``); kept until a minute before it expires, and
fetched anew once when FCM answers 401. Answers: 404 or ``UNREGISTERED`` (and a token FCM calls
invalid, or another sender's) is ``DeviceGone``; 429 and 5xx are transient, honouring
Retry-After; other 4xx are permanent. FCM cannot tell whether it took a message whose answer
was lost, so such a message is not sent again (``settle`` raises ``OutcomeUnknown``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from notifications.notifier import (
    DeviceGone,
    OutcomeUnknown,
    PermanentError,
    PushMessage,
    TransientError,
)

FCM_API = "https://fcm.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_MARGIN_S = 60.0  # a token is fetched anew this long before it expires
ASSERTION_TTL_S = 3600  # the longest Google accepts


@dataclass(frozen=True)
class ServiceAccount:
    project_id: str
    client_email: str
    private_key: str  # PEM
    private_key_id: str
    token_uri: str

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> ServiceAccount:
        """From a service account's JSON key (as the Google Cloud console gives it)."""
        if info.get("type") != "service_account":
            raise ValueError("not a service account key (its type must be service_account)")
        try:
            return cls(
                project_id=str(info["project_id"]),
                client_email=str(info["client_email"]),
                private_key=str(info["private_key"]),
                private_key_id=str(info["private_key_id"]),
                token_uri=str(info["token_uri"]),
            )
        except KeyError as exc:
            raise ValueError(f"the service account key has no {exc.args[0]}") from None

    @classmethod
    def from_file(cls, path: Path) -> ServiceAccount:
        return cls.from_info(json.loads(path.read_text()))

    def assertion(self, now: float) -> str:
        """The signed JWT that asks the token endpoint for a messaging token."""
        issued = int(now)
        claims = {
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": issued,
            "exp": issued + ASSERTION_TTL_S,
        }
        return jwt.encode(
            claims, self.private_key, algorithm="RS256", headers={"kid": self.private_key_id}
        )


@dataclass(frozen=True)
class FcmConfig:
    account: ServiceAccount
    project_id: str | None = None  # unset: the service account's
    api_base: str | None = None  # unset: FCM's
    timeout_s: float = 15.0

    @property
    def send_url(self) -> str:
        base = (self.api_base or FCM_API).rstrip("/")
        return f"{base}/v1/projects/{self.project_id or self.account.project_id}/messages:send"


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def fcm_message(message: PushMessage) -> dict[str, Any]:
    """The v1 ``message`` object: the notification, string data, and the platform's own block
    with a collapse key, so a copy replaces rather than adds a notification."""
    body: dict[str, Any] = {
        "token": message.token,
        "notification": {"title": message.title, "body": message.body},
        "data": dict(message.data),
    }
    collapse = message.collapse_id
    if message.platform == "android":
        body["android"] = {"priority": "high", "ttl": "86400s"}
        if collapse:
            body["android"].update(collapse_key=collapse, notification={"tag": collapse})
    elif message.platform == "ios":
        body["apns"] = {"headers": {"apns-priority": "10"}}
        if collapse:
            body["apns"]["headers"]["apns-collapse-id"] = collapse[:64]
    else:
        body["webpush"] = {"headers": {"Urgency": "high", "TTL": "86400"}}
        if collapse:
            body["webpush"]["headers"]["Topic"] = collapse[:32]
            body["webpush"]["notification"] = {"tag": collapse}
    return body


class FcmNotifier:
    channel = "push"

    def __init__(self, config: FcmConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._token: tuple[str, float] | None = None  # (access token, monotonic expiry)
        self._token_lock = asyncio.Lock()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def access_token(self, *, renew: str | None = None) -> str:
        """A messaging token, fetched when there is none, it nearly expired, or it is
        ``renew`` (FCM refused it)."""
        async with self._token_lock:
            known = self._token
            if known and known[0] != renew and time.monotonic() < known[1] - TOKEN_MARGIN_S:
                return known[0]
            account = self.config.account
            form = {"grant_type": GRANT_TYPE, "assertion": account.assertion(time.time())}
            try:
                async with self._http().post(account.token_uri, data=form) as response:
                    answer = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise TransientError(f"token endpoint unreachable ({type(exc).__name__})") from None
            if status != 200 or not isinstance(answer, dict) or "access_token" not in answer:
                error = answer.get("error") if isinstance(answer, dict) else None
                raise TransientError(
                    f"token endpoint answered {status} ({error}): check the service account"
                )
            expires = time.monotonic() + float(answer.get("expires_in", 3600))
            self._token = (str(answer["access_token"]), expires)
            return self._token[0]

    async def send(self, message: PushMessage) -> str:
        """Hand the notification to FCM; the message's name ("projects/…/messages/…")."""
        payload = {"message": fcm_message(message)}
        token = await self.access_token()
        for renewed in (False, True):
            headers = {"Authorization": f"Bearer {token}"}
            try:
                async with self._http().post(
                    self.config.send_url, json=payload, headers=headers
                ) as response:
                    status = response.status
                    answer = await response.json(content_type=None)
                    retry_after = _seconds(response.headers.get("Retry-After"))
            except aiohttp.ClientConnectorError as exc:  # nothing reached FCM
                raise TransientError(f"FCM unreachable ({type(exc).__name__})") from None
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise OutcomeUnknown(f"no answer from FCM ({type(exc).__name__})") from None
            if status == 200 and isinstance(answer, dict) and "name" in answer:
                return str(answer["name"])
            if status == 401 and not renewed:
                token = await self.access_token(renew=token)
                continue
            raise _sorted(status, answer, retry_after)
        raise AssertionError("unreachable")

    async def settle(self, message: PushMessage, since: dt.datetime) -> str | None:
        raise OutcomeUnknown("FCM cannot say whether it took a message; not sent again")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None


def _fcm_code(answer: Any) -> tuple[str, str, bool]:
    """(status, FCM error code, whether a field violation names the token) of an error."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return "", "", False
    code, token_field = "", False
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        code = str(detail.get("errorCode") or code)
        for violation in detail.get("fieldViolations") or []:
            if isinstance(violation, dict) and violation.get("field") == "message.token":
                token_field = True
    return str(error.get("status") or ""), code, token_field


def _sorted(status: int, answer: Any, retry_after: float | None) -> Exception:
    state, code, token_field = _fcm_code(answer)
    what = f"FCM answered {status} {state or '-'}/{code or '-'}"
    if status == 404 or code in ("UNREGISTERED", "SENDER_ID_MISMATCH") or token_field:
        return DeviceGone(what)
    if status == 429 or status >= 500:
        return TransientError(what, retry_after=retry_after)
    if status in (401, 403):  # our credentials or the project's settings
        return TransientError(what + ": check the service account and project")
    return PermanentError(what)
