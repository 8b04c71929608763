"""A running server as the load's target (``--host``; the driver's side).

    target = await open_remote("http://127.0.0.1:8080", StackOptions(...), say)

Customers registered through the API (the server hashes each password at its deployment's
cost), shows found by browsing it, a flash sale set by the admin of ``StackOptions`` and put
back on sale at the end. Nothing of the server is ended or dropped on closing.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any

from loadtest.locust.scenarios import API
from loadtest.locust.stack import (
    Say,
    StackOptions,
    Target,
    base_plan,
    bulk,
    end_flash_sale,
    open_flash_sale,
    send,
)


async def open_remote(url: str, options: StackOptions, say: Say) -> Target:
    """A server someone runs (``seatserver up``): customers registered through the API, shows
    found by browsing it, a flash sale set by the admin of ``options`` (put back on sale at
    the end). Nothing of it is ended or dropped on closing."""
    import aiohttp

    target = Target(url.rstrip("/"), {}, f"a running server at {url} (--host)")
    target.metrics_url = target.url
    began = time.monotonic()
    async with aiohttp.ClientSession(target.url) as session:
        await send(session, "GET", API + "/health")
        password = secrets.token_urlsafe(12)
        total = options.accounts + options.flash_accounts
        emails = [f"{options.run}-c{i}@example.com" for i in range(total)]
        say(f"registering {total} customers (the server hashes each password: a while)")
        tokens = await bulk([_register(session, email, password) for email in emails])
        shows, days = await _discover(session, options.watched_shows)
        login = {"email": options.admin_email, "password": options.admin_password}
        admin = await send(session, "POST", API + "/auth/login", login)
    accounts = [
        {"email": e, "password": password, "token": t} for e, t in zip(emails, tokens, strict=True)
    ]
    plan = base_plan(days)
    plan.update(shows)
    plan["accounts"] = accounts[: options.accounts]
    plan["flash_accounts"] = accounts[options.accounts :]
    plan["admin_token"] = admin["access_token"]
    took, found = time.monotonic() - began, len(shows["bookable_shows"])
    say(f"{total} customers registered, {found} shows found in {took:.1f} s")
    target.closers.append(lambda: end_flash_sale(target.url, plan))
    await open_flash_sale(target.url, plan, options)
    target.plan = plan
    return target


async def _register(session: Any, email: str, password: str) -> str:
    body = {"email": email, "password": password}
    return str((await send(session, "POST", API + "/auth/register", body))["access_token"])


async def _discover(session: Any, watched: int) -> tuple[dict[str, Any], list[str]]:
    """Shows on sale that start in more than 3 hours, found as a customer finds them."""
    today = dt.date.today()
    days = [(today + dt.timedelta(days=n)).isoformat() for n in range(3)]
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    found: dict[int, None] = {}
    for city in (await send(session, "GET", API + "/cities"))["cities"][:3]:
        for day in days:
            base = f"{API}/cities/{city['id']}/movies"
            for movie in (await send(session, "GET", f"{base}?date={day}"))["movies"][:8]:
                answer = await send(session, "GET", f"{base}/{movie['id']}/shows?date={day}")
                for show in (s for t in answer["theaters"] for s in t["shows"]):
                    starts = dt.datetime.fromisoformat(show["starts_at"])
                    if show["status"] == "on_sale" and starts > soon:
                        found[show["show_id"]] = None
    ids = list(found)
    if len(ids) < watched + 10:
        raise RuntimeError(f"only {len(ids)} upcoming shows on sale found at the server")
    shows = {
        "flash_show": ids[0],
        "watched_shows": ids[1 : 1 + watched],
        "bookable_shows": ids[1 + watched :],
    }
    return shows, days
