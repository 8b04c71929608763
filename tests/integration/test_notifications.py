"""The notifications worker's email channel on real Postgres and a real SMTP server (aiosmtpd)
on loopback: bookings written behind by the real write-behind produce their mails, with calendar
attachments; failures are retried, then given up; two workers never send one message twice.
(The other channels, preferences and reminders: test_notify_channels.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import mailbox
import time
import uuid
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import icalendar
import pytest
from aiosmtpd.controller import Controller

import storage
from actors import Cancel, Confirm, HoldSeats, Layout, SeatMap
from actors.persistence import ShowBatch, load_show, write_batch
from notifications import EmailNotifier, OutboxWorker, SmtpConfig, deliveries
from notifications import outbox as notify_outbox
from notifications.catcher import messages, start_catcher
from notifications.worker import COUNTS
from payments.localstripe import free_port
from storage import payments as records
from tests.conftest import TEST_KEYRING
from tests.integration.shows import grid_layout, make_show


class Inbox:
    """An SMTP handler that keeps what it accepts, and can refuse the first ``fail`` tries."""

    def __init__(self, fail: int = 0, reply: str = "451 4.3.0 try again later") -> None:
        self.received: list[Any] = []
        self.fail = fail
        self.reply = reply
        self.tries = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.tries += 1
        if self.tries <= self.fail:
            return self.reply
        self.received.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def inbox() -> Any:
    handler = Inbox()
    handler.port = free_port()  # type: ignore[attr-defined]
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)  # type: ignore[attr-defined]
    controller.start()
    yield handler
    controller.stop()


def mailer(inbox: Any) -> EmailNotifier:
    return EmailNotifier(SmtpConfig(host="127.0.0.1", port=inbox.port, starttls=False, timeout_s=5))


def worker(pool: Any, inbox: Any, *more: Any, **kw: Any) -> OutboxWorker:
    """A worker sending email to ``inbox`` (and on the channels of ``more`` notifiers)."""
    settings = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05, "lease_s": 30, **kw}
    return OutboxWorker(pool, [mailer(inbox), *more], keyring=TEST_KEYRING, **settings)


def sent(**kw: int) -> dict[str, int]:
    """A pass's counts: ``kw`` and zeros, leaving out the events fanned out."""
    return {k: kw.get(k, 0) for k in COUNTS if k not in ("fanned_out", "reminders")}


async def _customer(pool: Any, name: str = "Ada") -> int:
    async with pool.acquire() as conn:
        user = await storage.create_user(
            conn,
            f"{uuid.uuid4().hex[:8]}@example.com",
            "x",
            keyring=TEST_KEYRING,
            display_name=name,
        )
    return user.id


async def _book(
    pool: Any,
    user_id: int,
    seats: tuple[str, ...],
    *,
    cancel: bool = False,
    starts_in: dt.timedelta = dt.timedelta(days=2),
) -> str:
    """A booking confirmed (and perhaps cancelled) by a seat map, written behind for real."""
    show = await make_show(pool, name=uuid.uuid4().hex[:8], starts_in=starts_in)
    now = time.time()
    async with pool.acquire() as conn:
        record = await load_show(conn, show, now)
    assert record is not None
    seatmap = SeatMap(str(show), Layout.from_dict(grid_layout()), prices=record.prices)
    hold = seatmap.hold(HoldSeats(str(uuid.uuid4()), str(user_id), seats), now)
    booking = seatmap.confirm(Confirm(hold.hold_id, str(user_id), str(uuid.uuid4())), now)
    if cancel:
        seatmap.cancel(Cancel(booking.booking_id, str(user_id)), now)
    batch = ShowBatch(record.show_id, record.show_date, record.currency, seatmap.pull_events())
    async with pool.acquire() as conn:
        await write_batch(conn, [batch])
    return booking.booking_id


def _calendar(message: Any) -> Any:
    (part,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    return icalendar.Calendar.from_ical(part.get_content())


async def _drain(w: OutboxWorker, rounds: int = 50) -> dict[str, int]:
    """Run passes until two in a row (past the tiny backoff) find nothing due; what was done,
    but for the events fanned out and the reminders written."""
    total = sent()
    idle = 0
    for _ in range(rounds):
        counts = await asyncio.wait_for(w.run_once(), 10)
        for k in total:
            total[k] += counts[k]
        idle = 0 if any(counts.values()) else idle + 1
        if idle == 2:
            break
        if idle:
            await asyncio.sleep(0.06)
    return total


async def test_a_confirmed_booking_sends_its_tickets_with_a_calendar(
    pool: Any, inbox: Inbox
) -> None:
    user = await _customer(pool)
    booking_id = await _book(pool, user, ("C5", "C6"))
    counts = await _drain(worker(pool, inbox))
    assert counts["sent"] == 1
    (mail,) = inbox.received
    assert "Ada" in mail["To"] and "The Test" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert "C5, C6" in text and "$24.00" in text and booking_id in text
    assert (" EST" in text) or (" EDT" in text)  # the theater's zone (America/New_York)
    event = _calendar(mail).walk("VEVENT")[0]
    assert str(event["UID"]) == f"{booking_id}@seatserver"
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert str(_calendar(mail)["METHOD"]) == "PUBLISH"
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT d.sent_at, d.attempts, d.provider_id, o.fanned_out_at "
            "FROM notification_deliveries d JOIN outbox o ON o.id = d.outbox_id WHERE o.topic = $1",
            "booking.confirmed",
        )
    assert row["sent_at"] is not None and row["attempts"] == 1
    assert row["fanned_out_at"] is not None and row["provider_id"] == mail["Message-ID"]
    assert (await _drain(worker(pool, inbox)))["sent"] == 0  # never twice
    assert len(inbox.received) == 1


async def test_a_cancelled_booking_cancels_the_calendar_event(pool: Any, inbox: Inbox) -> None:
    user = await _customer(pool)
    booking_id = await _book(pool, user, ("D1",), cancel=True)
    await _drain(worker(pool, inbox))
    by_subject = {m["Subject"].split(":")[0]: m for m in inbox.received}
    assert set(by_subject) == {"Your tickets", "Booking cancelled"}
    cancelled = _calendar(by_subject["Booking cancelled"])
    assert str(cancelled["METHOD"]) == "CANCEL"
    event = cancelled.walk("VEVENT")[0]
    assert str(event["UID"]) == f"{booking_id}@seatserver" and str(event["STATUS"]) == "CANCELLED"


async def test_a_refund_sends_its_own_mail(pool: Any, inbox: Inbox) -> None:
    user = await _customer(pool)
    show = await make_show(pool)
    async with pool.acquire() as conn:
        await records.enqueue_message(
            conn,
            "refund.succeeded",
            "refund.succeeded:r1",
            {
                "refund_id": "r1",
                "payment_id": "p1",
                "booking_id": None,
                "show_id": show,
                "user_id": str(user),
                "amount_cents": 1200,
                "currency": "usd",
                "reason": "hold_lost",
                "at": time.time(),
            },
        )
    await _drain(worker(pool, inbox))
    (mail,) = inbox.received
    assert mail["Subject"].startswith("Refund of $12.00")
    assert "hold had ended" in mail.get_body(("plain",)).get_content()


async def test_transient_failures_are_retried_then_sent_once(pool: Any, inbox: Inbox) -> None:
    inbox.fail = 2
    user = await _customer(pool)
    await _book(pool, user, ("A5",))
    counts = await _drain(worker(pool, inbox))
    assert counts == sent(sent=1, retry=2)
    assert len(inbox.received) == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT attempts, sent_at, last_error FROM notification_deliveries"
        )
    assert row["attempts"] == 3 and row["sent_at"] is not None and row["last_error"] is None


async def test_a_permanent_failure_gives_up_and_keeps_the_error(pool: Any, inbox: Inbox) -> None:
    inbox.fail, inbox.reply = 100, "550 5.1.1 no such user"
    user = await _customer(pool)
    await _book(pool, user, ("A6",))
    counts = await _drain(worker(pool, inbox))
    assert counts == sent(given_up=1)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT failed_at, sent_at, last_error FROM notification_deliveries"
        )
    assert row["failed_at"] is not None and row["sent_at"] is None
    assert "550" in row["last_error"]


async def test_attempts_run_out(pool: Any, inbox: Inbox) -> None:
    inbox.fail = 100
    user = await _customer(pool)
    await _book(pool, user, ("A7",))
    counts = await _drain(worker(pool, inbox, max_attempts=3))
    assert counts == sent(retry=2, given_up=1)


async def test_two_workers_send_each_message_once(pool: Any, inbox: Inbox) -> None:
    user = await _customer(pool)
    for n in range(8):
        await _book(pool, user, (f"B{n + 1}",))
    first, second = worker(pool, inbox, batch=3), worker(pool, inbox, batch=3)
    await asyncio.gather(_drain(first), _drain(second))
    ids = [m["Message-ID"] for m in inbox.received]
    assert len(ids) == 8 and len(set(ids)) == 8


async def test_the_catcher_keeps_mail_in_a_maildir(pool: Any, tmp_path: Path) -> None:
    catcher = await start_catcher(tmp_path / "mail")
    try:
        user = await _customer(pool, "Grace")
        await _book(pool, user, ("E2",))
        smtp = SmtpConfig(host="127.0.0.1", port=catcher.port, starttls=False)
        w = OutboxWorker(pool, [EmailNotifier(smtp)], keyring=TEST_KEYRING)
        assert (await asyncio.wait_for(w.run_once(), 10))["sent"] == 1
    finally:
        await catcher.stop()
    (caught,) = messages(tmp_path / "mail")
    assert "Grace" in caught["to"] and caught["subject"].startswith("Your tickets")
    with pytest.raises(ValueError, match="loopback"):
        await start_catcher(tmp_path / "other", host="0.0.0.0")


async def test_a_crashed_workers_rows_wait_for_their_lease(pool: Any, inbox: Inbox) -> None:
    user = await _customer(pool)
    await _book(pool, user, ("E7",))
    w = worker(pool, inbox)
    async with pool.acquire() as conn:  # a worker fans out and claims, then dies before sending
        await notify_outbox.fan_out(conn, limit=10, channels=["email"])
        (claimed,) = await deliveries.claim(conn, limit=10, lease_s=0.5, channels=["email"])
    assert (await asyncio.wait_for(w.run_once(), 10))["sent"] == 0  # still leased
    await asyncio.sleep(0.6)
    assert (await asyncio.wait_for(w.run_once(), 10))["sent"] == 1
    assert len(inbox.received) == 1
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT attempts FROM notification_deliveries") == 2
        # The dead worker's lease is fenced off: were it to wake up, it may not send.
        assert not await deliveries.renew(conn, claimed, lease_s=30)
        assert not await deliveries.begin_send(conn, claimed, lease_s=30)


async def test_a_stale_lease_is_not_sent_again(pool: Any, inbox: Inbox) -> None:
    user = await _customer(pool)
    await _book(pool, user, ("E8",))
    email = ["email"]
    async with pool.acquire() as conn:
        await notify_outbox.fan_out(conn, limit=10, channels=email)
        (slow,) = await deliveries.claim(conn, limit=10, lease_s=0.05, channels=email)  # stalls
        await asyncio.sleep(0.1)
        (fast,) = await deliveries.claim(conn, limit=10, lease_s=30, channels=email)  # takes over
        assert fast.attempts == slow.attempts + 1
        assert not await deliveries.renew(conn, slow, lease_s=30)
        assert await deliveries.renew(conn, fast, lease_s=30)
        assert await deliveries.mark_sent(conn, fast.id, "<id@x>")
        assert not await deliveries.mark_sent(conn, fast.id, "<id@x>")
        # A late failure report of the stale attempt does not undo the delivery.
        await deliveries.mark_failed(conn, slow, "late", None)
        row = await conn.fetchrow(
            "SELECT sent_at, failed_at, last_error FROM notification_deliveries"
        )
    assert row["sent_at"] is not None and row["failed_at"] is None and row["last_error"] is None


class FlakyPool:
    """A pool whose first ``down`` acquisitions fail, as while the database restarts."""

    def __init__(self, pool: Any, down: int) -> None:
        self.pool, self.down = pool, down

    def acquire(self) -> Any:
        if self.down > 0:
            self.down -= 1
            raise ConnectionRefusedError("database restarting")
        return self.pool.acquire()


async def test_run_outlives_a_lost_database_and_a_bad_row(pool: Any, inbox: Inbox) -> None:
    user = await _customer(pool)
    show = await make_show(pool)
    async with pool.acquire() as conn:  # rows it cannot render: no seats, a topic unknown
        for topic, key in (("booking.confirmed", "bad:1"), ("nope", "bad:2")):
            await records.enqueue_message(
                conn, topic, key, {"booking_id": key, "show_id": show, "user_id": str(user)}
            )
    await _book(pool, user, ("E9",))
    w = OutboxWorker(
        FlakyPool(pool, down=3),
        [mailer(inbox)],
        keyring=TEST_KEYRING,
        backoff_base_s=0.01,
        backoff_cap_s=0.02,
        max_attempts=3,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop, poll_s=0.01))

    async def settled() -> None:
        while True:
            async with pool.acquire() as conn:
                left = await conn.fetchval(
                    "SELECT (SELECT count(*) FROM outbox "
                    "        WHERE fanned_out_at IS NULL AND failed_at IS NULL)"
                    " + (SELECT count(*) FROM notification_deliveries "
                    "    WHERE sent_at IS NULL AND failed_at IS NULL)"
                )
            if left == 0 and inbox.received:
                return
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(settled(), 15)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    (mail,) = inbox.received
    assert "E9" in mail.get_body(("plain",)).get_content()
    async with pool.acquire() as conn:
        # The event with no seats: its email could not be written, three times.
        bad = await conn.fetchrow(
            "SELECT o.dedup_key, d.attempts, d.last_error FROM notification_deliveries d "
            "JOIN outbox o ON o.id = d.outbox_id WHERE d.failed_at IS NOT NULL"
        )
        # The event of a topic nobody sends: given up as it was fanned out.
        unknown = await conn.fetchrow(
            "SELECT dedup_key, fanned_out_at, last_error FROM outbox WHERE failed_at IS NOT NULL"
        )
    assert (bad["dedup_key"], bad["attempts"]) == ("bad:1", 3) and "KeyError" in bad["last_error"]
    assert unknown["dedup_key"] == "bad:2" and unknown["fanned_out_at"] is None
    assert "UnknownTopic" in unknown["last_error"]


async def test_caught_mail_is_listed_oldest_first(tmp_path: Path) -> None:
    catcher = await start_catcher(tmp_path / "mail", host="localhost")
    await catcher.stop()
    box = mailbox.Maildir(tmp_path / "mail")
    for subject, date in (
        ("second", "Thu, 03 Dec 2026 09:00:00 +0000"),
        ("first", "Wed, 02 Dec 2026 23:00:00 -0500"),  # 04:00 UTC on the 3rd
    ):
        box.add(f"Subject: {subject}\r\nTo: a@b.c\r\nDate: {date}\r\n\r\nhi\r\n".encode())
    assert [m["subject"] for m in messages(tmp_path / "mail")] == ["first", "second"]
