"""Every check over a history at once: the violations in the report's order, capped per
check, and how many of each there were.

``check`` lists at most ``LISTED_PER_CHECK`` violations of one check and then one more that
counts the rest (``ids["not_listed"]``); ``violation_counts`` adds them up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from loadtest.faults.checker.confirmations import confirmation_lost
from loadtest.faults.checker.holds import hold_live_at_end, hold_overdue, hold_vanished
from loadtest.faults.checker.money import payment_double, payment_unsettled
from loadtest.faults.checker.reading import final_of
from loadtest.faults.checker.seats import seat_in_two_bookings
from loadtest.faults.checker.waiting_room import admitted_twice
from loadtest.faults.checker.watchers import watcher_diverged
from loadtest.faults.model import History, Violation

LISTED_PER_CHECK = 10

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
    final_of(history)
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
