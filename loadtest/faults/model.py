"""What a fault run records and what the checker reads: the calls the clients made and what
they saw, the faults injected, what each seat-map watcher ended with, and the final state of
Postgres, the show actors and the payment provider. Plain data, JSON both ways.

Times are wall-clock seconds (``time.time()``) everywhere, so client, fault and database
times compare.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The fault kinds, in the order the report lists them.
FAULT_KINDS = (
    "host_kill",  # SIGKILL of a show host actor's process (Ray starts it again)
    "gateway_kill",  # SIGKILL of one of the gateway processes (started again after a pause)
    "webhook_outage",  # the provider's webhook deliveries go nowhere for a while
    "postgres_restart",  # the stack's Postgres stopped (fast) and started again
    "redis_restart",  # the stack's Redis killed and started again (its append-only file kept)
)

# What clients do; ``Call.op`` is one of these.
OPS = (
    "login",
    "seatmap",
    "hold",
    "release",  # DELETE a hold
    "checkout",
    "pay",  # POST /payments/{id}/confirm through the gateway
    "pay_at_provider",  # the browser's side: the intent confirmed at the provider directly
    "payment_status",  # GET /payments/{id}
    "cancel",  # POST /bookings/{id}/cancel
    "booking",  # GET /bookings/{id}
    "queue_join",
    "queue_poll",
    "queue_hold",  # a hold with an admission token on the flash-sale show
)


# Answers that say "not now, ask again", whatever their status.
RETRY_LATER = frozenset({"idempotency_request_in_progress", "confirmation_pending"})


@dataclass
class Call:
    """One request a client made and what it saw. ``status`` None: no answer (the connection
    failed or timed out); ``code``: the error body's machine-readable code, or the exception's
    type name when there was no answer."""

    client: str  # "customer-3", "visitor-12"
    op: str  # one of OPS
    started: float
    ended: float
    status: int | None
    code: str | None = None
    show_id: int | None = None
    user_id: int | None = None
    attempt: int = 1  # retries of one logical step keep its idempotency key and count up
    ids: dict[str, str] = field(default_factory=dict)  # hold_id, payment_id, booking_id, ...
    body: dict[str, Any] | None = None  # the answer's JSON on 2xx (the fields the checker reads)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.unavailable

    @property
    def unavailable(self) -> bool:
        """No answer, or an answer that says try again (5xx, 429, the first request with this
        key still running, a confirmation not yet durable)."""
        return (
            self.status is None
            or self.status >= 500
            or self.status == 429
            or self.code in RETRY_LATER
        )


@dataclass
class Fault:
    kind: str  # one of FAULT_KINDS
    started: float
    ended: float  # when the injector put things back (the process restarted, the hook restored)
    target: str  # "host seatserver-host-1 pid 1234", "gateway-0 pid 99", ...
    detail: str = ""


@dataclass
class Watcher:
    """A seat-map websocket client as it ended."""

    client: str
    show_id: int
    connects: int  # 1: it stayed connected the whole run
    version: int  # the last version it applied
    seats: dict[str, str]  # seat -> state, as its map has it at the end
    gaps: int = 0  # version gaps it saw (each answered by a fresh snapshot)
    messages: int = 0

    @property
    def stayed_connected(self) -> bool:
        return self.connects == 1


@dataclass
class FinalState:
    """What the stores hold once the load stopped and the faults were put back, every show
    host flushed, the reconciler run and the last hold's TTL plus the slack passed."""

    taken_at: float
    hold_slack_s: float  # the slack allowed past a hold's expiry before it must have ended
    # Postgres, rows as dicts (uuids as str, timestamps as epoch seconds, arrays as lists):
    # holds: hold_id, show_id, user_id, seats, status, created_at, expires_at, ended_at
    # bookings: booking_id, show_id, user_id, hold_id, seats, status
    # payments: payment_id, hold_id, booking_id, user_id, provider_ref, status, amount_cents
    # refunds: refund_id, payment_id, booking_id, reason, status, amount_cents, provider_ref
    # webhooks: event_id, type, deliveries, outcome
    # admissions: show_id, user_id, number (the waiting room's admission events)
    holds: list[dict[str, Any]]
    bookings: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    refunds: list[dict[str, Any]]
    webhooks: list[dict[str, Any]]
    admissions: list[dict[str, Any]]
    # the show actors: show_id -> {"version": int, "seats": {seat: state}, "bookings": [booking_id],
    # "holds": [hold_id]}
    snapshots: dict[int, dict[str, Any]]
    # the payment provider: intents (id, status, amount, amount_received) and refunds (id,
    # payment_intent, amount, status)
    intents: list[dict[str, Any]]
    provider_refunds: list[dict[str, Any]]


@dataclass
class History:
    seed: int
    started: float
    ended: float  # when the load stopped
    calls: list[Call] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    watchers: list[Watcher] = field(default_factory=list)
    final: FinalState | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> History:
        final = data.get("final")
        return cls(
            seed=data["seed"],
            started=data["started"],
            ended=data["ended"],
            calls=[Call(**c) for c in data.get("calls", [])],
            faults=[Fault(**f) for f in data.get("faults", [])],
            watchers=[Watcher(**w) for w in data.get("watchers", [])],
            final=None
            if final is None
            else FinalState(
                **{**final, "snapshots": {int(k): v for k, v in final["snapshots"].items()}}
            ),
            notes=list(data.get("notes", [])),
        )


@dataclass
class Violation:
    check: str  # "seat_in_two_bookings", "confirmation_lost", "payment_unsettled", ...
    message: str
    ids: dict[str, Any] = field(default_factory=dict)


@dataclass
class Account:
    user_id: int
    email: str
    password: str
    token: str  # an access token, valid for the whole run


@dataclass
class TheaterAdmin:
    theater_id: int
    account: Account  # a theater admin of this theater only
    show_id: int  # a quiet show of this theater: the load leaves it alone


@dataclass
class Plan:
    """What the clients and the security checks are given about the stack."""

    url: str  # the gateway's base URL (every gateway process serves on its port)
    provider_url: str  # the payment provider (localstripe)
    publishable_key: str  # what a browser confirms intents at the provider with
    customers: list[Account]
    visitors: list[Account]  # the flash sale's line: one place each
    shows: list[int]  # on sale, small: seats run out and customers contend
    flash_show: int  # in a flash sale with its waiting room open
    hold_ttl_s: float  # a hold's lifetime before payment starts
    theater_admins: list[TheaterAdmin]  # two theaters, one admin each
    database_url: str  # the stack's Postgres (to fingerprint state)
    schema: str
    jwt_secret: str  # the gateway's signing secret (to make an expired token)
    webhook_secret: str  # the provider's webhook signing secret
