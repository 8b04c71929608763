"""Buying a hold, as customers and visitors both do: check it out, pay (through the gateway with
a test card, or as a browser's provider script does with a card that asks for authentication),
then follow the payment until it settles."""

from __future__ import annotations

import asyncio
from typing import Any

from loadtest.faults.clients.calls import Answer, Client, GaveUp
from loadtest.locust.scenarios import PAYMENT_METHOD

AUTHENTICATED_CARD = "4000002760003184"  # a test card the provider makes the browser authenticate
PROVIDER_FIELDS = ("id", "object", "status", "amount", "amount_received", "currency")
SETTLED = frozenset({"booked", "refunded", "failed", "canceled"})


class Buyer(Client):
    """A client that buys holds: the steps of a purchase, shared by customers and visitors."""

    async def buy(self, show: int, hold_id: str, *, at_provider: bool) -> dict[str, Any] | None:
        """Check out a hold and pay; the payment as last seen (None: refused or never
        answered)."""
        path = f"/shows/{show}/holds/{hold_id}/checkout"
        ids = {"hold_id": hold_id}
        checkout = await self.step("checkout", "POST", self.run.api(path), show_id=show, ids=ids)
        payment_id = checkout.get("payment_id")
        if not isinstance(payment_id, str):
            return None
        ids["payment_id"] = payment_id
        await self.think()
        if at_provider:
            paid = await self.pay_at_provider(show, checkout.body, ids)
        else:
            paid = await self.confirm(show, ids, PAYMENT_METHOD)
        if paid.status is not None and not paid.done and not paid.again:
            return None  # declined, or no longer payable: the journey ends
        last = paid.body if paid.done else checkout.body
        return await self.follow_payment(show, ids, last)

    async def confirm(self, show: int, ids: dict[str, str], method: str) -> Answer:
        url = self.run.api(f"/payments/{ids['payment_id']}/confirm")
        body = {"payment_method": method}
        return await self.step("pay", "POST", url, show_id=show, ids=ids, json=body)

    async def pay_at_provider(self, show: int, payment: dict[str, Any], ids: dict[str, str]) -> Any:
        """As the browser's provider script: a card token at the provider, the gateway's
        confirm (the intent then waits for authentication), the intent authenticated at the
        provider with the publishable key and the client secret."""
        provider, key = self.run.plan.provider_url.rstrip("/"), self.run.plan.publishable_key
        card = {"number": AUTHENTICATED_CARD, "exp_month": "12", "exp_year": "2030", "cvc": "123"}
        form = {"key": key, **{f"card[{k}]": v for k, v in card.items()}}
        token = await self.step(
            "pay_at_provider", "POST", provider + "/v1/tokens", keyed=False, auth=False,
            show_id=show, ids={**ids, "provider_call": "tokens"}, trim=_provider_trimmed,
            data=form,
        )  # fmt: skip
        card_id = (token.get("card") or {}).get("id")
        if not isinstance(card_id, str):
            return token
        confirmed = await self.confirm(show, ids, card_id)
        secret = confirmed.get("client_secret") or payment.get("client_secret")
        if confirmed.get("status") != "open" or not isinstance(secret, str):
            return confirmed
        intent = secret.split("_secret_")[0]
        await self.step(
            "pay_at_provider", "POST",
            f"{provider}/v1/payment_intents/{intent}/_authenticate?success=true",
            keyed=False, auth=False, show_id=show, trim=_provider_trimmed,
            ids={**ids, "provider_ref": intent, "provider_call": "authenticate"},
            json={"key": key, "client_secret": secret},
        )  # fmt: skip
        return confirmed  # whatever the provider said, the payment itself tells what came of it

    async def follow_payment(
        self, show: int, ids: dict[str, str], last: Any
    ) -> dict[str, Any] | None:
        """Poll the payment until it settles (bounded); the last answer seen."""
        url = self.run.api(f"/payments/{ids['payment_id']}")
        payment = last if isinstance(last, dict) else None
        for _ in range(self.t.payment_polls):
            if payment is not None and payment.get("status") in SETTLED:
                break
            if self.run.late():
                raise GaveUp("payment_status")
            await asyncio.sleep(self.t.payment_poll_s)
            answer = await self.send("payment_status", "GET", url, show_id=show, ids=ids)
            if answer.done and isinstance(answer.body, dict):
                payment = answer.body
            elif not answer.again:
                break
        if payment is not None and payment.get("status") == "booked":
            self.run.counts["bookings"] += 1
        return payment


def _provider_trimmed(body: Any) -> dict[str, Any] | None:
    """The provider's answer: the object, its status and amounts (no client secret)."""
    if not isinstance(body, dict):
        return None
    kept = {k: body[k] for k in PROVIDER_FIELDS if k in body}
    card = body.get("card")
    if isinstance(card, dict) and "id" in card:
        kept["card"] = card["id"]
    return kept
