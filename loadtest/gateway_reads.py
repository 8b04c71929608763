"""The seat-map read benchmark: live seat maps through the gateway against a hello-world server.

    python -m loadtest.gateway_reads                    # 4 shows × 400 seats, 64 connections, 10 s
    python -m loadtest.gateway_reads --seconds 5 --json out/reads.json --plot out/reads.png

Two servers, each one aiohttp process of its own on 127.0.0.1: the gateway, serving
``GET /api/v1/shows/{id}/seatmap`` (the shows in turn) from its in-memory mirror of the shows
(fed by the show hosts on a local Ray), and a hello-world app answering a constant:
``hello``, "Hello, world", and ``hello_big``, a constant as large as a seat map, which tells
what the bytes cost from what the gateway costs. The same client, in a process of its own,
loads each in turn over the same number of kept-alive connections: ``wrk`` when installed
(``apt-get install wrk``), else Python aiohttp clients (``--client``). Each load is preceded by
one second of warm-up that is not counted. The table gives requests a second, latency
percentiles, the CPU the server, the client and the whole machine kept busy, and the server's
CPU time per request (what contention for the cores changes least): a client near its cores'
limit, or a server well below one core, means something else set the pace. The last lines are
the seat maps' throughput ratios to hello-world and their p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

from loadtest import http, report  # noqa: E402
from loadtest.contention import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, ensure_ray  # noqa: E402

API = "/api/v1"
GOAL_RATIO = 0.5
GOAL_P99_MS = 20.0
WARMUP_S = 1.0
Say = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    seconds: float = 10.0
    connections: int = 64
    shows: int = 4
    seats: int = 400
    client: str = "auto"  # "wrk", "python" or "auto"
    client_cores: int = 1  # wrk threads or Python client processes
    shared_hosts: int = 2
    profile: Path | None = None  # a py-spy flame graph of the gateway under load, here
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    run: str = field(default_factory=lambda: f"reads_{uuid.uuid4().hex[:8]}")


@dataclass
class Reads:
    loads: list[http.Load]  # hello, hello_big, seatmap
    seatmap_bytes: int

    def ratio(self, bottom: str = "hello") -> float:
        by_name = {load.engine: load for load in self.loads}
        base = by_name[bottom].ops_per_s
        return by_name["seatmap"].ops_per_s / base if base else float("nan")


def check_seatmaps(url: str, show_ids: Sequence[int], seats: int) -> int:
    """Every show's seat map answers with all its seats; the size of one answer, in bytes."""
    size = 0
    for show_id in show_ids:
        with urllib.request.urlopen(f"{url}{API}/shows/{show_id}/seatmap", timeout=30) as resp:
            body = resp.read()
        found = json.loads(body)
        if found["show_id"] != show_id or len(found["seats"]) != seats:
            raise RuntimeError(f"show {show_id}: a seat map of {len(found['seats'])} seats")
        size = len(body)
    return size


def measure(
    options: Options, server: http.Server, name: str, paths: list[str], say: Say
) -> http.Load:
    """One second of warm-up, then the measured load, labelled ``name``."""
    result = http.run_load(
        server,
        paths,
        connections=options.connections,
        seconds=options.seconds,
        tool=options.client,
        cores=options.client_cores,
        warmup_s=WARMUP_S,
    )
    result.engine = name
    say(
        f"{name}: {result.ops_per_s:,.0f} requests/s, p99 {result.percentile(99):.2f} ms"
        f" ({result.tool}; server {result.server_cpu:.2f} cores, client "
        f"{result.client_cpu:.2f} of {result.client_cores})"
    )
    return result


def run_reads(options: Options, say: Say) -> Reads:
    """Each load in turn on its server; Ray must be up (``ensure_ray``)."""
    stack = asyncio.run(
        http.open_stack(
            options.database_url,
            options.redis_url,
            options.run,
            shows=options.shows,
            seats=options.seats,
            shared_hosts=options.shared_hosts,
        )
    )
    servers: list[http.Server] = []
    try:
        gateway = http.Server("seatmap", stack.config, stack.ray_address).start()
        servers.append(gateway)
        size = check_seatmaps(gateway.url, stack.show_ids, options.seats)
        paths = [f"{API}/shows/{show_id}/seatmap" for show_id in stack.show_ids]
        say(f"{len(paths)} seat maps of {options.seats} seats, {size:,} bytes each")
        hello = http.Server("hello", big_bytes=size).start()
        servers.append(hello)
        say(f"gateway pid {gateway.pid} at {gateway.url}; hello pid {hello.pid} at {hello.url}")
        loads = [
            measure(options, hello, "hello", [http.HELLO_PATH], say),
            measure(options, hello, "hello_big", [http.BIG_PATH], say),
        ]
        with http.Profile([gateway.pid], WARMUP_S + options.seconds, options.profile):
            loads.append(measure(options, gateway, "seatmap", paths, say))
    finally:
        for server in reversed(servers):
            server.stop()
        asyncio.run(http.close_stack(stack))
    return Reads(loads, size)


def table(loads: Sequence[http.Load]) -> str:
    head = (
        f"{'server':<9} {'client':<7} {'conns':>5} {'req/s':>9} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'p99.9 ms':>8} {'errors':>6} {'server CPU':>10} {'client CPU':>10} "
        f"{'machine':>7} {'us CPU/req':>10}"
    )
    lines = [head, "-" * len(head)]
    for x in loads:
        lines.append(
            f"{x.engine:<9} {x.tool:<7} {x.connections:>5} {x.ops_per_s:>9.1f} "
            f"{x.percentile(50):>7.2f} {x.percentile(90):>7.2f} {x.percentile(99):>7.2f} "
            f"{x.percentile(99.9):>8.2f} {x.errors:>6} {x.server_cpu:>10.2f} "
            f"{f'{x.client_cpu:.2f}/{x.client_cores}':>10} "
            f"{f'{x.machine_cpu:.2f}/{os.cpu_count()}':>7} {x.cpu_per_request_us:>10.0f}"
        )
    return "\n".join(lines)


def document(options: Options, reads: Reads) -> dict[str, Any]:
    seatmap = reads.loads[-1]
    return {
        "servers": {x.engine: x.summary() for x in reads.loads},
        "ratio_seatmap_hello": round(reads.ratio(), 3),
        "ratio_seatmap_hello_big": round(reads.ratio("hello_big"), 3),
        "seatmap_p99_ms": round(seatmap.percentile(99), 2),
        "goals": {
            "ratio_at_least": GOAL_RATIO,
            "p99_ms_below": GOAL_P99_MS,
            "ratio_met": reads.ratio() >= GOAL_RATIO,
            "p99_met": seatmap.percentile(99) < GOAL_P99_MS,
        },
        "workload": {
            "shows": options.shows,
            "seats": options.seats,
            "seatmap_bytes": reads.seatmap_bytes,
            "connections": options.connections,
            "seconds": options.seconds,
            "warmup_s": WARMUP_S,
            "shared_hosts": options.shared_hosts,
        },
        "run": options.run,  # names its schemas and prefixes its Redis keys
        "request": "GET of a seat map (the shows in turn), of the hello-world constant, or of "
        "a constant as large as a seat map (hello_big)",
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.gateway_reads", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seconds",
        type=report.positive(float, 600),
        default=10.0,
        help="measured seconds per server (after a 1 s warm-up)",
    )
    parser.add_argument("--connections", type=report.positive(int, 1000), default=64)
    parser.add_argument("--shows", type=report.positive(int, 100), default=4)
    parser.add_argument("--seats", type=report.positive(int, 600), default=400)
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator (auto: wrk when installed, else Python aiohttp clients)",
    )
    parser.add_argument(
        "--client-cores",
        type=report.positive(int, 16),
        default=1,
        help="wrk threads, or Python client processes",
    )
    parser.add_argument(
        "--hosts", type=report.positive(int, 16), default=2, help="shared show hosts"
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG of latency and throughput here")
    parser.add_argument(
        "--profile", type=Path, help="write a py-spy flame graph (SVG) of the gateway here"
    )
    args = parser.parse_args(argv)
    if args.client == "wrk" and http.wrk_path() is None:
        parser.error("--client wrk: wrk is not installed (apt-get install wrk)")
    if args.profile and http.py_spy_path() is None:
        parser.error("--profile needs py-spy (pip install py-spy)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        seconds=args.seconds,
        connections=args.connections,
        shows=args.shows,
        seats=args.seats,
        client=args.client,
        client_cores=args.client_cores,
        shared_hosts=args.hosts,
        profile=args.profile,
        database_url=args.database_url,
        redis_url=args.redis_url,
    )
    started = ensure_ray()
    try:
        reads = run_reads(options, report.say)
    finally:
        if started:
            import ray

            ray.shutdown()
    out = document(options, reads)
    print(table(reads.loads))
    for load in reads.loads:
        if load.client_bound or load.server_cpu < 0.9:
            print(
                f"warning: {load.engine}: the server kept {load.server_cpu:.2f} cores busy, the "
                f"client {load.client_cpu:.2f} of {load.client_cores}, the machine "
                f"{load.machine_cpu:.2f} of {os.cpu_count()}: the client, or other processes, "
                "set the pace"
            )
    if args.json:
        report.write_json(args.json, out)
    if args.plot:
        report.plot(
            args.plot,
            reads.loads,  # type: ignore[arg-type]  # shaped like Result where plot reads it
            f"GET seat map ({options.seats} seats) vs hello-world, {options.connections} "
            f"connections, {options.seconds:g} s",
        )
    seatmap, goals = reads.loads[-1], out["goals"]
    ratio = reads.ratio()
    print(
        f"seatmap/hello ratio: {ratio:.2f} "
        f"(goal >= {GOAL_RATIO}: {'met' if goals['ratio_met'] else 'missed'} at {ratio:.3f})"
    )
    print(f"seatmap/hello_big ratio (the same bytes): {reads.ratio('hello_big'):.2f}")
    print(
        f"seatmap p99 at {options.connections} connections: {seatmap.percentile(99):.2f} ms "
        f"(goal < {GOAL_P99_MS:g} ms: {'met' if goals['p99_met'] else 'missed'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
