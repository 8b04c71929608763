"""The notifications worker's counters, on ``/metrics`` of the process that runs the worker
(``seatserver up`` runs it beside the gateway). Names start with ``seatserver_``; labels are
channels and reasons, never a customer.
"""

from __future__ import annotations

from prometheus_client import Counter

SKIPPED = Counter(
    "seatserver_notifications_skipped",
    "Deliveries a customer asked for that were not sent, by channel and reason "
    "(channel_unconfigured: the worker has no notifier for the channel, Twilio or FCM unset)",
    ["channel", "reason"],
)

__all__ = ["SKIPPED"]
