"""The fraud check inside checkout, the risk signals it reads, and the step-up it may ask for.

Every hold, release, booking and declined payment is counted in Redis windows per account,
device and address (``gateway.risksignals``). At checkout those counts, the card's city against
the theater's, the hold's age and the account's age make the feature row; the fraud model on
Serve scores it within 50 ms, or the rules do (``ml.fraud.rules``). The score decides, at the
gateway's thresholds: allow; verify (the customer proves it is them with their password, and
checks out again with the ``Step-Up-Token`` they get); or block. Every decision is kept with its
features and reasons for ops (``fraud_decisions``); a refused customer is told nothing of why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from typing import Any

from aiohttp import web

import storage
from gateway.errors import ApiError, Unauthorized
from gateway.ratelimit import client_address
from gateway.risksignals import RiskSignals
from gateway.showinfo import TtlCache
from gateway.signed import Signed, Unreadable
from ml.fraud.rules import Thresholds, rules_verdict
from storage import risk

log = logging.getLogger(__name__)

DEVICE_HEADER = "X-Device-Id"
STEP_UP_HEADER = "Step-Up-Token"
STEP_UP_TTL_S = 600
PLACES_TTL_S = 300.0


class CheckoutRefused(ApiError):
    status, code = 403, "checkout_refused"


class VerificationRequired(ApiError):
    status, code = 403, "verification_required"


def device_of(request: web.Request) -> str | None:
    """The client's device: the id the page keeps in its storage, else its user agent."""
    device = request.headers.get(DEVICE_HEADER, "").strip()[:128]
    if device:
        return "id:" + device
    agent = request.headers.get("User-Agent", "").strip()
    return "ua:" + hashlib.sha256(agent.encode()).hexdigest()[:16] if agent else None


class FraudCheck:
    def __init__(self, pool: Any, redis: Any, models: Any, config: Any) -> None:
        self._pool, self._models = pool, models
        self._hops = config.forwarded_hops
        self.signals = RiskSignals(redis, config.redis_prefix + "risk:")
        self.thresholds = Thresholds(models.config.fraud_verify_at, models.config.fraud_block_at)
        self._step_ups = Signed(config.jwt_secret, "step-up")

        async def city(city_id: int) -> tuple[float, float] | None:
            async with pool.acquire() as conn:
                row = await conn.fetchrow(
                    """SELECT avg(latitude) AS lat, avg(longitude) AS lon
                       FROM theaters WHERE city_id = $1""",
                    city_id,
                )
            return None if row is None or row["lat"] is None else (row["lat"], row["lon"])

        async def theater_city(theater_id: int) -> int:
            async with pool.acquire() as conn:
                found: int = await conn.fetchval(
                    "SELECT city_id FROM theaters WHERE id = $1", theater_id
                )
            return found

        async def joined(user_id: int) -> float:
            async with pool.acquire() as conn:
                at = await conn.fetchval("SELECT created_at FROM users WHERE id = $1", user_id)
            return at.timestamp() if at is not None else time.time()

        self._cities = TtlCache(city, PLACES_TTL_S)
        self._theater_city = TtlCache(theater_city, PLACES_TTL_S)
        self._joined = TtlCache(joined, PLACES_TTL_S)

    # -- what happens, counted --------------------------------------------------------------

    def _who(self, request: web.Request) -> tuple[str | None, str]:
        return device_of(request), client_address(request, self._hops)

    async def held(self, request: web.Request, user_id: int, hold: Any) -> None:
        device, ip = self._who(request)
        await self._quietly(
            self.signals.record_hold(
                user_id, device, ip, hold.hold_id, len(hold.seats), hold.created_at
            )
        )

    async def released(self, user_id: int, hold: Any) -> None:
        await self._quietly(
            self.signals.record_release(user_id, hold.hold_id, len(hold.seats), time.time())
        )

    async def paid(self, user_id: int, hold_id: str) -> None:
        await self._quietly(self.signals.record_booking(user_id, hold_id, time.time()))

    async def declined(self, request: web.Request, user_id: int) -> None:
        device, _ = self._who(request)
        await self._quietly(self.signals.record_payment_failure(user_id, device, time.time()))

    async def _quietly(self, work: Any) -> None:
        """Counting never fails the customer's request."""
        try:
            await work
        except Exception:
            log.warning("risk signal not recorded", exc_info=True)

    # -- the check ----------------------------------------------------------------------------

    async def check(
        self,
        request: web.Request,
        *,
        user_id: int,
        show: Any,
        hold: Any,
        billing_city_id: int | None,
    ) -> str:
        """Score this checkout and keep the decision; returns "allow" or "verify" (with a
        valid step-up), raises ``VerificationRequired`` or ``CheckoutRefused``; "unchecked"
        when the check is off."""
        if not self._models.config.fraud_check:
            return "unchecked"
        device, ip = self._who(request)
        now = time.time()
        theater_city = await self._cities(await self._theater_city(show.theater_id))
        card_city = await self._cities(billing_city_id) if billing_city_id else None
        features = await self.signals.features(
            user_id,
            device,
            ip,
            hold_created_at=min(hold.created_at, now),
            seats=len(hold.seats),
            account_created_at=min(await self._joined(user_id), now),
            card_city=card_city,
            theater_city=theater_city,
            now=now,
        )
        answer = await self._models.fraud(
            features, fallback=lambda: rules_verdict(features, self.thresholds)
        )
        verdict = answer.value
        self._models.monitor.inputs("fraud", features.as_dict())
        self._models.monitor.prediction("fraud", verdict.score)
        decision = self.thresholds.decide(verdict.score)
        async with self._pool.acquire() as conn:
            decision_id = await risk.record_decision(
                conn,
                user_id=user_id,
                show_id=show.show_id,
                hold_id=hold.hold_id,
                features=features.as_dict(),
                score=verdict.score,
                decision=decision,
                source=answer.source,
                model_version=answer.version,
                reasons=list(verdict.reasons),
            )
        if decision == "block":
            log.warning("checkout refused: fraud decision %s (user %s)", decision_id, user_id)
            raise CheckoutRefused(
                "this payment cannot be taken; contact support if you think this is wrong",
                {"reference": decision_id},
            )
        if decision == "verify" and not self._stepped_up(request, user_id, hold.hold_id):
            raise VerificationRequired(
                "confirm it is you: send your password to /api/v1/auth/step-up, then check out "
                f"again with the {STEP_UP_HEADER} header it gives you",
                {"hold_id": hold.hold_id, "step_up": "/api/v1/auth/step-up"},
            )
        return decision

    # -- step-up ----------------------------------------------------------------------------

    async def step_up(self, auth: Any, user_id: int, password: str, hold_id: str) -> dict[str, Any]:
        """A step-up token for ``hold_id`` once ``password`` is the user's."""
        async with self._pool.acquire() as conn:
            user = await storage.get_user(conn, user_id, keyring=auth.keyring)
        if not await auth.verify_password(user.password_hash, password):
            raise Unauthorized("the password is not right", code="invalid_credentials")
        now = time.time()
        token = self._step_ups.issue(
            {"sub": str(user_id), "hold": hold_id}, ttl_s=STEP_UP_TTL_S, now=now
        )
        expires = dt.datetime.fromtimestamp(now + STEP_UP_TTL_S, dt.UTC)
        return {"step_up_token": token, "hold_id": hold_id, "expires_at": expires.isoformat()}

    def _stepped_up(self, request: web.Request, user_id: int, hold_id: str) -> bool:
        token = request.headers.get(STEP_UP_HEADER)
        if not token:
            return False
        try:
            claims = self._step_ups.read(token, now=time.time())
        except Unreadable:
            return False
        return claims.get("sub") == str(user_id) and claims.get("hold") == hold_id
