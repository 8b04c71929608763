"""The payment provider on Stripe, through the official ``stripe`` SDK (async, aiohttp).

``api_base`` points the SDK elsewhere than Stripe (the local provider, localstripe, in
development and tests). Errors are mapped onto the provider interface's three kinds: a decline,
the provider unavailable (network, timeouts, 429, 5xx: retry with the same idempotency key), and
a refusal of the request itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import stripe

from payments.provider import (
    Intent,
    PaymentDeclined,
    ProviderRejected,
    ProviderUnavailable,
    Refund,
    WebhookEvent,
    WebhookRejected,
)


def _retry_after(exc: stripe.StripeError) -> float:
    headers = exc.headers or {}
    try:
        return max(1.0, float(headers.get("Retry-After", headers.get("retry-after", 5))))
    except (TypeError, ValueError):
        return 5.0


def _mapped(exc: Exception) -> Exception:
    if isinstance(exc, stripe.CardError):
        return PaymentDeclined(exc.user_message or str(exc), code=exc.code or "card_declined")
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return ProviderUnavailable(str(exc), retry_after=_retry_after(exc), code="unreachable")
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status or 0
        if status >= 500 or status == 0:
            return ProviderUnavailable(str(exc), retry_after=_retry_after(exc), code="server_error")
        return ProviderRejected(str(exc), code=exc.code)
    if isinstance(exc, TimeoutError | OSError):
        return ProviderUnavailable(str(exc) or "timed out", code="timeout")
    return exc


def _intent(obj: Any) -> Intent:
    data = obj if isinstance(obj, dict) else obj.to_dict()
    error = data.get("last_payment_error") or None
    return Intent(
        ref=data["id"],
        status=data["status"],
        amount_cents=int(data["amount"]),
        currency=str(data["currency"]).lower(),
        client_secret=data.get("client_secret"),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        last_error=(error.get("decline_code") or error.get("code") or "declined")
        if error
        else None,
    )


def _refund(obj: Any) -> Refund:
    data = obj.to_dict()
    return Refund(
        ref=data["id"],
        intent_ref=data.get("payment_intent") or "",
        amount_cents=int(data["amount"]),
        status=str(data.get("status") or "succeeded"),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


class StripeProvider:
    name = "stripe"

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        publishable_key: str,
        api_base: str | None = None,
        js_base: str | None = None,
        timeout_s: float = 10.0,
        webhook_tolerance_s: int = 300,
    ) -> None:
        self._http = stripe.AIOHTTPClient(timeout=timeout_s)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
            max_network_retries=0,
        )
        self._real = api_base is None
        self._webhook_secret = webhook_secret
        self._tolerance = webhook_tolerance_s
        self._public = {"name": self.name, "publishable_key": publishable_key, "js_base": js_base}

    async def _call(self, request: Any) -> Any:
        try:
            return await request
        except Exception as exc:
            mapped = _mapped(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    @property
    def _intents(self) -> Any:
        return self._client.v1.payment_intents

    async def create_intent(
        self,
        *,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
        description: str = "",
    ) -> Intent:
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": currency.lower(),
            "metadata": dict(metadata),
            "payment_method_types": ["card"],
        }
        if description and self._real:
            params["description"] = description  # localstripe refuses the field
        created = await self._call(
            self._intents.create_async(params, {"idempotency_key": idempotency_key})
        )
        return _intent(created)

    async def retrieve_intent(self, ref: str) -> Intent:
        return _intent(await self._call(self._intents.retrieve_async(ref)))

    async def confirm_intent(
        self, ref: str, *, payment_method: str, idempotency_key: str
    ) -> Intent:
        # Attach, then confirm with no arguments: this works on Stripe and on localstripe,
        # whose confirm does not take a payment method.
        await self._call(
            self._intents.update_async(
                ref,
                {"payment_method": payment_method},
                {"idempotency_key": idempotency_key + "-pm"},
            )
        )
        confirmed = await self._call(
            self._intents.confirm_async(ref, None, {"idempotency_key": idempotency_key})
        )
        return _intent(confirmed)

    async def cancel_intent(self, ref: str, *, idempotency_key: str) -> Intent:
        try:
            canceled = await self._call(
                self._intents.cancel_async(ref, None, {"idempotency_key": idempotency_key})
            )
        except ProviderRejected:
            current = await self.retrieve_intent(ref)
            if current.status == "canceled":
                return current
            raise
        return _intent(canceled)

    async def refund(
        self,
        intent_ref: str,
        *,
        amount_cents: int,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> Refund:
        made = await self._call(
            self._client.v1.refunds.create_async(
                {"payment_intent": intent_ref, "amount": amount_cents, "metadata": dict(metadata)},
                {"idempotency_key": idempotency_key},
            )
        )
        refund = _refund(made)
        return Refund(refund.ref, intent_ref, refund.amount_cents, refund.status, refund.metadata)

    async def refunds_of(self, intent_ref: str) -> list[Refund]:
        found = await self._call(
            self._client.v1.refunds.list_async({"payment_intent": intent_ref, "limit": 100})
        )
        return [
            Refund(r.ref, intent_ref, r.amount_cents, r.status, r.metadata)
            for r in map(_refund, found.data)
        ]

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        if not signature:
            raise WebhookRejected("no Stripe-Signature header")
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"), signature, self._webhook_secret, self._tolerance
            )
            data = json.loads(payload)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
            raise WebhookRejected(f"webhook refused: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise WebhookRejected("webhook refused: not an event")
        kind = str(data.get("type", ""))
        obj = (data.get("data") or {}).get("object") or {}
        intent = None
        if kind.startswith("payment_intent.") and obj.get("object") == "payment_intent":
            try:
                intent = _intent(obj)
            except (KeyError, TypeError, ValueError) as exc:
                raise WebhookRejected(f"webhook refused: bad payment intent: {exc}") from exc
        return WebhookEvent(
            event_id=data["id"], type=kind, created=int(data.get("created") or 0), intent=intent
        )

    async def close(self) -> None:
        await self._http.close_async()

    def public_config(self) -> dict[str, Any]:
        return dict(self._public)
