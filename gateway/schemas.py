"""Request and response shapes of the HTTP API, as pydantic models.

Requests are validated with them at the edge (unknown fields refused); responses are built as
plain dicts for speed and described by these models in the OpenAPI document, which the
schemathesis run checks every answer against.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=16)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=2000)]
Cents = Annotated[int, Field(ge=0, le=10_000_000)]
Category = Literal["companion", "premium", "recliner", "standard", "wheelchair"]
Status = Literal["scheduled", "on_sale", "flash_sale", "cancelled"]
Role = Literal["customer", "theater_admin", "admin"]
SeatState = Literal["available", "held", "booked", "blocked"]
Uuid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)


def _check_value(value: Any) -> Any:
    """Text Postgres can store (no NUL, no lone surrogates), days and instants in 2000–2100."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode") from None
    elif isinstance(value, dt.datetime | dt.date):
        day = value.date() if isinstance(value, dt.datetime) else value
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ValueError(f"dates must lie between {FIRST_DAY} and {LAST_DAY}")
    elif isinstance(value, list | tuple):
        for item in value:
            _check_value(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value(key)
            _check_value(item)
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return _check_value(value)


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return _check_value(value)


# -- path parameters -------------------------------------------------------------------------


class CityPath(Lenient):
    city_id: Id


class CityMoviePath(Lenient):
    city_id: Id
    movie_id: Id


class TheaterPath(Lenient):
    theater_id: Id


class ScreenPath(Lenient):
    screen_id: Id


class MoviePath(Lenient):
    movie_id: Id


class ShowPath(Lenient):
    show_id: Id


class HoldPath(Lenient):
    show_id: Id
    hold_id: Uuid


class BookingPath(Lenient):
    booking_id: Uuid


# -- query parameters ------------------------------------------------------------------------


class DayQuery(Lenient):
    date: dt.date = Field(description="the local day (YYYY-MM-DD) in the theater's time zone")


class BookingsQuery(Lenient):
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    before: dt.datetime | None = Field(
        default=None, description="only bookings confirmed before this instant (paging)"
    )


# -- accounts --------------------------------------------------------------------------------

Email = Annotated[
    str,
    StringConstraints(
        min_length=3, max_length=254, strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]


class Register(Strict):
    email: Email
    password: Password
    display_name: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] = ""
    home_city_id: Id | None = None


class Login(Strict):
    email: Annotated[str, StringConstraints(min_length=1, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Refresh(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Logout(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class UserOut(BaseModel):
    id: int
    email: str
    role: Role
    display_name: str
    home_city_id: int | None


class TokensOut(BaseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class MeOut(UserOut):
    theaters: list[int] = Field(description="theaters this user administers")


class DeleteAccountIn(Strict):
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="the account's password, to confirm it is you"
    )


class ExportOut(BaseModel):
    generated_at: dt.datetime
    account: dict[str, Any] = Field(description="the account, its email and phone in clear")
    tables: dict[str, list[dict[str, Any]]] = Field(
        description="every stored row about the account, by table (secrets left out)"
    )
    redis: dict[str, Any] = Field(
        description="what the fast store holds: conversations, queue places, stored answers"
    )


# -- catalog ---------------------------------------------------------------------------------


class CityOut(BaseModel):
    id: int
    name: str
    country: str


class CitiesOut(BaseModel):
    cities: list[CityOut]


class MovieOut(BaseModel):
    id: int
    title: str
    genres: list[str]
    runtime_min: int
    certificate: str
    language: str
    show_count: int
    first_start: dt.datetime


class MoviesOut(BaseModel):
    city_id: int
    date: dt.date
    movies: list[MovieOut]


class ShowtimeOut(BaseModel):
    show_id: int
    screen_id: int
    screen_name: str
    starts_at: dt.datetime
    status: Status
    prices: dict[str, int]


class TheaterShowtimesOut(BaseModel):
    theater_id: int
    theater_name: str
    time_zone: str
    shows: list[ShowtimeOut]


class MovieShowsOut(BaseModel):
    city_id: int
    movie_id: int
    date: dt.date
    theaters: list[TheaterShowtimesOut]


class TheaterOut(BaseModel):
    id: int
    city_id: int
    name: str
    address: str
    time_zone: str
    latitude: float | None
    longitude: float | None


class ScheduleEntryOut(BaseModel):
    show_id: int
    movie_id: int
    movie_title: str
    screen_id: int
    screen_name: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: Status


class TheaterDayOut(BaseModel):
    theater: TheaterOut
    date: dt.date
    shows: list[ScheduleEntryOut]


class ShowOut(BaseModel):
    show_id: int
    theater_id: int
    theater_name: str
    time_zone: str
    screen_id: int
    screen_name: str
    movie_id: int
    movie_title: str
    runtime_min: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: Status
    prices: dict[str, int]
    currency: str
    sale_opens_at: dt.datetime | None


class SeatOut(BaseModel):
    label: str
    category: Category
    x: float
    y: float
    aisle_after: bool
    out_of_service: bool


class RowOut(BaseModel):
    label: str
    seats: list[SeatOut]


class PointOut(BaseModel):
    x: float
    y: float


class LayoutOut(BaseModel):
    rows: list[RowOut]
    sweet_spot: PointOut | None = None


class SeatmapOut(BaseModel):
    show_id: int
    version: int
    status: Status
    currency: str
    prices: dict[str, int]
    movie_title: str
    theater_name: str
    screen_name: str
    starts_at: dt.datetime
    layout: LayoutOut
    seats: dict[str, SeatState]


# -- holds and bookings ----------------------------------------------------------------------


class HoldRequest(Strict):
    """Either ``seats`` (these exact seats) or ``count`` (the best ``count`` of ``category``)."""

    seats: Annotated[list[Label], Field(min_length=1, max_length=10)] | None = None
    count: Annotated[int, Field(ge=1, le=10)] | None = None
    category: Category = "standard"
    allow_split: bool = False
    quote_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = Field(
        default=None,
        description="the quote the customer saw (GET /shows/{id}/quote): the hold is charged "
        "its prices; without one, the hold gets a fresh quote",
    )

    @model_validator(mode="after")
    def _one_way(self) -> HoldRequest:
        if (self.seats is None) == (self.count is None):
            raise ValueError("give either seats or count")
        if self.seats is not None and len(set(self.seats)) != len(self.seats):
            raise ValueError("a seat is listed twice")
        return self


class HoldOut(BaseModel):
    hold_id: str
    show_id: int
    seats: list[str]
    price_cents: int
    currency: str
    created_at: dt.datetime
    expires_at: dt.datetime
    payment_started: bool
    price_arm: Literal["control", "dynamic"] = Field(
        description="the pricing experiment's arm the hold was quoted under"
    )


class BookingOut(BaseModel):
    booking_id: str
    show_id: int
    hold_id: str | None
    seats: list[str]
    price_cents: int
    currency: str
    status: Literal["confirmed", "cancelled"]
    confirmed_at: dt.datetime
    cancelled_at: dt.datetime | None
    movie_title: str
    theater_id: int
    theater_name: str
    starts_at: dt.datetime
    price_arm: Literal["control", "dynamic"]


class RefundOut(BaseModel):
    refund_id: str
    reason: Literal["customer_cancel", "show_cancelled", "hold_lost", "duplicate_payment"]
    amount_cents: int
    currency: str
    status: Literal["pending", "succeeded", "none"]
    created_at: dt.datetime


class BookingDetailOut(BookingOut):
    payment_id: str | None
    refund: RefundOut | None


class BookingsOut(BaseModel):
    bookings: list[BookingOut]


# -- payments --------------------------------------------------------------------------------


class PaymentPath(Lenient):
    payment_id: Uuid


class ConfirmPaymentIn(Strict):
    payment_method: Annotated[
        str,
        StringConstraints(pattern=r"^(pm|card|src)_[A-Za-z0-9_]{1,200}$"),
        Field(description="a payment method id from the provider's script; never card data"),
    ]


class ProviderOut(BaseModel):
    name: str
    publishable_key: str
    js_base: str | None


class PaymentOut(BaseModel):
    payment_id: str
    hold_id: str
    show_id: int
    seats: list[str]
    attempt: int
    status: Literal[
        "creating", "open", "succeeded", "booked", "refunding", "refunded", "failed", "canceled"
    ]
    amount_cents: int
    currency: str
    booking_id: str | None
    refunded_cents: int
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    client_secret: str | None
    provider: ProviderOut


class WebhookOut(BaseModel):
    received: bool
    outcome: str


class CancellationOut(BaseModel):
    booking: BookingOut
    refund: RefundOut | None


class ShowCancelledOut(BaseModel):
    bookings_cancelled: int
    bookings_left_for_later: int


# -- admin -----------------------------------------------------------------------------------

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CityIn(Strict):
    name: Name
    country: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] = ""


class CreatedOut(BaseModel):
    id: int


class TheaterIn(Strict):
    city_id: Id
    name: Name
    time_zone: TimeZone
    address: Annotated[str, StringConstraints(max_length=500)] = ""
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class TheaterPatch(Strict):
    name: Name | None = None
    address: Annotated[str, StringConstraints(max_length=500)] | None = None
    time_zone: TimeZone | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class GrantIn(Strict):
    user_id: Id


class SeatIn(Strict):
    label: Label
    category: Category
    x: Annotated[float, Field(ge=-10_000, le=10_000)]
    y: Annotated[float, Field(ge=-10_000, le=10_000)]
    aisle_after: bool = False
    out_of_service: bool = False


class RowIn(Strict):
    label: Annotated[str, StringConstraints(min_length=1, max_length=8)]
    seats: Annotated[list[SeatIn], Field(min_length=1, max_length=200)]


class PointIn(Strict):
    x: Annotated[float, Field(ge=-10_000, le=10_000)]
    y: Annotated[float, Field(ge=-10_000, le=10_000)]


class LayoutIn(Strict):
    rows: Annotated[list[RowIn], Field(min_length=1, max_length=100)]
    sweet_spot: PointIn | None = None

    def raw(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ScreenIn(Strict):
    name: Name
    layout: LayoutIn


class LayoutUpdate(Strict):
    layout: LayoutIn
    new_prices: dict[Category, Cents] | None = Field(
        default=None, description="prices of categories the new layout adds, for upcoming shows"
    )


class MovieIn(Strict):
    title: Name
    genres: Annotated[list[Name], Field(max_length=10)] = []
    runtime_min: Annotated[int, Field(ge=1, le=600)]
    certificate: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    language: Annotated[str, StringConstraints(min_length=2, max_length=16)]
    release_date: dt.date
    cast_members: Annotated[list[Name], Field(max_length=50)] = []
    synopsis: Text = ""


class MoviePatch(Strict):
    title: Name | None = None
    genres: Annotated[list[Name], Field(max_length=10)] | None = None
    runtime_min: Annotated[int, Field(ge=1, le=600)] | None = None
    certificate: Annotated[str, StringConstraints(min_length=1, max_length=16)] | None = None
    language: Annotated[str, StringConstraints(min_length=2, max_length=16)] | None = None
    release_date: dt.date | None = None
    cast_members: Annotated[list[Name], Field(max_length=50)] | None = None
    synopsis: Text | None = None


class ShowIn(Strict):
    screen_id: Id
    movie_id: Id
    starts_at: dt.datetime = Field(description="an instant with its offset")
    prices: dict[Category, Cents]
    currency: Currency = "USD"
    status: Literal["scheduled", "on_sale", "flash_sale"] = "scheduled"
    sale_opens_at: dt.datetime | None = None

    @model_validator(mode="after")
    def _aware(self) -> ShowIn:
        for value in (self.starts_at, self.sale_opens_at):
            if value is not None and value.utcoffset() is None:
                raise ValueError("times need an offset, e.g. 2026-12-05T19:30:00-05:00")
        return self


class ShowPatch(Strict):
    starts_at: dt.datetime | None = None
    prices: dict[Category, Cents] | None = None
    movie_id: Id | None = None

    @model_validator(mode="after")
    def _aware(self) -> ShowPatch:
        if self.starts_at is not None and self.starts_at.utcoffset() is None:
            raise ValueError("starts_at needs an offset")
        return self


class SeatsIn(Strict):
    seats: Annotated[list[Label], Field(min_length=1, max_length=2000)]


class SeatsOut(BaseModel):
    show_id: int
    seats: list[str]


class StatusIn(Strict):
    status: Literal["on_sale", "flash_sale", "cancelled", "scheduled"]


class StatusOut(BaseModel):
    show_id: int
    status: Status
    # When the show was cancelled: its bookings cancelled and refunded now, and those left to
    # the reconciler.
    refunds: ShowCancelledOut | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable", "draining"]
    checks: dict[str, str] = {}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorOut(BaseModel):
    error: ErrorBody


# -- flash sales: the waiting room -----------------------------------------------------------


class QueueOut(BaseModel):
    """Where I stand in a flash sale's line. ``position`` 1 is next; it is null before the sale
    opens (early arrivals' order is drawn by lot at the start). ``phase`` "paused": every seat
    left is in someone's hold, and nobody is let in until some come back; "sold_out": every
    seat is booked; "ended": the sale left flash-sale mode (hold seats directly). Once
    ``admitted``, send ``admission_token`` as the ``Admission-Token`` header of holds until
    ``token_expires_at``."""

    show_id: int
    state: Literal["waiting", "admitted", "not_in_queue"]
    phase: Literal["before_queue", "pre_sale", "on_sale", "paused", "sold_out", "ended", "closed"]
    position: int | None
    waiting: int
    eta_s: float | None
    progress: float
    admission_token: str | None
    token_expires_at: dt.datetime | None
    sale_opens_at: dt.datetime
    admission_per_min: int


class QueueStatsOut(BaseModel):
    show_id: int
    waiting: int
    admitted_now: int
    joined: int
    early: int
    admitted: int
    expired: int
    returned: int
    lapsed: int
    admission_per_min: int
    sale_opens_at: dt.datetime
    supply: Literal["open", "paused", "sold_out", "ended"]


class FlashSaleIn(Strict):
    """A flash sale's terms: the queue opens at ``queue_opens_at``; arrivals before
    ``sale_opens_at`` are put in random order at that moment, later ones first come first
    served; ``admission_per_min`` visitors a minute are let in, each for ``token_ttl_s``."""

    queue_opens_at: dt.datetime = Field(description="an instant with its offset")
    sale_opens_at: dt.datetime = Field(description="an instant with its offset")
    admission_per_min: Annotated[int, Field(ge=1, le=1_000_000)]
    token_ttl_s: Annotated[int, Field(ge=30, le=86_400)] = 600

    @model_validator(mode="after")
    def _aware(self) -> FlashSaleIn:
        for value in (self.queue_opens_at, self.sale_opens_at):
            if value.utcoffset() is None:
                raise ValueError("times need an offset, e.g. 2026-12-05T19:30:00-05:00")
        return self


class AdmissionRateIn(Strict):
    admission_per_min: Annotated[int, Field(ge=1, le=1_000_000)]


class FlashSaleOut(BaseModel):
    show_id: int
    status: Status
    starts_at: dt.datetime
    sale_opens_at: dt.datetime
    queue_opens_at: dt.datetime
    admission_per_min: int
    token_ttl_s: int
    configured: bool


# -- models: recommendations, price quotes, fraud checks ----------------------------------------

Genre = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Source = Literal["model", "fallback"]


class ModelSource(BaseModel):
    source: Source = Field(description="whether the model answered or the rules did")
    model_version: str | None = None
    fallback_reason: str | None = Field(
        default=None, description="absent, timeout, failed, circuit_open or cold_start"
    )


class RecommendationsQuery(Lenient):
    city_id: Id | None = Field(default=None, description="default: the user's home city")
    days: Annotated[int, Field(ge=1, le=14)] = 7
    limit: Annotated[int, Field(ge=1, le=50)] = 10
    genres: Annotated[list[Genre], Field(max_length=10)] | None = Field(
        default=None, description="comma-separated genres (default: the user's picks)"
    )

    @field_validator("genres", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class RecommendedMovie(BaseModel):
    movie_id: int
    title: str
    genres: list[str]
    score: float
    show_count: int
    first_start: dt.datetime


class RecommendationsOut(ModelSource):
    city_id: int
    days: int
    items: list[RecommendedMovie]


class HomeQuery(Lenient):
    city_id: Id | None = Field(
        default=None, description="default: the customer's home city (a visitor must give it)"
    )
    lat: Latitude | None = Field(default=None, description="where the customer is, for nearest")
    lon: Longitude | None = None
    limit: Annotated[int, Field(ge=1, le=20)] = 8
    shows_per_movie: Annotated[int, Field(ge=1, le=5)] = 3


TimeOfDay = Literal["morning", "afternoon", "evening", "late"]


class HomeShow(BaseModel):
    show_id: int
    theater_id: int
    theater_name: str
    screen_name: str
    starts_at: dt.datetime
    local_time: str = Field(description="the start at the theater, ISO 8601 with its offset")
    time_of_day: TimeOfDay
    status: Literal["on_sale", "flash_sale"]
    price_from_cents: int | None = Field(description="the lowest price anyone may pay now")
    currency: str
    distance_km: float | None = Field(default=None, description="when lat and lon were given")
    favourite_theater: bool | None = Field(default=None, description="customers only")
    at_usual_time: bool | None = Field(default=None, description="customers only")


class HomeBecause(BaseModel):
    movie_id: int
    title: str
    shared_genres: list[str]
    similarity: float | None = Field(default=None, description="the model's, when it explained")


class HomeMovie(BaseModel):
    movie_id: int
    title: str
    genres: list[str]
    runtime_min: int
    certificate: str
    language: str
    score: float | None
    reason: Literal["because_you_booked", "your_genres", "popular_in_city"]
    because: HomeBecause | None
    next_shows: list[HomeShow]


class HomeSection(BaseModel):
    kind: Literal["recommended", "popular"]
    title: str
    movies: list[HomeMovie]


class FavouriteTheaterOut(BaseModel):
    theater_id: int
    name: str
    bookings: int


class HomeOut(ModelSource):
    personalized: bool
    city: CityOut
    sections: list[HomeSection]
    pricing: ModelSource | None = Field(description="where the prices came from")
    favourite_theaters: list[FavouriteTheaterOut] | None = Field(
        default=None, description="customers only: the theaters they booked at most"
    )
    usual_time_of_day: TimeOfDay | None = Field(
        default=None, description="customers only: when most of their shows started"
    )


class GenresIn(Strict):
    genres: Annotated[list[Genre], Field(max_length=10)]


class GenresOut(BaseModel):
    favourite_genres: list[str]


class QuoteOut(ModelSource):
    show_id: int
    prices: dict[str, int] = Field(description="price per seat category, in minor units")
    currency: str
    arm: Literal["control", "dynamic"] = Field(description="the user's pricing arm")
    quote_token: str = Field(description="send it with the hold to be charged these prices")
    expires_at: dt.datetime


class CheckoutRequest(Strict):
    billing_city_id: Id | None = Field(
        default=None, description="the city of the card's billing address, when known"
    )


class StepUpIn(Strict):
    password: Password
    hold_id: Uuid


class StepUpOut(BaseModel):
    step_up_token: str = Field(description="send it in the Step-Up-Token header at checkout")
    hold_id: str
    expires_at: dt.datetime


class FraudDecisionsQuery(Lenient):
    decision: Literal["allow", "verify", "block"] | None = None
    before_id: Id | None = Field(default=None, description="only older decisions (paging)")
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class FraudDecisionPath(Lenient):
    decision_id: Id


class FraudDecisionOut(BaseModel):
    id: int
    created_at: dt.datetime
    user_id: int
    show_id: int
    hold_id: str
    features: dict[str, float]
    score: float
    decision: Literal["allow", "verify", "block"]
    source: Source
    model_version: str | None
    reasons: list[str]
    label: bool | None = Field(description="the analyst's verdict: fraud or not")
    labelled_by: int | None
    note: str


class FraudDecisionsOut(BaseModel):
    decisions: list[FraudDecisionOut]


class FraudLabelIn(Strict):
    is_fraud: StrictBool
    note: Text = ""


class ModelVersionOut(BaseModel):
    kind: str
    version: str
    created_at: str
    serving: bool = Field(description="the newest version that passed its gate")
    gate: dict[str, Any]
    metrics: dict[str, Any]
    data: dict[str, Any]
    training_s: float


class ModelsOut(BaseModel):
    models: list[ModelVersionOut]
    answers: dict[str, dict[str, float]] = Field(
        description="this gateway's model answers since start, by model and source"
    )
