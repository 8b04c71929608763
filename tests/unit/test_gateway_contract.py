"""The gateway's contracts that need no services: every domain error has its own HTTP mapping,
and the OpenAPI document lists exactly the routes the application serves."""

from __future__ import annotations

import actors
import payments
import storage
from gateway import errors
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.openapi import document
from gateway.routes import ENDPOINTS


def _subclasses(base: type) -> set[type]:
    found = {base}
    for sub in base.__subclasses__():
        found |= _subclasses(sub)
    return found


def test_every_domain_error_is_mapped_itself() -> None:
    """Not through a base's catch-all: a new error class must be given its status."""
    domain = (
        _subclasses(actors.BookingError)
        | _subclasses(storage.StorageError)
        | _subclasses(payments.PaymentError)
    )
    unmapped = sorted(cls.__name__ for cls in domain if cls not in errors.STATUS)
    assert unmapped == []
    for cls in domain:
        assert 200 <= errors.STATUS[cls] < 600
        assert isinstance(cls.code, str) and cls.code


def test_domain_errors_become_the_envelope() -> None:
    status, body, headers = errors.describe(actors.SeatUnavailable("taken", {"seats": ["A1"]}))
    assert status == 409
    assert body == {
        "error": {"code": "seat_unavailable", "message": "taken", "details": {"seats": ["A1"]}}
    }
    status, body, headers = errors.describe(actors.HostUnavailable("down"))
    assert status == 503 and headers == {"Retry-After": "1"}
    status, body, _ = errors.describe(RuntimeError("boom"))
    assert status == 500 and body["error"]["code"] == "internal_error" and "boom" not in str(body)


def test_openapi_matches_the_routes() -> None:
    app = create_app(GatewayConfig(database_url="postgresql://unused", redis_url="redis://unused"))
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1/")
        and route.method != "HEAD"
        and route.resource.canonical != "/api/v1/openapi.json"
    }
    spec = document(ENDPOINTS)
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert served == documented
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for ops in spec["paths"].values():
        for op in ops.values():
            assert "default" in op["responses"]  # errors documented as the envelope


def test_state_changing_posts_take_an_idempotency_key() -> None:
    spec = document(ENDPOINTS)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            # The provider's webhooks are deduplicated by the provider's event id instead.
            exempt = path.startswith("/api/v1/auth/") or path == "/api/v1/payments/webhook"
            if method == "post" and not exempt:
                names = [p["name"] for p in op["parameters"]]
                assert "Idempotency-Key" in names, (method, path)


def test_redis_out_of_reach_is_a_503_with_retry_after() -> None:
    from redis import exceptions

    from gateway.errors import describe

    for error in (
        exceptions.MaxConnectionsError("full"),
        exceptions.TimeoutError("slow"),
        exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        exceptions.ResponseError("LOADING Redis is loading the dataset in memory"),  # a pipeline's
    ):
        status, body, headers = describe(error)
        assert (status, body["error"]["code"], headers) == (
            503,
            "redis_unavailable",
            {"Retry-After": "1"},
        )


def test_postgres_out_of_reach_is_a_503_with_retry_after() -> None:
    """Postgres restarting: the pool cannot connect (refused, its socket gone, "shutting
    down") or loses its connection mid-query; a client is told to retry, not that it broke."""
    import asyncpg

    from gateway.errors import describe

    for error in (
        ConnectionRefusedError(111, "refused"),
        FileNotFoundError(2, "no such socket"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    ):
        status, body, headers = describe(error)
        assert (status, body["error"]["code"], headers) == (
            503,
            "database_unavailable",
            {"Retry-After": "1"},
        ), error
    assert describe(ValueError("a bug"))[0] == 500
