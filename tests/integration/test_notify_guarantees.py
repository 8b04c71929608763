"""What the notifications promise beyond a happy send, on real Postgres, the Twilio SDK and the
loopback Twilio and FCM servers: a text Twilio still holds queued when the worker died is found
and not sent again (the catcher queues like Twilio, and the look-up pages through its list); a
channel the customer chose but the worker cannot send on leaves a skipped delivery, a warning
and a count instead of nothing; every delivery sent writes one audit row of the personal data
it used, in the transaction that records it sent."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from typing import Any

import aiohttp
import asyncpg
import pytest
from prometheus_client import REGISTRY

import storage
from notifications import OutcomeUnknown, SmsMessage, TwilioNotifier
from notifications.fcm_catcher import FcmCatcher
from notifications.twilio_catcher import TwilioCatcher
from storage import audit
from tests.conftest import TEST_KEYRING
from tests.integration import test_notify_channels as channels
from tests.integration.test_notifications import Inbox, _book, _customer, _drain, sent, worker
from tests.integration.test_notify_channels import PHONE, _deliveries, _reachable

# The loopback SMTP, Twilio and FCM servers, and workers sending to them.
inbox, sms, push, workers = channels.inbox, channels.sms, channels.push, channels.workers

OTHER_PHONE = "+14155550199"


async def _listed(catcher: TwilioCatcher, **query: str) -> list[dict[str, Any]]:
    config = catcher.config  # type: ignore[attr-defined]
    url = f"{config.api_base}/2010-04-01/Accounts/{config.account_sid}/Messages.json"
    auth = aiohttp.BasicAuth(config.account_sid, config.auth_token)
    async with aiohttp.ClientSession() as http, http.get(url, params=query, auth=auth) as resp:
        assert resp.status == 200
        listed: list[dict[str, Any]] = (await resp.json())["messages"]
        return listed


# -- a text Twilio still holds queued ----------------------------------------------------------


async def test_the_twilio_server_queues_a_text_before_it_is_sent(sms: TwilioCatcher) -> None:
    sms.send_delay_s = 0.3
    texts = TwilioNotifier(sms.config)  # type: ignore[attr-defined]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    sid = await texts.send(SmsMessage(PHONE, "hello"))
    after = before.strftime("%Y-%m-%dT%H:%M:%SZ")
    (queued,) = await _listed(sms, To=PHONE)
    assert (queued["sid"], queued["status"], queued["date_sent"]) == (sid, "queued", None)
    assert await _listed(sms, To=PHONE, **{"DateSent>": after}) == []  # not sent: no date
    fetched = await texts._rest().messages(sid).fetch_async()
    assert fetched.status == "queued" and fetched.date_sent is None
    await _until_sent(sms)
    (listed,) = await _listed(sms, To=PHONE, **{"DateSent>": after})
    assert listed["status"] == "sent" and listed["date_sent"] is not None
    await texts.close()


async def _until_sent(catcher: TwilioCatcher) -> None:
    await asyncio.sleep(catcher.send_delay_s + 0.05)


async def test_a_text_still_queued_when_the_worker_died_is_sent_once(
    pool: Any, workers: Any, monkeypatch: Any, sms: TwilioCatcher, push: FcmCatcher
) -> None:
    sms.send_delay_s = 3600.0  # Twilio keeps it queued all along
    cells = {("confirmation", "email"): False, ("confirmation", "sms"): True,
             ("confirmation", "push"): False}  # fmt: skip
    user, _ = await _reachable(pool, cells)
    await _book(pool, user, ("B7",))

    async def lost(*args: Any) -> bool:
        raise ConnectionResetError("the database went away")

    with monkeypatch.context() as patched:  # the text lands; its record does not
        patched.setattr("notifications.deliveries.mark_sent", lost)
        with pytest.raises(ConnectionResetError):
            await workers().run_once()
    (text,) = sms.received
    assert [m["status"] for m in await _listed(sms, To=PHONE)] == ["queued"]
    async with pool.acquire() as conn:  # the dead worker's lease runs out
        await conn.execute("UPDATE notification_deliveries SET next_attempt_at = now()")
    assert await _drain(workers()) == sent(sent=1)
    assert len(sms.received) == 1  # found queued: recorded, not sent again
    (row,) = await _deliveries(pool)
    assert row["provider_id"] == text["sid"] and row["sent_at"] is not None


async def test_settling_pages_through_the_texts_to_the_number(sms: TwilioCatcher) -> None:
    sms.send_delay_s = 0.0
    config = dataclasses.replace(sms.config, settle_page_size=2)  # type: ignore[attr-defined]
    texts = TwilioNotifier(config)
    since = dt.datetime.now(dt.UTC)
    first = await texts.send(SmsMessage(PHONE, "the one in doubt"))
    for n in range(4):  # newer texts to the same number push it to the third page
        await texts.send(SmsMessage(PHONE, f"later {n}"))
    await texts.send(SmsMessage(OTHER_PHONE, "not this number"))
    assert await texts.settle(SmsMessage(PHONE, "the one in doubt"), since) == first
    assert await texts.settle(SmsMessage(PHONE, "never sent"), since) is None
    assert await texts.settle(SmsMessage(OTHER_PHONE, "the one in doubt"), since) is None
    # Created before the attempt began (less the clocks' minute): not this attempt's text.
    later = since + dt.timedelta(minutes=2)
    assert await texts.settle(SmsMessage(PHONE, "the one in doubt"), later) is None
    await texts.close()

    # More texts to the number than it reads: it cannot tell, so it says so.
    bounded = TwilioNotifier(dataclasses.replace(config, settle_pages=2))
    with pytest.raises(OutcomeUnknown, match="2 pages"):
        await bounded.settle(SmsMessage(PHONE, "the one in doubt"), since)
    await bounded.close()


# -- a channel the worker cannot send on -------------------------------------------------------


def _skipped_count(channel: str) -> float:
    labels = {"channel": channel, "reason": "channel_unconfigured"}
    return REGISTRY.get_sample_value("seatserver_notifications_skipped_total", labels) or 0.0


async def test_a_chosen_channel_without_a_notifier_is_recorded_as_skipped(
    pool: Any, inbox: Inbox, sms: TwilioCatcher, push: FcmCatcher, caplog: Any
) -> None:
    user, _ = await _reachable(pool)  # texts and pushes wanted, a phone and a device
    await _book(pool, user, ("C3",))
    await _book(pool, user, ("C4",))
    counted = {channel: _skipped_count(channel) for channel in ("sms", "push")}
    email_only = worker(pool, inbox)
    with caplog.at_level(logging.WARNING, logger="notifications.worker"):
        assert await _drain(email_only) == sent(sent=2)
        assert await _drain(email_only) == sent()
    rows = await _deliveries(pool)
    assert sorted((r["channel"], r["skipped"]) for r in rows) == [
        ("email", None),
        ("email", None),
        ("push", "channel_unconfigured"),
        ("push", "channel_unconfigured"),
        ("sms", "channel_unconfigured"),
        ("sms", "channel_unconfigured"),
    ]
    for row in rows:
        if row["skipped"]:
            assert row["failed_at"] is not None and row["sent_at"] is None
            assert row["attempts"] == 0  # never claimed
    assert {c: _skipped_count(c) - counted[c] for c in counted} == {"sms": 2.0, "push": 2.0}
    warned = [r.getMessage() for r in caplog.records if "not configured" in r.getMessage()]
    assert sorted(w.split()[0] for w in warned) == ["push", "sms"]  # once per channel
    assert PHONE not in caplog.text

    # Skipped is final: a worker that can send texts later does not send these late.
    await email_only.close()
    full = worker(pool, inbox, TwilioNotifier(sms.config))  # type: ignore[attr-defined]
    assert await _drain(full) == sent()
    assert sms.received == [] and push.received == []
    await full.close()
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE notification_deliveries SET failed_at = NULL WHERE skipped IS NOT NULL"
            )


# -- the audit of the personal data a send uses ------------------------------------------------


async def _audit_rows(pool: Any, user: int) -> list[audit.AuditRecord]:
    async with pool.acquire() as conn:
        filters = audit.AuditFilters(subject_id=user, action="personal_data.notify")
        return await audit.list_entries(conn, filters)


async def test_each_delivery_sent_writes_one_audit_row(
    pool: Any, workers: Any, sms: TwilioCatcher, push: FcmCatcher
) -> None:
    user, token = await _reachable(pool)
    other = await _customer(pool, "Bo")
    async with pool.acquire() as conn:
        email = (await storage.get_user(conn, user, keyring=TEST_KEYRING)).email
    await _book(pool, user, ("C1",))
    await _book(pool, other, ("C2",))
    assert (await _drain(workers()))["sent"] == 4
    assert (await _drain(workers()))["sent"] == 0
    rows = await _audit_rows(pool, user)
    deliveries = {str(r["id"]): r for r in await _deliveries(pool) if r["user_id"] == user}
    assert sorted(r.entry.target_id or "" for r in rows) == sorted(deliveries)
    for row in rows:
        entry = row.entry
        delivery = deliveries[entry.target_id or ""]
        assert (entry.actor_id, entry.actor_role, entry.target_type) == (
            None,
            "system",
            "notification_delivery",
        )
        assert entry.details == {"channel": delivery["channel"], "kind": "confirmation"}
        for personal in (email, PHONE, token):
            assert personal not in str(row.public())
    assert len(await _audit_rows(pool, other)) == 1  # their email


async def test_a_delivery_not_sent_writes_no_audit_row_and_one_sent_late_writes_one(
    pool: Any, workers: Any, monkeypatch: Any, sms: TwilioCatcher
) -> None:
    cells = {("confirmation", "email"): False, ("confirmation", "sms"): True,
             ("confirmation", "push"): False}  # fmt: skip
    user, _ = await _reachable(pool, cells)
    await _book(pool, user, ("D1",))

    async def refused(*args: Any) -> int:
        raise RuntimeError("the audit row could not be written")

    with monkeypatch.context() as patched:  # the row and the record go together, or neither
        patched.setattr("storage.audit.record", refused)
        with pytest.raises(RuntimeError):
            await workers().run_once()
    (row,) = await _deliveries(pool)
    assert row["sent_at"] is None and row["send_attempt"] == 1
    assert await _audit_rows(pool, user) == []
    async with pool.acquire() as conn:
        await conn.execute("UPDATE notification_deliveries SET next_attempt_at = now()")
    assert await _drain(workers()) == sent(sent=1)  # settled: Twilio had it
    assert len(sms.received) == 1
    (audited,) = await _audit_rows(pool, user)
    assert audited.entry.target_id == str(row["id"])

    sms.refuse(PHONE, 21211)  # refused by Twilio: nothing sent, nothing audited
    await _book(pool, user, ("D2",))
    assert await _drain(workers()) == sent(given_up=1)
    assert len(await _audit_rows(pool, user)) == 1
