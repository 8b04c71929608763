"""What the flash-sale scenario runs on, and its handles on it: the stack of ``loadtest.http``
with one show, a localstripe, one gateway with payments, an ops admin and the visitors'
accounts; the visitors' locust process; the show's line and bookings.

    sale = await open_sale_stack(options, say)           # Ray must be up
    await sale.start_visitors(plan, out_dir)             # locust, ready, not yet going
    await sale.open_flash_sale(queue_opens_at=..., sale_opens_at=..., admission_per_min=600,
                               token_ttl_s=600)
    began = await sale.let_visitors_go()
    ... await sale.queue_stats(), await sale.sold_seats() ...
    result = await sale.visitors_result(timeout_s=30)
    await close_sale_stack(sale)     # every process by its pid, the schema, the Redis keys

Every process is ended by its pid; closing tries every step even when one fails.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest import http
from seatserver.settings import Settings

API = "/api/v1"
ROOT = Path(__file__).resolve().parents[1]
REGISTER_CONCURRENCY = 16
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
DURABLE_TIMEOUT_S = 10.0
# A deployment's default limits per user and per account (not the environment's), and none per
# address: all the load comes from 127.0.0.1.
RATE_LIMITS = {
    name: "off" if name.endswith("_ip") else str(Settings.model_fields[f"rate_{name}"].default)
    for name in (
        "login_ip",
        "login_account",
        "join_user",
        "join_ip",
        "hold_user",
        "hold_ip",
        "poll_user",
    )
}


@dataclass
class SaleStack:
    stack: http.Stack
    gateway: http.Server | None = None
    stripe: Any = None  # payments.localstripe.LocalStripe
    session: Any = None  # aiohttp.ClientSession on the gateway
    conn: Any = None  # Postgres, in the run's schema
    ops: dict[str, str] = field(default_factory=dict)  # an ops admin's headers
    tokens: list[str] = field(default_factory=list)  # the visitors' access tokens
    visitors: Any = None  # asyncio.subprocess.Process
    files: Path | None = None  # the visitors' plan and result (tokens inside): removed

    @property
    def show_id(self) -> int:
        return self.stack.show_ids[0]

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    # -- the admin side --------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        async with self.session.request(method, API + path, json=body, headers=headers) as resp:
            answer = await resp.json()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path} answered {resp.status}: {answer}")
        return answer

    async def open_flash_sale(
        self,
        *,
        queue_opens_at: float,
        sale_opens_at: float,
        admission_per_min: int,
        token_ttl_s: int,
    ) -> None:
        """The show's terms, then its status, as ops would set them through the API."""
        terms = {
            "queue_opens_at": _iso(queue_opens_at),
            "sale_opens_at": _iso(sale_opens_at),
            "admission_per_min": admission_per_min,
            "token_ttl_s": token_ttl_s,
        }
        show = f"/admin/shows/{self.show_id}"
        await self._call("PUT", f"{show}/flash-sale", terms, **self.ops)
        await self._call("PUT", f"{show}/status", {"status": "flash_sale"}, **self.ops)
        # The status is written behind by the show's actor: the answer can come before it is
        # in Postgres, where the waiting room reads it. Go only once it is there.
        deadline = time.monotonic() + DURABLE_TIMEOUT_S
        while (await self._call("GET", f"{show}/flash-sale", **self.ops))["status"] != "flash_sale":
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the show's flash-sale status not in Postgres after {DURABLE_TIMEOUT_S} s"
                )
            await asyncio.sleep(0.01)

    async def queue_stats(self) -> dict[str, Any]:
        return dict(await self._call("GET", f"/admin/shows/{self.show_id}/queue", **self.ops))

    async def sold_seats(self) -> int:
        sold = await self.conn.fetchval(
            """SELECT coalesce(sum(cardinality(seats)), 0) FROM bookings
               WHERE show_id = $1 AND status = 'confirmed'""",
            self.show_id,
        )
        return int(sold)

    async def bookings(self) -> list[tuple[int, list[str]]]:
        rows = await self.conn.fetch(
            "SELECT user_id, seats FROM bookings WHERE show_id = $1 AND status = 'confirmed'",
            self.show_id,
        )
        return [(r["user_id"], list(r["seats"])) for r in rows]

    # -- the visitors' process -------------------------------------------------------------

    async def start_visitors(self, plan: dict[str, Any], out_dir: Path) -> None:
        """Start locust (``loadtest.flash_visitors``) and wait until it is ready to go; its
        log is ``out_dir/locust.log``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        self.files = Path(tempfile.mkdtemp(prefix="seatserver-flash-"))
        plan_path = self.files / "plan.json"
        plan_path.write_text(json.dumps(plan))
        with (out_dir / "locust.log").open("wb") as log:
            self.visitors = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "loadtest.flash_visitors",
                str(plan_path),
                str(self.files / "result.json"),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
            )
        try:
            line = await asyncio.wait_for(self.visitors.stdout.readline(), READY_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            raise RuntimeError(
                f"the visitors' process (pid {self.visitors.pid}) did not get ready: see "
                f"{out_dir / 'locust.log'}"
            )

    async def let_visitors_go(self) -> float:
        self.visitors.stdin.write(b"go\n")
        await self.visitors.stdin.drain()
        return time.time()

    def visitors_running(self) -> bool:
        return self.visitors is not None and self.visitors.returncode is None

    async def visitors_result(self, timeout_s: float) -> dict[str, Any]:
        """The visitors' stories, once their process has ended (ended after ``timeout_s``)."""
        try:
            await asyncio.wait_for(self.visitors.wait(), timeout_s)
        except TimeoutError:
            await self.end_visitors()
        assert self.files is not None
        result = self.files / "result.json"
        if self.visitors.returncode != 0 or not result.exists():
            raise RuntimeError(
                f"the visitors' process (pid {self.visitors.pid}) ended with "
                f"{self.visitors.returncode} and no result: see its locust.log"
            )
        return dict(json.loads(result.read_text()))

    async def end_visitors(self) -> None:
        """SIGTERM, then SIGKILL: the visitors' process, by its pid."""
        process = self.visitors
        if process is None or process.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
                return
            except TimeoutError:
                continue


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat()


async def open_sale_stack(options: Any, say: Any) -> SaleStack:
    """The stack of one show of ``options.seats`` seats, a localstripe, one gateway with
    payments, an ops admin and ``options.visitors`` customers; undone when a step fails."""
    stack = await http.open_stack(
        options.database_url, options.redis_url, options.run, shows=1, seats=options.seats
    )
    sale = SaleStack(stack)
    try:
        await _open(sale, options, say)
    except BaseException:
        await close_sale_stack(sale)
        raise
    return sale


async def _open(sale: SaleStack, options: Any, say: Any) -> None:
    import aiohttp

    import storage
    from gateway.models import ModelsConfig
    from gateway.rates import RateLimits
    from payments import PaymentsConfig
    from payments.localstripe import register_webhook, start_localstripe
    from seatserver.bootstrap import LOCAL_STRIPE_PUBLISHABLE_KEY, LOCAL_STRIPE_SECRET_KEY

    sale.stripe = await start_localstripe()
    await sale.stripe.wait_ready()
    secret = "whsec_" + secrets.token_hex(24)
    payments = PaymentsConfig(
        stripe_api_key=LOCAL_STRIPE_SECRET_KEY,
        stripe_webhook_secret=secret,
        stripe_publishable_key=LOCAL_STRIPE_PUBLISHABLE_KEY,
        stripe_api_base=sale.stripe.url,
        stripe_js_base=sale.stripe.url,
        reconcile_interval_s=0.0,  # minutes of run: nothing is left unsettled for long
    )
    # Every visitor comes from one address and one program: the fraud check would rightly take
    # them for an account farm, so this sale runs without it (and without models).
    models = ModelsConfig(enabled=False, fraud_check=False)
    config = dataclasses.replace(
        sale.stack.config,
        payments=payments,
        rate_limits=RateLimits.parse(RATE_LIMITS),
        models=models,
    )
    sale.gateway = http.Server("gateway", config, sale.stack.ray_address)
    sale.gateway.start()
    hook = sale.gateway.url + API + "/payments/webhook"
    await register_webhook(sale.stripe.url, options.run, hook, secret)
    say(
        f"gateway pid {sale.gateway.pid} at {sale.url}; show hosts {sale.stack.host_pids}; "
        f"localstripe pid {sale.stripe.process.pid} at {sale.stripe.url}"
    )
    sale.session = aiohttp.ClientSession(sale.url)
    sale.conn = await storage.connect(options.database_url, schema=config.database_schema)
    sale.ops = await _ops_admin(sale)
    began = time.monotonic()
    sale.tokens = await _register(sale.session, options.visitors)
    say(f"{len(sale.tokens)} visitors registered in {time.monotonic() - began:.1f} s")


async def _ops_admin(sale: SaleStack) -> dict[str, str]:
    """An operations admin: registered, promoted in Postgres, logged in again."""
    account = {"email": f"ops-{uuid.uuid4().hex[:8]}@example.com", "password": uuid.uuid4().hex}
    registered = await sale._call("POST", "/auth/register", account)
    await sale.conn.execute(
        "UPDATE users SET role = 'admin' WHERE id = $1", registered["user"]["id"]
    )
    tokens = await sale._call("POST", "/auth/login", account)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _register(session: Any, count: int) -> list[str]:
    """``count`` customers registered through the API, a few at a time; their tokens."""
    gate = asyncio.Semaphore(REGISTER_CONCURRENCY)

    async def one(i: int) -> str:
        account = {"email": f"visitor{i}-{uuid.uuid4().hex[:8]}@example.com"}
        account["password"] = uuid.uuid4().hex
        async with gate, session.post(f"{API}/auth/register", json=account) as resp:
            body = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"register answered {resp.status}: {body}")
        return str(body["access_token"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def close_sale_stack(sale: SaleStack) -> None:
    """End the visitors, the gateway and localstripe (by pid), close the clients, then close
    the stack (show hosts, schema, Redis keys); every step is tried."""
    failures: list[BaseException] = []

    async def attempt(step: Any) -> None:
        try:
            result = step()
            if asyncio.iscoroutine(result):
                await result
        except Exception as exc:
            failures.append(exc)

    await attempt(sale.end_visitors)
    if sale.session is not None:
        await attempt(sale.session.close)
    if sale.conn is not None:
        await attempt(sale.conn.close)
    if sale.gateway is not None:
        await attempt(sale.gateway.stop)
    if sale.stripe is not None:
        await attempt(sale.stripe.stop)
    if sale.files is not None:
        await attempt(lambda: shutil.rmtree(sale.files, ignore_errors=True))
    await attempt(lambda: http.close_stack(sale.stack))
    if failures:
        raise failures[0]
