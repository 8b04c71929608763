"""The waiting room admitted no one twice: its admission events, and the admissions each
visitor was given."""

from __future__ import annotations

from collections import Counter, defaultdict

from loadtest.faults.checker.reading import final_of, settled
from loadtest.faults.model import Call, History, Violation

_QUEUE_OPS = ("queue_join", "queue_poll", "queue_hold")


def admission_of(call: Call) -> str | None:
    """The admission identity a waiting-room answer gave: an ``ids`` entry named
    "admission…" (a digest the client recorded), else the admission token in the body (the
    same admission always signs the same token)."""
    if not settled(call) or call.op not in _QUEUE_OPS:
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
    admissions = final_of(history).admissions
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
