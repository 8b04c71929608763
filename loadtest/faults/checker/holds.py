"""Every hold released, expired or converted within its TTL plus the slack, none live at
the end, and none a client was told of lost (unless a crash may have lost it)."""

from __future__ import annotations

from loadtest.faults.checker.reading import final_of, id_of, settled, when
from loadtest.faults.model import Call, History, Violation

# A crash may lose holds younger than one flush (the durability contract): a hold a client was
# told of may be missing from Postgres only if a host was killed or Postgres restarted within
# this many seconds after the answer.
HOLD_LOSS_WINDOW_S = 2.0
# The faults that may lose a hold younger than one flush.
_HOLD_LOSING_FAULTS = ("host_kill", "postgres_restart")
_HOLD_OPS = ("hold", "queue_hold")


def hold_overdue(history: History) -> list[Violation]:
    """Every hold row in Postgres that ended (released, expired, confirmed) has
    ``ended_at <= expires_at + final.hold_slack_s``; an ended row without ``ended_at`` is
    reported too. Live rows are ``hold_live_at_end``'s."""
    final = final_of(history)
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
                f"ended {late}: expires {when(history, float(hold['expires_at']))}, slack "
                f"{final.hold_slack_s:g}s, ended {when(history, ended)}",
                {"hold_id": str(hold["hold_id"]), "show_id": hold.get("show_id")},
            )
        )
    return found


def hold_live_at_end(history: History) -> list[Violation]:
    """No hold row is live in Postgres at ``final.taken_at`` (every TTL plus the slack has
    passed by then), and no final actor snapshot still lists a hold."""
    final = final_of(history)
    found = [
        Violation(
            "hold_live_at_end",
            f"hold {hold['hold_id']} (show {hold.get('show_id')}) is still live in Postgres at "
            f"{when(history, final.taken_at)}; it expired {when(history, hold['expires_at'])}",
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
    final = final_of(history)
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
                f"{when(history, call.ended)} is not in Postgres, and {why}",
                {"hold_id": hold_id, "client": call.client, "show_id": call.show_id},
            )
        )
    return found


def _told_holds(history: History) -> dict[str, Call]:
    told: dict[str, Call] = {}
    for call in sorted(history.calls, key=lambda c: c.ended):
        hold_id = id_of(call, "hold_id") if settled(call) and call.op in _HOLD_OPS else None
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
