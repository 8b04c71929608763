"""The history checker: what a fault run's clients were told, and what Postgres, the show
actors and the payment provider hold at the end, checked against the product's promises. Pure
functions of a ``model.History``: no I/O, no clock.

    violations = check(history)                      # [] when every promise held
    outages = unavailability(history)                # the longest outage a customer saw, per kind
    figures = summary(history, violations)           # operations, faults, watchers, violations

Each check is a function of its own, named as the ``Violation.check`` it reports. ``check``
lists at most ``LISTED_PER_CHECK`` violations of one check and then one more that counts the
rest (``ids["not_listed"]``); ``violation_counts`` adds them up.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loadtest.faults.model import FAULT_KINDS, OPS, Call, FinalState, History, Violation
from payments import booking_id_of

# A crash may lose holds younger than one flush (the durability contract): a hold a client was
# told of may be missing from Postgres only if a host was killed or Postgres restarted within
# this many seconds after the answer.
HOLD_LOSS_WINDOW_S = 2.0
# An outage that starts this long after a fault was put back is still laid at its door.
FAULT_TAIL_S = 5.0
LISTED_PER_CHECK = 10
# The faults that may lose a hold younger than one flush.
_HOLD_LOSING_FAULTS = ("host_kill", "postgres_restart")
_HOLD_OPS = ("hold", "queue_hold")
_QUEUE_OPS = ("queue_join", "queue_poll", "queue_hold")
_SHOWN = 6  # ids or seats named in one message


def _final(history: History) -> FinalState:
    if history.final is None:
        raise ValueError("the history has no final state: there is nothing to check it against")
    return history.final


def _when(history: History, at: float | None) -> str:
    return "t=?" if at is None else f"t+{at - history.started:.1f}s"


def _some(items: Iterable[Any]) -> str:
    """A few of ``items`` for a message, with how many were left out."""
    listed = sorted(str(i) for i in items)
    more = f" (+{len(listed) - _SHOWN} more)" if len(listed) > _SHOWN else ""
    return ", ".join(listed[:_SHOWN]) + more


def _state(name: Any) -> str:
    """A seat state as its lower-case value, whether it came as "BOOKED", "booked" or
    "SeatState.BOOKED"."""
    return str(name).rsplit(".", 1)[-1].lower()


def _id(call: Call, key: str) -> str | None:
    value = call.ids.get(key) or (call.body or {}).get(key)
    return None if value is None else str(value)


def _settled(call: Call) -> bool:
    """A 2xx that says what happened (a 202 says the outcome is not known yet)."""
    return call.ok and call.status != 202


def _confirmed(final: FinalState) -> list[dict[str, Any]]:
    return [b for b in final.bookings if b.get("status") == "confirmed"]


# -- 1. seats -------------------------------------------------------------------------------


def seat_in_two_bookings(history: History) -> list[Violation]:
    """No seat of a show is in two confirmed bookings in Postgres; and in each show actor's
    final snapshot the seats in state booked are exactly the seats of that show's confirmed
    bookings in Postgres. Shows with no snapshot are checked in Postgres only."""
    final = _final(history)
    owners: dict[tuple[int, str], list[str]] = defaultdict(list)
    for booking in _confirmed(final):
        for seat in booking["seats"]:
            owners[(int(booking["show_id"]), str(seat))].append(str(booking["booking_id"]))
    found = [
        Violation(
            "seat_in_two_bookings",
            f"show {show} seat {seat} is in {len(ids)} confirmed bookings: {_some(ids)}",
            {"show_id": show, "seat": seat, "booking_ids": sorted(ids)},
        )
        for (show, seat), ids in sorted(owners.items())
        if len(ids) > 1
    ]
    for show_id, snapshot in sorted(final.snapshots.items()):
        booked = {s for s, st in snapshot.get("seats", {}).items() if _state(st) == "booked"}
        stored = {seat for (show, seat) in owners if show == show_id}
        if booked != stored:
            extra, missing = sorted(booked - stored), sorted(stored - booked)
            found.append(
                Violation(
                    "seat_in_two_bookings",
                    f"show {show_id}: the actor has booked seats no confirmed booking holds "
                    f"[{_some(extra)}] and lacks booked seats of confirmed bookings "
                    f"[{_some(missing)}]",
                    {"show_id": show_id, "actor_only": extra, "postgres_only": missing},
                )
            )
    return found


# -- 2. confirmations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Told:
    """A client was told something of a booking: ``what`` is "confirmed", "cancelled" or
    "cancel_unknown" (a cancel tried with no answer, a 5xx or a 202: outcome not known)."""

    booking_id: str
    what: str
    client: str
    op: str
    at: float


def _told_of(call: Call) -> Told | None:
    body = call.body or {}
    if call.op == "cancel":
        inner = body.get("booking")
        booking_id = _id(call, "booking_id") or (
            inner.get("booking_id") if isinstance(inner, dict) else None
        )
        unknown = call.status is None or call.status >= 500 or call.status == 202
        what = "cancelled" if _settled(call) else "cancel_unknown" if unknown else None
    elif not _settled(call):
        return None
    elif call.op in ("pay", "payment_status"):
        booking_id = body.get("booking_id") if body.get("status") == "booked" else None
        what = "confirmed"
    elif call.op == "booking":
        booking_id = _id(call, "booking_id")
        what = {"confirmed": "confirmed", "cancelled": "cancelled"}.get(body.get("status", ""))
    else:
        return None
    if booking_id is None or what is None:
        return None
    return Told(str(booking_id), what, call.client, call.op, call.ended)


def told_bookings(history: History) -> dict[str, dict[str, Told]]:
    """booking id -> what -> the first time a client was told it (see ``Told``)."""
    told: dict[str, dict[str, Told]] = defaultdict(dict)
    for call in sorted(history.calls, key=lambda c: c.ended):
        fact = _told_of(call)
        if fact is not None:
            told[fact.booking_id].setdefault(fact.what, fact)
    return told


def confirmation_lost(history: History) -> list[Violation]:
    """Every booking a client was told is confirmed (a payment answered "booked" with its
    booking id, a booking fetched as confirmed) is confirmed in Postgres, unless a client was
    told it was cancelled (a 2xx cancel, or a fetch that said cancelled); if a cancel of it
    got no answer, a 5xx or a 202, it may be confirmed or cancelled but must exist. Every
    cancellation a client was told of is in Postgres and not confirmed. A payment still
    answering "booked" after its booking was cancelled says nothing new (the payment keeps
    that status), so a told cancellation wins whenever it came."""
    final = _final(history)
    rows = {str(b["booking_id"]): b for b in final.bookings}
    found = []
    for booking_id, facts in sorted(told_bookings(history).items()):
        status = rows.get(booking_id, {}).get("status")
        fact, allowed = _expected(facts)
        if fact is None or status in allowed:
            continue
        found.append(
            Violation(
                "confirmation_lost",
                f"booking {booking_id}: {fact.client} was told {fact.what} ({fact.op}, "
                f"{_when(history, fact.at)}) but Postgres has "
                f"{'no such booking' if status is None else status!r}",
                {"booking_id": booking_id, "told": fact.what, "client": fact.client},
            )
        )
    return found


def _expected(facts: Mapping[str, Told]) -> tuple[Told | None, tuple[str, ...]]:
    """The fact that decides a booking's end state, and the states Postgres may hold."""
    if "cancelled" in facts:
        return facts["cancelled"], ("cancelled",)
    if "cancel_unknown" in facts:
        return facts["cancel_unknown"], ("confirmed", "cancelled")
    return facts.get("confirmed"), ("confirmed",)


# -- 3. payments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Captured:
    """Money taken at the provider and what the stores say of it."""

    intent_id: str
    amount: int
    payment: dict[str, Any] | None
    booking: dict[str, Any] | None
    refund: dict[str, Any] | None
    provider_refunds: tuple[dict[str, Any], ...]

    @property
    def live(self) -> bool:
        return self.booking is not None and self.booking.get("status") == "confirmed"


def captured_payments(final: FinalState) -> list[Captured]:
    """Every intent the provider captured (``succeeded``, amount received > 0), joined to its
    payment row (by provider_ref), the payment's booking (its booking_id, else the id derived
    from the payment id), its refund row and the provider's refunds of the intent that were
    not failed or canceled."""
    payments = {str(p.get("provider_ref")): p for p in final.payments if p.get("provider_ref")}
    bookings = {str(b["booking_id"]): b for b in final.bookings}
    refunds = {str(r["payment_id"]): r for r in final.refunds}
    made: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for done in final.provider_refunds:
        if done.get("status") not in ("failed", "canceled"):
            made[str(done.get("payment_intent"))].append(done)
    out = []
    for intent in final.intents:
        if intent.get("status") != "succeeded" or not intent.get("amount_received"):
            continue
        intent_id = str(intent["id"])
        payment = payments.get(intent_id)
        booking = refund = None
        if payment is not None:
            payment_id = str(payment["payment_id"])
            booking = bookings.get(str(payment.get("booking_id") or booking_id_of(payment_id)))
            refund = refunds.get(payment_id)
        out.append(
            Captured(
                intent_id,
                int(intent["amount_received"]),
                payment,
                booking,
                refund,
                tuple(made.get(intent_id, ())),
            )
        )
    return out


def payment_unsettled(history: History) -> list[Violation]:
    """Every captured intent has a payment row, and either a confirmed booking or a refund
    row (pending, succeeded, or "none" when the policy gave nothing back); a refund row that
    says succeeded has a refund of the intent at the provider. Money kept with neither a seat
    nor a refund is what this reports."""
    found = []
    for money in captured_payments(_final(history)):
        if money.payment is None:
            problem = "has no payment row"
        elif not money.live and money.refund is None:
            problem = "has neither a confirmed booking nor a refund"
        elif money.refund is not None and (
            money.refund.get("status") == "succeeded" and not money.provider_refunds
        ):
            problem = "has a refund row that says succeeded but no refund at the provider"
        else:
            continue
        payment_id = None if money.payment is None else money.payment["payment_id"]
        found.append(
            Violation(
                "payment_unsettled",
                f"intent {money.intent_id} (payment {payment_id}, {money.amount} cents "
                f"captured) {problem}",
                {"intent_id": money.intent_id, "payment_id": payment_id},
            )
        )
    return found


def payment_double(history: History) -> list[Violation]:
    """No captured intent has both a confirmed booking and a refund (a refund row, or a
    refund at the provider); no hold has two captured payments with a confirmed booking each
    (an intent captured twice for one hold and both kept)."""
    found = []
    per_hold: dict[str, list[Captured]] = defaultdict(list)
    for money in captured_payments(_final(history)):
        if not money.live or money.payment is None:
            continue
        per_hold[str(money.payment["hold_id"])].append(money)
        if money.refund is not None or money.provider_refunds:
            refund = money.refund or {}
            found.append(
                Violation(
                    "payment_double",
                    f"intent {money.intent_id} (payment {money.payment['payment_id']}) has a "
                    f"confirmed booking {money.booking and money.booking['booking_id']} and a "
                    f"refund (row {refund.get('refund_id')} {refund.get('status')}, "
                    f"{len(money.provider_refunds)} at the provider)",
                    {"intent_id": money.intent_id, "payment_id": money.payment["payment_id"]},
                )
            )
    for hold_id, kept in sorted(per_hold.items()):
        if len(kept) > 1:
            intents = [m.intent_id for m in kept]
            found.append(
                Violation(
                    "payment_double",
                    f"hold {hold_id} has {len(kept)} captured payments with a confirmed "
                    f"booking each: intents {_some(intents)}",
                    {"hold_id": hold_id, "intent_ids": intents},
                )
            )
    return found


# -- 4. holds -------------------------------------------------------------------------------


def hold_overdue(history: History) -> list[Violation]:
    """Every hold row in Postgres that ended (released, expired, confirmed) has
    ``ended_at <= expires_at + final.hold_slack_s``; an ended row without ``ended_at`` is
    reported too. Live rows are ``hold_live_at_end``'s."""
    final = _final(history)
    found = []
    for hold in final.holds:
        if hold.get("status") == "live":
            continue
        ended, due = hold.get("ended_at"), float(hold["expires_at"]) + final.hold_slack_s
        if ended is not None and float(ended) <= due:
            continue
        late = "never" if ended is None else f"{float(ended) - due:.1f}s past the slack"
        found.append(
            Violation(
                "hold_overdue",
                f"hold {hold['hold_id']} (show {hold.get('show_id')}, {hold.get('status')}) "
                f"ended {late}: expires {_when(history, float(hold['expires_at']))}, slack "
                f"{final.hold_slack_s:g}s, ended {_when(history, ended)}",
                {"hold_id": str(hold["hold_id"]), "show_id": hold.get("show_id")},
            )
        )
    return found


def hold_live_at_end(history: History) -> list[Violation]:
    """No hold row is live in Postgres at ``final.taken_at`` (every TTL plus the slack has
    passed by then), and no final actor snapshot still lists a hold."""
    final = _final(history)
    found = [
        Violation(
            "hold_live_at_end",
            f"hold {hold['hold_id']} (show {hold.get('show_id')}) is still live in Postgres at "
            f"{_when(history, final.taken_at)}; it expired {_when(history, hold['expires_at'])}",
            {"hold_id": str(hold["hold_id"]), "show_id": hold.get("show_id"), "where": "postgres"},
        )
        for hold in final.holds
        if hold.get("status") == "live"
    ]
    for show_id, snapshot in sorted(final.snapshots.items()):
        found += [
            Violation(
                "hold_live_at_end",
                f"hold {hold_id} is still in show {show_id}'s actor at the end",
                {"hold_id": str(hold_id), "show_id": show_id, "where": "actor"},
            )
            for hold_id in snapshot.get("holds", [])
        ]
    return found


def hold_vanished(history: History) -> list[Violation]:
    """Every hold a client was told of (a 2xx hold naming its id) is in Postgres. One that is
    not is allowed only when a host_kill or postgres_restart was under way within
    ``HOLD_LOSS_WINDOW_S`` after the answer (its span meets [answer, answer + window]) and no
    final actor snapshot lists it."""
    final = _final(history)
    stored = {str(h["hold_id"]) for h in final.holds}
    in_actors = {str(h) for snap in final.snapshots.values() for h in snap.get("holds", [])}
    found = []
    for hold_id, call in sorted(_told_holds(history).items()):
        if hold_id in stored:
            continue
        excuse = _hold_losing_fault(history, call.ended)
        if excuse is not None and hold_id not in in_actors:
            continue
        why = "no host kill or Postgres restart came within " + f"{HOLD_LOSS_WINDOW_S:g}s"
        if excuse is not None:
            why = "it is still in an actor"
        found.append(
            Violation(
                "hold_vanished",
                f"hold {hold_id} (show {call.show_id}) told to {call.client} "
                f"{_when(history, call.ended)} is not in Postgres, and {why}",
                {"hold_id": hold_id, "client": call.client, "show_id": call.show_id},
            )
        )
    return found


def _told_holds(history: History) -> dict[str, Call]:
    told: dict[str, Call] = {}
    for call in sorted(history.calls, key=lambda c: c.ended):
        hold_id = _id(call, "hold_id") if _settled(call) and call.op in _HOLD_OPS else None
        if hold_id is not None:
            told.setdefault(hold_id, call)
    return told


def _hold_losing_fault(history: History, answered: float) -> str | None:
    for fault in history.faults:
        if fault.kind in _HOLD_LOSING_FAULTS and (
            fault.started <= answered + HOLD_LOSS_WINDOW_S and fault.ended >= answered
        ):
            return fault.kind
    return None


# -- 5. watchers ----------------------------------------------------------------------------


def watcher_diverged(history: History) -> list[Violation]:
    """Every watcher ends at its show's final snapshot: the same version and every seat in
    the same state (a seat missing from one side counts as available). A watcher that
    stayed connected is reported as ``watcher_diverged``, one that reconnected as
    ``watcher_diverged_after_reconnect``. Watchers of a show with no snapshot are skipped."""
    final = _final(history)
    found = []
    for watcher in history.watchers:
        snapshot = final.snapshots.get(watcher.show_id)
        if snapshot is None:
            continue
        seats = {str(s): _state(st) for s, st in snapshot.get("seats", {}).items()}
        theirs = {str(s): _state(st) for s, st in watcher.seats.items()}
        wrong = sorted(
            f"{seat} {theirs.get(seat, 'available')}!={seats.get(seat, 'available')}"
            for seat in seats.keys() | theirs.keys()
            if theirs.get(seat, "available") != seats.get(seat, "available")
        )
        version = int(snapshot.get("version", -1))
        if watcher.version == version and not wrong:
            continue
        name = (
            "watcher_diverged" if watcher.stayed_connected else "watcher_diverged_after_reconnect"
        )
        found.append(
            Violation(
                name,
                f"{watcher.client} on show {watcher.show_id} ({watcher.connects} connects) "
                f"ended at version {watcher.version}, the actor at {version}; "
                f"seats that differ: {len(wrong)}" + (f": {_some(wrong)}" if wrong else ""),
                {"client": watcher.client, "show_id": watcher.show_id, "seats": len(wrong)},
            )
        )
    return found


# -- 6. the waiting room --------------------------------------------------------------------


def admission_of(call: Call) -> str | None:
    """The admission identity a waiting-room answer gave: an ``ids`` entry named
    "admission…" (a digest the client recorded), else the admission token in the body (the
    same admission always signs the same token)."""
    if not _settled(call) or call.op not in _QUEUE_OPS:
        return None
    for key in sorted(call.ids):
        if key.startswith("admission") and call.ids[key]:
            return str(call.ids[key])
    token = (call.body or {}).get("admission_token")
    return None if token is None else str(token)


def admitted_twice(history: History) -> list[Violation]:
    """In the waiting room's admission events, no (show, user) is admitted twice and no
    queue number is admitted twice in one show; and no visitor was given two different
    admission identities for one show."""
    found = []
    admissions = _final(history).admissions
    users = Counter((int(a["show_id"]), int(a["user_id"])) for a in admissions)
    numbers = Counter((int(a["show_id"]), int(a["number"])) for a in admissions)
    found += [
        Violation(
            "admitted_twice",
            f"user {user} was admitted to show {show} {n} times",
            {"show_id": show, "user_id": user},
        )
        for (show, user), n in sorted(users.items())
        if n > 1
    ]
    found += [
        Violation(
            "admitted_twice",
            f"queue number {number} of show {show} was admitted {n} times",
            {"show_id": show, "number": number},
        )
        for (show, number), n in sorted(numbers.items())
        if n > 1
    ]
    seen: dict[tuple[str, int | None], set[str]] = defaultdict(set)
    for call in history.calls:
        identity = admission_of(call)
        if identity is not None:
            seen[(call.client, call.show_id)].add(identity)
    found += [
        Violation(
            "admitted_twice",
            f"{client} was given {len(ids)} different admissions to show {show}",
            {"client": client, "show_id": show, "admissions": len(ids)},
        )
        for (client, show), ids in sorted(seen.items(), key=lambda kv: str(kv[0]))
        if len(ids) > 1
    ]
    return found


# -- all of them ----------------------------------------------------------------------------

CHECKS: dict[str, Callable[[History], list[Violation]]] = {
    "seat_in_two_bookings": seat_in_two_bookings,
    "confirmation_lost": confirmation_lost,
    "payment_unsettled": payment_unsettled,
    "payment_double": payment_double,
    "hold_overdue": hold_overdue,
    "hold_live_at_end": hold_live_at_end,
    "hold_vanished": hold_vanished,
    "watcher_diverged": watcher_diverged,
    "admitted_twice": admitted_twice,
}
# Every name a violation may carry, in the order the report lists them.
CHECK_NAMES = (*CHECKS, "watcher_diverged_after_reconnect")


def check(history: History) -> list[Violation]:
    """Every check over ``history``; at most ``LISTED_PER_CHECK`` violations of one name are
    listed, then one that counts the rest. ``ValueError`` if the history has no final state.

    >>> check(history)   # a run that kept every promise
    []
    """
    _final(history)
    found = [v for run in CHECKS.values() for v in run(history)]
    return _capped(found)


def _capped(found: list[Violation]) -> list[Violation]:
    by_check: dict[str, list[Violation]] = defaultdict(list)
    for violation in found:
        by_check[violation.check].append(violation)
    out = []
    for name in sorted(by_check, key=_order):
        listed = by_check[name]
        out += listed[:LISTED_PER_CHECK]
        if len(listed) > LISTED_PER_CHECK:
            rest = len(listed) - LISTED_PER_CHECK
            out.append(Violation(name, f"{rest} more not listed", {"not_listed": rest}))
    return out


def _order(name: str) -> int:
    return CHECK_NAMES.index(name) if name in CHECK_NAMES else len(CHECK_NAMES)


def violation_counts(violations: Iterable[Violation]) -> dict[str, int]:
    """How many violations of each check (every name, 0 when none), counting those
    ``check`` did not list."""
    counts = dict.fromkeys(CHECK_NAMES, 0)
    for v in violations:
        counts[v.check] = counts.get(v.check, 0) + int(v.ids.get("not_listed", 1))
    return counts


# -- what customers saw ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outage:
    """A run of calls of one client that got no service, until its next answered call ended."""

    client: str
    started: float
    ended: float
    recovered: bool  # False: the client never got an ok answer again

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def customer_calls(history: History) -> dict[str, list[Call]]:
    """Each client's calls in the order made, watchers left out."""
    watchers = {w.client for w in history.watchers}
    calls: dict[str, list[Call]] = defaultdict(list)
    for call in sorted(history.calls, key=lambda c: c.started):
        if call.client not in watchers and not call.client.startswith("watcher"):
            calls[call.client].append(call)
    return calls


def outages(calls: list[Call]) -> list[Outage]:
    """One client's outages: from the start of an unavailable call (no answer, 5xx, 429)
    until the next call that got any other answer ended (a 2xx, or a 4xx such as a sold-out
    show: the service answered); the unavailable calls in between belong to it."""
    found: list[Outage] = []
    start: Call | None = None
    for call in calls:
        if start is None and call.unavailable:
            start = call
        elif start is not None and not call.unavailable:
            found.append(Outage(call.client, start.started, call.ended, True))
            start = None
    if start is not None:
        found.append(Outage(start.client, start.started, max(c.ended for c in calls), False))
    return found


def fault_kind_at(history: History, at: float) -> str:
    """The kind of the latest fault whose span [started, ended + FAULT_TAIL_S] holds ``at``,
    else "none"."""
    kind, latest = "none", float("-inf")
    for fault in history.faults:
        if fault.started <= at <= fault.ended + FAULT_TAIL_S and fault.started > latest:
            kind, latest = fault.kind, fault.started
    return kind


def unavailability(history: History) -> dict[str, dict[str, Any]]:
    """Per fault kind (every kind of FAULT_KINDS, and "none" for outages during no fault):
    the longest outage a customer saw (seconds), whose it was, when it started (seconds
    since the run began), whether the client recovered, and how many outages there were."""
    table: dict[str, dict[str, Any]] = {
        kind: {"longest_s": 0.0, "client": None, "at_s": None, "recovered": None, "runs": 0}
        for kind in (*FAULT_KINDS, "none")
    }
    for calls in customer_calls(history).values():
        for outage in outages(calls):
            row = table.setdefault(
                fault_kind_at(history, outage.started),
                {"longest_s": 0.0, "client": None, "at_s": None, "recovered": None, "runs": 0},
            )
            row["runs"] += 1
            if outage.seconds > row["longest_s"]:
                row.update(
                    longest_s=round(outage.seconds, 3),
                    client=outage.client,
                    at_s=round(outage.started - history.started, 3),
                    recovered=outage.recovered,
                )
    return table


# -- the figures ----------------------------------------------------------------------------


def outcome(call: Call) -> str:
    """ "ok", "4xx", "unavailable" (no answer, 5xx, 429) or "other" (1xx, 3xx)."""
    if call.ok:
        return "ok"
    if call.unavailable:
        return "unavailable"
    return "4xx" if call.status is not None and 400 <= call.status < 500 else "other"


def summary(history: History, violations: list[Violation] | None = None) -> dict[str, Any]:
    """Operations by op and outcome, faults by kind (count, total seconds), watchers (stayed
    connected / reconnected), violations by check (``check(history)`` when not given)."""
    if violations is None:
        violations = check(history)
    operations: dict[str, Counter[str]] = {op: Counter() for op in OPS}
    for call in history.calls:
        operations.setdefault(call.op, Counter())[outcome(call)] += 1
    faults = {kind: {"count": 0, "seconds": 0.0} for kind in FAULT_KINDS}
    for fault in history.faults:
        row = faults.setdefault(fault.kind, {"count": 0, "seconds": 0.0})
        row["count"] += 1
        row["seconds"] = round(row["seconds"] + fault.ended - fault.started, 3)
    stayed = sum(w.stayed_connected for w in history.watchers)
    return {
        "seed": history.seed,
        "seconds": round(history.ended - history.started, 3),
        "operations": {
            op: {"total": sum(c.values()), **{k: c[k] for k in ("ok", "4xx", "unavailable")}}
            | ({"other": c["other"]} if c["other"] else {})
            for op, c in operations.items()
            if c
        },
        "faults": faults,
        "watchers": {
            "total": len(history.watchers),
            "stayed_connected": stayed,
            "reconnected": len(history.watchers) - stayed,
        },
        "violations": violation_counts(violations),
    }
