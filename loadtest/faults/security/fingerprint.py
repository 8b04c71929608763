"""What "nothing changed" compares, taken before the security checks and after each
one: a digest of every row of the tables a booking, payment or admin action writes in the run's
schema, and the seat-map version of each show involved. ``audit_log`` is left out (it grows by
design). A hold that only reached its expiry meanwhile is not a change."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from loadtest.locust.scenarios import API

# The tables a booking, a payment or an admin action writes, and what keys their rows.
TABLES: dict[str, str] = {
    "holds": "hold_id::text",
    "bookings": "booking_id::text",
    "booking_seats": "booking_id::text || ' ' || seat",
    "payments": "payment_id::text",
    "refunds": "refund_id::text",
    "shows": "id::text",
    "show_blocked_seats": "show_id::text || ' ' || seat",
    "flash_sales": "show_id::text",
    "webhook_events": "provider || ' ' || event_id",
    "idempotency_keys": "user_id::text || ' ' || key",
    "users": "id::text",
    "theater_admins": "user_id::text || ' ' || theater_id::text",
}
# A row's digest leaves out what expiring changes (a hold's status and end, its show's
# version: compared apart, through the seat map); its status is kept beside it.
_ROWS = (
    "SELECT {key} AS k, md5((to_jsonb(t) - 'status' - 'ended_at' - 'seat_version')::text) AS d, "
    "to_jsonb(t) ->> 'status' AS s, "
    "md5((to_jsonb(t) - 'status' - 'ended_at' - 'seat_version' - 'expires_at')::text) AS e "
    "FROM {table} t"
)
_LIVE_HOLDS = (
    "SELECT hold_id::text AS k, show_id, extract(epoch FROM expires_at)::float8 AS exp "
    "FROM holds WHERE status = 'live'"
)


@dataclass(frozen=True)
class Fingerprint:
    taken_at: float
    # table -> key -> (digest, status, digest without the expiry: an expiring hold's row may
    # carry the moment it was expired)
    rows: dict[str, dict[str, tuple[str, str | None, str]]]
    live_holds: dict[str, tuple[int, float]]  # hold -> (show, expires at, epoch seconds)
    versions: dict[int, int | None]  # show -> seat-map version (None: no answer)

    def expired_by(self, when: float) -> set[str]:
        """The holds live here whose expiry is past by ``when``."""
        return {k for k, (_, exp) in self.live_holds.items() if exp <= when}


async def fingerprint(
    conn: Any, session: aiohttp.ClientSession, url: str, shows: list[int]
) -> Fingerprint:
    """The rows of ``TABLES`` (on ``conn``, in the run's schema) and the shows' seat-map
    versions (``GET /shows/{id}/seatmap`` at ``url``)."""
    rows: dict[str, dict[str, tuple[str, str | None, str]]] = {}
    # One snapshot: a hold that ends between reading its row and reading the live holds would
    # be live in one and not in the other, and read as changed at the next fingerprint.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for table, key in TABLES.items():
            found = await conn.fetch(_ROWS.format(key=key, table=table))
            rows[table] = {r["k"]: (r["d"], r["s"], r["e"]) for r in found}
        live = {r["k"]: (r["show_id"], r["exp"]) for r in await conn.fetch(_LIVE_HOLDS)}
    versions = {show: await _version(session, url, show) for show in shows}
    # Taken when the reading ended: a hold whose expiry came while the tables were read may
    # be seen expired, and counts as expired by then.
    return Fingerprint(time.time(), rows, live, versions)


async def _version(session: aiohttp.ClientSession, url: str, show: int) -> int | None:
    try:
        async with session.get(f"{url}{API}/shows/{show}/seatmap") as resp:
            body = await resp.json(content_type=None) if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    version = body.get("version") if isinstance(body, dict) else None
    return version if isinstance(version, int) else None


def differences(before: Fingerprint, after: Fingerprint) -> list[str]:
    """What changed between two fingerprints, in words; holds that only expired (and their
    shows' seat-map versions) are left out."""
    expired = before.expired_by(after.taken_at)
    found: list[str] = []
    for table in TABLES:
        old, new = before.rows.get(table, {}), after.rows.get(table, {})
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) == new.get(key):
                continue
            if table == "holds" and _only_expired(key, old.get(key), new.get(key), expired):
                continue
            verb = "added" if key not in old else "removed" if key not in new else "changed"
            found.append(f"{table} row {key} {verb}")
    aged = {before.live_holds[k][0] for k in expired}
    for show, version in after.versions.items():
        if before.versions.get(show) != version and show not in aged:
            found.append(f"show {show} seat map v{before.versions.get(show)} -> v{version}")
    return found


def _only_expired(
    key: str,
    old: tuple[str, str | None, str] | None,
    new: tuple[str, str | None, str] | None,
    expired: set[str],
) -> bool:
    # Its status alone: a long run's checks outlast the victim's kept hold, and the row of a
    # hold that expired meanwhile was seen to differ in more than its status and end.
    return key in expired and old is not None and new is not None and new[1] == "expired"
