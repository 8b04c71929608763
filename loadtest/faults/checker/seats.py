"""No seat in two live bookings: Postgres's confirmed bookings against each other and
against each show actor's final seat map."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from loadtest.faults.checker.reading import final_of, seat_state, some
from loadtest.faults.model import FinalState, History, Violation


def _confirmed(final: FinalState) -> list[dict[str, Any]]:
    return [b for b in final.bookings if b.get("status") == "confirmed"]


# -- 1. seats -------------------------------------------------------------------------------


def seat_in_two_bookings(history: History) -> list[Violation]:
    """No seat of a show is in two confirmed bookings in Postgres; and in each show actor's
    final snapshot the seats in state booked are exactly the seats of that show's confirmed
    bookings in Postgres. Shows with no snapshot are checked in Postgres only."""
    final = final_of(history)
    owners: dict[tuple[int, str], list[str]] = defaultdict(list)
    for booking in _confirmed(final):
        for seat in booking["seats"]:
            owners[(int(booking["show_id"]), str(seat))].append(str(booking["booking_id"]))
    found = [
        Violation(
            "seat_in_two_bookings",
            f"show {show} seat {seat} is in {len(ids)} confirmed bookings: {some(ids)}",
            {"show_id": show, "seat": seat, "booking_ids": sorted(ids)},
        )
        for (show, seat), ids in sorted(owners.items())
        if len(ids) > 1
    ]
    for show_id, snapshot in sorted(final.snapshots.items()):
        booked = {s for s, st in snapshot.get("seats", {}).items() if seat_state(st) == "booked"}
        stored = {seat for (show, seat) in owners if show == show_id}
        if booked != stored:
            extra, missing = sorted(booked - stored), sorted(stored - booked)
            found.append(
                Violation(
                    "seat_in_two_bookings",
                    f"show {show_id}: the actor has booked seats no confirmed booking holds "
                    f"[{some(extra)}] and lacks booked seats of confirmed bookings "
                    f"[{some(missing)}]",
                    {"show_id": show_id, "actor_only": extra, "postgres_only": missing},
                )
            )
    return found
