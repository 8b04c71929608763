"""A whole booking run logs no personal data: the gateway served as ``seatserver`` serves it
(``bootstrap.start_gateway``: its access log, the libraries quieted), the mail, SMS and push
worker, every logger at DEBUG; a customer registers, logs in (once with a wrong password),
sets a phone and a device, browses, searches for their own email, chats, holds, pays on
localstripe, gets the confirmation by mail, text and push, cancels, exports their data and
logs out. No log line (message or traceback) may carry their email in any case, name, phone,
password, tokens, device token or what they wrote: neither in this process's logs nor in what
the Ray workers (the show hosts, logging JSON lines) wrote to their log files during the run."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import storage
from notifications import EmailNotifier, FcmNotifier, OutboxWorker, SmtpConfig, TwilioNotifier
from notifications.catcher import messages, start_catcher
from notifications.catchers import caught, start_local_push, start_local_sms
from payments import PaymentsConfig
from payments.localstripe import register_webhook
from seatserver import bootstrap
from tests.conftest import fresh_schema
from tests.gateway_support import drop_redis_keys, gateway_config
from tests.integration.shows import make_show, start_engine, stop_engine
from tests.payments_support import running_localstripe

pytestmark = pytest.mark.slow

WEBHOOK_SECRET = "whsec_" + secrets.token_hex(8)


class Capture(logging.Handler):
    """Every record's message and traceback, as written (no redaction on this handler)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@contextlib.asynccontextmanager
async def _debug_logs() -> AsyncIterator[Capture]:
    root = logging.getLogger()
    level = root.level
    capture = Capture()
    root.setLevel(logging.DEBUG)
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


def _ray_logs() -> Path:
    """This session's Ray log folder (each worker's stdout and stderr: worker-*-{pid}.out/.err)."""
    import ray

    return Path(ray._private.worker._global_node.get_logs_dir_path())


def _log_sizes(folder: Path) -> dict[Path, int]:
    return {
        path: path.stat().st_size
        for path in folder.rglob("*")
        if path.suffix in (".out", ".err", ".log") and path.is_file()
    }


def _written_since(folder: Path, sizes: dict[Path, int]) -> str:
    """What the Ray processes wrote to their logs since ``sizes`` was taken."""
    parts = []
    for path in sorted(_log_sizes(folder)):
        with path.open("rb") as log:
            log.seek(sizes.get(path, 0))
            parts.append(log.read().decode(errors="replace"))
    return "\n".join(parts)


async def _eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.1)
    return found


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url, self.token = session, url, ""

    async def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if method != "GET" and not path.startswith("/api/v1/auth/"):
            headers["Idempotency-Key"] = uuid.uuid4().hex
        async with self.session.request(
            method, self.url + path, json=body, headers=headers, **kw
        ) as resp:
            return resp.status, (None if resp.status == 204 else await resp.json())


async def _journey(api: Api, pool: Any, who: dict[str, str]) -> None:
    """The customer's whole run through the API (``who`` gains their tokens)."""
    body = {"email": who["email"], "password": who["password"], "display_name": who["name"]}
    status, _ = await api("POST", "/api/v1/auth/register", body)
    assert status == 201
    wrong = {"email": who["email"].upper(), "password": "not-the-password"}
    assert (await api("POST", "/api/v1/auth/login", wrong))[0] == 401
    login = {"email": who["email"].upper(), "password": who["password"]}
    status, tokens = await api("POST", "/api/v1/auth/login", login)
    assert status == 200
    api.token = who["access"] = tokens["access_token"]
    who["refresh"] = tokens["refresh_token"]
    assert (await api("PUT", "/api/v1/me/phone", {"phone": who["phone"]}))[0] == 200
    cells = {"confirmation": {"email": True, "sms": True, "push": True}}
    assert (await api("PUT", "/api/v1/me/notifications", {"preferences": cells}))[0] == 200
    device = {"token": who["device"], "platform": "android"}
    assert (await api("POST", "/api/v1/me/devices", device))[0] == 201

    status, cities = await api("GET", "/api/v1/cities")
    city = cities["cities"][0]["id"]
    async with pool.acquire() as conn:
        show, starts = await conn.fetchrow("SELECT id, starts_at FROM shows LIMIT 1")
    day = starts.astimezone(dt.timezone(dt.timedelta(hours=-5))).date().isoformat()
    assert (await api("GET", f"/api/v1/cities/{city}/movies", params={"date": day}))[0] == 200
    await api("GET", "/api/v1/search", params={"q": f"{who['email']} {who['phone']}"})
    await api("GET", f"/api/v1/nothing/{who['email']}")  # a 404 naming them in its path
    status, _ = await api("POST", "/api/v1/chat/messages", {"text": who["chat"]})
    assert status in (200, 201)

    status, hold = await api("POST", f"/api/v1/shows/{show}/holds", {"seats": ["C3", "C4"]})
    assert status == 201, hold
    path = f"/api/v1/shows/{show}/holds/{hold['hold_id']}/checkout"
    status, payment = await api("POST", path)
    assert status == 201, payment
    path = f"/api/v1/payments/{payment['payment_id']}/confirm"
    status, paid = await api("POST", path, {"payment_method": "pm_card_visa"})
    assert status == 200 and paid["status"] == "booked", paid
    who["booking"] = paid["booking_id"]


async def _finish(api: Api, who: dict[str, str]) -> None:
    status, body = await api("POST", f"/api/v1/bookings/{who['booking']}/cancel")
    assert status == 200, body
    assert (await api("GET", "/api/v1/me/export"))[0] == 200
    refresh = {"refresh_token": who["refresh"]}
    status, tokens = await api("POST", "/api/v1/auth/refresh", refresh)
    assert status == 200
    api.token = tokens["access_token"]
    who["access2"], who["refresh2"] = tokens["access_token"], tokens["refresh_token"]
    status, _ = await api("POST", "/api/v1/auth/logout", {"refresh_token": who["refresh2"]})
    assert status == 204


async def test_a_booking_run_logs_no_personal_data(
    ray_session: None, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    who = {
        "email": f"Zoe.Quill.{secrets.token_hex(3)}@Example.org",
        # Not hex: Ray's logs are full of hex ids a short hex token could turn up in.
        "name": "Zoe Quill " + "".join(secrets.choice("ghjkmnpqrtvwxyz") for _ in range(6)),
        "phone": "+1415555" + f"{secrets.randbelow(10_000):04d}",
        "password": "pw-" + secrets.token_urlsafe(12),
        "device": "fcm:" + secrets.token_urlsafe(24),
        "chat": f"my daughter Ines {secrets.token_hex(3)} needs an aisle seat",
    }
    ray_logs = _ray_logs()
    ray_sizes = _log_sizes(ray_logs)
    async with contextlib.AsyncExitStack() as stack:
        capture = await stack.enter_async_context(_debug_logs())
        schema = await stack.enter_async_context(fresh_schema(database_url))
        pool = await storage.create_pool(database_url, schema=schema, max_size=3)
        stack.push_async_callback(pool.close)
        show = await make_show(pool, starts_in=dt.timedelta(days=2))
        stripe = await stack.enter_async_context(running_localstripe())
        mail = await start_catcher(tmp_path / "mail")
        stack.push_async_callback(mail.stop)
        sms = await start_local_sms(tmp_path)
        stack.push_async_callback(sms.catcher.stop)
        push = await start_local_push(tmp_path)
        stack.push_async_callback(push.catcher.stop)
        config = gateway_config(database_url, schema, redis_url)
        stack.push_async_callback(drop_redis_keys, redis_url, config.redis_prefix)
        engine = await start_engine(
            database_url, schema, redis_url, channel_prefix=config.redis_prefix
        )
        stack.push_async_callback(stop_engine, engine)
        config = dataclasses.replace(
            config,
            ray_namespace=engine.namespace,
            payments=PaymentsConfig(
                stripe_api_key="sk_test_logs",
                stripe_webhook_secret=WEBHOOK_SECRET,
                stripe_publishable_key="pk_test_logs",
                stripe_api_base=stripe.url,
                stripe_js_base=stripe.url,
                reconcile_interval_s=0,
            ),
        )
        runner, url = await bootstrap.start_gateway(config, "127.0.0.1", 0)
        stack.push_async_callback(runner.cleanup)
        await register_webhook(stripe.url, "logs", url + "/api/v1/payments/webhook", WEBHOOK_SECRET)
        smtp = SmtpConfig(host="127.0.0.1", port=mail.port, starttls=False)
        worker = OutboxWorker(
            pool,
            [EmailNotifier(smtp), TwilioNotifier(sms.config), FcmNotifier(push.config)],
            keyring=config.keyring,
        )
        stack.push_async_callback(worker.close)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop, poll_s=0.1))

        session = await stack.enter_async_context(aiohttp.ClientSession())
        api = Api(session, url)
        await _journey(api, pool, who)
        await _eventually(lambda: _all_sent(tmp_path / "mail", sms.record, push.record))
        await _finish(api, who)
        stop.set()
        await task

    # The scan reads the show hosts' records: the one of the hold's show loading is there.
    hosts = await _eventually(lambda: _host_lines(ray_logs, ray_sizes, f"activated show {show} "))
    logs = "\n".join(capture.lines)
    for where, text in (("the logs", logs), ("the Ray workers' logs", hosts)):
        lowered = text.lower()
        for name, value in who.items():
            if name != "booking":  # an id: logs may name it
                assert value.lower() not in lowered, f"the {name} is in {where}"
        for part in (who["email"].split("@")[0], who["phone"][2:], who["name"].split()[-1]):
            assert part.lower() not in lowered, f"{part} is in {where}"
    # The access log was on, and wrote routes, not addresses.
    assert "aiohttp.access POST /api/v1/shows/{show_id}/holds 201" in logs
    assert "127.0.0.1" not in "\n".join(x for x in capture.lines if x.startswith("aiohttp.acc"))


async def _host_lines(folder: Path, sizes: dict[Path, int], expected: str) -> str:
    """The Ray workers' log lines written during the run, once they hold ``expected`` (a
    worker's output reaches its file a little after it is written); "" until then."""
    written = _written_since(folder, sizes)
    found = any(line.startswith("{") and expected in line for line in written.splitlines())
    return written if found else ""


async def _all_sent(mail_dir: Path, sms: Path, push: Path) -> bool:
    return bool(messages(mail_dir)) and bool(caught(sms)) and bool(caught(push))
