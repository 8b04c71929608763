"""The assistant's tools: what Claude and the local assistant may do, as the logged-in customer
with that customer's rights only.

    tools = Tools(app, principal, conversation, request=request)
    found = await tools.search_movies("action tonight")
    hold = await tools.hold_seats(show_id, count=2)          # sets conversation.pending
    await tools.start_checkout(show_id, hold["hold_id"])     # ToolError until the customer's yes

Every method returns a JSON-able dict or raises ``ToolError(code, message)``. Someone else's hold
or booking is ``not_found`` (never a hint it exists); a tool that needs a login refuses a
visitor with ``login_required``. Holds go through the show actors (``app[keys.ENGINE]``) at the
price of a fresh quote (``app[keys.PRICING]``), checkout and cancellation through the booking
saga (``app[keys.SAGA]``): the same services and rules as the HTTP views. A hold's id is derived
from the conversation, its turn and the show, so a retried turn never makes a second hold.
Cards for the page collect in ``tools.cards``; each call is logged in ``tools.calls``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

import actors
import storage
from gateway import keys, serialize
from gateway.errors import describe
from gateway.idempotency import derived_id
from gateway.pricing import hold_prices
from storage import assistant as store

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.assistant.state import Conversation
    from gateway.auth import Principal

MAX_SEATS = 10
TOOL_NAMES = (
    "search_movies",
    "get_showtimes",
    "check_seats",
    "hold_seats",
    "start_checkout",
    "cancel_booking",
    "booking_status",
)


class ToolError(Exception):
    """A tool refused or failed: ``code`` is machine-readable (``not_found``,
    ``login_required``, ``confirmation_required``, ``seat_unavailable``, …)."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def public(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


def plain(value: Any) -> Any:
    """JSON-able: dataclasses to dicts, datetimes to ISO text, tuples to lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return value


class Tools:
    def __init__(
        self,
        app: web.Application,
        principal: Principal | None,
        conversation: Conversation,
        *,
        request: web.Request | None = None,
        clock: Any = None,
    ) -> None:
        self.app = app
        self.principal = principal
        self.conversation = conversation
        self.request = request
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.cards: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []

    # -- dispatch (Claude's tool_use blocks) --------------------------------------------------

    async def run(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call the tool ``name`` with ``arguments``; ToolError for an unknown tool or bad
        arguments."""
        if name not in TOOL_NAMES:
            raise ToolError("unknown_tool", f"there is no tool {name!r}")
        method = getattr(self, name)
        try:
            return await method(**arguments)  # type: ignore[no-any-return]
        except TypeError as exc:
            raise ToolError("bad_arguments", f"{name}: {exc}") from None

    def _log(self, name: str, args: dict[str, Any], outcome: str) -> None:
        self.calls.append({"tool": name, "args": args, "outcome": outcome})

    def _user(self) -> int:
        if self.principal is None:
            raise ToolError("login_required", "log in first: I can only do this for you then")
        return self.principal.user_id

    async def _guarded(self, name: str, args: dict[str, Any], work: Any) -> dict[str, Any]:
        """Run ``work``; domain errors become ToolErrors with the HTTP API's codes."""
        try:
            result: dict[str, Any] = await work
        except ToolError as exc:
            self._log(name, args, exc.code)
            raise
        except Exception as exc:
            status, body, _ = describe(exc)
            error = body["error"]
            self._log(name, args, error["code"])
            if status >= 500 and error["code"] == "internal_error":
                raise
            code = "not_found" if status in (403, 404) else error["code"]
            raise ToolError(code, error["message"], _safe(error.get("details"))) from exc
        self._log(name, args, "ok")
        return result

    # -- the tools ---------------------------------------------------------------------------

    async def search_movies(self, query: str, city_id: int | None = None) -> dict[str, Any]:
        """Movies matching free text, each with its next shows (the search service's answer)."""
        args = {"query": query, "city_id": city_id}
        return await self._guarded("search_movies", args, self._search(query, city_id))

    async def _search(self, query: str, city_id: int | None) -> dict[str, Any]:
        service = self.app.get(keys.SEARCH)
        if service is not None:
            found = await service.search(query, city_id=city_id, now=self._clock(), limit=5)
            movies = plain(getattr(found, "results", []))[:5]
            understood = plain(getattr(found, "understood", []))
        else:
            async with self.app[keys.POOL].acquire() as conn:
                movies = await store.movies_titled(conn, query[:100])
            understood = [{"free_text": query}]
        shows = [
            {**s, "movie_id": m.get("id"), "title": m.get("title")}
            for m in movies
            for s in (m.get("shows") or [])[:3]
        ]
        if shows:
            self.cards.append({"type": "shows", "shows": shows[:9]})
        return {"movies": movies, "understood": understood}

    async def get_showtimes(
        self, movie_id: int, city_id: int | None = None, date: str | None = None
    ) -> dict[str, Any]:
        """The movie's shows on ``date`` (YYYY-MM-DD, the theater's day), or the next 36 hours."""
        args = {"movie_id": movie_id, "city_id": city_id, "date": date}
        return await self._guarded("get_showtimes", args, self._showtimes(movie_id, city_id, date))

    async def _showtimes(self, movie_id: int, city_id: int | None, date: str | None) -> dict:
        now = self._clock()
        if date is not None:
            try:
                day = dt.date.fromisoformat(date)
            except ValueError:
                raise ToolError("bad_arguments", "date must be YYYY-MM-DD") from None
            start = dt.datetime.combine(day, dt.time(), dt.UTC) - dt.timedelta(hours=14)
            start, end = max(start, now), start + dt.timedelta(hours=52)
        else:
            start, end = now, now + dt.timedelta(hours=36)
        async with self.app[keys.POOL].acquire() as conn:
            slots = await store.upcoming_shows(
                conn, int(movie_id), city_id=city_id, start=start, end=end, limit=40
            )
        if date is not None:
            slots = [s for s in slots if s.starts_at.date().isoformat() == date]
        shows = [_slot(s) for s in slots[:20]]
        if shows:
            self.cards.append({"type": "shows", "shows": shows[:9]})
        return {"movie_id": movie_id, "shows": shows}

    async def check_seats(self, show_id: int, category: str | None = None) -> dict[str, Any]:
        """Seats left by category, prices, and the best ones in the wanted category."""
        args = {"show_id": show_id, "category": category}
        return await self._guarded("check_seats", args, self._seats(int(show_id), category))

    async def _seats(self, show_id: int, category: str | None) -> dict[str, Any]:
        details = await self.app[keys.SHOW_INFO](show_id)
        snapshot = await self.app[keys.ENGINE].snapshot(show_id)
        kinds = _categories(details.layout)
        free = [s for s, state in snapshot.seats.items() if state == actors.SeatState.AVAILABLE]
        left = Counter(kinds.get(s, "standard") for s in free)
        wanted = category or "standard"
        best = [s for s in _ordered(details.layout) if s in set(free) and kinds[s] == wanted]
        return {
            "show_id": show_id,
            "title": details.movie_title,
            "theater_name": details.theater_name,
            "starts_at": details.starts_at.isoformat(),
            "status": details.status,
            "available": dict(sorted(left.items())),
            "prices": dict(details.prices),
            "currency": details.currency,
            "suggested": best[:6],
        }

    async def hold_seats(
        self,
        show_id: int,
        seats: list[str] | None = None,
        count: int | None = None,
        category: str | None = None,
    ) -> dict[str, Any]:
        """Hold these seats, or the best ``count`` of ``category``; the checkout summary then
        awaits the customer's yes (``conversation.pending``)."""
        args = {"show_id": show_id, "seats": seats, "count": count, "category": category}
        work = self._hold(int(show_id), seats, count, category)
        return await self._guarded("hold_seats", args, work)

    async def _hold(
        self, show_id: int, seats: list[str] | None, count: int | None, category: str | None
    ) -> dict[str, Any]:
        user = str(self._user())
        if not seats and not count:
            raise ToolError("bad_arguments", "say which seats, or how many")
        if len(seats or []) > MAX_SEATS or (count or 0) > MAX_SEATS or (count or 1) < 1:
            raise ToolError("too_many_seats", f"at most {MAX_SEATS} seats at once")
        details = await self.app[keys.SHOW_INFO](show_id)
        if details.status == "flash_sale":
            raise ToolError(
                "admission_required", "this show is in a flash sale: join its line on the page"
            )
        conv = self.conversation
        hold_id = derived_id(user, f"chat:{conv.id}:{conv.turn}", f"hold:{show_id}")
        prices, arm, _ = await self.app[keys.PRICING].prices(details, int(user))
        priced = hold_prices(prices)
        command: actors.HoldSeats | actors.HoldBest
        if seats:
            command = actors.HoldSeats(hold_id, user, tuple(seats), False, priced, arm)
        else:
            wanted = category or "standard"
            command = actors.HoldBest(
                hold_id, user, int(count or 0), wanted, False, False, priced, arm
            )
        hold = await self._execute(show_id, command)
        if self.request is not None:
            await self.app[keys.FRAUD].held(self.request, int(user), hold)
        await self._drop_previous(hold.hold_id)
        out = serialize.hold(hold, show_id, str(details.currency))
        summary = (
            f"{len(hold.seats)} seat(s) {', '.join(hold.seats)} for {details.movie_title} at "
            f"{details.theater_name}, {details.starts_at:%a %d %b %H:%M}: "
            f"{hold.price_cents / 100:.2f} {details.currency}"
        )
        conv.pending = {
            "kind": "checkout",
            "show_id": show_id,
            "hold_id": hold.hold_id,
            "summary": summary,
            "confirmed": False,
        }
        self.cards.append(
            {
                "type": "hold",
                "show_id": show_id,
                "hold_id": hold.hold_id,
                "seats": list(hold.seats),
                "total_cents": hold.price_cents,
                "currency": str(details.currency),
                "expires_at": out["expires_at"],
            }
        )
        return {**out, "summary": summary, "needs_confirmation": True}

    async def _execute(self, show_id: int, command: Any) -> Any:
        engine = self.app[keys.ENGINE]
        try:
            return await engine.execute(show_id, command)
        except actors.InvalidRequest as exc:
            if exc.details.get("hold_id") != command.hold_id:
                raise
            snapshot = await engine.snapshot(show_id)  # a retried turn: the first try made it
            return snapshot.live_hold(command.hold_id, command.user_id)

    async def _drop_previous(self, hold_id: str) -> None:
        """Release the hold an earlier summary was about, when a new one replaces it."""
        pending = self.conversation.pending
        if not pending or pending.get("hold_id") in (None, hold_id):
            return
        try:
            command = actors.Release(pending["hold_id"], str(self._user()))
            await self.app[keys.ENGINE].execute(int(pending["show_id"]), command)
        except Exception:  # expired or already gone: nothing to give back
            pass

    async def start_checkout(self, show_id: int, hold_id: str) -> dict[str, Any]:
        """Start paying for the hold the customer said yes to: the page shows the payment form
        for the payment this answers with (card data never passes through the assistant)."""
        args = {"show_id": show_id, "hold_id": hold_id}
        return await self._guarded("start_checkout", args, self._checkout(int(show_id), hold_id))

    async def _checkout(self, show_id: int, hold_id: str) -> dict[str, Any]:
        user_id = self._user()
        pending = self.conversation.pending or {}
        if pending.get("hold_id") != hold_id or int(pending.get("show_id", -1)) != show_id:
            raise ToolError(
                "confirmation_required",
                "summarise this hold for the customer and wait for their yes first",
            )
        if not pending.get("confirmed"):
            raise ToolError(
                "confirmation_required",
                "the customer has not said yes to the summary yet: ask them to confirm",
                {"summary": pending.get("summary")},
            )
        saga = self.app[keys.SAGA]
        if saga is None:
            raise ToolError("payments_disabled", "payments are not configured on this server")
        hold = (await self.app[keys.ENGINE].snapshot(show_id)).live_hold(hold_id, str(user_id))
        if self.request is not None:
            show = await self.app[keys.SHOW_INFO](show_id)
            await self.app[keys.FRAUD].check(
                self.request, user_id=user_id, show=show, hold=hold, billing_city_id=None
            )
        payment = await saga.checkout(user_id=user_id, show_id=show_id, hold_id=hold_id)
        self.conversation.pending = None
        card = {
            "type": "checkout",
            "show_id": show_id,
            "hold_id": hold_id,
            "payment_id": payment.payment_id,
        }
        self.cards.append(card)
        return {
            **card,
            "amount_cents": payment.amount_cents,
            "currency": payment.currency.upper(),
            "status": payment.status,
            "next": "the customer pays in the payment form shown on the page",
        }

    async def cancel_booking(self, booking_id: str) -> dict[str, Any]:
        """Cancel one of the customer's bookings, refunded by the policy."""
        args = {"booking_id": booking_id}
        return await self._guarded("cancel_booking", args, self._cancel(str(booking_id)))

    async def _cancel(self, booking_id: str) -> dict[str, Any]:
        user_id = self._user()
        await self._own_booking(booking_id, user_id)
        saga = self.app[keys.SAGA]
        if saga is None:
            raise ToolError("payments_disabled", "cancellations need payments, not set up here")
        done = await saga.cancel_booking(booking_id, user_id=user_id)
        booking = await self._own_booking(booking_id, user_id)
        refund = done.refund
        out = {
            "booking": _booking(booking),
            "refund": None
            if refund is None
            else {
                "amount_cents": refund.amount_cents,
                "currency": refund.currency.upper(),
                "status": refund.status,
            },
        }
        self.cards.append({"type": "booking", **out["booking"]})
        return out

    async def booking_status(self, booking_id: str | None = None) -> dict[str, Any]:
        """One of the customer's bookings, or (none given) their upcoming ones."""
        args = {"booking_id": booking_id}
        return await self._guarded("booking_status", args, self._status(booking_id))

    async def _status(self, booking_id: str | None) -> dict[str, Any]:
        user_id = self._user()
        if booking_id is not None:
            booking = await self._own_booking(str(booking_id), user_id)
            self.cards.append({"type": "booking", **_booking(booking)})
            return {"bookings": [_booking(booking)]}
        async with self.app[keys.POOL].acquire() as conn:
            found = await storage.bookings_of_user(conn, user_id, limit=50)
        now = self._clock()
        upcoming = [b for b in found if b.starts_at >= now and b.status == "confirmed"]
        upcoming.sort(key=lambda b: b.starts_at)
        for b in upcoming[:3]:
            self.cards.append({"type": "booking", **_booking(b)})
        return {"bookings": [_booking(b) for b in upcoming[:10]]}

    async def _own_booking(self, booking_id: str, user_id: int) -> storage.BookingRecord:
        try:
            async with self.app[keys.POOL].acquire() as conn:
                booking = await storage.get_booking(conn, booking_id)
        except storage.NotFound:
            booking = None
        except Exception as exc:  # a malformed id reads as missing
            if describe(exc)[0] >= 500:
                raise
            booking = None
        if booking is None or booking.user_id != user_id:
            raise ToolError("not_found", "you have no booking with this id")
        return booking


def _safe(details: Any) -> dict[str, Any]:
    if not isinstance(details, dict):
        return {}
    return {k: v for k, v in details.items() if k in ("seats", "hold_id", "show_id", "category")}


def _slot(s: store.ShowSlot) -> dict[str, Any]:
    return {
        "show_id": s.show_id,
        "movie_id": s.movie_id,
        "title": s.movie_title,
        "theater_id": s.theater_id,
        "theater_name": s.theater_name,
        "city_id": s.city_id,
        "starts_at": s.starts_at.isoformat(),
        "prices": s.prices,
        "currency": s.currency,
    }


def _booking(b: storage.BookingRecord) -> dict[str, Any]:
    return {
        "booking_id": b.booking_id,
        "show_id": b.show_id,
        "seats": list(b.seats),
        "price_cents": b.price_cents,
        "currency": b.currency,
        "status": b.status,
        "movie_title": b.movie_title,
        "theater_name": b.theater_name,
        "starts_at": b.starts_at.isoformat(),
    }


def _categories(layout: dict[str, Any]) -> dict[str, str]:
    return {
        seat["label"]: seat.get("category", "standard")
        for row in layout.get("rows", [])
        for seat in row.get("seats", [])
        if not seat.get("out_of_service")
    }


def _ordered(layout: dict[str, Any]) -> list[str]:
    """Seats nearest the sweet spot first (a suggestion; the actor picks the real block)."""
    spot = layout.get("sweet_spot") or {}
    sx, sy = float(spot.get("x", 0.0)), float(spot.get("y", 0.0))
    seats = [s for row in layout.get("rows", []) for s in row.get("seats", [])]
    if not spot:
        return [s["label"] for s in seats]
    seats.sort(key=lambda s: (float(s["x"]) - sx) ** 2 + (float(s["y"]) - sy) ** 2)
    return [s["label"] for s in seats]


__all__ = ["TOOL_NAMES", "ToolError", "Tools", "plain"]
