"""The local assistant's flows: one function per thing a customer wants, picked by ``answer``.

Every answer is short, says what happens next, and carries its data in cards (see
``gateway.assistant.base``). Tool errors are told plainly; someone else's booking is "not
found", exactly as a booking that does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.assistant import local_read as read
from gateway.assistant.base import Reply
from gateway.assistant.local import HELP_TEXT, MAX_LISTED, is_confirmation
from gateway.assistant.local_bookings import (
    cancel,
    cancel_summary,
    chosen_booking,
    do_cancel,
    status,
)
from gateway.assistant.local_fail import tool_failed as _tool_failed
from gateway.assistant.tools import ToolError

if TYPE_CHECKING:
    from gateway.assistant.local import _Turn


async def answer(t: _Turn) -> Reply:
    """The reply to one message, the flows tried in order of precedence."""
    intent = read.intent(t.text)
    if intent == "handover":
        return t.handover("Of course: a person from our team will take over and answer here.")
    if intent == "dispute":
        return t.handover("I'm sorry about that refund. A person from our team will look into it "
                          "and answer you here.")  # fmt: skip
    early = await _awaited(t, intent)
    if early is not None:
        return early
    simple = {
        "help": HELP_TEXT,
        "greeting": 'Hello! Tell me what you\'d like to see, e.g. "comedy tonight".',
        "thanks": "You're welcome! Anything else?",
    }
    if intent in simple:
        t.understood()
        return Reply(simple[str(intent)])
    if intent == "status":
        return await status(t)
    if intent == "cancel":
        return await cancel(t)
    if intent == "release":
        return _release(t)
    if intent == "checkout":
        return await checkout(t)
    return await _choose_or_search(t)


async def _awaited(t: _Turn, intent: str | None) -> Reply | None:
    """Answers to what the assistant asked last: the checkout yes, the cancellation yes, which
    booking, how many seats."""
    pending = t.conv.pending
    if pending and pending.get("kind") == "checkout":
        if pending.get("confirmed"):
            return await checkout(t)
        said = is_confirmation(t.text)
        if said is True:  # a yes the engine did not record: ask again
            return await checkout(t)
        if said is False:
            t.understood()
            t.conv.pending = None
            held = t.slots.get("hold") or {}
            until = read.when(held.get("expires_at"))[-5:]
            return Reply(f"Alright, no checkout. Your seats stay held until {until}, then go "
                         "back on sale.")  # fmt: skip
    held = t.slots.get("hold")
    paid = (t.slots.get("checkout") or {}).get("hold_id")
    if pending is None and held and held["hold_id"] != paid and is_confirmation(t.text) is False:
        t.slots.pop("hold")  # the engine gave the seats back on this no
        t.understood()
        return Reply("Alright, no checkout: I've let those seats go. Want other seats or another "
                     "show?")  # fmt: skip
    if t.slots.get("cancel"):
        said = is_confirmation(t.text)
        if said is True:
            return await do_cancel(t, str(t.slots.pop("cancel")))
        if said is False:
            t.slots.pop("cancel")
            t.understood()
            return Reply("OK, your booking stays as it is.")
        if intent is None:
            return Reply("Say yes to cancel that booking, or no to keep it.", failed=True)
        t.slots.pop("cancel")
    asked = t.slots.pop("asked", None)
    if asked == "booking" and intent is None:
        chosen = chosen_booking(t)
        if chosen is not None:
            return await cancel_summary(t, chosen)
    if asked == "count" and intent is None and t.slots.get("show"):
        count = t.query.seat_count or read.bare_count(t.text) or read.count_in(t.text)
        if count is not None or read.BEST.search(read.norm(t.text)):
            return await hold(t, count=count)
        if read.seat_labels(t.text):
            return await hold(t)
    return None


# ---- finding and picking a show


async def _choose_or_search(t: _Turn) -> Reply:
    listed: list[dict[str, Any]] = t.slots.get("shows") or []
    picked = _picked(t, listed)
    n = read.norm(t.text)
    wants_seats = bool(
        t.query.seat_count or read.seat_labels(t.text) or read.BEST.search(n)
        or read.HOLD.search(n)
    )  # fmt: skip
    if isinstance(picked, Reply):
        return picked
    if picked is not None:
        t.slots["show"] = picked
        if wants_seats or t.slots.get("count"):  # a count may have come with the search
            return await hold(t)
        t.slots["asked"] = "count"
        t.understood()
        return Reply(f'{_show_line(picked)}. How many seats? (Or name them, e.g. "C7 C8".)')
    if t.slots.get("show") and wants_seats and not (t.query.genres or t.query.movies):
        return await hold(t)
    if t.searchy():
        return await search(t)
    if wants_seats:
        return Reply('Which show? Tell me a movie or a time, e.g. "action movies tonight".')
    return t.miss("Sorry, I didn't get that. " + HELP_TEXT)


def _picked(t: _Turn, listed: list[dict[str, Any]]) -> dict[str, Any] | Reply | None:
    """The listed show the customer picked by position or by time, if they did."""
    if not listed:
        return None
    by_id = read.SHOW_ID.search(t.text.lower())  # a show card's button: "… (show 11)"
    if by_id:
        chosen = [s for s in listed if str(s.get("show_id")) == by_id.group(1)]
        if chosen:
            return chosen[0]
    index = read.ordinal(t.text)
    if index is not None:
        if -len(listed) <= index < len(listed):
            return listed[index]
        return Reply(f"I listed {len(listed)} shows: pick a number from 1 to {len(listed)}.")
    at = t.query.at_time
    if at is None:
        return None
    same = [s for s in listed if read.local_time(s.get("starts_at")) == at]
    if len(same) >= 1:
        return same[0]
    if t.query.genres or t.query.movies:
        return None  # a new search with a time in it
    return Reply(f"None of the shows I listed starts at {at.strftime('%H:%M')}. Pick one of "
                 "them, or ask me for something else.")  # fmt: skip


async def search(t: _Turn) -> Reply:
    q = t.query
    try:
        found = await t.tools.search_movies(t.text, q.city_id)
    except ToolError as exc:
        return _tool_failed(t, exc)
    shows = _flatten(found)[:MAX_LISTED]
    t.slots["shows"] = shows
    t.slots.pop("show", None)
    if q.seat_count:
        t.slots["count"] = q.seat_count
    if not shows:
        return t.miss("I found no upcoming shows for that. Try another day, movie or genre.")
    t.understood()
    lines = "; ".join(f"{i}. {_show_line(s)}" for i, s in enumerate(shows, 1))
    return Reply(
        f"{_understood_text(found)}Here's what I found: {lines}. Which one? Say its number or "
        "time, or press it.",
        cards=[{"type": "shows", "shows": shows}],
    )


def _flatten(found: Any) -> list[dict[str, Any]]:
    """The shows of a search answer, soonest first within each movie, best movies first."""
    movies: list[Any] = []
    if isinstance(found, dict):
        movies = found.get("movies") or found.get("results") or []
    shows: list[dict[str, Any]] = []
    for movie in movies:
        for show in movie.get("shows", []):
            shows.append(
                {
                    "show_id": show["show_id"],
                    "movie_id": movie.get("movie_id", movie.get("id")),
                    "title": movie.get("title", ""),
                    "theater_name": show.get("theater_name", ""),
                    "starts_at": str(show.get("starts_at", "")),
                    "prices": show.get("prices", {}),
                    "currency": show.get("currency", ""),
                }
            )
    # One show per movie first, so five lines show five films when there are.
    seen: set[Any] = set()
    firsts = []
    for show in shows:
        if show["movie_id"] not in seen:
            seen.add(show["movie_id"])
            firsts.append(show)
    return firsts + [s for s in shows if s not in firsts]


def _understood_text(found: Any) -> str:
    parts = found.get("understood", []) if isinstance(found, dict) else []
    said = [f"{p.get('kind')}: {p.get('text')}" for p in parts if p.get("kind") != "free_text"]
    return f"I read {', '.join(said)}. " if said else ""


def _show_line(show: dict[str, Any]) -> str:
    prices = [v for v in (show.get("prices") or {}).values() if isinstance(v, int)]
    start = f", from {read.money(min(prices), show.get('currency'))}" if prices else ""
    when = read.when(show.get("starts_at"))
    return f"{show.get('title')} at {show.get('theater_name')}, {when}{start}"


# ---- holding seats and checkout


async def hold(t: _Turn, count: int | None = None) -> Reply:
    show = t.slots["show"]
    labels = list(read.seat_labels(t.text))
    count = count or t.query.seat_count or read.count_in(t.text) or t.slots.get("count")
    if not labels and count is None:
        t.slots["asked"] = "count"
        return Reply(f"{_show_line(show)}. How many seats?")
    try:
        if labels:
            held = await t.tools.hold_seats(show["show_id"], seats=labels)
        else:
            held = await t.tools.hold_seats(
                show["show_id"], count=int(count or 1), category=t.query.seat_category
            )
    except ToolError as exc:
        return _tool_failed(t, exc)
    t.understood()
    card = {
        "type": "hold",
        "show_id": show["show_id"],
        "hold_id": held["hold_id"],
        "seats": list(held.get("seats", [])),
        "total_cents": held.get("total_cents", held.get("price_cents")),
        "currency": held.get("currency", show.get("currency", "")),
        "expires_at": held.get("expires_at"),
    }
    t.slots["hold"] = card
    t.slots.pop("count", None)
    pending = t.conv.pending or {}
    summary = pending.get("summary") or (
        f"{read.seats_text(card['seats'])} for {_show_line(show)}, total "
        f"{read.money(card['total_cents'], card['currency'])}"
    )
    until = read.when(card["expires_at"])[-5:]
    return Reply(
        f"Held: {summary}. They're yours until {until}. Shall I take you to checkout? Say yes.",
        cards=[card],
    )


async def checkout(t: _Turn) -> Reply:
    pending = t.conv.pending
    if not pending or pending.get("kind") != "checkout":
        if t.slots.get("checkout"):
            return Reply("Your checkout is open above: pay in the payment form there.")
        return Reply('You have no seats held yet. Pick a show first, e.g. "comedy tonight".')
    if not pending.get("confirmed"):
        t.understood()
        summary = pending.get("summary") or "your held seats"
        return Reply(f"To check out: {summary}. Shall I go ahead? Say yes.")
    try:
        started = await t.tools.start_checkout(int(pending["show_id"]), str(pending["hold_id"]))
    except ToolError as exc:
        return _tool_failed(t, exc)
    t.understood()
    t.conv.pending = None
    card = {
        "type": "checkout",
        "show_id": int(pending["show_id"]),
        "hold_id": str(pending["hold_id"]),
        "payment_id": started["payment_id"],
    }
    t.slots["checkout"] = card
    return Reply("Your checkout is ready: pay in the payment form (your seats stay held while "
                 "you pay). Ask me for your booking status afterwards.", cards=[card])  # fmt: skip


def _release(t: _Turn) -> Reply:
    hold_card = t.slots.get("hold")
    t.understood()
    if not hold_card:
        return Reply("You're not holding any seats.")
    until = read.when(hold_card.get("expires_at"))[-5:]
    return Reply(f"I can't release seats from here: they go back on sale by themselves at "
                 f"{until}, or release them on the show's page.")  # fmt: skip
