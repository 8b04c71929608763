"""``seatserver status``: the running system at a glance, in the terminal.

It finds the services as ``seatserver doctor`` does (the settings' URLs, else the instance
``seatserver up`` runs in the data directory), joins Ray, and shows the Ray nodes (alive or
dead, address, CPUs, memory, hosts on each), the show hosts (node, kind, shows active and with
live holds, write-behind backlog and lag), the busiest shows and the hot ones (a host of their
own), and the waiting rooms of flash sales (waiting, admitted, rate). ``--json`` prints the
same as one JSON object; ``--watch SECONDS`` refreshes until Ctrl-C.

    seatserver status
    seatserver status --json | jq '.hosts[] | {name, lag_s}'
    seatserver status --watch 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from seatserver.doctor import find_targets
from seatserver.flags import whole_number
from seatserver.settings import Settings

CALL_TIMEOUT_S = 3.0  # the most one call to the directory or a host may take
MAX_QUEUES = 50  # flash-sale lines shown at most
NODE_ID_CHARS = 12


def add_parser(commands: Any, data_dir_option: Any) -> None:
    """The ``status`` subcommand's flags."""
    status = commands.add_parser(
        "status",
        help="show the running system: nodes, hosts, shows, queues, flush lag",
        description="Join the running instance's Ray and show its nodes, show hosts, busiest "
        "and hot shows, flash-sale queues and write-behind lag.",
    )
    data_dir_option(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--watch", type=_seconds, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C"
    )
    status.add_argument(
        "--top",
        type=whole_number(1, 1000),
        default=10,
        metavar="N",
        help="busiest shows, 1 to 1000 (10)",
    )
    status.add_argument("--count", type=whole_number(1, 1000), default=None, help=argparse.SUPPRESS)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError("between 0.1 and 3600 seconds")
    return value


# -- gathering --------------------------------------------------------------------------------


async def gather_status(
    namespace: str,
    *,
    database_url: str | None = None,
    schema: str = "public",
    redis_url: str | None = None,
    redis_prefix: str = "seatserver:",
    top: int = 10,
) -> dict[str, Any]:
    """Everything ``status`` shows, as plain values; needs Ray joined. Postgres and Redis
    (for the flash-sale lines) are optional."""
    import ray

    from actors import find_directory

    out: dict[str, Any] = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "namespace": namespace,
        "nodes": _nodes(ray.nodes()),
        "problems": [],
    }
    try:
        directory = find_directory(namespace)
        described, handles = await asyncio.wait_for(
            asyncio.gather(directory.describe.remote(), directory.hosts.remote()), CALL_TIMEOUT_S
        )
    except (ValueError, TimeoutError, ray.exceptions.RayError) as exc:
        out["problems"].append(f"no show directory answers in namespace {namespace!r}: {exc}")
        out.update(hosts=[], shows=[], hot_shows=[], queues=[], max_dedicated_hosts=None)
        return out
    entries = described["hosts"]
    answers = await asyncio.gather(*(_describe(h, top) for h in handles[: len(entries)]))
    out["max_dedicated_hosts"] = described.get("max_dedicated_hosts")
    out["hosts"] = [_host(e, a) for e, a in zip(entries, answers, strict=False)]
    out["shows"] = _busiest(out["hosts"], answers, top)
    out["hot_shows"] = [
        {"show_id": h["show_id"], "host": h["name"], "node": h["node"]}
        for h in out["hosts"]
        if h["kind"] == "dedicated"
    ]
    for node in out["nodes"]:
        node["hosts"] = sum(1 for h in out["hosts"] if h["node"] == node["node"])
    for host in out["hosts"]:
        if not host["up"]:
            out["problems"].append(f"host {host['name']} did not answer")
    out["queues"] = await _queues(database_url, schema, redis_url, redis_prefix, out["problems"])
    return out


def _nodes(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    nodes = []
    for node in found:
        resources = node.get("Resources") or {}
        nodes.append(
            {
                "node": str(node.get("NodeID", ""))[:NODE_ID_CHARS],
                "node_id": node.get("NodeID"),
                "alive": bool(node.get("Alive")),
                "address": node.get("NodeManagerAddress"),
                "cpus": resources.get("CPU", 0),
                "memory_bytes": int(resources.get("memory", 0)),
            }
        )
    return sorted(nodes, key=lambda n: (not n["alive"], n["address"] or "", n["node"]))


async def _describe(host: Any, top: int) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] = await asyncio.wait_for(host.describe.remote(top), CALL_TIMEOUT_S)
    except Exception:  # a host restarting or gone: shown as down
        return None
    return answer


def _host(entry: dict[str, Any], answer: dict[str, Any] | None) -> dict[str, Any]:
    stats = answer or {}
    flush_lag = stats.get("flush_lag")
    return {
        "name": entry["name"],
        "kind": entry["kind"],
        "show_id": entry["show_id"],
        "up": answer is not None,
        "node": str(stats.get("node_id") or "")[:NODE_ID_CHARS] or None,
        "pid": stats.get("pid"),
        "started": stats.get("started", False),
        "active_shows": stats.get("active_shows", 0),
        "holding_shows": stats.get("holding_shows", 0),
        "backlog": stats.get("backlog", 0),
        "lag_s": stats.get("lag_s", 0.0),
        "flush_lag_p99_s": quantile(flush_lag, 0.99) if flush_lag else None,
        "flushes": stats.get("flushes", 0),
        "flush_failures": stats.get("flush_failures", 0),
        "events": stats.get("events", {}),
    }


def quantile(exported: dict[str, Any], q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of an exported histogram (None
    when empty; the largest bound when it lies beyond)."""
    total = exported["count"]
    if not total:
        return None
    for bound, count in zip(exported["bounds"], exported["counts"], strict=False):
        if count >= q * total:
            return float(bound)
    return float(exported["bounds"][-1])


def _busiest(
    hosts: list[dict[str, Any]], answers: Sequence[dict[str, Any] | None], top: int
) -> list[dict[str, Any]]:
    shows = [
        {**show, "host": host["name"], "hot": host["kind"] == "dedicated"}
        for host, answer in zip(hosts, answers, strict=False)
        for show in (answer or {}).get("top_shows", [])
    ]
    shows.sort(key=lambda s: (-s["per_s"], s["show_id"]))
    return shows[:top]


async def _queues(
    database_url: str | None,
    schema: str,
    redis_url: str | None,
    prefix: str,
    problems: list[str],
) -> list[dict[str, Any]]:
    """The line of every flash sale not yet started that has one in Redis."""
    if database_url is None or redis_url is None:
        return []
    import storage
    from actors.flash import upcoming_flash_sales
    from gateway.redisbatch import ScriptBatcher
    from gateway.waitingroom import WaitingRoom

    try:
        conn = await storage.connect(database_url, schema=schema, timeout=CALL_TIMEOUT_S)
    except Exception as exc:
        problems.append(f"Postgres: {exc}")
        return []
    try:
        now = dt.datetime.now(dt.UTC)
        shows = (await upcoming_flash_sales(conn, now, dt.timedelta(days=366)))[:MAX_QUEUES]
    finally:
        await conn.close()
    if not shows:
        return []
    redis = await storage.create_redis(redis_url)
    batch = ScriptBatcher(redis)
    room = WaitingRoom(redis, None, prefix=prefix, secret="status", batch=batch)
    lines = []
    try:
        for show_id in shows:
            if not await room.has_line(show_id):
                lines.append({"show_id": show_id, "line": False})
                continue
            stats = await room.stats(show_id)
            lines.append({"line": True, **stats})
    except Exception as exc:
        problems.append(f"Redis: {exc}")
    finally:
        batch.close()
        await redis.aclose()
    return lines


# -- showing ----------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def render(status: dict[str, Any]) -> str:
    """The terminal view of ``gather_status``'s answer."""
    nodes, hosts = status["nodes"], status["hosts"]
    alive = sum(1 for n in nodes if n["alive"])
    lines = [
        f"seatserver status · namespace {status['namespace']} · {status['at']}",
        "",
        f"nodes: {alive} alive, {len(nodes) - alive} dead",
        *_table(
            ("NODE", "STATE", "ADDRESS", "CPUS", "MEMORY", "HOSTS"),
            [
                (
                    n["node"],
                    "alive" if n["alive"] else "dead",
                    n["address"],
                    f"{n['cpus']:g}",
                    _gib(n["memory_bytes"]),
                    n.get("hosts", 0),
                )
                for n in nodes
            ],
        ),
        "",
    ]
    shared = sum(1 for h in hosts if h["kind"] == "shared")
    of = status.get("max_dedicated_hosts")
    lines.append(
        f"hosts: {shared} shared, {len(hosts) - shared} dedicated"
        + (f" (at most {of})" if of is not None else "")
    )
    lines += _table(
        (
            "HOST",
            "KIND",
            "NODE",
            "UP",
            "SHOWS",
            "HOLDING",
            "BACKLOG",
            "LAG",
            "FLUSH P99",
            "FLUSHES",
        ),
        [
            (
                h["name"],
                h["kind"],
                h["node"] or "-",
                "yes" if h["up"] else "NO",
                h["active_shows"],
                h["holding_shows"],
                h["backlog"],
                _ms(h["lag_s"]),
                _ms(h["flush_lag_p99_s"]),
                h["flushes"],
            )
            for h in hosts
        ],
    )
    lines += ["", f"busiest shows (top {len(status['shows'])} by commands a second, lately)"]
    lines += _table(
        ("SHOW", "HOST", "CMDS/S", "HOLDS", "VERSION", "STATUS", "HOT"),
        [
            (
                s["show_id"],
                s["host"],
                f"{s['per_s']:.2f}",
                s["holds"],
                s["version"],
                s["status"],
                "hot" if s["hot"] else "",
            )
            for s in status["shows"]
        ],
    )
    lines += ["", f"hot shows (a host of their own): {len(status['hot_shows'])}"]
    lines += _table(
        ("SHOW", "HOST", "NODE"),
        [(s["show_id"], s["host"], s["node"] or "-") for s in status["hot_shows"]],
    )
    lines += ["", f"waiting rooms (flash sales): {len(status['queues'])}"]
    lines += _table(
        ("SHOW", "WAITING", "ADMITTED NOW", "ADMITTED", "RATE/MIN", "SUPPLY"),
        [
            (
                q["show_id"],
                q.get("waiting", "-"),
                q.get("admitted_now", "-"),
                q.get("admitted", "-"),
                q.get("admission_per_min", "-"),
                q.get("supply", "no line yet"),
            )
            for q in status["queues"]
        ],
    )
    for problem in status["problems"]:
        lines.append(f"problem: {problem}")
    return "\n".join(lines)


# -- the command ------------------------------------------------------------------------------


def run(settings: Settings, args: argparse.Namespace) -> int:
    """``seatserver status``: print once, or every ``--watch`` seconds until Ctrl-C."""
    targets = find_targets(settings)
    import ray

    joined = False
    if not ray.is_initialized():
        if targets.ray_address is None:
            print(
                "seatserver: no running instance found: start `seatserver up`, or set "
                "SEATSERVER_RAY_ADDRESS",
                file=sys.stderr,
            )
            return 1
        from seatserver.bootstrap import local_ray_environment

        local_ray_environment()
        ray.init(address=targets.ray_address, logging_level=logging.ERROR, log_to_driver=False)
        joined = True
    shown = 0
    try:
        while True:
            found = asyncio.run(
                gather_status(
                    settings.ray_namespace,
                    database_url=targets.database_url,
                    schema=targets.schema,
                    redis_url=targets.redis_url,
                    redis_prefix=settings.redis_prefix,
                    top=args.top,
                )
            )
            if args.json:
                print(json.dumps(found, default=str), flush=True)
            else:
                if args.watch and sys.stdout.isatty():
                    print("\033[2J\033[H", end="")
                print(render(found), flush=True)
            shown += 1
            if not args.watch or (args.count is not None and shown >= args.count):
                return 1 if found["problems"] else 0
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
    finally:
        if joined:
            ray.shutdown()
