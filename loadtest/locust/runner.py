"""One locust run (the driver's side): the locust CLI, headless and bounded, in a process of its
own, with the CPU of every process group sampled while it runs.

    run = Run("funnel", "funnel", users=8, seconds=30, classes=("BookingFunnel",))
    result = await run_locust(target, run, out_dir, plan_dir, say)
    result.samples, result.summary["counters"], result.cpu

It writes ``out_dir/<label>_stats.csv``, ``_stats_history.csv``, ``_failures.csv`` and
``_exceptions.csv`` (locust's ``--csv --csv-full-history``, statistics reset once every user
has started), ``_samples.csv`` and ``_summary.json`` (``loadtest.locust.recorder``) and
``_locust.log``; the gateway's own histograms (request times, the phases of a hold, the hosts'
decisions) are read as the measured window opens and after the run
(``loadtest.locust.server_view``). Progress lines of the locust process are
relayed through ``say``. A run that overstays its time by ``GRACE_S`` is ended by its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.locust.analysis import SETTLE_S, Sample, read_samples
from loadtest.locust.cpu import CpuSampler
from loadtest.locust.scenarios import OUT_ENV, PLAN_ENV, Scenario, mixed_weights
from loadtest.locust.server_view import difference, scrape, summarize
from loadtest.locust.stack import Target

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
GRACE_S = 60.0
SAMPLE_S = 1.0
SPAWN_S = 2.0  # every user has started by then
READS_PER_WRITE = 100.0

Say = Callable[[str], None]


@dataclass(frozen=True)
class Run:
    """A scenario at one user count for a bounded time."""

    scenario: str
    label: str  # names its files, e.g. "mixed-u100"
    users: int
    seconds: float
    classes: tuple[str, ...]
    think_s: tuple[float, float] = (0.0, 0.0)
    fixed: Mapping[str, int] = field(default_factory=dict)
    plan: Mapping[str, Any] = field(default_factory=dict)  # more of the plan, or overrides

    @classmethod
    def of(cls, scenario: Scenario, *, users: int | None = None, seconds: float, **kw: Any) -> Run:
        users = scenario.users if users is None else users
        label = kw.pop("label", scenario.name)
        return cls(
            scenario.name,
            label,
            users,
            seconds,
            scenario.classes,
            scenario.think_s,
            dict(scenario.fixed),
            **kw,
        )


@dataclass
class RunResult:
    run: Run
    samples: list[Sample]
    summary: dict[str, Any]
    cpu: list[dict[str, Any]]
    exit_code: int
    files: Path  # the prefix of its files
    server: dict[str, Any] = field(default_factory=dict)  # ``server_view.summarize``

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.summary.get("counters", {}))


def plan_for(target: Target, run: Run) -> dict[str, Any]:
    plan = {key: value for key, value in target.plan.items() if key != "admin_token"}
    plan.update(
        think_s=list(run.think_s),
        fixed=dict(run.fixed),
        changers=run.fixed.get("SeatChanger", 1),
        mixed_weights=mixed_weights(READS_PER_WRITE),
        watch_s=min(15.0, max(2.0, run.seconds / 2)),
        progress_s=5.0,
    )
    plan.update(run.plan)
    return plan


def _argv(target: Target, run: Run, prefix: Path) -> list[str]:
    spawn_rate = max(1.0, run.users / SPAWN_S)
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(run.users),
        "--spawn-rate",
        f"{spawn_rate:g}",
        "--run-time",
        f"{max(1, round(run.seconds))}s",
        "--host",
        target.url,
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--reset-stats",
        "--only-summary",
        "--stop-timeout",
        "1",
        "--loglevel",
        "WARNING",
        *run.classes,
    ]


async def run_locust(
    target: Target, run: Run, out_dir: Path, plan_dir: Path, say: Say
) -> RunResult:
    """Run ``run`` against ``target``; its samples, summary and CPU samples."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / run.label
    plan_path = plan_dir / f"{run.label}.json"
    plan_path.write_text(json.dumps(plan_for(target, run)))
    env = {**os.environ, PLAN_ENV: str(plan_path), OUT_ENV: str(prefix)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    groups = await target.process_groups()
    before: list[Any] = [await _scrape(target)]  # replaced as the measured window opens
    with (out_dir / f"{run.label}_locust.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *_argv(target, run, prefix),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
            env=env,
        )
        sampler = CpuSampler(groups, locust_pid=process.pid)
        cpu: list[dict[str, Any]] = []
        sampling = asyncio.create_task(_sample(sampler, cpu))
        try:
            relay = _relay(process, log, run.label, say, lambda: _opened(target, before))
            await asyncio.wait_for(relay, run.seconds + GRACE_S)
            code = await process.wait()
        except TimeoutError:
            say(f"{run.label}: locust (pid {process.pid}) overstayed; ending it")
            code = await _end(process)
        finally:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            if process.returncode is None:
                await _end(process)
    if code not in (0, 1):  # 1: some requests failed, which the report shows
        raise RuntimeError(f"locust ended with {code}: see {prefix}_locust.log")
    summary_path = Path(f"{prefix}_summary.json")
    if not summary_path.exists():
        raise RuntimeError(f"locust wrote no summary: see {prefix}_locust.log")
    summary = json.loads(summary_path.read_text())
    samples = read_samples(Path(f"{prefix}_samples.csv"))
    server = summarize(difference(before[-1], await _scrape(target)))
    return RunResult(run, samples, summary, cpu, code, prefix, server)


async def _scrape(target: Target) -> Any:
    if target.metrics_url is None:
        return None
    return await asyncio.to_thread(scrape, target.metrics_url)


async def _relay(
    process: Any, log: Any, label: str, say: Say, spawned: Callable[[], Awaitable[None]]
) -> None:
    """Progress lines to ``say``, "spawned" to ``spawned`` (in the background), the rest of
    locust's stdout (its summary) to the log."""
    tasks = []
    while line := await process.stdout.readline():
        text = line.decode(errors="replace").rstrip()
        if text.startswith("progress "):
            say(f"{label}: {text.removeprefix('progress ')}")
        elif text == "spawned":
            tasks.append(asyncio.create_task(spawned()))
        else:
            log.write(line)
    await asyncio.gather(*tasks)


async def _opened(target: Target, before: list[Any]) -> None:
    """The gateway's metrics as the measured window opens (``SETTLE_S`` after spawning)."""
    await asyncio.sleep(SETTLE_S)
    scraped = await _scrape(target)
    if scraped is not None:
        before.append(scraped)


async def _sample(sampler: CpuSampler, out: list[dict[str, Any]]) -> None:
    await asyncio.to_thread(sampler.tick)  # sets the counters
    while True:
        await asyncio.sleep(SAMPLE_S)
        out.append(await asyncio.to_thread(sampler.tick))


async def _end(process: Any) -> int:
    """SIGTERM, then SIGKILL: the locust process, by its pid."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.returncode is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10.0)
    return int(process.returncode if process.returncode is not None else -9)
