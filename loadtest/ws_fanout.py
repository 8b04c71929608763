"""The websocket fan-out benchmark: N clients watch one show, a seat changes, how long until
every client has the delta.

    python -m loadtest.ws_fanout                         # 5,000 clients, 20 changes
    python -m loadtest.ws_fanout --clients 1000 --rounds 10 --json out/ws.json --plot out/ws.png

One process runs the gateway (``gateway.create_app``, on 127.0.0.1, the default asyncio loop,
as ``seatserver`` runs it) and drives the show engine on a local Ray; the clients run in
``--procs`` other processes (aiohttp websockets on uvloop), so that no client shares the
server's event loop. A Redis subscriber in a process of its own receives the same deltas: the
baseline. Each change is a hold or a release of one seat through ``ShowClient``; latencies run
from the moment that call returned (the delta is published after the next write-behind flush)
to a client's receipt, all on ``time.time()`` of this one machine.

Two phases: one websocket client, then ``--clients``. The table gives p50/p90/p99/max of the
Redis baseline, the single client and all clients; what the fan-out adds (each client's receipt
minus the Redis subscriber's, same delta); how long the server's loop over the sockets took per
delta; and the ratio of the p99s. The clients share the machine's cores with the server, so the
default is one client process per core (``--procs 2`` here); the load average when the
measurement began is printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import multiprocessing as mp
import os
import re
import resource
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

import storage  # noqa: E402
from loadtest import report  # noqa: E402
from loadtest.contention import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, ensure_ray  # noqa: E402
from loadtest.engines import create_schema, create_shows, drop_schema  # noqa: E402
from loadtest.workload import new_id, plain_layout  # noqa: E402

MAX_CLIENTS = 20_000
MAX_ROUNDS = 500
CONNECT_TIMEOUT_S = 180.0  # for all clients to connect and get their snapshot
ROUND_TIMEOUT_S = 10.0  # for every client to get one delta
PAUSE_S = 0.25  # between two changes
CONNECTS_AT_ONCE = 64  # per client process
SEAT = "A1"
PERCENTILES = (50, 90, 99)
_VERSION = re.compile(r'"version": (\d+)')


# -- client processes (spawned: they share nothing with the driver) ---------------------------


def client_process(url: str, count: int, index: int, out: Any, stop: Any) -> None:
    """``count`` websocket clients on ``url``; reports ("ready", …), ("got", index, version)
    once all have a delta, and at ``stop`` ("samples", index, {version: [receipt times]})."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_clients(url, count, index, out, stop))


async def _clients(url: str, count: int, index: int, out: Any, stop: Any) -> None:
    import aiohttp

    times: dict[int, list[float]] = {}
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def connect() -> Any:
            async with gate:
                for attempt in range(5):
                    try:
                        ws = await session.ws_connect(url, autoping=True, max_msg_size=0)
                        first = await ws.receive(timeout=60)
                        if first.type is aiohttp.WSMsgType.TEXT and '"snapshot"' in first.data[:20]:
                            return ws
                        await ws.close()
                    except (aiohttp.ClientError, OSError, TimeoutError):
                        await asyncio.sleep(0.2 * (attempt + 1))
                return None

        sockets = [ws for ws in await asyncio.gather(*(connect() for _ in range(count))) if ws]
        gc.collect()
        gc.freeze()  # a load generator: keep the collector off the connections' objects
        out.put(("ready", index, len(sockets)))

        async def read(ws: Any) -> None:
            async for msg in ws:
                now = time.time()
                data = msg.data
                if msg.type is aiohttp.WSMsgType.TEXT and data.startswith('{"type": "delta"'):
                    version = int(_VERSION.search(data).group(1))  # type: ignore[union-attr]
                    got = times.setdefault(version, [])
                    got.append(now)
                    if len(got) == len(sockets):
                        out.put(("got", index, version))

        readers = [asyncio.ensure_future(read(ws)) for ws in sockets]
        while not stop.is_set():
            await asyncio.sleep(0.05)
        for task in readers:
            task.cancel()
        out.put(("samples", index, times))


def probe_process(redis_url: str, channel: str, out: Any, stop: Any) -> None:
    """The baseline: one plain Redis subscriber of the show's channel."""
    asyncio.run(_probe(redis_url, channel, out, stop))


async def _probe(redis_url: str, channel: str, out: Any, stop: Any) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=5)  # the confirmation
    out.put(("ready", -1, 1))
    times: dict[int, list[float]] = {}
    while not stop.is_set():
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if message is not None:
            now = time.time()
            version = int(_VERSION.search(message["data"].decode()).group(1))  # type: ignore[union-attr]
            times.setdefault(version, []).append(now)
    out.put(("samples", -1, times))
    await pubsub.aclose()
    await client.aclose()


# -- the driver ---------------------------------------------------------------------------------


@dataclass
class Phase:
    clients: int
    changed: dict[int, float] = field(default_factory=dict)  # version → the call returned at
    received: dict[int, list[float]] = field(default_factory=dict)  # version → client receipts
    probe: dict[int, float] = field(default_factory=dict)  # version → the Redis subscriber's
    fanout_us: list[int] = field(default_factory=list)  # the server's broadcast loop per delta
    missing: int = 0  # receipts that never came within ROUND_TIMEOUT_S
    server: dict[str, int] = field(default_factory=dict)  # the fan-out's stats after the rounds

    def latencies_ms(self) -> list[float]:
        return [
            (t - self.changed[v]) * 1000
            for v, ts in self.received.items()
            for t in ts
            if v in self.changed
        ]

    def probe_ms(self) -> list[float]:
        return [(t - self.changed[v]) * 1000 for v, t in self.probe.items() if v in self.changed]

    def added_ms(self) -> list[float]:
        """Each receipt minus the Redis subscriber's receipt of the same delta."""
        return [
            (t - self.probe[v]) * 1000
            for v, ts in self.received.items()
            for t in ts
            if v in self.probe and v in self.changed
        ]


class Processes:
    """The client and probe processes: started, asked to stop, and ended by their pids."""

    def __init__(self) -> None:
        self.ctx = mp.get_context("spawn")
        self.out: Any = self.ctx.Queue()
        self.started: list[Any] = []

    def start(self, target: Any, *args: Any) -> Any:
        stop = self.ctx.Event()
        process = self.ctx.Process(target=target, args=(*args, self.out, stop), daemon=True)
        process.start()
        self.started.append(process)
        return stop

    async def get(self, timeout: float) -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        item: tuple[Any, ...] = await loop.run_in_executor(None, self.out.get, True, timeout)
        return item

    def end(self) -> None:
        for process in self.started:
            process.join(timeout=5)
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
                process.join(timeout=5)
        self.started.clear()


async def run_phase(
    procs: Processes,
    url: str,
    redis_url: str,
    channel: str,
    clients: int,
    workers: int,
    engine: Any,
    show: int,
    rounds: int,
    fanout: Any,
    say: Any,
) -> Phase:
    phase = Phase(clients)
    stops = [procs.start(probe_process, redis_url, channel)]
    shares = [clients // workers + (1 if i < clients % workers else 0) for i in range(workers)]
    shares = [s for s in shares if s]
    for i, share in enumerate(shares):
        stops.append(procs.start(client_process, url, share, i))
    ready, connected = 0, 0
    began = time.monotonic()
    while ready < len(shares) + 1:
        kind, _, n = await procs.get(CONNECT_TIMEOUT_S)
        if kind == "ready":
            ready += 1
            connected += n
    phase.clients = connected - 1  # the probe counted itself
    say(f"{phase.clients:,} of {clients:,} clients connected in {time.monotonic() - began:.1f} s")
    try:
        await _changes(procs, phase, engine, show, rounds, len(shares), fanout, say)
        phase.server = fanout.stats()  # with every client still connected
    finally:
        for stop in stops:
            stop.set()
        left = len(shares) + 1
        while left:
            kind, index, times = await procs.get(30)
            if kind != "samples":  # a late "got"
                continue
            left -= 1
            if index == -1:
                phase.probe = {v: ts[0] for v, ts in times.items()}
            else:
                for v, ts in times.items():
                    phase.received.setdefault(v, []).extend(ts)
        procs.end()
    expected = phase.clients * len(phase.changed)
    phase.missing = expected - sum(len(phase.received.get(v, ())) for v in phase.changed)
    return phase


async def _changes(
    procs: Processes,
    phase: Phase,
    engine: Any,
    show: int,
    rounds: int,
    workers: int,
    fanout: Any,
    say: Any,
) -> None:
    import actors

    hold_id: str | None = None
    version = (await engine.snapshot(show)).version
    for r in range(rounds):
        if hold_id is None:
            hold_id = new_id()
            await engine.execute(show, actors.HoldSeats(hold_id, "1", (SEAT,)))
        else:
            await engine.execute(show, actors.Release(hold_id, "1"))
            hold_id = None
        version += 1
        phase.changed[version] = time.time()
        done: set[int] = set()
        deadline = time.monotonic() + ROUND_TIMEOUT_S
        while len(done) < workers and time.monotonic() < deadline:
            try:
                kind, index, got = await procs.get(max(0.01, deadline - time.monotonic()))
            except Exception:  # queue.Empty: this round timed out
                break
            if kind == "got" and got == version:
                done.add(index)
        phase.fanout_us.append(fanout.stats()["fanout_us_last"])
        if len(done) < workers:
            say(f"round {r + 1}: {workers - len(done)} client processes still wait for v{version}")
        await asyncio.sleep(PAUSE_S)
    if hold_id is not None:
        await engine.execute(show, actors.Release(hold_id, "1"))
        version += 1
    actual = (await engine.snapshot(show)).version
    if actual != version:  # something else changed the show: versions were misattributed
        raise RuntimeError(f"the show is at version {actual}, expected {version}")


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest rank, like ``loadtest.workload.Result.percentile``."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def summary(samples: Sequence[float]) -> dict[str, Any]:
    out: dict[str, Any] = {f"p{q}_ms": round(percentile(samples, q), 2) for q in PERCENTILES}
    out["max_ms"] = round(max(samples), 2) if samples else None
    out["samples"] = len(samples)
    return out


@dataclass(frozen=True)
class Options:
    clients: int = 5000
    rounds: int = 20
    procs: int = 2
    seats: int = 300
    flush_interval_s: float = 0.010
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    run: str = field(default_factory=lambda: f"wsfan_{uuid.uuid4().hex[:8]}")


@dataclass
class Outcome:
    single: Phase
    many: Phase
    server: dict[str, int]
    load_before: float  # the 1-minute load average when the measurement began


async def run_benchmark(options: Options, say: Any) -> Outcome:
    """Schema, show, engine and gateway up; the two phases; everything down again. Ray must be
    up (``ensure_ray``)."""
    import actors

    schema = options.run
    await create_schema(options.database_url, schema)
    directory = None
    try:
        conn = await storage.connect(options.database_url, schema=schema)
        try:
            [show] = await create_shows(conn, plain_layout(options.seats), 1)
        finally:
            await conn.close()
        config = actors.HostConfig(
            database_url=options.database_url,
            schema=schema,
            redis_url=options.redis_url,
            flush_interval_s=options.flush_interval_s,
            channel_prefix=f"{options.run}:",  # the gateway's redis_prefix: channels of our own
        )
        directory = actors.start_directory(config, shared_hosts=1, namespace=schema)
        engine = actors.ShowClient(directory)
        await engine.snapshot(show)  # the host is up and the show loaded
        return await _with_gateway(options, engine, show, say)
    finally:
        if directory is not None:
            import ray

            await directory.shutdown.remote()
            ray.kill(directory, no_restart=True)
        await drop_schema(options.database_url, schema)
        await _delete_keys(options.redis_url, f"{options.run}:")


async def _delete_keys(redis_url: str, prefix: str) -> None:
    """Whatever the gateway wrote under the run's prefix."""
    client = await storage.create_redis(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def _with_gateway(options: Options, engine: Any, show: int, say: Any) -> Outcome:
    from aiohttp import web

    import actors
    from gateway import GatewayConfig, create_app
    from gateway.keys import FANOUT

    config = GatewayConfig(
        database_url=options.database_url,
        redis_url=options.redis_url,
        database_schema=options.run,
        redis_prefix=f"{options.run}:",
        keyring=storage.Keyring.parse("loadtest:" + storage.new_key()),
        ws_queue_limit=256,
    )
    runner = web.AppRunner(create_app(config, engine=engine), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/ws/shows/{show}"
    say(f"gateway on 127.0.0.1:{port}, pid {os.getpid()}; show {show} of {options.seats} seats")
    procs = Processes()
    fanout = runner.app[FANOUT]
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine skews the figures
    channel = actors.channel(show, config.redis_prefix)
    try:
        say("phase 1: one websocket client")
        single = await run_phase(
            procs, url, options.redis_url, channel, 1, 1, engine, show, options.rounds, fanout, say
        )
        say(f"phase 2: {options.clients:,} websocket clients in {options.procs} processes")
        many = await run_phase(
            procs,
            url,
            options.redis_url,
            channel,
            options.clients,
            options.procs,
            engine,
            show,
            options.rounds,
            fanout,
            say,
        )
        return Outcome(single, many, many.server, load_before)
    finally:
        procs.end()
        await runner.cleanup()


def document(options: Options, outcome: Outcome) -> dict[str, Any]:
    many, single = outcome.many, outcome.single
    all_p99 = percentile(many.latencies_ms(), 99)
    base_p99 = percentile(many.probe_ms(), 99)
    one_p99 = percentile(single.latencies_ms(), 99)
    return {
        "clients": many.clients,
        "rounds": len(many.changed),
        "client_processes": options.procs,
        "seats": options.seats,
        "redis_subscriber": summary(many.probe_ms()),
        "one_websocket_client": summary(single.latencies_ms()),
        "all_websocket_clients": summary(many.latencies_ms()),
        "added_by_fanout": summary(many.added_ms()),
        "ratio_p99_all_clients_to_redis": round(all_p99 / base_p99, 2) if base_p99 else None,
        "ratio_p99_all_clients_to_one_client": round(all_p99 / one_p99, 2) if one_p99 else None,
        "server_broadcast": summary([us / 1000 for us in many.fanout_us]),
        "missing_receipts": many.missing,
        "server": outcome.server,
        "load_average_before": outcome.load_before,
        "load_average_after": round(os.getloadavg()[0], 2),
        "measured_from": "the return of the hold/release call; publish follows the next flush",
        "flush_interval_ms": options.flush_interval_s * 1000,
    }


def table(doc: dict[str, Any]) -> str:
    head = f"{'':<26} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'samples':>8}"
    lines = [head, "-" * len(head)]
    rows = (
        ("Redis subscriber (base)", "redis_subscriber"),
        ("1 websocket client", "one_websocket_client"),
        (f"{doc['clients']:,} websocket clients", "all_websocket_clients"),
        ("added by the fan-out", "added_by_fanout"),
        ("server broadcast loop", "server_broadcast"),
    )
    for name, key in rows:
        s = doc[key]
        lines.append(
            f"{name:<26} {s['p50_ms']:>8.2f} {s['p90_ms']:>8.2f} {s['p99_ms']:>8.2f} "
            f"{s['max_ms'] or math.nan:>8.2f} {s['samples']:>8}"
        )
    return "\n".join(lines)


def plot(path: Path, outcome: Outcome, doc: dict[str, Any]) -> None:
    """Latency distributions (CDF): Redis subscriber, one client, all clients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = (
        ("Redis subscriber", outcome.many.probe_ms()),
        ("1 websocket client", outcome.single.latencies_ms()),
        (f"{doc['clients']:,} websocket clients", outcome.many.latencies_ms()),
    )
    for name, samples in series:
        ordered = sorted(samples)
        if ordered:
            ax.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=name)
    ax.axvline(200, color="grey", linestyle=":", label="goal: p99 < 200 ms")
    ax.set_xscale("log")
    ax.set_xlabel("from the change to receipt (ms)")
    ax.set_ylabel("share of receipts")
    ax.set_title(f"one seat change, {doc['rounds']} rounds")
    ax.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _check_ray_port() -> None:
    """The local Ray must leave Redis's port alone (``ensure_ray`` checked it is loopback)."""
    import ray

    address = ray.get_runtime_context().gcs_address
    if address.rsplit(":", 1)[-1] == "6379":
        raise RuntimeError(f"Ray runs on {address}: the port of Redis")


def raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.ws_fanout", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--clients", type=report.positive(int, MAX_CLIENTS), default=5000)
    parser.add_argument(
        "--rounds", type=report.positive(int, MAX_ROUNDS), default=20, help="seat changes"
    )
    parser.add_argument(
        "--procs", type=report.positive(int, 16), default=2, help="client processes"
    )
    parser.add_argument("--seats", type=report.positive(int, 600), default=300)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG of the latency CDFs here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        clients=args.clients,
        rounds=args.rounds,
        procs=min(args.procs, args.clients),
        seats=args.seats,
        database_url=args.database_url,
        redis_url=args.redis_url,
    )
    raise_open_files(2 * args.clients + 1024)  # the server's sockets, and the clients' too
    started = ensure_ray()
    try:
        _check_ray_port()
        outcome = asyncio.run(run_benchmark(options, report.say))
    finally:
        if started:
            import ray

            ray.shutdown()
    doc = document(options, outcome)
    print(table(doc))
    if args.json:
        report.write_json(args.json, doc)
    if args.plot:
        plot(args.plot, outcome, doc)
    ratio = doc["ratio_p99_all_clients_to_redis"]
    print(
        f"p99 {doc['clients']:,} websocket clients / Redis subscriber: {ratio}; "
        f"missing receipts {doc['missing_receipts']}; server drops {outcome.server['drops']}, "
        f"resyncs {outcome.server['resyncs']}; load average before {outcome.load_before}, "
        f"after {doc['load_average_after']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
