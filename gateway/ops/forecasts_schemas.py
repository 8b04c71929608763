"""Request and answer shapes of the forecasts (``gateway.ops.forecasts``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from gateway.schemas import Id, Strict

MAX_FORECASTS = 1000
MAX_ACCURACY_DAYS = 400


class ForecastsQuery(Strict):
    theater_id: Id | None = None
    city_id: Id | None = None
    flag: Literal["sell_out", "empty"] | None = Field(
        None, description="only shows likely to sell out, or likely to stay empty"
    )
    from_: dt.datetime | None = Field(
        None, alias="from", description="shows starting at or after this instant (default: now)"
    )
    to: dt.datetime | None = Field(
        None, description="shows starting before this instant (default: 7 days after from)"
    )
    limit: int = Field(200, ge=1, le=MAX_FORECASTS)
    after: str | None = Field(
        None,
        pattern=r"^[0-9]{1,16}:[0-9]{1,19}$",
        description="the previous page's `next`: the forecasts after its last show",
    )

    @model_validator(mode="after")
    def _range(self) -> ForecastsQuery:
        if self.from_ is not None and self.to is not None and _utc(self.to) <= _utc(self.from_):
            raise ValueError("to must be after from")
        return self


class ForecastOut(BaseModel):
    show_id: int
    movie_title: str
    theater_name: str
    starts_at: dt.datetime
    capacity: int
    sold: int
    occupancy: float = Field(description="expected final seats / capacity")
    occupancy_lo: float = Field(description="the 80 % interval's low end")
    occupancy_hi: float = Field(description="the 80 % interval's high end")
    revenue_cents: int
    revenue_lo_cents: int
    revenue_hi_cents: int
    currency: str
    flag: Literal["sell_out", "empty"] | None = Field(
        description="sell_out: low end >= 90 % or point >= 95 %; empty: high end < 20 %"
    )
    source: Literal["model", "fallback"]
    model_version: str | None
    made_at: dt.datetime


class ForecastsOut(BaseModel):
    forecasts: list[ForecastOut]
    next: str | None = Field(None, description="pass as `after` for the next page; null: no more")


class AccuracyQuery(Strict):
    from_: dt.date = Field(alias="from", description="first day (UTC) of show starts")
    to: dt.date = Field(description="last day (UTC) of show starts, at most 400 days on")
    theater_id: Id | None = None

    @model_validator(mode="after")
    def _range(self) -> AccuracyQuery:
        if self.to < self.from_:
            raise ValueError("to must not be before from")
        if (self.to - self.from_).days + 1 > MAX_ACCURACY_DAYS:
            raise ValueError(f"a range covers at most {MAX_ACCURACY_DAYS} days")
        return self


class AccuracyRowOut(BaseModel):
    week: str = Field(description="ISO week of the shows' start, e.g. 2026-W49")
    horizon_h: int = Field(description="the forecast was the first made this many hours out")
    shows: int
    model_shows: int = Field(description="of them, forecast by the model (the rest: fallback)")
    mape_shows: int = Field(description="shows in the MAPE: actual occupancy above 5 %")
    mape: float | None = Field(description="mean |forecast − actual| / actual, seats")
    naive_mape: float | None = Field(description="the same for same weekday last week")
    wape: float | None = Field(description="sum |forecast − actual| / sum actual")
    naive_wape: float | None
    mae: float | None = Field(description="mean |forecast − actual| occupancy (share)")
    naive_mae: float | None
    coverage: float | None = Field(description="share of actuals inside the 80 % interval")


class AccuracyOut(BaseModel):
    definition: str
    weeks: list[AccuracyRowOut]


def _utc(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)
