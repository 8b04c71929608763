"""Admission tokens of flash sales: HS256 JWTs (``typ`` "admission", ``sub`` the user,
``show``, ``num`` the queue number, ``iat``, ``exp``) signed with a key derived from the
gateway's secret, so they are never mistaken for access tokens nor the other way round.

    tokens = AdmissionTokens(secret)
    token = tokens.issue(show_id, user_id, number, admitted_ms, expires_ms)
    number = tokens.verify(show_id, user_id, token, now_ms)   # or AdmissionRefused (403)

``verify`` checks only the token itself; whether it is still the user's current admission is
the waiting room's to say (``WaitingRoom.check_admission``).
"""

from __future__ import annotations

import hashlib
import hmac
import math

import jwt

from gateway.errors import ApiError

ALGORITHM = "HS256"
TOKEN_TYPE = "admission"
HEADER = "Admission-Token"


class AdmissionRefused(ApiError):
    status, code = 403, "admission_required"


class AdmissionTokens:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(
            secret.encode(), b"seatserver admission tokens", hashlib.sha256
        ).digest()

    def issue(
        self, show_id: int, user_id: int, number: int, admitted_ms: int, expires_ms: int
    ) -> str:
        claims = {
            "typ": TOKEN_TYPE,
            "sub": str(user_id),
            "show": show_id,
            "num": number,
            "iat": admitted_ms // 1000,
            "exp": math.ceil(expires_ms / 1000),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, show_id: int, user_id: int, token: str | None, now_ms: int) -> int:
        """The queue number of ``token`` if it admits ``user_id`` to ``show_id`` at
        ``now_ms``; ``AdmissionRefused`` (``admission_required``, ``admission_invalid`` or
        ``admission_expired``) otherwise."""
        where = {"show_id": show_id}
        if not token:
            raise AdmissionRefused(
                "this show is in a flash sale: wait your turn in the queue, then send the "
                f"admission token it gives you in the {HEADER} header",
                {**where, "header": HEADER},
            )
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={
                    "require": ["exp", "sub", "show", "num", "typ"],
                    "verify_exp": False,  # checked below against the caller's clock
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise AdmissionRefused(
                "the admission token is not valid", where, code="admission_invalid"
            ) from None
        if claims.get("typ") != TOKEN_TYPE or claims.get("show") != show_id:
            raise AdmissionRefused(
                "this admission token is for another show", where, code="admission_invalid"
            )
        if claims.get("sub") != str(user_id):
            raise AdmissionRefused(
                "this admission token belongs to someone else", where, code="admission_invalid"
            )
        if now_ms >= int(claims["exp"]) * 1000:
            raise AdmissionRefused(
                "the admission token has expired: join the queue again",
                where,
                code="admission_expired",
            )
        number = claims["num"]
        if not isinstance(number, int):
            raise AdmissionRefused(
                "the admission token is not valid", where, code="admission_invalid"
            )
        return number
