"""The models benchmark: the three models on Ray Serve, called as the gateway calls them under
load, against the rules that answer when they cannot, measured in the same run.

    python -m loadtest.models                           # demo at scale 0.1, 16 connections, 10 s
    python -m loadtest.models --seconds 5 --json out/models.json --plot out/models.png

Set-up: a schema of the run's own with the demo data (``--scale``), the three models trained
on it into a temporary directory and deployed on Ray Serve (``--replicas`` each), show hosts
for the demo's shows on a local Ray. Two gateway processes share the database, Redis and Ray:
"models" calls the models within their budgets, "rules" has them off, so every answer is the
fallback's. ``wrk`` (``apt-get install wrk``) loads each in turn, one request kind at a time,
over ``--connections`` kept-alive connections for ``--seconds`` after one second of warm-up
that is not counted: recommendations (``GET /api/v1/recommendations``) and quotes for upcoming
shows (``GET /api/v1/shows/{id}/quote``, every user in the dynamic-pricing arm), each request
as the next of 200 demo customers who have bookings. Where the answers came from is counted
twice: from the gateway's ``seatserver_model_answers_total`` around the load (all of its
answers, and why the fallback gave some), and from a sample of answers fetched before and
after it. The fraud check runs in this process: ``--concurrency`` asyncio workers call the
fraud model through the gateway's call (budget 50 ms) with varied checkouts, then the same
loop with the model off (the rules alone). A model that misses its budget three times running
is left alone for 5 s (the gateway's breaker): an overloaded replica shows as answers of the
fallback ("circuit_open"), which the report counts and warns of. Each counted load starts once
the model answers again after its warm-up.

Each figure is given against its baseline from the same run (models p99 / rules p99, models
requests a second / rules), beside the absolute numbers and the budgets (recommendations and
pricing 100 ms, fraud 50 ms). Everything is undone at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray: keep the local Ray on loopback

from loadtest import http, report  # noqa: E402
from loadtest.contention import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, ensure_ray  # noqa: E402
from loadtest.workload import Result  # noqa: E402

API = "/api/v1"
KINDS = ("recommender", "pricing", "fraud")
# What is measured: its model and its budget (DESIGN.md, "Models").
ENDPOINTS = {"recommendations": "recommender", "quotes": "pricing", "fraud": "fraud"}
BUDGET_MS = {"recommendations": 100.0, "quotes": 100.0, "fraud": 50.0}
GATEWAYS = ("models", "rules")
WARMUP_S = 1.0
WRK_THREADS = 1
CUSTOMERS = 200
SHOWS = 40  # upcoming shows the quotes go round
SAMPLE = 20  # answers fetched before and after each load, to see where they came from
CHECKOUTS = 1000  # distinct fraud feature rows the workers go round
MOSTLY = 0.9  # below this share of model answers, a load's figures are not the model's
READY_S = 60.0  # how long the models gateway gets to find a model's deployment
ANSWERS = "seatserver_model_answers"
Say = Callable[[str], None]

# Each request is the next customer's (wrk's threads take turns), for the next path.
_WRK_ROTATE = """
local tokens, paths = {}, {}
for line in io.lines("{dir}/tokens.txt") do tokens[#tokens + 1] = line end
for line in io.lines("{dir}/paths.txt") do paths[#paths + 1] = line end
local count = 0
setup = function(thread)
  thread:set("id", count)
  count = count + 1
end
local n, step = 0, 1
init = function(args)
  n = id
  step = tonumber(args[1]) or 1
end
request = function()
  n = n + step
  local headers = {["Authorization"] = "Bearer " .. tokens[n % #tokens + 1]}
  return wrk.format("GET", paths[n % #paths + 1], headers)
end
"""


@dataclass(frozen=True)
class Options:
    scale: float = 0.1
    seed: int = 11  # of the demo data; the models train with seed 0
    seconds: float = 10.0
    connections: int = 16
    concurrency: int = 16
    replicas: int = 1
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    run: str = field(default_factory=lambda: f"models_{uuid.uuid4().hex[:8]}")


@dataclass
class Site:
    """What the loads go round: the customers' tokens and the upcoming shows."""

    tokens: list[str]
    show_ids: list[int]

    def paths(self, endpoint: str) -> list[str]:
        if endpoint == "recommendations":
            return [f"{API}/recommendations?limit=10"]
        return [f"{API}/shows/{show_id}/quote" for show_id in self.show_ids]


@dataclass
class Measured:
    """One request kind on one gateway: the load, where its answers came from (the gateway's
    counters, or the calls themselves for fraud) and a sample of answers read back."""

    endpoint: str
    gateway: str
    load: http.Load
    answers: Counter[str]  # "model", or "fallback:<reason>"
    sample: Counter[str] = field(default_factory=Counter)
    model_latency_ms: dict[str, float] | None = None  # of the model's answers alone (fraud)

    @property
    def model_share(self) -> float:
        total = sum(self.answers.values())
        return self.answers["model"] / total if total else 0.0

    @property
    def failed(self) -> int:
        """Requests that failed: under load, and in the sample."""
        return self.load.errors + sum(n for k, n in self.sample.items() if k.startswith("error:"))

    def summary(self) -> dict[str, Any]:
        out = {**self.load.summary(), "answers": _counted(self.answers)}
        if self.model_latency_ms:
            out["model_latency_ms"] = {k: round(v, 3) for k, v in self.model_latency_ms.items()}
        if self.sample:
            out["sample"] = {"requests": sum(self.sample.values()), **_counted(self.sample)}
        return out


def _counted(answers: Counter[str]) -> dict[str, Any]:
    """The model's answers, the fallback's by reason, failed requests by status."""
    out: dict[str, Any] = {"model": answers["model"], "fallback": {}, "failed": {}}
    for key, n in sorted(answers.items()):
        kind, _, why = key.partition(":")
        if kind != "model":
            out["fallback" if kind == "fallback" else "failed"][why] = n
    total = sum(answers.values())
    out["model_share"] = round(answers["model"] / total, 4) if total else 0.0
    return out


# -- set-up ------------------------------------------------------------------------------------


def gateway_config(options: Options, schema: str, secret: str, models: Any) -> Any:
    import storage
    from gateway import GatewayConfig

    return GatewayConfig(
        database_url=options.database_url,
        redis_url=options.redis_url,
        database_schema=schema,
        jwt_secret=secret,
        keyring=storage.Keyring.parse("loadtest:" + storage.new_key()),
        ray_namespace=f"{options.run}_gateway",
        redis_prefix=f"{options.run}:",
        access_token_ttl_s=3600,
        models=models,
    )


async def prepare(options: Options, config: Any, models_dir: Path, say: Say) -> dict[str, Any]:
    """The demo data in the run's schema and the three models trained on it; what each
    training gave, by kind."""
    import storage
    from loadtest.engines import create_schema
    from ml.artifacts import ArtifactStore

    await create_schema(options.database_url, config.database_schema)
    conn = await storage.connect(options.database_url, schema=config.database_schema)
    try:
        began = time.perf_counter()
        demo = await storage.generate_demo_data(
            conn,
            scale=options.scale,
            seed=options.seed,
            today=dt.date.today(),
            progress=False,
            keyring=config.keyring,
        )
        counts = demo.counts
        say(
            f"demo data at scale {options.scale:g} in {config.database_schema}: "
            f"{counts['users']:,} users, {counts['shows']:,} shows, {counts['bookings']:,} "
            f"bookings ({time.perf_counter() - began:.1f} s)"
        )
        store, trained = ArtifactStore(models_dir), {}
        for kind in KINDS:
            began = time.perf_counter()
            trainer = importlib.import_module(f"ml.{kind}.train")
            artifact = await trainer.train(conn, store, progress=False, seed=0)
            took = time.perf_counter() - began
            trained[kind] = {
                "version": artifact.version,
                "gate_passed": artifact.gate.passed,
                "training_s": round(took, 1),
            }
            verdict = "passed its gate" if artifact.gate.passed else "did NOT pass its gate"
            say(f"{kind} {artifact.version} trained in {took:.1f} s: {verdict}")
    finally:
        await conn.close()
    return trained


async def customers_and_shows(config: Any) -> Site:
    """Tokens of demo customers who have bookings and a home city, and upcoming shows on
    sale, both spread by a hash of their ids."""
    import storage
    from gateway.auth import Auth

    conn = await storage.connect(config.database_url, schema=config.database_schema)
    try:
        users = await conn.fetch(
            """SELECT u.id FROM users u
               WHERE u.role = 'customer' AND u.home_city_id IS NOT NULL
                 AND EXISTS (SELECT FROM bookings b
                             WHERE b.user_id = u.id AND b.status = 'confirmed')
               ORDER BY md5(u.id::text) LIMIT $1""",
            CUSTOMERS,
        )
        shows = await conn.fetch(
            """SELECT id FROM shows
               WHERE status = 'on_sale' AND starts_at > now() + interval '1 hour'
               ORDER BY md5(id::text) LIMIT $1""",
            SHOWS,
        )
        if not users or not shows:
            raise RuntimeError(
                f"the demo has {len(users)} customers with bookings and "
                f"{len(shows)} upcoming shows on sale: too small to load"
            )
        auth = Auth(config, None, None)
        ring = config.keyring
        tokens = [
            auth.access_token(await storage.get_user(conn, r["id"], keyring=ring)) for r in users
        ]
    finally:
        await conn.close()
    return Site(tokens, [r["id"] for r in shows])


async def start_show_hosts(stack: http.Stack) -> None:
    """The show directory of the run's namespace, with the quoted shows loaded."""
    import actors

    config = stack.config
    host_config = actors.HostConfig(
        database_url=config.database_url,
        schema=config.database_schema,
        redis_url=config.redis_url,
        channel_prefix=config.redis_prefix,
    )
    stack.directory = actors.start_directory(
        host_config, shared_hosts=2, namespace=config.ray_namespace
    )
    client = actors.ShowClient(stack.directory)
    await asyncio.gather(*(client.snapshot(show_id) for show_id in stack.show_ids))


def serve_running() -> bool:
    """Whether Serve's controller runs on this Ray (then someone else started it)."""
    import ray

    named = ray.util.list_named_actors(all_namespaces=True)
    return any(a["name"] == "SERVE_CONTROLLER_ACTOR" and a["namespace"] == "serve" for a in named)


# -- the HTTP loads ----------------------------------------------------------------------------


def answered(url: str, path: str, token: str) -> str:
    """Where the answer to one GET came from: "model", "fallback:<reason>", or
    "error:<status>" for an answer other than 2xx."""
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return f"error:{exc.code}"
    if body["source"] == "model":
        return "model"
    return f"fallback:{body.get('fallback_reason')}"


def sample(url: str, site: Site, endpoint: str, offset: int) -> Counter[str]:
    """Where ``SAMPLE`` answers came from, each the next customer's for the next path."""
    paths, found = site.paths(endpoint), Counter[str]()
    for n in range(offset, offset + SAMPLE):
        found[answered(url, paths[n % len(paths)], site.tokens[n % len(site.tokens)])] += 1
    return found


def wait_for_model(url: str, site: Site, endpoint: str) -> None:
    """Ask until an answer comes from the model (the gateway finds a deployment on its first
    call, off its event loop); ``RuntimeError`` after ``READY_S``."""
    paths, deadline, seen = site.paths(endpoint), time.monotonic() + READY_S, Counter[str]()
    while time.monotonic() < deadline:
        n = sum(seen.values())
        where = answered(url, paths[n % len(paths)], site.tokens[n % len(site.tokens)])
        if where == "model":
            return
        seen[where] += 1
        time.sleep(0.05)
    got = ", ".join(f"{where} x{n}" for where, n in seen.most_common())
    model = ENDPOINTS[endpoint]
    raise RuntimeError(f"{endpoint}: no answer from the {model} model in {READY_S:g} s ({got})")


def model_answers(url: str, model: str) -> Counter[str]:
    """The gateway's answer counters of ``model``, by source and reason, as they stand."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    found = Counter[str]()
    for family in text_string_to_metric_families(text):
        if family.name != ANSWERS:
            continue
        for s in family.samples:
            if s.name == f"{ANSWERS}_total" and s.labels["model"] == model:
                key = "model" if s.labels["source"] == "model" else f"fallback:{s.labels['reason']}"
                found[key] += int(s.value)
    return found


def wrk(server: http.Server, site: Site, endpoint: str, connections: int, seconds: float) -> Any:
    files = {"tokens.txt": "\n".join(site.tokens) + "\n"}
    files["paths.txt"] = "\n".join(site.paths(endpoint)) + "\n"
    args = [str(WRK_THREADS)]
    return http.run_wrk(server.url, _WRK_ROTATE, connections, seconds, WRK_THREADS, args, files)


def measure_http(
    options: Options, server: http.Server, site: Site, endpoint: str, asks_model: bool, say: Say
) -> Measured:
    """A sample, a second of warm-up, the model answering again (when ``asks_model``), the
    counted load with the gateway's counters read around it, another sample."""
    model = ENDPOINTS[endpoint]
    before = sample(server.url, site, endpoint, 0)
    wrk(server, site, endpoint, options.connections, WARMUP_S)
    if asks_model:  # a warm-up that missed the budget may have opened the breaker
        wait_for_model(server.url, site, endpoint)
    counted = model_answers(server.url, model)
    cpu, machine, began = http.cpu_seconds(server.pid), http.busy_seconds(), time.monotonic()
    load = wrk(server, site, endpoint, options.connections, options.seconds)
    wall = time.monotonic() - began
    load.engine = f"{endpoint} {server.name}"
    load.server_cpu = (http.cpu_seconds(server.pid) - cpu) / wall
    load.machine_cpu = (http.busy_seconds() - machine) / wall
    answers = model_answers(server.url, model)
    answers.subtract(counted)
    answers = +answers  # drop what did not move
    found = Measured(
        endpoint, server.name, load, answers, before + sample(server.url, site, endpoint, SAMPLE)
    )
    say(
        f"{endpoint} on {server.name}: {load.ops_per_s:,.0f} requests/s, p99 "
        f"{load.percentile(99):.1f} ms, {load.errors} errors, {found.model_share:.0%} from the "
        f"model (gateway {load.server_cpu:.2f} cores)"
    )
    return found


# -- fraud, in this process --------------------------------------------------------------------


def checkout_rows(count: int, seed: int) -> list[Any]:
    """Varied checkouts: most ordinary, a tenth with the signals of the patterns the rules
    know (declined cards, many accounts on a device, hoarding, bot speed, far new accounts)."""
    from ml.fraud.features import UNKNOWN_DISTANCE, CheckoutFeatures

    rng, rows = random.Random(seed), []
    for _ in range(count):
        odd = rng.random() < 0.1
        holds = rng.randint(1, 9 if odd else 2)
        distance = round(rng.uniform(0, 2500 if odd else 200), 1)
        rows.append(
            CheckoutFeatures(
                holds_account_1h=holds,
                holds_account_24h=holds + rng.randint(0, 3),
                bookings_account_24h=rng.randint(0, 2),
                holds_device_1h=holds + rng.randint(0, 4 if odd else 0),
                holds_ip_1h=holds + rng.randint(0, 6 if odd else 1),
                failed_payments_account_24h=rng.randint(0, 5 if odd else 0),
                failed_payments_device_24h=rng.randint(0, 6 if odd else 0),
                accounts_device_24h=rng.randint(1, 8 if odd else 1),
                accounts_ip_24h=rng.randint(1, 14 if odd else 3),
                card_distance_km=UNKNOWN_DISTANCE if rng.random() < 0.2 else distance,
                seats_unbought_account_7d=rng.randint(0, 40 if odd else 4),
                hold_to_pay_s=round(rng.uniform(0.3, 10) if odd else rng.uniform(20, 600), 1),
                seats_in_hold=rng.randint(1, 8),
                account_age_days=round(rng.uniform(0, 10) if odd else rng.uniform(1, 1500), 2),
            )
        )
    return rows


async def fraud_loop(call: Any, rows: list[Any], options: Options, seconds: float) -> Any:
    """``options.concurrency`` workers calling ``call`` in turn for ``seconds``: the latency
    of each call as the caller waits for it, where each answer came from, and the failures."""
    from ml.fraud.rules import rules_verdict

    latencies, answers, errors = array("d"), Counter[str](), 0
    by_model = array("d")  # the latencies of the answers the model gave
    deadline = time.monotonic() + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        n = index
        while time.monotonic() < deadline:
            n += options.concurrency
            row = rows[n % len(rows)]
            sent = time.perf_counter()
            try:
                answer = await call(row, fallback=lambda row=row: rules_verdict(row))
            except Exception:  # the call promises never to raise: count it if it does
                errors += 1
                continue
            took = (time.perf_counter() - sent) * 1000
            latencies.append(took)
            if answer.source == "model":
                by_model.append(took)
            answers["model" if answer.source == "model" else f"fallback:{answer.reason}"] += 1
            await asyncio.sleep(0)  # the rules never wait: let the other workers in

    await asyncio.gather(*(worker(i) for i in range(options.concurrency)))
    return latencies, by_model, answers, errors


async def fraud_load(call: Any, rows: list[Any], options: Options, name: str) -> Measured:
    """A second of warm-up, the model answering again (when it is on), the counted loop."""
    await fraud_loop(call, rows, options, WARMUP_S)
    if call.enabled:
        await fraud_answers(call, rows[0])
    cpu, machine, began = time.process_time(), http.busy_seconds(), time.monotonic()
    latencies, by_model, answers, errors = await fraud_loop(call, rows, options, options.seconds)
    wall = time.monotonic() - began
    timed = Result(name, wall, latencies_ms=list(latencies))
    model = Result(name, wall, latencies_ms=list(by_model))
    load = http.Load(
        engine=f"fraud {name}",
        tool="asyncio",
        connections=options.concurrency,
        seconds=wall,
        requests=len(latencies),
        errors=errors,
        latency_ms={f"p{q:g}": timed.percentile(q) for q in http.PERCENTILES},
        client_cpu=(time.process_time() - cpu) / wall,
        client_cores=1,
        machine_cpu=(http.busy_seconds() - machine) / wall,
    )
    found = Measured("fraud", name, load, answers)
    if by_model:
        found.model_latency_ms = {f"p{q:g}": model.percentile(q) for q in http.PERCENTILES}
    return found


async def fraud_answers(call: Any, row: Any) -> None:
    """Call until the model answers: a new handle's first calls can miss the budget while it
    finds the replicas (and open the breaker for a while); ``RuntimeError`` after
    ``READY_S``."""
    from ml.fraud.rules import rules_verdict

    deadline, seen = time.monotonic() + READY_S, Counter[str]()
    if await call.ready(READY_S):
        while time.monotonic() < deadline:
            answer = await call(row, fallback=lambda: rules_verdict(row))
            if answer.source == "model":
                return
            seen[answer.reason] += 1
            await asyncio.sleep(0.05)
    got = ", ".join(f"{reason} x{n}" for reason, n in seen.most_common()) or "no deployment"
    raise RuntimeError(f"fraud: no answer from the model in {READY_S:g} s ({got})")


async def measure_fraud(options: Options, deployed: bool, say: Say) -> list[Measured]:
    """The fraud loop through the model's call, then with the model off; ``deployed``: whether
    there is a fraud model to wait for."""
    from gateway.models import Models, ModelsConfig

    rows = checkout_rows(CHECKOUTS, options.seed)
    found = []
    for name, enabled in (("models", True), ("rules", False)):
        call = Models(ModelsConfig(enabled=enabled and deployed)).fraud
        measured = await fraud_load(call, rows, options, name)
        load = measured.load
        say(
            f"fraud on {name}: {load.ops_per_s:,.0f} calls/s, p99 {load.percentile(99):.2f} ms, "
            f"{measured.model_share:.0%} from the model"
        )
        found.append(measured)
    return found


# -- the run -----------------------------------------------------------------------------------


def run_models(options: Options, say: Say) -> tuple[list[Measured], dict[str, Any]]:
    """Set up, measure, and undo everything (in reverse, each step even when one before it
    failed); Ray must be up (``ensure_ray``)."""
    import ray

    from gateway.models import ModelsConfig
    from serve.deployments import Scaling, deploy, undeploy

    schema, secret = f"{options.run}_demo", secrets.token_urlsafe(32)  # one for both gateways
    configs = {
        name: gateway_config(
            options, schema, secret, ModelsConfig(enabled=on, pricing_dynamic_share=1.0)
        )
        for name, on in zip(GATEWAYS, (True, False), strict=True)
    }
    address = ray.get_runtime_context().gcs_address
    stack = http.Stack(configs["models"], [], None, address, [])
    with contextlib.ExitStack() as undo:
        models_dir = Path(
            undo.enter_context(tempfile.TemporaryDirectory(prefix="seatserver-models-"))
        )
        undo.callback(lambda: asyncio.run(http.close_stack(stack)))  # hosts, schema, Redis keys
        trained = asyncio.run(prepare(options, stack.config, models_dir, say))
        site = asyncio.run(customers_and_shows(stack.config))
        stack.show_ids = site.show_ids
        asyncio.run(start_show_hosts(stack))
        say(f"{len(site.tokens)} customers, {len(site.show_ids)} upcoming shows on 2 show hosts")
        # Serve started here ends here (its applications with it); else only ours go.
        undo.callback(undeploy if serve_running() else _serve_shutdown)
        began = time.perf_counter()
        scaling = Scaling(min_replicas=options.replicas, max_replicas=options.replicas)
        versions = deploy(models_dir, scaling, reload_s=3600.0)
        for kind, version in versions.items():
            trained[kind]["deployed"] = version is not None
        say(
            f"deployed {sorted(k for k, v in versions.items() if v)} with {options.replicas} "
            f"replica(s) each ({time.perf_counter() - began:.1f} s)"
        )
        servers = {}
        for name, config in configs.items():
            server = servers[name] = http.Server(name, config, address).start()
            undo.callback(server.stop)
            say(f"gateway {name!r} pid {server.pid} at {server.url}")
        measured = []
        for endpoint in ("recommendations", "quotes"):
            deployed = versions[ENDPOINTS[endpoint]] is not None
            if deployed:
                wait_for_model(servers["models"].url, site, endpoint)
            for name in GATEWAYS:
                asks = deployed and name == "models"
                measured.append(measure_http(options, servers[name], site, endpoint, asks, say))
        measured += asyncio.run(measure_fraud(options, versions["fraud"] is not None, say))
    say("stopped the gateways, undeployed the models, ended the show hosts, dropped the schema")
    return measured, trained


def _serve_shutdown() -> None:
    from ray import serve

    serve.shutdown()


# -- output ------------------------------------------------------------------------------------


def pairs(measured: Sequence[Measured]) -> dict[str, dict[str, Measured]]:
    found: dict[str, dict[str, Measured]] = {}
    for m in measured:
        found.setdefault(m.endpoint, {})[m.gateway] = m
    return found


def _ratio(top: float, bottom: float) -> float | None:
    return round(top / bottom, 3) if bottom else None


def document(
    options: Options, measured: Sequence[Measured], trained: dict[str, Any]
) -> dict[str, Any]:
    endpoints = {}
    for endpoint, pair in pairs(measured).items():
        models, rules = pair["models"].load, pair["rules"].load
        endpoints[endpoint] = {
            "model": ENDPOINTS[endpoint],
            "budget_ms": BUDGET_MS[endpoint],
            "models": pair["models"].summary(),
            "rules": pair["rules"].summary(),
            "ratio_p99": _ratio(models.percentile(99), rules.percentile(99)),
            "ratio_rps": _ratio(models.ops_per_s, rules.ops_per_s),
            "p99_within_budget": models.percentile(99) <= BUDGET_MS[endpoint],
        }
    return {
        "endpoints": endpoints,
        "models": trained,
        "workload": {
            "scale": options.scale,
            "demo_seed": options.seed,
            "customers": CUSTOMERS,
            "shows": SHOWS,
            "connections": options.connections,
            "concurrency": options.concurrency,
            "seconds": options.seconds,
            "warmup_s": WARMUP_S,
            "replicas": options.replicas,
            "wrk_threads": WRK_THREADS,
            "sample_per_load": 2 * SAMPLE,
        },
        "run": options.run,  # names its schema and prefixes its Redis keys
        "request": "GET recommendations, GET a quote of an upcoming show (dynamic arm), each "
        "as the next customer; a fraud check of a checkout's features, in process",
    }


def table(measured: Sequence[Measured]) -> str:
    head = (
        f"{'endpoint':<16} {'gateway':<7} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'p99.9 ms':>8} {'errors':>6} {'model':>6} {'server CPU':>10} "
        f"{'machine':>7}"
    )
    lines = [head, "-" * len(head)]
    for m in measured:
        x = m.load
        cpu = f"{x.server_cpu:.2f}" if m.endpoint != "fraud" else "-"
        lines.append(
            f"{m.endpoint:<16} {m.gateway:<7} {x.ops_per_s:>8.1f} {_ms(x.percentile(50)):>7} "
            f"{_ms(x.percentile(90)):>7} {_ms(x.percentile(99)):>7} {_ms(x.percentile(99.9)):>8} "
            f"{m.failed:>6} {m.model_share:>6.0%} {cpu:>10} "
            f"{f'{x.machine_cpu:.2f}/{os.cpu_count()}':>7}"
        )
    return "\n".join(lines)


def _ms(value: float) -> str:
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def verdicts(doc: dict[str, Any]) -> list[str]:
    lines = []
    for endpoint, e in doc["endpoints"].items():
        models, budget = e["models"], e["budget_ms"]
        p99 = models["latency_ms"]["p99"]
        within = "within" if e["p99_within_budget"] else "OVER"
        answers = models["answers"]
        fallback = ", ".join(f"{r} {n:,}" for r, n in answers["fallback"].items()) or "none"
        lines.append(
            f"{endpoint}: p99 models/rules {e['ratio_p99']} ({_ms(p99)} / "
            f"{_ms(e['rules']['latency_ms']['p99'])} ms), req/s models/rules {e['ratio_rps']}; "
            f"p99 {_ms(p99)} ms {within} the {budget:g} ms budget"
        )
        line = f"  {answers['model']:,} calls answered by the {e['model']} model, "
        line += f"fallbacks: {fallback}"
        if "sample" in models:
            line += f"; sample {models['sample']['model']}/{models['sample']['requests']} model"
        if "model_latency_ms" in models:
            alone = models["model_latency_ms"]
            line += f"; the model's answers alone: p50 {_ms(alone['p50'])}, p99 "
            line += f"{_ms(alone['p99'])} ms"
        lines.append(line)
        # Quotes share the model's prices of a show for a few seconds: few calls, many answers.
        share = models["sample"]["model_share"] if "sample" in models else answers["model_share"]
        if doc["models"][e["model"]]["deployed"] and share < MOSTLY:
            lines.append(
                f"warning: {endpoint}: {share:.1%} of the answers came from the "
                f"model, the rest from the fallback: these figures are not the model's alone "
                f"(machine {models['machine_cpu_cores']:.2f} of {os.cpu_count()} cores busy)"
            )
    for kind, t in doc["models"].items():
        if not t.get("deployed"):
            lines.append(
                f"warning: {kind} did not pass its gate: not deployed, its calls fell back"
            )
    return lines


def plot(path: Path, measured: Sequence[Measured], title: str) -> None:
    """Latency percentiles per endpoint, models against rules, the budget as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = pairs(measured)
    fig, axes = plt.subplots(1, len(found), figsize=(5 * len(found), 4.2), squeeze=False)
    quantiles = [f"p{q:g}" for q in http.PERCENTILES]
    for ax, (endpoint, pair) in zip(axes[0], found.items(), strict=True):
        for name, colour in (("models", "tab:blue"), ("rules", "tab:gray")):
            load = pair[name].load
            ax.plot(
                quantiles,
                [load.latency_ms[q] for q in quantiles],
                marker="o",
                color=colour,
                label=f"{name}: {load.ops_per_s:,.0f}/s",
            )
        ax.axhline(
            BUDGET_MS[endpoint],
            color="tab:red",
            linestyle="--",
            label=f"budget {BUDGET_MS[endpoint]:g} ms",
        )
        ax.set_yscale("log")
        ax.set_title(f"{endpoint} ({ENDPOINTS[endpoint]})")
        ax.set_ylabel("latency (ms)")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.models", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--scale",
        type=report.positive(float, 1.0),
        default=0.1,
        help="demo data scale (0.1: 5,000 customers, a year of bookings)",
    )
    parser.add_argument("--seed", type=int, default=11, help="demo data seed (default 11)")
    parser.add_argument(
        "--seconds",
        type=report.positive(float, 300),
        default=10.0,
        help="measured seconds per load (after a 1 s warm-up)",
    )
    parser.add_argument("--connections", type=report.positive(int, 512), default=16)
    parser.add_argument(
        "--concurrency",
        type=report.positive(int, 512),
        default=16,
        help="fraud workers in this process",
    )
    parser.add_argument(
        "--replicas", type=report.positive(int, 4), default=1, help="Serve replicas per model"
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG of the latency percentiles here")
    args = parser.parse_args(argv)
    if not 0 <= args.seed < 2**32:
        parser.error("--seed must be in [0, 2**32)")
    if http.wrk_path() is None:
        parser.error("this benchmark needs wrk (apt-get install wrk)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark; 1 when a request failed or a deployed model never answered."""
    args = parse_args(argv)
    options = Options(
        scale=args.scale,
        seed=args.seed,
        seconds=args.seconds,
        connections=args.connections,
        concurrency=args.concurrency,
        replicas=args.replicas,
        database_url=args.database_url,
        redis_url=args.redis_url,
    )
    started = ensure_ray()
    try:
        measured, trained = run_models(options, report.say)
    finally:
        if started:
            import ray

            ray.shutdown()
    doc = document(options, measured, trained)
    print(table(measured))
    print("\n".join(verdicts(doc)))
    if args.json:
        report.write_json(args.json, doc)
    if args.plot:
        plot(
            args.plot,
            measured,
            f"Models vs rules: {options.connections} connections, {options.concurrency} fraud "
            f"workers, {options.seconds:g} s, {options.replicas} replica(s)",
        )
    failed = any(m.failed for m in measured) or any(
        m.gateway == "models"
        and trained[ENDPOINTS[m.endpoint]]["deployed"]
        and not (m.answers["model"] or m.sample["model"])
        for m in measured
    )
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("RAY_SERVE_LOG_TO_STDERR", "0")  # replicas' access logs: files only
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # undo everything on SIGTERM too
    sys.exit(main())
