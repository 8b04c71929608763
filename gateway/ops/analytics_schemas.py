"""Request and answer shapes of the business figures (``gateway.ops.analytics``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from gateway.schemas import Id, Strict

MAX_RANGE_DAYS = 400


class FiguresQuery(Strict):
    by: Literal["theater", "city", "movie", "day"] = Field(
        "day", description="what a row of the figures is: a theater, city, movie or local day"
    )
    from_: dt.date = Field(alias="from", description="first local day of shows (YYYY-MM-DD)")
    to: dt.date = Field(description="last local day of shows, at most 400 days after from")
    theater_id: Id | None = None
    city_id: Id | None = None
    movie_id: Id | None = None
    format: Literal["json", "csv"] = Field("json", description="csv: a file to download")

    @model_validator(mode="after")
    def _range(self) -> FiguresQuery:
        if self.to < self.from_:
            raise ValueError("to must not be before from")
        if (self.to - self.from_).days + 1 > MAX_RANGE_DAYS:
            raise ValueError(f"a range covers at most {MAX_RANGE_DAYS} days")
        return self


class FiguresMoneyOut(BaseModel):
    """Money of one currency (never added across currencies)."""

    currency: str
    tickets: int
    revenue_cents: int
    average_price_cents: int | None = Field(description="revenue per ticket; null: no tickets")
    refunded_cents: int


class FiguresFunnelOut(BaseModel):
    seatmap_views: int
    holds: int
    checkouts: int
    bookings: int = Field(description="bookings made (live and later cancelled)")
    view_to_hold: float | None
    hold_to_checkout: float | None
    checkout_to_booking: float | None


class FiguresOut(BaseModel):
    shows: int
    capacity: int = Field(description="sellable seats of shows not cancelled")
    tickets: int
    bookings: int = Field(description="live bookings")
    occupancy: float | None = Field(description="tickets / capacity; null: no capacity")
    money: list[FiguresMoneyOut]
    cancellations: int
    cancelled_tickets: int
    refunds: int
    queue_admissions: int
    funnel: FiguresFunnelOut


class FiguresGroupOut(FiguresOut):
    key: str = Field(description="the theater, city or movie id, or the day (YYYY-MM-DD)")
    label: str


class FiguresTheaterOut(BaseModel):
    id: int
    name: str
    city_id: int
    city: str


class FiguresAnswer(BaseModel):
    by: Literal["theater", "city", "movie", "day"]
    from_: dt.date = Field(alias="from")
    to: dt.date
    theater_ids: list[int] | None = Field(
        description="the theaters counted; null: every theater (operations)"
    )
    groups: list[FiguresGroupOut]
    totals: FiguresOut
    theaters: list[FiguresTheaterOut] = Field(description="the theaters the caller may pick")
    pending_changes: int = Field(description="changes not yet in the figures")
    refreshed_at: dt.datetime | None = Field(description="when the rollup last ran")
