"""The full-stack hold benchmark: the contention workload through the gateway's HTTP API.

    python -m loadtest.gateway_holds                    # 20 shows × 400 seats, 64 clients, 10 s
    python -m loadtest.gateway_holds --gateways 2 --seconds 5 --json out/h.json --plot out/h.png

The operations of ``loadtest.contention`` (see ``loadtest.workload``): a hold of two random seats
among the best 60 of a show, half of them on one hot show, all or nothing, released at once when
granted. Through the gateway (``gateway``) an operation is ``POST /api/v1/shows/{id}/holds``
with ``{"seats": [...]}``, an ``Idempotency-Key`` and the Bearer token of one of ``clients``
customer accounts (registered through the API), then ``DELETE .../holds/{hold_id}``: auth,
idempotency records in Redis, the show hosts on Ray and their write-behind to Postgres all take
part. The same operations run in the same run against Postgres row locks (``pg_rowlock``, the
baseline) and, for reference, straight against show hosts through ``ShowClient`` without HTTP
(``actor``); see ``loadtest.engines``. Each engine is driven from a load-generator process of
its own; the gateway serves from ``--gateways`` processes sharing one port. The driver counts
seats granted twice (must be 0) and, at the end, holds left behind on the shows (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

from loadtest import engines as eng  # noqa: E402
from loadtest import http, report  # noqa: E402
from loadtest.contention import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, ensure_ray  # noqa: E402
from loadtest.workload import Result, Workload, best_seats, drive, new_id, plain_layout  # noqa: E402

API = "/api/v1"
ENGINES = ("pg_rowlock", "actor", "gateway")
GOAL_RATIO = 3.0
GOAL_P99_MS = 50.0
Say = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    workload: Workload
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    engines: tuple[str, ...] = ENGINES
    gateways: int = 1
    shared_hosts: int = 2
    profile: Path | None = None  # py-spy flame graphs of the gateways under load, here
    flush_interval_s: float = 0.010
    run: str = field(default_factory=lambda: f"holds_{uuid.uuid4().hex[:8]}")


class GatewayHolds:
    """Holds through the gateway's HTTP API, one customer account (token) per client."""

    name = "gateway"

    def __init__(self, url: str, show_ids: Sequence[int], tokens: Sequence[str]) -> None:
        self._url = url
        self._ids = list(show_ids)
        self._auth = [f"Bearer {token}" for token in tokens]
        self._session: Any = None

    async def start(self, workload: Workload, layout: dict[str, Any]) -> None:
        import aiohttp

        limit = workload.clients
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
        self._session = aiohttp.ClientSession(self._url, connector=connector)

    async def hold(self, client: int, show: int, seats: tuple[str, ...]) -> Any | None:
        headers = {"Authorization": self._auth[client], "Idempotency-Key": new_id()}
        path = f"{API}/shows/{self._ids[show]}/holds"
        async with self._session.post(path, json={"seats": list(seats)}, headers=headers) as resp:
            body = await resp.json()
        if resp.status == 201:
            return body["hold_id"]
        if resp.status == 409 and body["error"]["code"] == "seat_unavailable":
            return None
        raise RuntimeError(f"hold answered {resp.status}: {body}")

    async def release(self, client: int, show: int, token: Any) -> None:
        path = f"{API}/shows/{self._ids[show]}/holds/{token}"
        async with self._session.delete(
            path, headers={"Authorization": self._auth[client]}
        ) as resp:
            body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"release answered {resp.status}: {body[:300]!r}")

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()


async def register(url: str, count: int) -> list[str]:
    """``count`` customer accounts registered through the API; their access tokens."""
    import aiohttp

    async with aiohttp.ClientSession(url) as session:

        async def one(i: int) -> str:
            account = {"email": f"client{i}-{uuid.uuid4().hex[:8]}@example.com"}
            account["password"] = uuid.uuid4().hex
            async with session.post(f"{API}/auth/register", json=account) as resp:
                body = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"register answered {resp.status}: {body}")
            return str(body["access_token"])

        return [await one(i) for i in range(count)]


def _drive_process(
    engine: Any, workload: Workload, ray_address: str | None, conn: Connection
) -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        if ray_address is not None:
            import ray

            ray.init(address=ray_address, logging_level=logging.WARNING, log_to_driver=False)
        conn.send(asyncio.run(_drive(engine, workload, conn)))
    except Exception as exc:
        conn.send(exc)
        raise
    finally:
        if ray_address is not None:
            import ray

            ray.shutdown()


async def _drive(engine: Any, workload: Workload, conn: Connection) -> tuple[Result, float]:
    """The workload against a fresh engine (``conn`` is told when it starts); the result and
    the CPU this process kept busy."""
    layout = plain_layout(workload.seats)
    await engine.start(workload, layout)
    try:
        conn.send("started")
        cpu, began = time.process_time(), time.monotonic()
        result = await drive(engine, workload, best_seats(layout, workload.best), report.say)
        return result, (time.process_time() - cpu) / (time.monotonic() - began)
    finally:
        await engine.stop()


@dataclass
class Usage:
    """Cores each part kept busy on average while an engine ran (None: not watched)."""

    load_generator: float
    machine: float  # every process on the machine
    gateways: float | None = None
    show_hosts: float | None = None

    def __str__(self) -> str:
        parts = [(k.replace("_", " "), v) for k, v in vars(self).items() if v is not None]
        return ", ".join(f"{k} {v:.2f}" for k, v in parts)


def run_engine(
    engine: Any,
    workload: Workload,
    *,
    ray_address: str | None = None,
    gateways: Sequence[int] = (),
    hosts: Sequence[int] = (),
    profile: Path | None = None,
) -> tuple[Result, Usage]:
    """Drive ``engine`` from a load-generator process (joined to Ray at ``ray_address``, when
    given); the CPU of the machine and of the given pids is read around the drive, and the
    ``gateways`` are profiled into ``profile``."""

    def busy() -> tuple[float, float, float, float]:
        return (
            time.monotonic(),
            http.busy_seconds(),
            sum(http.cpu_seconds(pid) for pid in gateways),
            sum(http.cpu_seconds(pid) for pid in hosts),
        )

    process, conn = http.spawn(_drive_process, engine, workload, ray_address, name=engine.name)
    try:
        http.receive(process, conn, http.START_TIMEOUT_S)
        before = busy()
        seconds = workload.warmup_s + workload.seconds
        with http.Profile(gateways, seconds, profile):
            result, client = http.receive(process, conn, seconds + 120)
            after = busy()
    finally:
        conn.close()
        http.end(process, grace=http.STOP_TIMEOUT_S)
    wall, machine, gateway_cpu, hosts_cpu = (a - b for a, b in zip(after, before, strict=True))
    machine, gateway_cpu, hosts_cpu = machine / wall, gateway_cpu / wall, hosts_cpu / wall
    usage = Usage(client, machine)
    if gateways:
        usage.gateways, usage.show_hosts = gateway_cpu, hosts_cpu
    return result, usage


@dataclass
class Holds:
    results: list[Result]
    usage: dict[str, Usage]
    left_behind: int  # live holds on the gateway's shows at the end

    def ratio(self, top: str, bottom: str) -> float:
        return report.ratio(self.results, top, bottom)


async def _left_behind(stack: http.Stack) -> int:
    import actors

    client = actors.ShowClient(stack.directory)
    snapshots = await asyncio.gather(*(client.snapshot(i) for i in stack.show_ids))
    return sum(len(s.holds) for s in snapshots)


def _engine(name: str, options: Options, stack: http.Stack, url: str, tokens: list[str]) -> Any:
    if name == "pg_rowlock":
        return eng.RowLockEngine(options.database_url, options.run)
    if name == "actor":
        return eng.ActorEngine(
            options.database_url,
            options.redis_url,
            options.run,
            shared_hosts=options.shared_hosts,
            flush_interval_s=options.flush_interval_s,
        )
    return GatewayHolds(url, stack.show_ids, tokens)


def run_holds(options: Options, say: Say) -> Holds:
    """Each engine in turn, each from a load-generator process; Ray must be up."""
    w = options.workload
    stack = asyncio.run(
        http.open_stack(
            options.database_url,
            options.redis_url,
            options.run,
            shows=w.shows,
            seats=w.seats,
            shared_hosts=options.shared_hosts,
            flush_interval_s=options.flush_interval_s,
        )
    )
    servers: list[http.Server] = []
    try:
        for i in range(options.gateways):
            port = servers[0].port if servers else 0
            server = http.Server(f"gateway-{i}", stack.config, stack.ray_address, port)
            servers.append(server.start())
        url = servers[0].url
        pids = [s.pid for s in servers]
        say(f"gateway pids {pids} at {url}; show host pids {stack.host_pids}")
        tokens = asyncio.run(register(url, w.clients))
        say(f"{len(tokens)} customer accounts registered")
        results, usage = [], {}
        for name in options.engines:
            engine = _engine(name, options, stack, url, tokens)
            say(f"{name}: {w.clients} clients on {w.shows} shows of {w.seats} seats")
            if name == "gateway":
                result, usage[name] = run_engine(
                    engine, w, gateways=pids, hosts=stack.host_pids, profile=options.profile
                )
            else:
                address = stack.ray_address if name == "actor" else None
                result, usage[name] = run_engine(engine, w, ray_address=address)
            say(f"{name}: {result.ops_per_s:,.0f} ops/s, p99 {result.percentile(99):.1f} ms")
            results.append(result)
        left = asyncio.run(_left_behind(stack)) if "gateway" in options.engines else 0
    finally:
        for server in reversed(servers):
            server.stop()
        asyncio.run(http.close_stack(stack))
    return Holds(results, usage, left)


def _rounded(value: float, digits: int = 3) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def document(options: Options, holds: Holds) -> dict[str, Any]:
    w = options.workload
    by_name = {r.engine: r for r in holds.results}
    gateway = by_name.get("gateway")
    ratio = holds.ratio("gateway", "pg_rowlock")
    p99 = gateway.percentile(99) if gateway else math.nan
    cpu_per_op = math.nan
    if gateway is not None and gateway.ops:
        cpu_per_op = (holds.usage["gateway"].gateways or math.nan) / gateway.ops_per_s * 1e6
    return {
        "engines": {r.engine: r.summary() for r in holds.results},
        "cpu_cores": {
            name: {k: v if v is None else round(v, 3) for k, v in vars(u).items()}
            for name, u in holds.usage.items()
        },
        # CPU time of the whole machine per operation: what the engine costs, all in.
        "machine_cpu_us_per_op": {
            r.engine: _rounded(holds.usage[r.engine].machine / r.ops_per_s * 1e6, 1)
            if r.ops
            else None
            for r in holds.results
        },
        "ratio_gateway_pg_rowlock": _rounded(ratio),
        "ratio_gateway_actor": _rounded(holds.ratio("gateway", "actor")),
        "ratio_actor_pg_rowlock": _rounded(holds.ratio("actor", "pg_rowlock")),
        "holds_left_behind": holds.left_behind,
        # CPU time of the gateway processes per operation: what contention changes least.
        "gateway_cpu_us_per_op": _rounded(cpu_per_op, 1),
        "goals": {
            "ratio_at_least": GOAL_RATIO,
            "p99_ms_below": GOAL_P99_MS,
            "ratio_met": math.isfinite(ratio) and ratio >= GOAL_RATIO,
            "p99_met": p99 < GOAL_P99_MS,
        },
        "workload": {
            "shows": w.shows,
            "seats": w.seats,
            "clients": w.clients,
            "seconds": w.seconds,
            "best_seats": w.best,
            "seats_per_hold": w.per_hold,
            "hot_show_share": w.hot_share,
            "gateway_processes": options.gateways,
            "shared_hosts": options.shared_hosts,
        },
        "run": options.run,  # names its schemas and prefixes its Redis keys
        "operation": "a hold attempt, plus its release when granted; latency covers both",
    }


def _engines(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names or any(n not in ENGINES for n in names):
        raise argparse.ArgumentTypeError(f"engines are a comma list of {', '.join(ENGINES)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.gateway_holds", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seconds",
        type=report.positive(float, 600),
        default=10.0,
        help="measured seconds per engine (after a 1 s warm-up)",
    )
    parser.add_argument("--clients", type=report.positive(int, 256), default=64)
    parser.add_argument("--shows", type=report.positive(int, 1000), default=20)
    parser.add_argument("--seats", type=report.positive(int, 600), default=400)
    parser.add_argument(
        "--gateways", type=report.positive(int, 8), default=1, help="gateway processes"
    )
    parser.add_argument(
        "--hosts", type=report.positive(int, 16), default=2, help="shared show hosts"
    )
    parser.add_argument(
        "--flush-ms",
        type=report.positive(float, 1000),
        default=10.0,
        help="write-behind flush interval of the show hosts",
    )
    parser.add_argument(
        "--engines",
        type=_engines,
        default=ENGINES,
        help="comma list, default all: " + ",".join(ENGINES),
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG of latency and throughput here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write a py-spy flame graph (SVG) of each gateway process here (NAME, NAME-1, …)",
    )
    args = parser.parse_args(argv)
    if args.profile and http.py_spy_path() is None:
        parser.error("--profile needs py-spy (pip install py-spy)")
    if args.seats < 2:
        parser.error("--seats: a hold takes 2 seats")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        Workload(
            shows=args.shows,
            seats=args.seats,
            clients=args.clients,
            seconds=args.seconds,
            best=min(60, args.seats),
        ),
        args.database_url,
        args.redis_url,
        engines=args.engines,
        gateways=args.gateways,
        shared_hosts=args.hosts,
        flush_interval_s=args.flush_ms / 1000,
        profile=args.profile,
    )
    started = ensure_ray()
    try:
        holds = run_holds(options, report.say)
    finally:
        if started:
            import ray

            ray.shutdown()
    out = document(options, holds)
    print(report.table(holds.results))
    for name, usage in holds.usage.items():
        per_op = out["machine_cpu_us_per_op"][name]
        print(f"{name} CPU, cores kept busy: {usage}; machine CPU per operation {per_op} us")
    if args.json:
        report.write_json(args.json, out)
    if args.plot:
        w = options.workload
        report.plot(
            args.plot,
            holds.results,
            f"{w.clients} clients, {w.shows} shows × {w.seats} seats, {w.seconds:g} s, "
            f"{options.gateways} gateway process(es)",
        )
    goals = out["goals"]
    for top, bottom in (("gateway", "pg_rowlock"), ("gateway", "actor")):
        ratio = out[f"ratio_{top}_{bottom}"]
        line = f"{top}/{bottom} throughput ratio: {'n/a' if ratio is None else f'{ratio:.2f}'}"
        if bottom == "pg_rowlock":
            line += f" (goal >= {GOAL_RATIO:g}: {'met' if goals['ratio_met'] else 'missed'})"
        print(line)
    gateway = next((r for r in holds.results if r.engine == "gateway"), None)
    if gateway is not None:
        print(
            f"gateway p99: {gateway.percentile(99):.1f} ms "
            f"(goal < {GOAL_P99_MS:g} ms: {'met' if goals['p99_met'] else 'missed'})"
        )
        print(f"gateway CPU per operation (hold + release): {out['gateway_cpu_us_per_op']} us")
    doubles = sum(r.double_holds for r in holds.results)
    print(f"seats granted twice: {doubles}; holds left behind: {holds.left_behind}")
    return 1 if doubles or holds.left_behind else 0


if __name__ == "__main__":
    sys.exit(main())
