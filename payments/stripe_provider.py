"""The payment provider on Stripe, through the official ``stripe`` SDK (async, aiohttp).

``api_base`` points the SDK elsewhere than Stripe (the local provider, localstripe, in
development and tests). The SDK never retries (``max_network_retries=0``): the saga decides.
Errors are mapped onto the provider interface's three kinds::

    stripe.CardError                                  -> PaymentDeclined (code: decline code)
    APIConnectionError, timeouts, 429, 5xx            -> ProviderUnavailable (retry_after)
    any other StripeError (4xx, auth, bad request)    -> ProviderRejected

Usage::

    provider = StripeProvider("sk_test_...", "whsec_...", publishable_key="pk_test_...")
    intent = await provider.create_intent(
        amount_cents=1200, currency="eur", idempotency_key=key, metadata={"hold_id": hold}
    )
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

import aiohttp
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

__all__ = ["StripeProvider"]

_DEFAULT_RETRY_AFTER = 5.0


def _retry_after(exc: stripe.StripeError) -> float:
    """Seconds from a Retry-After header (delta-seconds form), at least 1; else a default."""
    value = (exc.headers or {}).get("Retry-After")
    try:
        return max(1.0, float(value)) if value is not None else _DEFAULT_RETRY_AFTER
    except (TypeError, ValueError):
        return _DEFAULT_RETRY_AFTER  # an HTTP date: not worth parsing for a hint


def _decline_code(exc: stripe.CardError) -> str:
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error") or {}
    return str(error.get("decline_code") or exc.code or "card_declined")


def _mapped(exc: Exception) -> Exception | None:
    """Our error for a library error, or None if it is not one we know."""
    if isinstance(exc, stripe.CardError):
        return PaymentDeclined(exc.user_message or str(exc), code=_decline_code(exc))
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderUnavailable(str(exc), retry_after=_retry_after(exc), code="unreachable")
    if isinstance(exc, stripe.RateLimitError):
        return ProviderUnavailable(str(exc), retry_after=_retry_after(exc), code="rate_limited")
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status or 0
        if status >= 500 or status == 0:
            return ProviderUnavailable(str(exc), retry_after=_retry_after(exc), code="server_error")
        return ProviderRejected(str(exc), code=exc.code or f"http_{status}")
    # The SDK wraps errors of sending a request, not of reading its body.
    if isinstance(exc, TimeoutError | aiohttp.ClientError | OSError):
        return ProviderUnavailable(str(exc) or type(exc).__name__, code="unreachable")
    return None


def _strings(values: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (values or {}).items()}


def _intent(obj: Any) -> Intent:
    data = obj if isinstance(obj, dict) else obj.to_dict()
    error = data.get("last_payment_error") or None
    return Intent(
        ref=data["id"],
        status=data["status"],
        amount_cents=int(data["amount"]),
        currency=str(data["currency"]).lower(),
        client_secret=data.get("client_secret"),
        metadata=_strings(data.get("metadata")),
        last_error=str(error.get("decline_code") or error.get("code") or "declined")
        if error
        else None,
    )


def _refund(obj: Any, intent_ref: str) -> Refund:
    data = obj.to_dict()
    return Refund(
        ref=data["id"],
        intent_ref=data.get("payment_intent") or intent_ref,
        amount_cents=int(data["amount"]),
        status=str(data.get("status") or "succeeded"),
        metadata=_strings(data.get("metadata")),
    )


class StripeProvider:
    """``PaymentProvider`` on Stripe (or localstripe, with ``api_base``)."""

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
        self._http: Any = stripe.AIOHTTPClient(timeout=timeout_s)  # untyped
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            http_client=self._http,
            max_network_retries=0,
        )
        self._api_key = api_key
        # localstripe refuses fields it does not know (``description``).
        self._real = api_base is None
        self._webhook_secret = webhook_secret
        self._tolerance = webhook_tolerance_s
        self._public = {"name": self.name, "publishable_key": publishable_key, "js_base": js_base}

    async def _call(self, request: Awaitable[Any]) -> Any:
        try:
            return await request
        except Exception as exc:
            mapped = _mapped(exc)
            if mapped is None:
                raise
            raise mapped from exc

    @property
    def _intents(self) -> Any:
        return self._client.v1.payment_intents

    @property
    def _refunds(self) -> Any:
        return self._client.v1.refunds

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
            "amount": int(amount_cents),
            "currency": currency.lower(),
            "metadata": _strings(metadata),
            "payment_method_types": ["card"],
        }
        if description and self._real:
            params["description"] = description
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
        # whose confirm refuses a payment method (500 "Not implemented").
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
        params = {
            "payment_intent": intent_ref,
            "amount": int(amount_cents),
            "metadata": _strings(metadata),
        }
        made = await self._call(
            self._refunds.create_async(params, {"idempotency_key": idempotency_key})
        )
        return _refund(made, intent_ref)

    async def refunds_of(self, intent_ref: str) -> list[Refund]:
        found: list[Refund] = []
        params: dict[str, Any] = {"payment_intent": intent_ref, "limit": 100}
        for _ in range(100):  # 10,000 refunds of one intent: more than any booking has
            data, more = await self._refund_page(params)
            found += [_refund(r, intent_ref) for r in data]
            if not more or not data:
                break
            params["starting_after"] = data[-1].id
        return found

    async def _refund_page(self, params: dict[str, Any]) -> tuple[list[Any], bool]:
        try:
            page = await self._call(self._refunds.list_async(params))
        except ProviderUnavailable as exc:
            # localstripe fails (500) to list the refunds of an intent never charged.
            cause = exc.__cause__
            if not isinstance(cause, stripe.APIError) or cause.http_status != 500:
                raise
            if (await self.retrieve_intent(params["payment_intent"])).status == "succeeded":
                raise
            return [], False
        return list(page.data), bool(page.has_more)

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        if not signature:
            raise WebhookRejected("no Stripe-Signature header", code="no_signature")
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._webhook_secret, self._tolerance, api_key=self._api_key
            )
            data = event.to_dict()
        except stripe.SignatureVerificationError as exc:
            raise WebhookRejected(f"webhook refused: {exc}", code="bad_signature") from exc
        except (ValueError, TypeError, AttributeError) as exc:  # not JSON, not an event
            raise WebhookRejected(f"webhook refused: {exc}", code="bad_payload") from exc
        if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
            raise WebhookRejected("webhook refused: not an event", code="bad_payload")
        kind = data["type"]
        obj = (data.get("data") or {}).get("object") or {}
        intent = None
        if kind.startswith("payment_intent.") and obj.get("object") == "payment_intent":
            try:
                intent = _intent(obj)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise WebhookRejected(
                    f"webhook refused: bad intent: {exc}", code="bad_payload"
                ) from exc
        return WebhookEvent(
            event_id=data["id"], type=kind, created=int(data.get("created") or 0), intent=intent
        )

    async def close(self) -> None:
        await self._http.close_async()

    def public_config(self) -> dict[str, Any]:
        return dict(self._public)
