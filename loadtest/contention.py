"""The contention benchmark: one workload, four engines, one run.

    python -m loadtest.contention                       # 20 shows × 400 seats, 64 clients, 10 s
    python -m loadtest.contention --seconds 5 --json out/contention.json --plot out/c.png

Each engine (``actor``, ``pg_rowlock``, ``pg_optimistic``, ``redis_setnx``; see
``loadtest.engines``) gets fresh state and the same operations (see ``loadtest.workload``): a
hold of two random seats among the best 60 of a show, all or nothing, released at once when
granted. The table gives operations a second, p50/p99 latency of an operation, conflicts
(refused holds) and double holds (a seat granted while another client held it: must be 0). The
last line is the throughput ratio of the seat engine to Postgres row locks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

from loadtest import engines as eng  # noqa: E402
from loadtest import report  # noqa: E402
from loadtest.workload import Engine, Result, Workload, best_seats, drive, plain_layout  # noqa: E402

ENGINES = ("actor", "pg_rowlock", "pg_optimistic", "redis_setnx")
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
MAX_SECONDS = 600.0
MAX_CLIENTS = 1000
MAX_SHOWS = 1000
MAX_SEATS = 600
RAY_CPUS = 2


@dataclass(frozen=True)
class Options:
    workload: Workload
    database_url: str
    redis_url: str
    engines: tuple[str, ...] = ENGINES
    shared_hosts: int = 2
    flush_interval_s: float = 0.010
    run: str = field(default_factory=lambda: f"bench_{uuid.uuid4().hex[:8]}")


def make_engine(name: str, options: Options) -> Engine:
    if name == "actor":
        return eng.ActorEngine(
            options.database_url,
            options.redis_url,
            options.run,
            shared_hosts=options.shared_hosts,
            flush_interval_s=options.flush_interval_s,
        )
    if name == "pg_rowlock":
        return eng.RowLockEngine(options.database_url, options.run)
    if name == "pg_optimistic":
        return eng.OptimisticEngine(options.database_url, options.run)
    if name == "redis_setnx":
        return eng.SetnxEngine(options.redis_url, options.run)
    raise ValueError(f"unknown engine {name!r}")


async def run_engines(options: Options, say: Callable[[str], None]) -> list[Result]:
    """Run the workload against each engine in turn, each on fresh state; Ray must be up for
    the actor engine (``ensure_ray``)."""
    workload = options.workload
    layout = plain_layout(workload.seats)
    best = best_seats(layout, min(workload.best, workload.seats))
    results: list[Result] = []
    for name in options.engines:
        engine = make_engine(name, options)
        say(f"{name}: preparing {workload.shows} shows of {workload.seats} seats")
        try:
            await engine.start(workload, layout)
            if isinstance(engine, eng.ActorEngine):
                pids = ", ".join(f"{host} pid {pid}" for host, pid in engine.host_pids.items())
                say(f"actor: hosts {pids}; driver pid {os.getpid()}")
            result = await drive(engine, workload, best, say)
            if isinstance(engine, eng.ActorEngine):
                say(f"actor: {await engine.describe()}")
        finally:
            await engine.stop()
        say(f"{name}: {result.ops_per_s:,.0f} ops/s, p99 {result.percentile(99):.1f} ms")
        results.append(result)
    return results


def ensure_ray(num_cpus: int = RAY_CPUS) -> bool:
    """Start a local Ray on loopback unless one is up; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    context = ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    address: str = context.address_info["gcs_address"]  # type: ignore[attr-defined]
    if not address.startswith("127.0.0.1:"):
        ray.shutdown()
        raise RuntimeError(f"the local Ray bound {address}, not loopback")
    return True


def document(options: Options, results: Sequence[Result]) -> dict[str, Any]:
    w = options.workload
    ratio = report.ratio(results, "actor", "pg_rowlock")
    return {
        "engines": {r.engine: r.summary() for r in results},
        "ratio_actor_pg_rowlock": round(ratio, 3) if math.isfinite(ratio) else None,
        "workload": {
            "shows": w.shows,
            "seats": w.seats,
            "clients": w.clients,
            "seconds": w.seconds,
            "best_seats": w.best,
            "seats_per_hold": w.per_hold,
            "hot_show_share": w.hot_share,
            "shared_hosts": options.shared_hosts,
        },
        "operation": "a hold attempt, plus its release when granted; latency covers both",
    }


def _engines(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in ENGINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"engines are a comma list of {', '.join(ENGINES)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.contention", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seconds",
        type=report.positive(float, MAX_SECONDS),
        default=10.0,
        help="measured seconds per engine (after a 1 s warm-up)",
    )
    parser.add_argument("--clients", type=report.positive(int, MAX_CLIENTS), default=64)
    parser.add_argument("--shows", type=report.positive(int, MAX_SHOWS), default=20)
    parser.add_argument("--seats", type=report.positive(int, MAX_SEATS), default=400)
    parser.add_argument(
        "--hosts",
        type=report.positive(int, 16),
        default=2,
        help="shared show hosts of the actor engine",
    )
    parser.add_argument(
        "--flush-ms",
        type=report.positive(float, 1000),
        default=10.0,
        help="write-behind flush interval of the actor engine",
    )
    parser.add_argument(
        "--engines",
        type=_engines,
        default=ENGINES,
        help="comma list, default all: " + ",".join(ENGINES),
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="use an embedded Postgres and Redis in a temporary directory",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG of latency and throughput here")
    args = parser.parse_args(argv)
    if args.seats < 2:
        parser.error("--seats: a hold takes 2 seats")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="seatserver-bench-") as tmp:
        servers = []
        database_url, redis_url = args.database_url, args.redis_url
        if args.embedded:
            import storage

            servers = [storage.start_postgres(Path(tmp)), storage.start_redis(Path(tmp))]
            database_url, redis_url = servers[0].url, servers[1].url
        options = Options(
            Workload(
                shows=args.shows, seats=args.seats, clients=args.clients, seconds=args.seconds
            ),
            database_url,
            redis_url,
            engines=args.engines,
            shared_hosts=args.hosts,
            flush_interval_s=args.flush_ms / 1000,
        )
        started = "actor" in options.engines and ensure_ray()
        try:
            results = asyncio.run(run_engines(options, report.say))
        finally:
            if started:
                import ray

                ray.shutdown()
            for server in reversed(servers):
                server.stop()
    out = document(options, results)
    print(report.table(results))
    if args.json:
        report.write_json(args.json, out)
    if args.plot:
        w = options.workload
        report.plot(
            args.plot,
            results,
            f"{w.clients} clients, {w.shows} shows × {w.seats} seats, {w.seconds:g} s",
        )
    ratio = out["ratio_actor_pg_rowlock"]
    print(f"actor/pg_rowlock throughput ratio: {'n/a' if ratio is None else f'{ratio:.2f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
