"""The gateway benchmarks' machinery: the stack they run on, servers in processes of their own,
load from ``wrk`` or from Python clients in processes of their own, the CPU each process spent,
and py-spy flame graphs.

    stack = await open_stack(database_url, redis_url, run, shows=4, seats=400)  # schema, hosts
    gateway = Server("gateway", stack.config, stack.ray_address).start()          # a process
    hello = Server("hello").start()
    load = run_load(hello, [HELLO_PATH], connections=64, seconds=10.0)   # wrk when installed
    print(load.ops_per_s, load.percentile(99), load.server_cpu, load.client_cpu)
    gateway.stop(); hello.stop()                                         # by pid
    await close_stack(stack)                     # hosts ended, schema dropped, Redis keys gone

A server process serves on 127.0.0.1 with ``SO_REUSEPORT``: a second gateway started on the
first one's port shares its connections (the kernel spreads them), as two gateways behind a
load balancer would. A gateway process joins the benchmark's Ray to find its show directory.
Every process is spawned, never forked (the parent runs Ray), and ended by its pid.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aiohttp import web

from loadtest.engines import create_schema, create_shows, drop_schema
from loadtest.workload import Result, plain_layout

HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
PERCENTILES = (50, 90, 99, 99.9)  # those ``report.plot`` draws
HELLO_PATH = "/hello"
BIG_PATH = "/big"  # a constant of ``Server.big_bytes`` bytes

_spawn = multiprocessing.get_context("spawn")


def spawn(target: Callable[..., None], *args: Any, name: str) -> tuple[Any, Connection]:
    """Start ``target(*args, conn)`` in a spawned process; returns it and our end of ``conn``."""
    ours, theirs = _spawn.Pipe()
    process = _spawn.Process(target=target, args=(*args, theirs), name=name, daemon=True)
    process.start()
    theirs.close()
    return process, ours


def receive(process: Any, conn: Connection, timeout: float) -> Any:
    """What the process sends next; ``RuntimeError`` when it ends or stays silent first."""
    deadline = time.monotonic() + timeout
    while not conn.poll(0.2):
        if not process.is_alive():
            raise RuntimeError(f"{process.name} (pid {process.pid}) exited with {process.exitcode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} (pid {process.pid}) said nothing in {timeout:g} s")
    try:
        message = conn.recv()
    except EOFError:
        raise RuntimeError(f"{process.name} (pid {process.pid}) ended without answering") from None
    if isinstance(message, BaseException):
        raise RuntimeError(f"{process.name} failed: {message!r}") from message
    return message


def end(process: Any, *, grace: float = 0.0) -> None:
    """Give the process ``grace`` seconds to end by itself, then SIGTERM it, then SIGKILL it
    after ``STOP_TIMEOUT_S``: this one process, by its pid."""
    if process.pid is None:
        return
    process.join(grace)
    if process.exitcode is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    process.join(STOP_TIMEOUT_S)
    if process.exitcode is None:
        os.kill(process.pid, signal.SIGKILL)
        process.join(STOP_TIMEOUT_S)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has spent so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def busy_seconds() -> float:
    """CPU time the whole machine has been busy (all cores, all processes) since boot."""
    import psutil

    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


# -- the stack both benchmarks run on ---------------------------------------------------------


@dataclass
class Stack:
    """A schema of the run's own with ``show_ids`` on sale, their show hosts on Ray (the
    caller has started it), and the config of the gateways that serve them (a Redis prefix of
    the run's own)."""

    config: Any  # gateway.GatewayConfig
    show_ids: list[int]
    directory: Any
    ray_address: str
    host_pids: list[int]  # the show hosts' processes


async def open_stack(
    database_url: str,
    redis_url: str,
    run: str,
    *,
    shows: int,
    seats: int,
    shared_hosts: int = 2,
    flush_interval_s: float = 0.010,
) -> Stack:
    """Create the schema and the shows, start the show hosts, activate every show; what was
    made is undone when a step fails."""
    import ray

    import actors
    import storage
    from gateway import GatewayConfig

    config = GatewayConfig(
        database_url=database_url,
        redis_url=redis_url,
        database_schema=f"{run}_gateway",
        jwt_secret=secrets.token_urlsafe(32),
        keyring=storage.Keyring.parse("loadtest:" + storage.new_key()),
        ray_namespace=f"{run}_gateway",
        redis_prefix=f"{run}:",
        access_token_ttl_s=3600,
        argon2_time_cost=1,  # the benchmark's accounts are made in a hurry
        argon2_memory_kib=1024,
    )
    await create_schema(database_url, config.database_schema)
    directory = None
    try:
        ids = await _create_shows(database_url, config.database_schema, shows, seats)
        host_config = actors.HostConfig(
            database_url=database_url,
            schema=config.database_schema,
            redis_url=redis_url,
            flush_interval_s=flush_interval_s,
            channel_prefix=config.redis_prefix,  # where the gateways listen for deltas
        )
        directory = actors.start_directory(
            host_config, shared_hosts=shared_hosts, namespace=config.ray_namespace
        )
        client = actors.ShowClient(directory)
        await asyncio.gather(*(client.snapshot(show_id) for show_id in ids))
        pids = [(await host.stats.remote())["pid"] for host in await directory.hosts.remote()]
    except BaseException:
        await _teardown(config, directory)
        raise
    address = ray.get_runtime_context().gcs_address
    return Stack(config, ids, directory, address, pids)


async def _create_shows(database_url: str, schema: str, shows: int, seats: int) -> list[int]:
    import storage

    conn = await storage.connect(database_url, schema=schema)
    try:
        return await create_shows(conn, plain_layout(seats), shows)
    finally:
        await conn.close()


async def close_stack(stack: Stack) -> None:
    """End the show hosts, drop the schema, delete the run's Redis keys."""
    await _teardown(stack.config, stack.directory)


async def _teardown(config: Any, directory: Any) -> None:
    import ray

    import storage

    try:
        if directory is not None:
            try:
                await directory.shutdown.remote()
            finally:
                ray.kill(directory, no_restart=True)
    finally:
        await drop_schema(config.database_url, config.database_schema)
        redis = await storage.create_redis(config.redis_url)
        try:
            found = [k async for k in redis.scan_iter(match=config.redis_prefix + "*", count=1000)]
            for i in range(0, len(found), 1000):
                await redis.delete(*found[i : i + 1000])
        finally:
            await redis.aclose()


# -- servers -----------------------------------------------------------------------------------


def hello_app(big_bytes: int = 0) -> web.Application:
    """The baseline: handlers that answer a constant, nothing else; ``BIG_PATH`` a JSON string
    of ``big_bytes`` bytes."""
    big = b'"' + b"x" * max(0, big_bytes - 2) + b'"'

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="Hello, world")

    async def constant(_: web.Request) -> web.Response:
        return web.Response(body=big, content_type="application/json")

    app = web.Application()
    app.router.add_get(HELLO_PATH, hello)
    app.router.add_get(BIG_PATH, constant)
    return app


def _serve_process(
    config: Any, ray_address: str | None, port: int, big_bytes: int, conn: Connection
) -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        if config is None:
            app = hello_app(big_bytes)
        else:
            import ray

            from gateway import create_app

            ray.init(address=ray_address, logging_level=logging.WARNING, log_to_driver=False)
            app = create_app(config)
        from seatserver.bootstrap import run_server

        run_server(_serve(app, port, conn))
    except Exception as exc:
        conn.send(exc)
        raise


async def _serve(app: web.Application, port: int, conn: Connection) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port, reuse_port=True, backlog=1024).start()
        conn.send(runner.addresses[0][1])
        await stop.wait()
    finally:
        await runner.cleanup()


@dataclass
class Server:
    """A hello-world server, or a gateway when ``config`` (a ``GatewayConfig``) is given."""

    name: str
    config: Any = None
    ray_address: str | None = None
    port: int = 0  # 0: a free one; another server's port: share it
    big_bytes: int = 0  # of the hello-world server's ``BIG_PATH`` answer
    process: Any = field(default=None, repr=False)

    def start(self) -> Server:
        args = (self.config, self.ray_address, self.port, self.big_bytes)
        self.process, conn = spawn(_serve_process, *args, name=self.name)
        try:
            self.port = receive(self.process, conn, START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        finally:
            conn.close()
        return self

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        if self.process is not None:
            end(self.process)


# -- load --------------------------------------------------------------------------------------


@dataclass
class Load:
    """One server under one load: requests a second, latency percentiles, CPU spent. Shaped
    like ``workload.Result`` where ``report.plot`` reads it (``engine``, ``ops_per_s``,
    ``percentile``)."""

    engine: str  # the server's name
    tool: str  # "wrk" or "python"
    connections: int
    seconds: float
    requests: int
    errors: int  # failed requests and answers other than 2xx
    latency_ms: dict[str, float]  # "p50", "p90", "p99", "p99.9"
    client_cpu: float  # cores the client kept busy on average (1.0: one core throughout)
    client_cores: int  # the client's threads or processes: the most it could keep busy
    server_cpu: float = 0.0  # cores the server process kept busy on average
    machine_cpu: float = 0.0  # cores busy on the whole machine, everyone's processes

    @property
    def ops_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return self.latency_ms[f"p{q:g}"]

    @property
    def cpu_per_request_us(self) -> float:
        """The server's CPU time per request, in microseconds: what contention for the
        machine's cores changes least."""
        return self.server_cpu / self.ops_per_s * 1e6 if self.ops_per_s else float("nan")

    @property
    def client_bound(self) -> bool:
        """The client was nearly as busy as it can be: it, not the server, set the pace."""
        return self.client_cpu > 0.9 * self.client_cores

    def summary(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "connections": self.connections,
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "requests_per_s": round(self.ops_per_s, 1),
            "errors": self.errors,
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()},
            "server_cpu_cores": round(self.server_cpu, 2),
            "server_cpu_us_per_request": round(self.cpu_per_request_us, 1),
            "client_cpu_cores": round(self.client_cpu, 2),
            "client_cores": self.client_cores,
            "client_bound": self.client_bound,
            "machine_cpu_cores": round(self.machine_cpu, 2),
            "machine_cores": os.cpu_count(),
        }


def wrk_path() -> str | None:
    return shutil.which("wrk")


def py_spy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")  # pip install py-spy, in this venv
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profile:
    """A py-spy flame graph (SVG) of processes, sampled without pausing them.

    >>> with Profile([gateway.pid], seconds=11, path=Path("out/gateway.svg")):
    ...     run the load
    """

    def __init__(self, pids: Sequence[int], seconds: float, path: Path | None) -> None:
        self._pids, self._seconds, self._path = list(pids), seconds, path
        self._spies: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Profile:
        if self._path is None:
            return self
        spy = py_spy_path()
        if spy is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        for i, pid in enumerate(self._pids):
            path = self._path if i == 0 else self._path.with_stem(f"{self._path.stem}-{i}")
            argv = [spy, "record", "--pid", str(pid), "--nonblocking", "--rate", "100"]
            argv += ["--duration", str(max(1, round(self._seconds))), "--output", str(path)]
            quiet = subprocess.DEVNULL
            self._spies.append(subprocess.Popen(argv, stdout=quiet, stderr=quiet))
        return self

    def __exit__(self, failed: object, *_: object) -> None:
        for spy in self._spies:  # each writes its graph and ends after ``seconds``
            try:
                spy.wait(0 if failed else self._seconds + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()


def run_load(
    server: Server,
    paths: Sequence[str],
    *,
    connections: int,
    seconds: float,
    tool: str = "auto",
    cores: int = 1,
    warmup_s: float = 0.0,
) -> Load:
    """GET ``paths`` in turn from ``server`` over ``connections`` kept-alive connections for
    ``warmup_s`` (not counted), then ``seconds``; ``tool`` "wrk", "python" or "auto" (wrk when
    installed); ``cores`` wrk threads or Python client processes. The CPU of the server (read
    from its pid) and of the machine are read around the whole load, warm-up included."""
    if tool == "auto":
        tool = "wrk" if wrk_path() else "python"
    if tool not in ("wrk", "python"):
        raise ValueError(f"unknown load tool {tool!r}")
    before, machine, began = cpu_seconds(server.pid), busy_seconds(), time.monotonic()
    if tool == "wrk":
        if warmup_s:
            _wrk(server.url, paths, connections, warmup_s, cores)
        load = _wrk(server.url, paths, connections, seconds, cores)
    else:
        load = _python(server.url, paths, connections, seconds, warmup_s, cores)
    load.engine = server.name
    wall = time.monotonic() - began
    load.server_cpu = (cpu_seconds(server.pid) - before) / wall
    load.machine_cpu = (busy_seconds() - machine) / wall
    return load


# Ends every wrk script: prints the run's figures as one JSON line that ``run_wrk`` reads.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"errors\\": %d, " ..
    "\\"p50\\": %d, \\"p90\\": %d, \\"p99\\": %d, \\"p99.9\\": %d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
"""

_WRK_PATHS = """
local paths = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[n %% #paths + 1])
end
"""


def _wrk(url: str, paths: Sequence[str], connections: int, seconds: float, threads: int) -> Load:
    script = _WRK_PATHS % ", ".join(json.dumps(p) for p in paths)
    return run_wrk(url, script, connections, seconds, threads)


def run_wrk(
    url: str,
    script: str,
    connections: int,
    seconds: float,
    threads: int,
    args: Sequence[str] = (),
    files: dict[str, str] | None = None,
) -> Load:
    """wrk with the Lua ``script`` (``WRK_DONE`` is appended) and its ``args``; ``files`` are
    written beside the script first, and ``{dir}`` in the script names where."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk); use the Python client")
    with tempfile.TemporaryDirectory(prefix="seatserver-wrk-") as tmp:
        for name, text in (files or {}).items():
            (Path(tmp) / name).write_text(text)
        path, output = Path(tmp) / "load.lua", Path(tmp) / "out.txt"
        path.write_text(script.replace("{dir}", tmp) + WRK_DONE)
        argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "-s", str(path), url]
        if args:
            argv += ["--", *args]
        with output.open("w") as out:
            process = subprocess.Popen(argv, stdout=out)
        code, cpu = _wait(process.pid, seconds + 60)
        process.returncode = code
        text = output.read_text()
    lines = [line for line in text.splitlines() if line.startswith("WRK_JSON ")]
    if code != 0 or not lines:
        raise RuntimeError(f"wrk (pid {process.pid}) failed with {code}: {text[-500:]}")
    raw = json.loads(lines[-1].removeprefix("WRK_JSON "))
    return Load(
        engine="",
        tool="wrk",
        connections=connections,
        seconds=raw["duration_us"] / 1e6,
        requests=raw["requests"],
        errors=raw["errors"],
        latency_ms={f"p{q:g}": raw[f"p{q:g}"] / 1000 for q in PERCENTILES},
        client_cpu=cpu / (raw["duration_us"] / 1e6),
        client_cores=threads,
    )


def _wait(pid: int, timeout: float) -> tuple[int, float]:
    """Reap a child, killed after ``timeout``; its exit code and the CPU it spent."""
    deadline = time.monotonic() + timeout
    while True:
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped:
            return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)


def _python(
    url: str, paths: Sequence[str], connections: int, seconds: float, warmup_s: float, procs: int
) -> Load:
    """``procs`` client processes sharing ``connections``, started together once all are set up;
    requests sent in the first ``warmup_s`` are not counted."""
    procs = max(1, min(procs, connections))
    shares = [connections // procs + (i < connections % procs) for i in range(procs)]
    args = (url, list(paths), seconds, warmup_s)
    children = [
        spawn(_client_process, *args, share, name=f"client-{i}") for i, share in enumerate(shares)
    ]
    try:
        for process, conn in children:
            receive(process, conn, START_TIMEOUT_S)  # ready
        start_at = time.monotonic() + 0.05  # CLOCK_MONOTONIC: the same in every process
        for _, conn in children:
            conn.send(start_at)
        parts = [receive(p, conn, warmup_s + seconds + 60) for p, conn in children]
    finally:
        for process, conn in children:
            conn.close()
            end(process, grace=STOP_TIMEOUT_S)
    latencies = array("d")
    for part in parts:
        latencies.extend(part["latencies_ms"])
    sample = Result("python", seconds, latencies_ms=sorted(latencies))
    return Load(
        engine="",
        tool="python",
        connections=connections,
        seconds=seconds,
        requests=len(latencies),
        errors=sum(part["errors"] for part in parts),
        latency_ms={f"p{q:g}": sample.percentile(q) for q in PERCENTILES},
        client_cpu=sum(part["cpu_s"] for part in parts) / seconds,
        client_cores=procs,
    )


def _client_process(
    url: str, paths: list[str], seconds: float, warmup_s: float, connections: int, conn: Connection
) -> None:
    try:
        import uvloop  # the client is not what is measured: the faster loop, when there

        run: Callable[[Any], Any] = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        conn.send(run(_hammer(url, paths, connections, seconds, warmup_s, conn)))
    except Exception as exc:
        conn.send(exc)
        raise


async def _hammer(
    url: str, paths: list[str], connections: int, seconds: float, warmup_s: float, conn: Connection
) -> dict[str, Any]:
    """GET in turn from ``connections`` tasks once the parent says when; latencies of the
    requests sent after the warm-up, and the CPU this process spent meanwhile."""
    import aiohttp

    latencies = array("d")
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    async with aiohttp.ClientSession(url, connector=connector) as session:
        conn.send("ready")
        start_at: float = conn.recv()  # blocks the loop, which has nothing else to do yet
        counted_from = start_at + warmup_s
        deadline = counted_from + seconds
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))

        async def one(index: int) -> None:
            nonlocal errors
            n = index
            while (began := time.monotonic()) < deadline:
                n += 1
                sent = time.perf_counter()
                try:
                    async with session.get(paths[n % len(paths)]) as resp:
                        await resp.read()
                        ok = 200 <= resp.status < 300
                except aiohttp.ClientError:
                    ok = False
                if began < counted_from:
                    continue
                if ok:
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    errors += 1

        async def cpu_after_warmup() -> float:
            await asyncio.sleep(max(0.0, counted_from - time.monotonic()))
            return time.process_time()

        marked = asyncio.ensure_future(cpu_after_warmup())
        await asyncio.gather(*(one(i) for i in range(connections)))
        cpu = time.process_time() - await marked
    return {"latencies_ms": latencies, "errors": errors, "cpu_s": cpu}
