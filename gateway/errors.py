"""The gateway's own errors and the one table that turns any domain error into an HTTP answer.

    ApiError                         (gateway refusals; each carries its status)
     ├── BadRequest          400     malformed_request, body_too_large (413) …
     ├── ValidationFailed    422     validation_failed
     ├── Unauthorized        401     unauthorized, invalid_token, token_expired, …
     ├── Forbidden           403     forbidden
     ├── ResourceNotFound    404     not_found (no such route or resource)
     ├── MethodNotAllowed    405     method_not_allowed
     ├── Conflict            409     conflict, idempotency_request_in_progress
     ├── IdempotencyKeyReused 422    idempotency_key_reused
     ├── PreconditionRequired 428    idempotency_key_required
     └── ServiceUnavailable  503     service_unavailable

Domain errors (``actors.BookingError``, ``storage.StorageError``, ``payments.PaymentError`` and
their subclasses) know nothing of HTTP: ``STATUS`` maps their classes to a status, and
``status_for`` walks a class's MRO so a subclass is answered like its parent unless it is mapped
itself (starlette's exception handlers). Every answer, HTTP or websocket, is one envelope::

    {"error": {"code": "seat_unavailable", "message": "…", "details": {"seats": ["A1"]}}}
"""

from __future__ import annotations

from typing import Any

import asyncpg
from redis import exceptions as redis_errors

import actors
import payments
import storage
from storage import flash_sales


class ApiError(Exception):
    """A refusal by the gateway itself."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "malformed_request"


class ValidationFailed(ApiError):
    status, code = 422, "validation_failed"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class ResourceNotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class Conflict(ApiError):
    status, code = 409, "conflict"


class IdempotencyKeyReused(ApiError):
    status, code = 422, "idempotency_key_reused"


class PreconditionRequired(ApiError):
    status, code = 428, "idempotency_key_required"


class ServiceUnavailable(ApiError):
    status, code = 503, "service_unavailable"


#: Domain error class → HTTP status. Looked up along the MRO; every class of the two domain
#: trees must resolve to an entry here other than a base's catch-all (a test checks it).
STATUS: dict[type[Exception], int] = {
    # the seat core and its shell
    actors.BookingError: 409,
    actors.InvalidRequest: 422,
    actors.UnknownSeat: 422,
    actors.SeatNotBlocked: 409,
    actors.SeatUnavailable: 409,
    actors.NoSeatsAvailable: 409,
    actors.TooManySeats: 409,
    actors.CompanionWithoutWheelchair: 422,
    actors.ShowNotOnSale: 409,
    actors.AdmissionRequired: 403,
    actors.HoldNotFound: 404,
    actors.HoldExpired: 410,
    actors.HoldNotYours: 403,
    actors.ExtendLimitReached: 409,
    actors.BookingNotFound: 404,
    actors.BookingNotYours: 403,
    actors.LayoutError: 422,
    actors.InconsistentState: 409,
    actors.ShowNotFound: 404,
    actors.ConfirmationPending: 202,
    actors.ShowUnavailable: 503,
    actors.ShowMoved: 503,
    actors.HostUnavailable: 503,
    # storage and the catalog
    storage.StorageError: 503,
    storage.DatabaseUnavailable: 503,
    storage.RedisUnavailable: 503,
    storage.MigrationError: 503,
    storage.CatalogError: 422,
    storage.NotFound: 404,
    storage.AlreadyExists: 409,
    storage.InvalidLayout: 422,
    storage.DuplicateSeatLabel: 422,
    storage.CompanionWithoutWheelchairSpace: 422,
    storage.InvalidTimeZone: 422,
    storage.ShowOverlap: 409,
    storage.ShowInPast: 422,
    storage.MissingPrice: 422,
    storage.InvalidCatalogData: 422,
    flash_sales.InvalidFlashSale: 422,
    flash_sales.NotAFlashSale: 409,
    # the booking saga
    payments.PaymentError: 409,
    payments.CheckoutClosed: 409,
    payments.TooManyAttempts: 409,
    payments.PaymentNotOpen: 409,
    payments.PaymentDeclinedError: 402,
    payments.ProviderDown: 503,
    payments.ProviderRefused: 502,
    payments.SettlementPending: 503,
    payments.CancellationClosed: 409,
    payments.InvalidWebhook: 400,
}

#: Errors worth retrying: answered with Retry-After.
RETRY_AFTER_S: dict[int, int] = {503: 1, 202: 1}

DOMAIN_ERRORS: tuple[type[Exception], ...] = (
    actors.BookingError,
    storage.StorageError,
    payments.PaymentError,
)


def status_for(error_type: type[BaseException]) -> int | None:
    """The status of the nearest mapped class in the error's MRO, or None."""
    for cls in error_type.__mro__:
        status = STATUS.get(cls)  # type: ignore[call-overload]
        if status is not None:
            return status
    return None


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


UNAVAILABLE = "a service this needs is busy or unavailable: try again shortly"
REDIS_DOWN = (redis_errors.ConnectionError, redis_errors.TimeoutError)
# What asyncpg raises when Postgres cannot be reached or goes away, and the socket errors of
# connecting to it (refused, or its Unix socket gone while it restarts).
DATABASE_DOWN = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,  # the connection lost while the pool reset it
    ConnectionError,
    FileNotFoundError,
)


def _redis_loading(exc: BaseException) -> bool:
    """Redis started again and still reading its data from disk: inside a pipeline or a
    script this comes back as a plain ``ResponseError`` rather than ``BusyLoadingError``."""
    return isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("LOADING")


def describe(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, envelope body, extra headers) for any error the gateway answers."""
    if isinstance(exc, ApiError):
        return exc.status, envelope(exc.code, exc.message, exc.details), exc.headers
    status = status_for(type(exc)) if isinstance(exc, DOMAIN_ERRORS) else None
    if status is None and (isinstance(exc, REDIS_DOWN) or _redis_loading(exc)):
        # Redis out of reach (or every connection busy for the pool's whole wait): try again.
        return 503, envelope("redis_unavailable", UNAVAILABLE), {"Retry-After": "1"}
    if status is None and isinstance(exc, DATABASE_DOWN):
        # Postgres restarting or out of reach (the pool could not connect, or lost the
        # connection mid-query): nothing was done that a retry with the same key would repeat.
        return 503, envelope("database_unavailable", UNAVAILABLE), {"Retry-After": "1"}
    if status is None:
        return 500, envelope("internal_error", "something went wrong on our side"), {}
    code = getattr(exc, "code", "error")
    details = dict(getattr(exc, "details", {}) or {})
    message = getattr(exc, "message", str(exc))
    headers = {"Retry-After": str(RETRY_AFTER_S[status])} if status in RETRY_AFTER_S else {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers = {"Retry-After": str(max(1, round(retry_after)))}
    return status, envelope(code, message, details), headers
