"""Access tokens: the quick check of our own tokens agrees with PyJWT on every token, good or
bad, and refuses what PyJWT refuses."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

import storage
from gateway.auth import ISSUER, Auth
from gateway.config import GatewayConfig
from gateway.errors import Unauthorized

SECRET = "unit-test-secret-" + "x" * 64


@pytest.fixture(scope="module")
def auth() -> Auth:
    config = GatewayConfig(
        database_url="postgresql://unused",
        redis_url="redis://unused",
        jwt_secret=SECRET,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    return Auth(config, None, None)


def _user(role: str = "customer") -> storage.User:
    return storage.User(7, "a@example.com", role, "A", None, "")


def _claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": "7",
        "role": "customer",
        "jti": "j",
        "iat": now,
        "exp": now + 30 * 86400,  # the parameters are made at collection, long before
        "typ": "access",
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _code(auth: Auth, token: str) -> str:
    try:
        auth.decode(token)
    except Unauthorized as exc:
        return exc.code
    return "ok"


def test_our_tokens_are_read(auth: Auth) -> None:
    principal = auth.decode(auth.access_token(_user("admin")))
    assert (principal.user_id, principal.role) == (7, "admin")


@pytest.mark.parametrize(
    ("claims", "key", "algorithm", "code"),
    [
        (_claims(), "another-secret-" + "y" * 64, "HS256", "invalid_token"),
        (_claims(exp=int(time.time()) - 1), SECRET, "HS256", "token_expired"),
        (_claims(iss="someone-else"), SECRET, "HS256", "invalid_token"),
        (_claims(jti=None), SECRET, "HS256", "invalid_token"),
        (_claims(exp=None), SECRET, "HS256", "invalid_token"),
        (_claims(sub="x"), SECRET, "HS256", "invalid_token"),
        (_claims(typ="refresh"), SECRET, "HS256", "invalid_token"),
        (_claims(role="root"), SECRET, "HS256", "invalid_token"),
        (_claims(), SECRET, "HS512", "invalid_token"),
    ],
)
def test_bad_tokens_are_refused(
    auth: Auth, claims: dict[str, object], key: str, algorithm: str, code: str
) -> None:
    assert _code(auth, jwt.encode(claims, key, algorithm=algorithm)) == code


def test_tampering_and_unsigned_tokens_are_refused(auth: Auth) -> None:
    good = auth.access_token(_user())
    head, body, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert _code(auth, f"{head}.{forged}.{signature}") == "invalid_token"
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    assert _code(auth, f"{none}.{body}.") == "invalid_token"
    assert _code(auth, f"{head}.{body}") == "invalid_token"
    assert _code(auth, f"{head}.{body}.{signature}.x") == "invalid_token"
    assert _code(auth, f"{head}.!!!.{signature}") == "invalid_token"
