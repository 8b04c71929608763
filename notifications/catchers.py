"""Loopback stand-ins for the text and push providers, for the one-command local run and the
tests: each speaks its provider's wire format strictly, refuses what the provider would, and
keeps what arrived (in memory, and as JSON lines in a file when given one).

    >>> sms = await start_local_sms(data_dir)     # Twilio's Messages API; sms.config for the SDK
    >>> push = await start_local_push(data_dir)   # FCM v1 and its token endpoint
    >>> # (each on the port asked for, or on a free one when that one is taken)
    >>> ...
    >>> await sms.catcher.stop(); await push.catcher.stop()

``notifications.twilio_catcher`` and ``notifications.fcm_catcher`` hold the two servers; this
module holds what they share (the aiohttp runner on a loopback port, the record) and the
development wiring (a local Twilio account, a local service account kept under ``data_dir``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

LOCAL_ACCOUNT_SID = "AC" + "5ea75e7e" * 4
LOCAL_FROM_NUMBER = "+15005550006"
LOCAL_FCM_PROJECT = "seatserver-local"


def check_loopback(host: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"a catcher listens on a loopback address only, not {host!r}")


class CatcherServer:
    """An aiohttp app on a loopback port that keeps what it receives."""

    def __init__(self, record: Path | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self._record = record
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._arrived = asyncio.Condition()

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self, port: int = 0, host: str = "127.0.0.1", *, or_any: bool = False) -> str:
        """Listen on ``host:port`` (0: a free port; ``or_any``: a free one if ``port`` is
        taken); returns the base URL."""
        check_loopback(host)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError:
            if not (or_any and port):
                await self.stop()
                raise
            await web.TCPSite(self._runner, host, 0).start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def keep(self, entry: dict[str, Any]) -> None:
        """Record one accepted message."""
        self.received.append(entry)
        if self._record is not None:
            self._record.parent.mkdir(parents=True, exist_ok=True)
            with self._record.open("a") as out:
                out.write(json.dumps(entry, default=str) + "\n")
        async with self._arrived:
            self._arrived.notify_all()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """What arrived, once at least ``count`` messages did (TimeoutError after ``timeout``)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)


def caught(record: Path) -> list[dict[str, Any]]:
    """The messages a catcher kept in ``record`` (JSON lines), oldest first."""
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


@dataclass
class LocalSms:
    catcher: Any  # notifications.twilio_catcher.TwilioCatcher
    config: Any  # notifications.sms.TwilioConfig
    record: Path


@dataclass
class LocalPush:
    catcher: Any  # notifications.fcm_catcher.FcmCatcher
    config: Any  # notifications.push.FcmConfig
    record: Path


async def start_local_sms(data_dir: Path, port: int = 0) -> LocalSms:
    """A local Twilio with one account and number; texts kept in ``data_dir/sms``."""
    from notifications.sms import TwilioConfig
    from notifications.twilio_catcher import TwilioCatcher

    record = data_dir / "sms" / "messages.jsonl"
    token = secrets.token_hex(16)
    catcher = TwilioCatcher(
        LOCAL_ACCOUNT_SID, token, from_numbers=(LOCAL_FROM_NUMBER,), record=record
    )
    url = await catcher.start(port, or_any=True)
    config = TwilioConfig(LOCAL_ACCOUNT_SID, token, from_number=LOCAL_FROM_NUMBER, api_base=url)
    return LocalSms(catcher, config, record)


async def start_local_push(data_dir: Path, port: int = 0) -> LocalPush:
    """A local FCM whose service account's key is kept in ``data_dir/push`` (made on first
    use); pushes kept there too."""
    from notifications.fcm_catcher import FcmCatcher, new_service_account
    from notifications.push import FcmConfig, ServiceAccount

    folder = data_dir / "push"
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "service-account.json"
    info = json.loads(key_file.read_text()) if key_file.exists() else None
    catcher = FcmCatcher(record=folder / "messages.jsonl")
    url = await catcher.start(port, or_any=True)
    if info is None or info.get("project_id") != LOCAL_FCM_PROJECT:
        info = new_service_account(LOCAL_FCM_PROJECT, url + "/token")
    info["token_uri"] = url + "/token"  # the port may differ from the last run's
    key_file.write_text(json.dumps(info, indent=2))
    key_file.chmod(0o600)
    account = ServiceAccount.from_info(info)
    catcher.trust(account)
    return LocalPush(catcher, FcmConfig(account, api_base=url), folder / "messages.jsonl")
