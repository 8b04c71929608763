"""Short-lived signed statements the gateway hands out and later takes back: price quotes and
step-up verifications. HS256 JWTs under a key derived from the gateway's secret and the
statement's purpose, so one kind can never pass for another (nor for an access token).

    quotes = Signed(secret, "quote")
    token = quotes.issue({"show": 7, "sub": "42", "prices": {...}}, ttl_s=600, now=time.time())
    claims = quotes.read(token, now=time.time())   # or Unreadable("invalid" / "expired")
"""

from __future__ import annotations

import hashlib
import hmac
import math
from typing import Any

import jwt

ALGORITHM = "HS256"


class Unreadable(Exception):
    """A token that is not ours, was altered, or has expired (``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Signed:
    def __init__(self, secret: str, purpose: str) -> None:
        self.purpose = purpose
        label = f"seatserver {purpose} tokens".encode()
        self._key = hmac.new(secret.encode(), label, hashlib.sha256).digest()

    def issue(self, claims: dict[str, Any], *, ttl_s: float, now: float) -> str:
        body = {**claims, "typ": self.purpose, "iat": int(now), "exp": math.ceil(now + ttl_s)}
        return jwt.encode(body, self._key, algorithm=ALGORITHM)

    def read(self, token: str, *, now: float) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "typ"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise Unreadable("invalid") from None
        if claims.get("typ") != self.purpose:
            raise Unreadable("invalid")
        if claims["exp"] <= now:
            raise Unreadable("expired")
        return claims
