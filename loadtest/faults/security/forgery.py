"""What an attacker forges: access tokens expired, signed with another secret, unsigned or
changed under their signature, and payment-webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from loadtest.faults import model
from loadtest.faults.security.victim import Victim


def json_bytes(value: Any) -> bytes:
    """``value`` as the JSON bytes a request body or a token part carries."""
    return json.dumps(value).encode()


def b64url(raw: bytes) -> str:
    """Unpadded URL-safe base64, as a token's parts are written."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


def _signed(secret: str, account: model.Account, *, issued: float | None = None) -> str:
    """An access token for ``account`` made by the gateway's own code (``gateway.auth``),
    signed with ``secret``; issued ``issued`` (epoch seconds, default now). (The gateway,
    and storage, load only here: the rest of this module needs neither.)"""
    import storage
    from gateway.auth import Auth
    from gateway.config import GatewayConfig

    config = GatewayConfig(
        database_url="", redis_url="", jwt_secret=secret, argon2_time_cost=1, argon2_memory_kib=1024
    )
    user = storage.User(
        id=account.user_id,
        email=account.email,
        role="customer",
        display_name="",
        home_city_id=None,
        password_hash="",
    )
    if issued is None:
        issued = time.time()
    return Auth(config, None, None).access_token(user, now=issued)


@dataclass(frozen=True)
class Tokens:
    expired: str  # A's, signed with the gateway's secret, expired a minute ago
    other_secret: str  # A's, signed with another secret
    unsigned: str  # A's claims with the role admin, "alg": "none"
    tampered: str  # B's token with A's id in its payload, B's signature kept
    escalated: str  # B's token with the role admin in its payload, B's signature kept


def forge_tokens(plan: model.Plan, victim: Victim) -> Tokens:
    from gateway.config import GatewayConfig

    ttl = GatewayConfig.access_token_ttl_s
    a, b = victim.customer, victim.attacker
    head, _, signature = b.token.split(".")
    mine = _claims(b.token)
    header = b64url(json_bytes({"alg": "none", "typ": "JWT"}))
    return Tokens(
        expired=_signed(plan.jwt_secret, a, issued=time.time() - ttl - 60),
        other_secret=_signed("not-the-secret-" + secrets.token_hex(16), a),
        unsigned=f"{header}.{b64url(json_bytes({**_claims(a.token), 'role': 'admin'}))}.",
        tampered=f"{head}.{b64url(json_bytes({**mine, 'sub': str(a.user_id)}))}.{signature}",
        escalated=f"{head}.{b64url(json_bytes({**mine, 'role': 'admin'}))}.{signature}",
    )


def stripe_signature(secret: str, payload: bytes, at: int) -> str:
    """A ``Stripe-Signature`` header over ``payload`` at ``at`` (epoch seconds)."""
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256)
    return f"t={at},v1={mac.hexdigest()}"
