"""The fault stack's catalog and accounts, made straight in its Postgres: two theaters with an
admin each, the shows the load contends for (small on purpose: seats run out), one more for the
flash sale, a quiet show per theater for the security checks, and customers and visitors each
with an access token valid for the whole run."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from loadtest.faults import model
from loadtest.faults.stack.options import FaultStackOptions
from loadtest.locust.stack import bulk

PRICE_CENTS = 1200


@dataclass
class People:
    """What ``fill`` made: the shows and the accounts."""

    shows: list[int]
    flash_show: int
    customers: list[model.Account]
    visitors: list[model.Account]
    admins: list[model.TheaterAdmin]


async def fill(config: Any, o: FaultStackOptions) -> People:
    """Migrate, make the catalog and every account (one cheap password hash shared)."""
    import storage
    from gateway.auth import Auth

    pool = await storage.create_pool(config.database_url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await storage.migrate(conn)
            theaters, shows = await _catalog(conn, o)
        auth = Auth(config, None, None)
        password = secrets.token_urlsafe(12)
        hashed = await auth.hash_password(password)

        async def account(email: str, role: str = "customer", theater: int = 0) -> model.Account:
            async with pool.acquire() as conn:
                user = await storage.create_user(
                    conn, email, hashed, keyring=config.keyring, role=role
                )
                if theater:
                    await storage.grant_theater(conn, user.id, theater)
            return model.Account(user.id, email, password, auth.access_token(user))

        def mail(kind: str, i: int) -> str:
            return f"{o.run}-{kind}{i}@example.com"

        customers = await bulk([account(mail("c", i)) for i in range(o.customers)])
        visitors = await bulk([account(mail("v", i)) for i in range(o.visitors)])
        admins = [
            model.TheaterAdmin(t, await account(mail("admin", t), "theater_admin", t), show)
            for t, show in theaters
        ]
    finally:
        await pool.close()
    return People(shows[:-1], shows[-1], customers, visitors, admins)


async def _catalog(conn: Any, o: FaultStackOptions) -> tuple[list[tuple[int, int]], list[int]]:
    """A city, two theaters of one screen each, ``o.shows`` shows on sale spread over them and
    one more (the flash sale's, last) on the second, days ahead and four hours apart; and a
    quiet show in each theater that the load leaves alone (the security checks' own). Returns
    each theater with its quiet show, and the loaded show ids."""
    import storage

    now = dt.datetime.now(dt.UTC)
    city = await storage.create_city(conn, "Faultville", "US")
    movie = await storage.create_movie(
        conn,
        title="The Fault Line",
        genres=["drama"],
        runtime_min=100,
        certificate="PG",
        language="en",
        release_date=dt.date(2026, 1, 1),
        cast_members=[],
        synopsis="",
    )
    screens = []
    for name in ("North", "South"):
        theater = await storage.create_theater(conn, city, f"{name} Cinema", "America/New_York")
        layout = grid(o.rows, o.per_row)
        screens.append((theater, await storage.create_screen(conn, theater, "1", layout)))
    first = (now + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)

    async def show(screen: int, i: int) -> int:
        return int(
            await storage.create_show(
                conn,
                screen_id=screen,
                movie_id=movie,
                starts_at=first + dt.timedelta(hours=4 * i),
                prices={"standard": PRICE_CENTS},
                now=now,
                status="on_sale",
            )
        )

    shows = [
        await show(screens[i % 2][1] if i < o.shows else screens[1][1], i)
        for i in range(o.shows + 1)
    ]
    quiet = [(t, await show(screen, o.shows + 1 + i)) for i, (t, screen) in enumerate(screens)]
    return quiet, shows


def grid(rows: int, per_row: int) -> dict[str, Any]:
    """``rows`` rows (A, B, ...) of ``per_row`` standard seats, in ``screens.layout``'s shape."""
    return {
        "rows": [
            {
                "label": chr(ord("A") + r),
                "seats": [
                    {
                        "label": f"{chr(ord('A') + r)}{n}",
                        "category": "standard",
                        "x": float(n),
                        "y": float(r),
                        "aisle_after": False,
                    }
                    for n in range(1, per_row + 1)
                ],
            }
            for r in range(rows)
        ]
    }
