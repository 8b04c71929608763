"""A loopback Firebase Cloud Messaging HTTP v1 API and the OAuth2 token endpoint its service
accounts use.

``POST /token`` takes ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and an
``assertion``: a JWT signed RS256 by a service account the catcher trusts (``trust``), checked
like Google checks it (the key id, the signature, ``iss``, ``aud`` = this endpoint, a messaging
``scope``, ``iat``/``exp`` at most an hour apart and not expired); it answers an access token
(``{"access_token", "expires_in", "token_type": "Bearer"}``) or OAuth's error JSON.
``POST /v1/projects/{project}/messages:send`` wants that bearer token, for that project, and a
message shaped as the v1 API documents it (exactly one target; string data without reserved
keys; known fields of notification, android, webpush and apns); it answers ``{"name":
"projects/…/messages/…"}`` or Google's error JSON (``INVALID_ARGUMENT`` with field violations,
``UNAUTHENTICATED``, ``PERMISSION_DENIED``, ``NOT_FOUND``/``UNREGISTERED``,
``RESOURCE_EXHAUSTED`` and ``UNAVAILABLE`` with Retry-After).
"""

from __future__ import annotations

import json
import secrets
import time
from collections import deque
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notifications.catchers import CatcherServer
from notifications.fcm_rules import GRANT_TYPE, SCOPES, Invalid, check_request

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_FCM_CODE = {404: "UNREGISTERED", 429: "QUOTA_EXCEEDED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def new_service_account(project_id: str, token_uri: str) -> dict[str, Any]:
    """A service account's JSON key with a fresh RSA key, for a catcher to trust."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": f"notifier@{project_id}.iam.gserviceaccount.com",
        "client_id": str(secrets.randbelow(10**20)),
        "token_uri": token_uri,
    }


def google_error(
    status: int,
    message: str,
    *,
    fcm_code: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    details: list[dict[str, Any]] = []
    if fcm_code:
        details.append({"@type": _FCM_ERROR, "errorCode": fcm_code})
    if field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        )
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS[status]}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status, headers=headers)


def _oauth_error(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)


class FcmCatcher(CatcherServer):
    def __init__(self, *, record: Path | None = None, token_ttl_s: int = 3599) -> None:
        super().__init__(record)
        self._accounts: dict[str, Any] = {}  # private_key_id → notifications.push.ServiceAccount
        self._tokens: dict[str, tuple[str, float]] = {}  # access token → (project, expiry)
        self.token_ttl_s = token_ttl_s
        self.unregistered: set[str] = set()
        self._failures: deque[tuple[int, float | None]] = deque()
        self.token_requests = 0
        self.send_requests = 0

    def trust(self, account: Any) -> None:
        """Accept assertions signed by ``account`` (a ``notifications.push.ServiceAccount``)."""
        self._accounts[account.private_key_id] = account

    def unregister(self, token: str) -> None:
        """Answer 404 ``UNREGISTERED`` for pushes to ``token`` (the app was uninstalled)."""
        self.unregistered.add(token)

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``count`` sends with ``status`` (429 or 5xx)."""
        self._failures.extend([(status, retry_after)] * count)

    def revoke_tokens(self) -> None:
        """Forget every access token issued (as if they expired early)."""
        self._tokens.clear()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        if request.content_type != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request", "Bad Request")
        form = await request.post()
        if form.get("grant_type") != GRANT_TYPE:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type")
        assertion = str(form.get("assertion") or "")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            return _oauth_error("invalid_grant", "Invalid JWT: malformed")
        account = self._accounts.get(str(header.get("kid")))
        if header.get("alg") != "RS256" or account is None:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        public = serialization.load_pem_private_key(account.private_key.encode(), None).public_key()
        try:
            claims = jwt.decode(
                assertion,
                public,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=self.url + "/token",
                issuer=account.client_email,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
                leeway=60,
            )
        except jwt.InvalidSignatureError:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        except jwt.InvalidTokenError as exc:
            return _oauth_error("invalid_grant", f"Invalid JWT: {type(exc).__name__}")
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            return _oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived token")
        if not set(str(claims["scope"]).split()) & SCOPES:
            return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience")
        token = "ya29.local-" + secrets.token_urlsafe(32)
        self._tokens[token] = (account.project_id, time.monotonic() + self.token_ttl_s)
        return web.json_response(
            {"access_token": token, "expires_in": self.token_ttl_s, "token_type": "Bearer"}
        )

    async def _send(self, request: web.Request) -> web.Response:
        self.send_requests += 1
        project = request.match_info["project"]
        bearer = request.headers.get("Authorization", "")
        issued = self._tokens.get(bearer.removeprefix("Bearer ")) if bearer else None
        if issued is None or issued[1] < time.monotonic():
            return google_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        if issued[0] != project:
            return google_error(
                403,
                f"Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project}'",
            )
        try:
            raw = json.loads(await request.read())
            message, validate_only = check_request(raw, request.content_type)
        except (ValueError, UnicodeDecodeError):
            return google_error(400, "Invalid JSON payload received.")
        except Invalid as exc:
            return google_error(400, exc.message, fcm_code="INVALID_ARGUMENT", field=exc.field)
        if self._failures:
            status, after = self._failures.popleft()
            headers = {"Retry-After": str(after)} if after is not None else None
            return google_error(
                status,
                "The service is unavailable.",
                fcm_code=_FCM_CODE[status],
                headers=headers,
            )
        target = message.get("token")
        if target in self.unregistered:
            return google_error(404, "Requested entity was not found.", fcm_code="UNREGISTERED")
        name = f"projects/{project}/messages/{'fake_message_id' if validate_only else '0:'}"
        if validate_only:
            return web.json_response({"name": name})
        name += f"{int(time.time() * 1000)}%{secrets.token_hex(8)}"
        await self.keep({"name": name, "project": project, "message": message})
        return web.json_response({"name": name})
