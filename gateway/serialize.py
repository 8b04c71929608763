"""JSON shapes the gateway answers with, built from the domain's records.

Times go out as ISO 8601 with their offset (the theater's zone for show times, UTC for holds
and bookings); money in minor units with its currency. A seat map never carries who holds or
booked a seat: only each seat's state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

import actors
import storage


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def epoch_iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def city(c: storage.City) -> dict[str, Any]:
    return asdict(c)


def theater(t: storage.Theater) -> dict[str, Any]:
    return asdict(t)


def movie_playing(m: storage.MoviePlaying) -> dict[str, Any]:
    body = asdict(m)
    body["genres"] = list(m.genres)
    body["first_start"] = iso(m.first_start)
    return body


def showtime(s: storage.Showtime) -> dict[str, Any]:
    body = asdict(s)
    body["starts_at"] = iso(s.starts_at)
    return body


def theater_shows(t: storage.TheaterShows) -> dict[str, Any]:
    return {
        "theater_id": t.theater_id,
        "theater_name": t.theater_name,
        "time_zone": t.time_zone,
        "shows": [showtime(s) for s in t.shows],
    }


def schedule_entry(e: storage.ScheduleEntry) -> dict[str, Any]:
    body = asdict(e)
    body["starts_at"] = iso(e.starts_at)
    body["ends_at"] = iso(e.ends_at)
    return body


def show(d: storage.ShowDetails) -> dict[str, Any]:
    """One show with its prices, without the layout (that comes with the seat map)."""
    return {
        "show_id": d.show_id,
        "theater_id": d.theater_id,
        "theater_name": d.theater_name,
        "time_zone": d.time_zone,
        "screen_id": d.screen_id,
        "screen_name": d.screen_name,
        "movie_id": d.movie_id,
        "movie_title": d.movie_title,
        "runtime_min": d.runtime_min,
        "starts_at": iso(d.starts_at),
        "ends_at": iso(d.ends_at),
        "status": d.status,
        "prices": dict(d.prices),
        "currency": d.currency,
        "sale_opens_at": iso(d.sale_opens_at),
    }


_SEAT_KEYS = ("label", "category", "x", "y", "aisle_after", "out_of_service")


def layout(raw: dict[str, Any]) -> dict[str, Any]:
    """The drawable layout: rows of seats with their positions and categories."""
    rows = [
        {
            "label": row["label"],
            "seats": [
                {
                    "label": seat["label"],
                    "category": seat["category"],
                    "x": float(seat["x"]),
                    "y": float(seat["y"]),
                    "aisle_after": bool(seat.get("aisle_after", False)),
                    "out_of_service": bool(seat.get("out_of_service", False)),
                }
                for seat in row["seats"]
            ],
        }
        for row in raw["rows"]
    ]
    body: dict[str, Any] = {"rows": rows}
    if raw.get("sweet_spot"):
        body["sweet_spot"] = {"x": raw["sweet_spot"]["x"], "y": raw["sweet_spot"]["y"]}
    return body


def seatmap(
    details: storage.ShowDetails, version: int, status: str, seats: dict[str, str]
) -> dict[str, Any]:
    """The seat map snapshot: the show, its layout, every seat's state, its version, prices."""
    return {
        "show_id": details.show_id,
        "version": version,
        "status": status,
        "currency": details.currency,
        "prices": dict(details.prices),
        "movie_title": details.movie_title,
        "theater_name": details.theater_name,
        "screen_name": details.screen_name,
        "starts_at": iso(details.starts_at),
        "layout": layout(details.layout),
        "seats": {label: str(state) for label, state in seats.items()},
    }


def hold(h: actors.Hold, show_id: int, currency: str) -> dict[str, Any]:
    return {
        "hold_id": h.hold_id,
        "show_id": show_id,
        "seats": list(h.seats),
        "price_cents": h.price_cents,
        "currency": currency,
        "created_at": epoch_iso(h.created_at),
        "expires_at": epoch_iso(h.expires_at),
        "payment_started": h.payment_started,
        "price_arm": h.price_arm,
    }
