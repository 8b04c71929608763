"""Texts and pushes from the outbox on real Postgres and Redis: the real Twilio SDK and the FCM
client against their loopback wire-format servers, the customer's preferences, reminders before
a show, waiting-room admissions, and the settings endpoints. Each message arrives once, also
when the worker is run again, dies between the send and its record, or runs twice at once."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import jwt
import pytest
from aiosmtpd.controller import Controller

import storage
from gateway.app import create_app
from gateway.waitingroom import Terms, WaitingRoom
from notifications import (
    FcmConfig,
    FcmNotifier,
    PushMessage,
    ServiceAccount,
    SmsMessage,
    TransientError,
    TwilioConfig,
    TwilioNotifier,
)
from notifications.fcm_catcher import FcmCatcher, new_service_account
from notifications.push import SCOPE
from notifications.twilio_catcher import TwilioCatcher
from notifications.worker import OutboxWorker
from payments.localstripe import free_port
from storage import notify
from tests.conftest import TEST_KEYRING, random_ref
from tests.gateway_support import make_account
from tests.integration.shows import make_show
from tests.integration.test_notifications import Inbox, _book, _customer, _drain, sent, worker

PHONE = "+14155550123"
SENDER = "+15005550006"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """An SMTP server on loopback that keeps the mail it accepts."""
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture
async def sms() -> AsyncIterator[TwilioCatcher]:
    sid, token = "AC" + uuid.uuid4().hex, uuid.uuid4().hex
    catcher = TwilioCatcher(sid, token, from_numbers=(SENDER,))
    url = await catcher.start()
    catcher.config = TwilioConfig(sid, token, from_number=SENDER, api_base=url)  # type: ignore[attr-defined]
    yield catcher
    await catcher.stop()


@pytest.fixture
async def push() -> AsyncIterator[FcmCatcher]:
    catcher = FcmCatcher()
    url = await catcher.start()
    account = ServiceAccount.from_info(new_service_account("seatserver-test", url + "/token"))
    catcher.trust(account)
    catcher.config = FcmConfig(account, api_base=url)  # type: ignore[attr-defined]
    yield catcher
    await catcher.stop()


@pytest.fixture
async def workers(
    pool: Any, inbox: Inbox, sms: TwilioCatcher, push: FcmCatcher
) -> AsyncIterator[Any]:
    """Makes workers that send email, texts and pushes to the catchers; closes them after."""
    made: list[OutboxWorker] = []

    def make(**kw: Any) -> OutboxWorker:
        texts = TwilioNotifier(sms.config)  # type: ignore[attr-defined]
        pushes = FcmNotifier(push.config)  # type: ignore[attr-defined]
        made.append(worker(pool, inbox, texts, pushes, **kw))
        return made[-1]

    yield make
    for w in made:
        await w.close()


async def _reachable(
    pool: Any, cells: dict[tuple[str, str], bool] | None = None, platform: str = "android"
) -> tuple[int, str]:
    """A customer with a phone number and a device; SMS on for every kind unless ``cells``."""
    user = await _customer(pool)
    token = f"{uuid.uuid4().hex}:APA91b{uuid.uuid4().hex}"
    async with pool.acquire() as conn:
        await storage.set_phone(conn, user, PHONE, keyring=TEST_KEYRING)
        await notify.register_device(conn, user, token, platform)
        await notify.set_preferences(
            conn, user, cells or {(kind, "sms"): True for kind in notify.KINDS}
        )
    return user, token


async def _until(check: Any, timeout: float = 8.0, every: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        if every is not None:
            await every()
        await asyncio.sleep(0.05)


async def _deliveries(pool: Any) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM notification_deliveries ORDER BY id")
    return [dict(r) for r in rows]


# -- the channels ------------------------------------------------------------------------------


async def test_a_booking_arrives_once_by_email_text_and_push(
    pool: Any, workers: Any, inbox: Inbox, sms: TwilioCatcher, push: FcmCatcher
) -> None:
    user, token = await _reachable(pool)
    booking = await _book(pool, user, ("C5", "C6"))
    assert (await _drain(workers()))["sent"] == 3
    (text,) = sms.received
    assert text["to"] == PHONE and text["from"] == SENDER
    assert text["body"].startswith("SeatServer: Booked: The Test, ")
    assert "Main Street" in text["body"] and "Seats C5,C6" in text["body"]
    assert text["body"].endswith(f"Ref {booking[:8].upper()}") and len(text["body"]) <= 160
    (pushed,) = push.received
    message = pushed["message"]
    async with pool.acquire() as conn:
        show = await conn.fetchval(
            "SELECT show_id FROM bookings WHERE booking_id = $1::uuid", booking
        )
    assert message["token"] == token and message["notification"]["title"] == "Your tickets"
    assert "The Test" in message["notification"]["body"]
    assert message["data"] == {
        "kind": "confirmation",
        "show_id": str(show),
        "booking_id": booking,
        "link": "/#/bookings",
    }
    assert message["android"]["collapse_key"] == message["android"]["notification"]["tag"]
    assert len(inbox.received) == 1

    # Run again, by another worker: nothing more.
    assert (await _drain(workers()))["sent"] == 0
    assert (len(sms.received), len(push.received), len(inbox.received)) == (1, 1, 1)
    rows = await _deliveries(pool)
    assert sorted(r["channel"] for r in rows) == ["email", "push", "sms"]
    assert {r["provider_id"][:2] for r in rows if r["channel"] == "sms"} == {"SM"}
    # The deliveries keep no address, number or token.
    user_email = (await _user(pool, user)).email
    for value in (PHONE, token, user_email):
        assert value not in str(rows)


async def _user(pool: Any, user_id: int) -> storage.User:
    async with pool.acquire() as conn:
        return await storage.get_user(conn, user_id, keyring=TEST_KEYRING)


async def test_preferences_are_honoured(
    pool: Any, workers: Any, inbox: Inbox, sms: TwilioCatcher, push: FcmCatcher
) -> None:
    off = {("confirmation", channel): False for channel in notify.CHANNELS}
    cells = {**off, ("cancellation", "email"): False, ("cancellation", "sms"): True}
    user, _ = await _reachable(pool, cells, platform="web")
    await _book(pool, user, ("D2",), cancel=True)
    counts = await _drain(workers())
    assert counts == sent(sent=2)
    assert inbox.received == []  # email off for both kinds
    (text,) = sms.received
    assert text["body"].startswith("SeatServer: Cancelled: The Test")
    (pushed,) = push.received  # push on by default for the registered browser
    message = pushed["message"]
    assert message["notification"]["title"] == "Booking cancelled"
    assert message["data"]["kind"] == "cancellation" and "webpush" in message
    assert {r["kind"] for r in await _deliveries(pool)} == {"cancellation"}


async def test_sms_needs_a_phone_and_push_a_device(
    pool: Any, workers: Any, inbox: Inbox, sms: TwilioCatcher, push: FcmCatcher
) -> None:
    user = await _customer(pool)
    async with pool.acquire() as conn:  # asks for texts, but has no number
        await notify.set_preferences(conn, user, {("confirmation", "sms"): True})
    await _book(pool, user, ("D3",))
    assert (await _drain(workers()))["sent"] == 1
    assert len(inbox.received) == 1 and sms.received == [] and push.received == []


async def test_transient_errors_are_retried_after_retry_after(
    pool: Any, workers: Any, sms: TwilioCatcher, push: FcmCatcher
) -> None:
    user, _ = await _reachable(pool)
    await _book(pool, user, ("A3",))
    sms.fail_next(429, retry_after=1)
    push.fail_next(503, count=2)
    w = workers()
    first = await w.run_once()
    assert first["sent"] == 1 and first["retry"] == 2  # the email went; text and push wait
    async with pool.acquire() as conn:
        wait = await conn.fetchval(
            "SELECT extract(epoch FROM next_attempt_at - now()) FROM notification_deliveries "
            "WHERE channel = 'sms'"
        )
    assert 0.5 < wait <= 1.0  # Twilio's Retry-After (1 s), not the backoff (at most 0.05 s)
    await _until(lambda: sms.received and push.received, every=w.run_once)
    assert (sms.requests, push.send_requests) == (2, 3)
    assert len(sms.received) == len(push.received) == 1
    rows = {r["channel"]: r for r in await _deliveries(pool)}
    assert rows["sms"]["attempts"] == 2 and rows["push"]["attempts"] == 3
    assert rows["sms"]["sent_at"] and rows["push"]["sent_at"] and not rows["push"]["last_error"]


async def test_permanent_errors_give_up_and_an_unknown_device_is_forgotten(
    pool: Any, workers: Any, sms: TwilioCatcher, push: FcmCatcher
) -> None:
    user, token = await _reachable(pool, platform="ios")
    sms.refuse(PHONE, 21211)
    push.unregister(token)
    await _book(pool, user, ("A4",))
    counts = await _drain(workers())
    assert counts == sent(sent=1, given_up=2)
    rows = {r["channel"]: r for r in await _deliveries(pool)}
    assert "21211" in rows["sms"]["last_error"] and PHONE not in rows["sms"]["last_error"]
    assert "UNREGISTERED" in rows["push"]["last_error"] and token not in rows["push"]["last_error"]
    assert rows["sms"]["failed_at"] and rows["push"]["failed_at"]
    async with pool.acquire() as conn:
        assert await notify.devices_of(conn, user) == []
    assert sms.received == [] and push.received == []


async def test_a_crash_between_send_and_record_sends_nothing_twice(
    pool: Any, workers: Any, monkeypatch: Any, sms: TwilioCatcher, push: FcmCatcher
) -> None:
    cells = {("confirmation", "email"): False, ("confirmation", "sms"): True}
    user, _ = await _reachable(pool, cells)
    await _book(pool, user, ("B7",))

    async def lost(*args: Any) -> bool:
        raise ConnectionResetError("the database went away")

    with monkeypatch.context() as patched:  # each send lands; its record does not
        patched.setattr("notifications.deliveries.mark_sent", lost)
        dying = workers(batch=1)
        for _ in range(2):
            with pytest.raises(ConnectionResetError):
                await dying.run_once()
    assert len(sms.received) == len(push.received) == 1
    async with pool.acquire() as conn:  # the dead worker's leases run out
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM notification_deliveries WHERE send_attempt = 1"
            )
            == 2
        )
        await conn.execute("UPDATE notification_deliveries SET next_attempt_at = now()")
    counts = await _drain(workers())
    assert counts == sent(sent=1, given_up=1)
    assert len(sms.received) == len(push.received) == 1  # neither sent again
    rows = {r["channel"]: r for r in await _deliveries(pool)}
    assert rows["sms"]["provider_id"] == sms.received[0]["sid"]  # Twilio listed it: settled
    assert rows["push"]["sent_at"] is None and "OutcomeUnknown" in rows["push"]["last_error"]


async def test_two_workers_send_each_message_once(
    pool: Any, workers: Any, inbox: Inbox, sms: TwilioCatcher, push: FcmCatcher
) -> None:
    user, _ = await _reachable(pool)
    for n in range(5):
        await _book(pool, user, (f"E{n + 1}",))
    await asyncio.gather(_drain(workers(batch=2)), _drain(workers(batch=2)))
    assert len({m["sid"] for m in sms.received}) == len(sms.received) == 5
    assert len({m["name"] for m in push.received}) == len(push.received) == 5
    assert len(inbox.received) == 5


# -- reminders ---------------------------------------------------------------------------------


async def _booked_long_ago(pool: Any, booking: str, hours: float = 3) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE bookings SET confirmed_at = now() - make_interval(hours => $2) "
            "WHERE booking_id = $1::uuid",
            booking,
            hours,
        )


async def test_a_reminder_goes_out_once_two_hours_before_and_never_when_cancelled(
    pool: Any, workers: Any, inbox: Inbox, sms: TwilioCatcher
) -> None:
    user, _ = await _reachable(pool, {("reminder", "sms"): True, ("reminder", "push"): False})
    soon = dt.timedelta(hours=1, minutes=50)
    due = await _book(pool, user, ("B1",), starts_in=soon)
    fresh = await _book(pool, user, ("B2",), starts_in=soon)  # booked inside the window
    later = await _book(pool, user, ("B3",), starts_in=dt.timedelta(hours=3))
    dropped = await _book(pool, user, ("B4",), starts_in=soon)
    for booking in (due, later, dropped):
        await _booked_long_ago(pool, booking, hours=4)
    async with pool.acquire() as conn:
        assert await notify.schedule_reminders(conn, lead_s=7200) == 2  # due, dropped
        # The customer cancels one before its reminder went out.
        await conn.execute(
            "UPDATE bookings SET status = 'cancelled', cancelled_at = now() "
            "WHERE booking_id = $1::uuid",
            dropped,
        )
    counts = await _drain(workers())
    reminders = [t for t in sms.received if "starts at" in t["body"]]
    assert len(reminders) == 1 and "Seats B1" in reminders[0]["body"]
    mails = [m for m in inbox.received if m["Subject"].startswith("Starting soon")]
    assert len(mails) == 1 and due in mails[0].get_body(("plain",)).get_content()
    assert counts["dropped"] == 2  # the cancelled booking's reminder by text and by email
    async with pool.acquire() as conn:
        errors = await conn.fetch(
            "SELECT DISTINCT d.last_error FROM notification_deliveries d "
            "JOIN outbox o ON o.id = d.outbox_id WHERE d.dropped"
        )
        assert [r["last_error"] for r in errors] == ["Obsolete: booking_cancelled"]
        # Again: nothing new for the bookings already reminded, nor the one booked late.
        assert await notify.schedule_reminders(conn, lead_s=7200) == 0
        # An hour on, the later show's reminder comes due (and only it).
        hour_on = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=61)
        assert await notify.schedule_reminders(conn, lead_s=7200, now=hour_on) == 1
        keys = await conn.fetch("SELECT dedup_key FROM outbox WHERE topic = 'booking.reminder'")
    assert sorted(r["dedup_key"] for r in keys) == sorted(
        f"reminder:{b}" for b in (due, dropped, later)
    )
    assert fresh not in str(keys)
    assert (await _drain(workers()))["sent"] == 2  # the later one, by text and email, once
    assert (await _drain(workers()))["sent"] == 0


async def test_no_reminder_for_a_cancelled_show(pool: Any) -> None:
    user = await _customer(pool)
    booking = await _book(pool, user, ("B1",), starts_in=dt.timedelta(hours=1))
    await _booked_long_ago(pool, booking)
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE shows SET status = 'cancelled' WHERE id = "
            "(SELECT show_id FROM bookings WHERE booking_id = $1::uuid)",
            booking,
        )
        assert await notify.schedule_reminders(conn, lead_s=7200) == 0


# -- admissions --------------------------------------------------------------------------------


async def test_an_admission_is_one_event_and_one_push(
    pool: Any, redis: Any, workers: Any, push: FcmCatcher
) -> None:
    show = await make_show(pool)
    user, token = await _reachable(pool, {("admission", "sms"): False})
    other = await _customer(pool)
    prefix = random_ref("t") + ":"
    room = WaitingRoom(redis, pool, prefix=prefix, secret="s")
    now = int(time.time() * 1000)
    terms = Terms(queue_ms=now - 60_000, sale_ms=now, close_ms=now + 3_600_000,
                  rate=60, ttl_ms=600_000)  # fmt: skip
    await room.write_terms(show, terms, replace=True, now_ms=now)
    await room.join(show, user, now_ms=now)
    await room.join(show, other, now_ms=now)
    assert (await room.tick(show, now_ms=now + 1_000))[0] == 1  # one a second
    assert (await room.tick(show, now_ms=now + 1_500))[0] == 0
    async with pool.acquire() as conn:
        events = await conn.fetch("SELECT dedup_key, payload FROM outbox ORDER BY id")
    (event,) = events
    assert event["dedup_key"].startswith(f"admission:{show}:{user}:")
    assert event["payload"]["expires_at"] == pytest.approx(event["payload"]["at"] + 600)
    assert await redis.llen(room.keys(show)[8]) == 0  # written, so off the list
    await _drain(workers())
    (pushed,) = push.received
    assert pushed["message"]["token"] == token
    assert pushed["message"]["notification"]["title"] == "It's your turn"
    assert pushed["message"]["data"] == {
        "kind": "admission",
        "show_id": str(show),
        "link": f"/#/show/{show}",
    }
    keys = [k async for k in redis.scan_iter(match=prefix + "*")]
    await redis.delete(*keys)


# -- the settings endpoints --------------------------------------------------------------------


class NoShows:
    async def snapshot(self, show_id: int) -> Any:
        raise AssertionError("no seat maps here")


@pytest.fixture
async def client(aiohttp_client: Any, config: Any, redis: Any) -> AsyncIterator[Any]:
    client = await aiohttp_client(create_app(config, engine=NoShows()))
    yield client
    await client.close()
    keys = [k async for k in redis.scan_iter(match=config.redis_prefix + "*")]
    if keys:
        await redis.delete(*keys)


async def _answer(resp: Any, status: int) -> Any:
    body = None if resp.status == 204 else await resp.json()
    assert resp.status == status, body
    return body


async def test_the_settings_endpoints(client: Any, pool: Any, config: Any) -> None:
    me = await make_account(pool, config)
    h = me.headers
    got = await _answer(await client.get("/api/v1/me/notifications", headers=h), 200)
    assert got["preferences"]["confirmation"] == {"email": True, "sms": False, "push": True}
    assert got["preferences"]["admission"] == {"email": False, "sms": False, "push": True}
    assert got["phone"] == {"set": False, "ending": None} and got["devices"] == []

    wants_sms = {"preferences": {"reminder": {"sms": True}}}
    refused = await _answer(
        await client.put("/api/v1/me/notifications", json=wants_sms, headers=h), 409
    )
    assert refused["error"]["code"] == "phone_required"
    phone = await _answer(
        await client.put("/api/v1/me/phone", json={"phone": PHONE}, headers=h), 200
    )
    assert phone == {"set": True, "ending": "23"}
    cells = {
        "preferences": {"reminder": {"sms": True, "email": False}, "admission": {"push": False}}
    }
    got = await _answer(await client.put("/api/v1/me/notifications", json=cells, headers=h), 200)
    assert got["preferences"]["reminder"] == {"email": False, "sms": True, "push": True}
    assert got["preferences"]["admission"]["push"] is False
    async with pool.acquire() as conn:  # sealed at rest
        assert (
            await conn.fetchval("SELECT phone_enc FROM users WHERE id = $1", me.user_id)
            != PHONE.encode()
        )

    token = f"{uuid.uuid4().hex}:APA91b{uuid.uuid4().hex}"
    device = await _answer(
        await client.post(
            "/api/v1/me/devices", json={"token": token, "platform": "web"}, headers=h
        ),
        201,
    )
    again = await _answer(
        await client.post(
            "/api/v1/me/devices", json={"token": token, "platform": "web"}, headers=h
        ),
        201,
    )
    assert again["id"] == device["id"] and token not in str(device)
    got = await _answer(await client.get("/api/v1/me/notifications", headers=h), 200)
    assert [d["id"] for d in got["devices"]] == [device["id"]] and got["phone"]["set"]

    # A token belongs to one user: registered by another, it is theirs now.
    other = await make_account(pool, config)
    await _answer(
        await client.post(
            "/api/v1/me/devices",
            json={"token": token, "platform": "android"},
            headers=other.headers,
        ),
        201,
    )
    assert (await _answer(await client.get("/api/v1/me/notifications", headers=h), 200))[
        "devices"
    ] == []
    path = f"/api/v1/me/devices/{device['id']}"
    assert (await _answer(await client.delete(path, headers=h), 404))["error"][
        "code"
    ] == "not_found"
    await _answer(await client.delete(path, headers=other.headers), 204)

    await _answer(await client.delete("/api/v1/me/phone", headers=h), 204)
    got = await _answer(await client.get("/api/v1/me/notifications", headers=h), 200)
    assert got["phone"] == {"set": False, "ending": None}
    assert not any(cells["sms"] for cells in got["preferences"].values())  # texts off with it


BAD = [
    ("PUT", "/api/v1/me/phone", {"phone": "4155550123"}),  # no +
    ("PUT", "/api/v1/me/phone", {"phone": "+0155550123"}),
    ("PUT", "/api/v1/me/phone", {"phone": "+1415555012345678"}),  # too long for E.164
    ("PUT", "/api/v1/me/phone", {"phone": "+1 415 555 0123"}),
    ("PUT", "/api/v1/me/phone", {}),
    ("PUT", "/api/v1/me/notifications", {"preferences": {"newsletter": {"email": True}}}),
    ("PUT", "/api/v1/me/notifications", {"preferences": {"reminder": {"fax": True}}}),
    ("PUT", "/api/v1/me/notifications", {"preferences": {"reminder": {"sms": "yes"}}}),
    ("PUT", "/api/v1/me/notifications", {"preferences": {}}),
    ("PUT", "/api/v1/me/notifications", {"preferences": {"reminder": {}}}),
    ("POST", "/api/v1/me/devices", {"token": "short", "platform": "web"}),
    ("POST", "/api/v1/me/devices", {"token": "a" * 40, "platform": "blackberry"}),
    ("POST", "/api/v1/me/devices", {"token": "has spaces in it, it does", "platform": "ios"}),
    ("DELETE", "/api/v1/me/devices/0", None),
    ("DELETE", "/api/v1/me/devices/abc", None),
]


async def test_bad_settings_are_refused_at_the_edge(client: Any, pool: Any, config: Any) -> None:
    me = await make_account(pool, config)
    for method, path, body in BAD:
        resp = await client.request(method, path, json=body, headers=me.headers)
        error = (await _answer(resp, 422))["error"]
        assert error["code"] == "validation_failed" and error["details"]["errors"], body
    got = await _answer(await client.get("/api/v1/me/notifications", headers=me.headers), 200)
    assert got["phone"]["set"] is False and got["devices"] == []  # nothing changed


async def test_the_settings_need_a_login(client: Any) -> None:
    for method, path in (("GET", "/api/v1/me/notifications"), ("PUT", "/api/v1/me/phone"),
                         ("POST", "/api/v1/me/devices")):  # fmt: skip
        resp = await client.request(method, path, json={})
        assert (await _answer(resp, 401))["error"]["code"] == "unauthorized"


# -- the loopback servers are strict -----------------------------------------------------------


async def test_the_twilio_server_refuses_what_twilio_would(sms: TwilioCatcher) -> None:
    config = sms.config  # type: ignore[attr-defined]
    url = f"{config.api_base}/2010-04-01/Accounts/{config.account_sid}/Messages.json"
    auth = aiohttp.BasicAuth(config.account_sid, config.auth_token)
    good = {"To": PHONE, "From": SENDER, "Body": "hi"}
    cases = [
        ({**good}, aiohttp.BasicAuth(config.account_sid, "wrong"), 401, 20003),
        ({"From": SENDER, "Body": "hi"}, auth, 400, 21604),
        ({**good, "To": "555-0123"}, auth, 400, 21211),
        ({"To": PHONE, "Body": "hi"}, auth, 400, 21603),
        ({**good, "From": "+15005550009"}, auth, 400, 21606),
        ({**good, "MessagingServiceSid": "MG" + "0" * 32}, auth, 400, 21701),
        ({**good, "Body": ""}, auth, 400, 21602),
        ({**good, "Body": "x" * 1601}, auth, 400, 21617),
    ]
    async with aiohttp.ClientSession() as http:
        for form, who, status, code in cases:
            async with http.post(url, data=form, auth=who) as resp:
                body = await resp.json()
            assert (resp.status, body["code"], body["status"]) == (status, code, status), form
            assert set(body) == {"code", "message", "more_info", "status"}
        async with http.post(url, json=good, auth=auth) as resp:  # JSON is not what it takes
            assert resp.status == 400 and (await resp.json())["code"] == 21604
        async with http.post(url, data=good, auth=auth) as resp:
            created = await resp.json()
    assert resp.status == 201 and created["sid"].startswith("SM") and created["status"] == "queued"
    assert created["to"] == PHONE and created["body"] == "hi" and len(sms.received) == 1
    # Through the SDK: a wrong token is a transient (configuration) failure, nothing sent.
    wrong = TwilioNotifier(TwilioConfig(config.account_sid, "nope", from_number=SENDER,
                                        api_base=config.api_base))  # fmt: skip
    with pytest.raises(TransientError, match="401"):
        await wrong.send(SmsMessage(PHONE, "hello"))
    await wrong.close()
    assert len(sms.received) == 1


async def _token_answer(push: FcmCatcher, assertion: str) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    async with aiohttp.ClientSession() as http, http.post(push.url + "/token", data=form) as resp:
        return resp.status, await resp.json()


async def test_the_fcm_server_refuses_what_google_would(push: FcmCatcher) -> None:
    config = push.config  # type: ignore[attr-defined]
    account = config.account
    now = time.time()
    status, answer = await _token_answer(push, account.assertion(now))
    assert status == 200 and answer["token_type"] == "Bearer" and answer["expires_in"] > 3000
    stranger = ServiceAccount.from_info(new_service_account("seatserver-test", account.token_uri))
    forged = dataclasses.replace(stranger, private_key_id=account.private_key_id)
    base = {"iss": account.client_email, "scope": SCOPE, "aud": account.token_uri}
    bad_claims = [
        {**base, "aud": "https://oauth2.googleapis.com/token"},
        {**base, "iss": "someone@else.iam.gserviceaccount.com"},
        {**base, "scope": "https://www.googleapis.com/auth/devstorage.read_only"},
    ]
    refusals = [forged.assertion(now), account.assertion(now - 7200), "not.a.jwt"]
    for claims in bad_claims:
        claims |= {"iat": int(now), "exp": int(now) + 3600}
        refusals.append(jwt.encode(claims, account.private_key, algorithm="RS256",
                                   headers={"kid": account.private_key_id}))  # fmt: skip
    long_lived = {**base, "iat": int(now), "exp": int(now) + 7200}
    refusals.append(jwt.encode(long_lived, account.private_key, algorithm="RS256",
                               headers={"kid": account.private_key_id}))  # fmt: skip
    for assertion in refusals:
        status, answer = await _token_answer(push, assertion)
        assert status == 400 and answer["error"] in ("invalid_grant", "invalid_scope"), answer

    token = "dGVzdA:APA91b" + "x" * 60
    good = {"token": token, "notification": {"title": "t", "body": "b"}, "data": {"k": "v"}}
    wrong = [
        {"message": {**good, "topic": "news"}},  # two targets
        {"message": {**good, "data": {"n": 1}}},  # data values are strings
        {"message": {**good, "data": {"from": "x"}}},  # a reserved key
        {"message": {**good, "colour": "red"}},  # no such field
        {"message": {**good, "android": {"priority": "urgent"}}},
        {"message": {**good, "android": {"ttl": "1 day"}}},
        {"message": {**good, "webpush": {"fcm_options": {"link": "http://x.test/"}}}},
        {"message": {**good, "token": "no spaces allowed"}},
        {"message": {**good, "data": {"k": "v" * 5000}}},  # too big
        {"notmessage": good},
    ]
    bearer = {"Authorization": f"Bearer {await FcmNotifier(config).access_token()}"}
    async with aiohttp.ClientSession() as http:
        for body in wrong:
            async with http.post(config.send_url, json=body, headers=bearer) as resp:
                error = (await resp.json())["error"]
            assert resp.status == 400 and error["status"] == "INVALID_ARGUMENT", body
        async with http.post(config.send_url, json={"message": good}) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["status"] == "UNAUTHENTICATED"
        other = config.send_url.replace("seatserver-test", "someone-else")
        async with http.post(other, json={"message": good}, headers=bearer) as resp:
            assert resp.status == 403
        async with http.post(config.send_url, json={"message": good}, headers=bearer) as resp:
            name = (await resp.json())["name"]
    assert name.startswith("projects/seatserver-test/messages/") and len(push.received) == 1


async def test_the_push_client_renews_its_token_once(push: FcmCatcher) -> None:
    client = FcmNotifier(push.config)  # type: ignore[attr-defined]
    message = PushMessage("dGVzdA:APA91b" + "y" * 60, "web", "t", "b")
    await client.send(message)
    await client.send(message)
    assert push.token_requests == 1  # kept until it nearly expires
    push.revoke_tokens()
    await client.send(message)  # 401, a new token, sent
    assert push.token_requests == 2 and len(push.received) == 3
    await client.close()
