"""Accounts on the gateway side: argon2 password hashes, short-lived JWT access tokens, rotating
refresh tokens, and the principal of a request.

An access token is an HS256 JWT (``sub`` the user id, ``role``, ``jti``, ``exp``); it lives
``access_token_ttl_s`` (15 minutes by default). A refresh token is 32 random bytes, kept in
Postgres only as its SHA-256; each refresh replaces it with a new one of the same family, and a
replaced token presented again (a stolen copy) revokes the family. Logging out revokes the
family and puts the access token's ``jti`` on a Redis deny list until it expires; deleting an
account puts ``user:<id>`` there, which denies every access token of that user.

A request costs no Redis round trip for its token: verified tokens are remembered (until they
expire, at most ``TOKEN_CACHE`` of them), and every gateway process keeps the deny list in
memory, loaded at start and fed by the ``<prefix>auth:revoked`` channel that a logout publishes
on (reloaded whenever that subscription reconnects).

    principal = await request.app[AUTH].principal(request)     # None for a visitor
    principal = await require_user(request, "admin")            # 401 / 403 otherwise
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

import storage
from gateway import keys
from gateway.config import GatewayConfig
from gateway.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
TOKEN_CACHE = 100_000  # verified access tokens remembered per process
RESUBSCRIBE_S = 1.0
RESHARE_S = 1.0  # how often denies Redis refused are offered to it again
ISSUER = "seatserver"


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: str
    jti: str
    expires_at: int

    @property
    def is_ops(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int

    def body(self, user: storage.User) -> dict[str, Any]:
        return {
            "user": user.public(),
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


def _digest(refresh_token: str) -> bytes:
    return hashlib.sha256(refresh_token.encode()).digest()


class Auth:
    def __init__(self, config: GatewayConfig, pool: Any, redis: Any) -> None:
        self._config = config
        self.keyring = config.keyring
        self._pool = pool
        self._redis = redis
        self._hasher = PasswordHasher(
            time_cost=config.argon2_time_cost, memory_cost=config.argon2_memory_kib
        )
        # A real hash to verify against when the email is unknown, so both take as long.
        self._dummy = self._hasher.hash(secrets.token_hex(16))
        self._verified: dict[str, Principal] = {}
        # The header every token signed here starts with, and the signing key, ready to copy.
        self._header = jwt.encode({}, "x" * 32, algorithm=ALGORITHM).partition(".")[0]
        self._mac = hmac.new(config.jwt_secret.encode(), digestmod=hashlib.sha256)
        self._denied: dict[str, int] = {}  # jti -> expiry (epoch seconds)
        # Denies made here that Redis refused, so the other gateways do not know them yet:
        # offered to Redis again every RESHARE_S until it takes them or they expire.
        self._unshared: dict[str, int] = {}
        self._listener: asyncio.Task[None] | None = None
        self._resharer: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    # -- the deny list ------------------------------------------------------------------------

    @property
    def _channel(self) -> str:
        return f"{self._config.redis_prefix}auth:revoked"

    async def start(self) -> None:
        """Load the deny list and follow logouts of every gateway process."""
        self._listener = asyncio.create_task(self._follow())
        self._resharer = asyncio.create_task(self._reshare())
        await asyncio.wait_for(self._listening.wait(), 10)

    async def close(self) -> None:
        for task in (self._listener, self._resharer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _follow(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                await self._load_denied()  # after subscribing: nothing falls in between
                self._listening.set()
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        jti, _, expires = message["data"].decode().partition(" ")
                        self._deny(jti, int(expires or 0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: subscribe and reload again
                log.warning("the revoked-token channel failed (%s); resubscribing", exc)
                await asyncio.sleep(RESUBSCRIBE_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _load_denied(self) -> None:
        prefix = self._denied_key("")
        async for key in self._redis.scan_iter(match=prefix + "*", count=1000):
            ttl = await self._redis.ttl(key)
            if ttl > 0:
                self._deny(key.decode().removeprefix(prefix), int(time.time()) + ttl)

    async def _share(self, entry: str, expires_at: int) -> None:
        """Tell every gateway of a deny made here (a key for those starting, a message for
        those running); kept to be offered again when Redis refuses, and the error raised."""
        ttl = max(1, expires_at - int(time.time()))
        try:
            await self._redis.set(self._denied_key(entry), "1", ex=ttl)
            await self._redis.publish(self._channel, f"{entry} {expires_at}")
        except Exception:
            self._unshared[entry] = expires_at
            raise
        self._unshared.pop(entry, None)

    async def _reshare(self) -> None:
        while True:
            await asyncio.sleep(RESHARE_S)
            now = int(time.time())
            for entry, expires_at in list(self._unshared.items()):
                if expires_at <= now:  # every token it denied has expired anyway
                    self._unshared.pop(entry, None)
                    continue
                try:
                    await self._share(entry, expires_at)
                except Exception as exc:
                    log.warning("a deny is still not shared through Redis (%s)", type(exc).__name__)
                    break  # Redis is still away: the rest waits for the next round
                log.info("a deny Redis refused earlier is now shared with every gateway")

    def _deny(self, jti: str, expires_at: int) -> None:
        now = int(time.time())
        if len(self._denied) > TOKEN_CACHE:
            self._denied = {j: e for j, e in self._denied.items() if e > now}
        self._denied[jti] = expires_at  # checked after _verify: remembered tokens too

    # -- passwords ----------------------------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify_password(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash or self._dummy, password)
            except (VerificationError, InvalidHashError):
                return False

        ok = await asyncio.to_thread(check)
        return ok and password_hash is not None

    # -- tokens -------------------------------------------------------------------------------

    def access_token(self, user: storage.User, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": ISSUER,
            "sub": str(user.id),
            "role": user.role,
            "jti": uuid.uuid4().hex,
            "iat": issued,
            "exp": issued + self._config.access_token_ttl_s,
            "typ": "access",
        }
        return jwt.encode(claims, self._config.jwt_secret, algorithm=ALGORITHM)

    async def issue(self, conn: Any, user: storage.User, family: uuid.UUID | None = None) -> Tokens:
        refresh = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self._config.refresh_token_ttl_s)
        await storage.add_refresh_token(
            conn, _digest(refresh), user.id, family or uuid.uuid4(), expires
        )
        return Tokens(self.access_token(user), refresh, self._config.access_token_ttl_s)

    async def refresh(self, refresh_token: str) -> tuple[storage.User, Tokens]:
        """Rotate a refresh token; a replaced or revoked one revokes its whole family."""
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                found = await storage.take_refresh_token(conn, _digest(refresh_token))
                fresh = found is not None and found.revoked_at is None and found.replaced_at is None
                if fresh and found is not None and found.expires_at > dt.datetime.now(dt.UTC):
                    user = await storage.get_user(conn, found.user_id, keyring=self.keyring)
                    return user, await self.issue(conn, user, found.family)
            if found is None:
                raise Unauthorized("unknown refresh token", code="invalid_token")
            if not fresh:  # committed on its own: the refusal must not roll it back
                await storage.revoke_family(conn, found.family)
                raise Unauthorized("this refresh token was already used", code="token_reused")
            raise Unauthorized("the refresh token expired", code="token_expired")

    async def logout(self, principal: Principal, refresh_token: str | None) -> None:
        if refresh_token:
            async with self._pool.acquire() as conn:
                family = await storage.family_of(conn, _digest(refresh_token))
                if family is not None and family[0] == principal.user_id:
                    await storage.revoke_family(conn, family[1])
        self._deny(principal.jti, principal.expires_at)
        await self._share(principal.jti, principal.expires_at)

    async def deny_user(self, user_id: int) -> None:
        """Refuse every access token of ``user_id`` from now on (a deleted account): for one
        token lifetime, after which none issued before is still valid. Here at once, whatever
        Redis does; when Redis refuses, the error is raised and the deny is offered to it again
        every ``RESHARE_S`` while this process runs."""
        entry = f"user:{user_id}"
        expires = int(time.time()) + self._config.access_token_ttl_s
        self._deny(entry, expires)
        await self._share(entry, expires)

    def _denied_key(self, jti: str) -> str:
        return f"{self._config.redis_prefix}denied:{jti}"

    def decode(self, token: str) -> Principal:
        claims = self._our_claims(token)
        if claims is None:  # not shaped like ours: PyJWT says what is wrong with it
            try:
                claims = jwt.decode(
                    token,
                    self._config.jwt_secret,
                    algorithms=[ALGORITHM],
                    issuer=ISSUER,
                    options={"require": ["exp", "sub", "jti", "iss"]},
                )
            except jwt.ExpiredSignatureError as exc:
                raise Unauthorized("the access token expired", code="token_expired") from exc
            except jwt.InvalidTokenError as exc:
                raise Unauthorized("the access token is not valid", code="invalid_token") from exc
        sub, role = claims.get("sub"), claims.get("role")
        if claims.get("typ") != "access" or not str(sub).isdigit() or role not in storage.ROLES:
            raise Unauthorized("the access token is not valid", code="invalid_token")
        return Principal(int(sub), role, str(claims["jti"]), int(claims["exp"]))

    def _our_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token with exactly the header this class signs, checked in a few
        microseconds (PyJWT takes ten times as long: it matters for a flash sale's first
        requests); None for any other token, which ``decode`` leaves to PyJWT."""
        head, _, rest = token.partition(".")
        body, _, signature = rest.partition(".")
        if head != self._header or not body or not signature or "." in signature:
            return None
        mac = self._mac.copy()
        mac.update(f"{head}.{body}".encode())
        expected = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
        if not hmac.compare_digest(expected, signature):
            raise Unauthorized("the access token is not valid", code="invalid_token")
        try:
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            raise Unauthorized("the access token is not valid", code="invalid_token") from None
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
            raise Unauthorized("the access token is not valid", code="invalid_token")
        expires = claims.get("exp")
        if not isinstance(expires, int) or "jti" not in claims or "sub" not in claims:
            raise Unauthorized("the access token is not valid", code="invalid_token")
        if expires <= time.time():
            raise Unauthorized("the access token expired", code="token_expired")
        return claims

    def _verify(self, token: str) -> Principal:
        """``decode``, remembered until the token expires."""
        known = self._verified.get(token)
        if known is not None and known.expires_at > time.time():
            return known
        principal = self.decode(token)
        if len(self._verified) >= TOKEN_CACHE:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    async def principal(self, request: web.Request) -> Principal | None:
        """The request's user, or None for a visitor without an Authorization header."""
        if keys.PRINCIPAL in request:
            cached: Principal | None = request[keys.PRINCIPAL]
            return cached
        header = request.headers.get("Authorization")
        found: Principal | None = None
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("use 'Authorization: Bearer <token>'", code="invalid_token")
            found = self.verify(token.strip())
        request[keys.PRINCIPAL] = found
        return found

    def verify(self, token: str) -> Principal:
        """The principal of an access token (from a header or a websocket's first message):
        401 when it is not valid, expired or logged out."""
        found = self._verify(token)
        if found.jti in self._denied:
            raise Unauthorized("this access token was logged out", code="token_revoked")
        if f"user:{found.user_id}" in self._denied:
            raise Unauthorized("this account was deleted", code="token_revoked")
        return found


async def require_user(request: web.Request, *roles: str) -> Principal:
    """The logged-in principal, refused with 401 when absent and 403 when of another role."""
    principal = await request.app[keys.AUTH].principal(request)
    if principal is None:
        raise Unauthorized("log in first", code="unauthorized")
    if roles and principal.role not in roles:
        raise Forbidden(f"this needs the role {' or '.join(roles)}", {"role": principal.role})
    return principal


async def require_theater_admin(request: web.Request, theater_id: int) -> Principal:
    """An ops admin, or a theater admin of ``theater_id``."""
    principal = await require_user(request, "admin", "theater_admin")
    if principal.is_ops:
        return principal
    async with request.app[keys.POOL].acquire() as conn:
        if await storage.runs_theater(conn, principal.user_id, theater_id):
            return principal
    raise Forbidden("you are not an admin of this theater", {"theater_id": theater_id})
