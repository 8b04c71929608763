"""Every seat-map watcher converges to its show's final seat map: its last version and
seats against the actor's final snapshot."""

from __future__ import annotations

from loadtest.faults.checker.reading import final_of, seat_state, some
from loadtest.faults.model import History, Violation


def watcher_diverged(history: History) -> list[Violation]:
    """Every watcher ends at its show's final snapshot: the same version and every seat in
    the same state (a seat missing from one side counts as available). A watcher that
    stayed connected is reported as ``watcher_diverged``, one that reconnected as
    ``watcher_diverged_after_reconnect``. Watchers of a show with no snapshot are skipped."""
    final = final_of(history)
    found = []
    for watcher in history.watchers:
        snapshot = final.snapshots.get(watcher.show_id)
        if snapshot is None:
            continue
        seats = {str(s): seat_state(st) for s, st in snapshot.get("seats", {}).items()}
        theirs = {str(s): seat_state(st) for s, st in watcher.seats.items()}
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
                f"seats that differ: {len(wrong)}" + (f": {some(wrong)}" if wrong else ""),
                {"client": watcher.client, "show_id": watcher.show_id, "seats": len(wrong)},
            )
        )
    return found
