"""The saga's counters, on the gateway's ``/metrics`` (the saga runs in the gateways).

Payment success rate: ``succeeded`` over ``succeeded + declined + abandoned``; booking success
rate: ``booked`` over ``booked + unseated`` (paid, but the hold was gone: refunded in full).
Each outcome is counted by the process that moved the payment, so retries and concurrent
settlements (the customer's confirm beside a webhook) count once.
"""

from __future__ import annotations

from prometheus_client import Counter

PAYMENTS = Counter(
    "seatserver_payments",
    "Payment attempts by outcome: started (intent created), succeeded (money taken), "
    "declined, abandoned (cancelled before paying: the hold ended, the intent was cancelled)",
    ["outcome"],
)
BOOKINGS = Counter(
    "seatserver_bookings",
    "Paid holds by outcome: booked (durable), unseated (the hold was gone: refunded), "
    "deferred (not yet confirmable: retried)",
    ["outcome"],
)

__all__ = ["BOOKINGS", "PAYMENTS"]
