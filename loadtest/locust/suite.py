"""The standard set (the driver's side): each scenario once at its users for a bounded time, the
mixed day stepped up until a step misses its goals, and the figures the report gives.

    suite = await run_suite(target, SuiteOptions(seconds=30), out_dir, say)
    doc = document(target, options, suite)      # JSON-ready: runs, steps, figures

Mixed-day steps double the users from ``start_users`` (at most ``max_steps`` steps, at most
``max_users``); after the first step that misses a goal, one more step halfway between it and
the last one that met them. A step with too few holds to judge (``analysis.MIN_HOLDS``) is
undecided: the steps go on. The sustained figure is the busiest step that met both goals.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.locust import analysis
from loadtest.locust.analysis import HTTP, Verdict
from loadtest.locust.cpu import mean_cores
from loadtest.locust.runner import READS_PER_WRITE, Run, RunResult, run_locust
from loadtest.locust.scenarios import HOLD, READ, SCENARIOS, STANDARD, WRITE
from loadtest.locust.stack import Target

Say = Callable[[str], None]
_NONE = analysis.stats([], 1.0)


@dataclass(frozen=True)
class SuiteOptions:
    seconds: float = 30.0  # each run's length
    scenarios: tuple[str, ...] = STANDARD
    start_users: int = 25  # the mixed day's first step
    max_users: int = 800
    max_steps: int = 6
    gateways: int = 1
    admission_per_min: int = 600


@dataclass
class Step:
    result: RunResult
    verdict: Verdict


@dataclass
class Suite:
    runs: dict[str, RunResult] = field(default_factory=dict)  # by scenario, but the mixed day
    steps: list[Step] = field(default_factory=list)  # the mixed day's

    def all_runs(self) -> list[RunResult]:
        return [*self.runs.values(), *(s.result for s in self.steps)]


def measured(result: RunResult) -> tuple[float, float]:
    return analysis.window(result.summary, result.samples)


def groups_of(result: RunResult) -> dict[str, analysis.Stats]:
    return analysis.by_group(result.samples, *measured(result))


async def run_suite(target: Target, options: SuiteOptions, out_dir: Path, say: Say) -> Suite:
    """Every scenario of ``options`` against ``target``; files in ``out_dir``."""
    plan_dir = Path(tempfile.mkdtemp(prefix="seatserver-locust-"))  # tokens inside: removed
    suite = Suite()
    try:
        for name in options.scenarios:
            if name == "mixed":
                suite.steps = await _mixed_steps(target, options, out_dir, plan_dir, say)
                continue
            run = Run.of(SCENARIOS[name], seconds=options.seconds)
            say(f"{name}: {SCENARIOS[name].title}, {run.users} users for {run.seconds:g} s")
            suite.runs[name] = await run_locust(target, run, out_dir, plan_dir, say)
            say(f"{name}: {_line(suite.runs[name])}")
    finally:
        shutil.rmtree(plan_dir, ignore_errors=True)
    return suite


def _line(result: RunResult) -> str:
    groups = groups_of(result)
    http = groups.get(HTTP)
    if http is None:
        return f"no HTTP requests; counters {result.counters}"
    counters = ", ".join(f"{k} {v}" for k, v in sorted(result.counters.items()))
    return (
        f"{http.per_s:,.0f} requests/s, p99 {http.p99:.0f} ms, {http.failures} failed; "
        f"{counters or 'no journeys'}"
    )


async def _mixed_steps(
    target: Target, options: SuiteOptions, out_dir: Path, plan_dir: Path, say: Say
) -> list[Step]:
    steps: list[Step] = []

    async def step(users: int) -> Step:
        scenario = SCENARIOS["mixed"]
        run = Run.of(scenario, users=users, seconds=options.seconds, label=f"mixed-u{users}")
        say(f"mixed: {users} users for {run.seconds:g} s")
        result = await run_locust(target, run, out_dir, plan_dir, say)
        verdict = analysis.judge_step(groups_of(result))
        outcome = "met the goals" if verdict.ok else "undecided" if verdict.undecided else "MISSED"
        say(f"mixed: {_line(result)}; {outcome}" + "".join(f"; {r}" for r in verdict.reasons))
        steps.append(Step(result, verdict))
        return steps[-1]

    users, best = options.start_users, 0
    for _ in range(options.max_steps):
        verdict = (await step(users)).verdict
        if not verdict.ok and not verdict.undecided:
            if best and users - best > 1:
                await step((best + users) // 2)
            break
        best = users if verdict.ok else best
        if users >= options.max_users:
            break
        users = min(options.max_users, users * 2)
    return steps


# -- the figures ------------------------------------------------------------------------------


def _stats(result: RunResult) -> dict[str, Any]:
    t0, t1 = measured(result)
    return {
        "label": result.run.label,
        "scenario": result.run.scenario,
        "users": result.run.users,
        "seconds": result.run.seconds,
        "window_s": round(t1 - t0, 2),
        "exit_code": result.exit_code,
        "groups": {k: v.as_dict() for k, v in analysis.by_group(result.samples, t0, t1).items()},
        "requests": {k: v.as_dict() for k, v in analysis.by_name(result.samples, t0, t1).items()},
        "counters": result.counters,
        "errors": result.summary.get("errors", {}),
        "cpu": mean_cores(result.cpu, t0, t1),
        "server": result.server,  # the gateway's own histograms: bucket bounds
    }


def _journey(result: RunResult, name: str) -> dict[str, Any]:
    return analysis.journey_stats(result.samples, *measured(result), name).as_dict()


def _step(step: Step) -> dict[str, Any]:
    groups = groups_of(step.result)
    reads = groups.get(READ)
    holds = groups.get(HOLD)
    writes = sum(groups[g].requests for g in (HOLD, WRITE) if g in groups)
    http = groups.get(HTTP)
    return {
        "users": step.result.run.users,
        "label": step.result.run.label,
        "ok": step.verdict.ok,
        "undecided": step.verdict.undecided,
        "reasons": step.verdict.reasons,
        "per_s": round(http.per_s, 1) if http else 0.0,
        "read_p99_ms": reads.as_dict()["p99_ms"] if reads else None,
        "hold_p99_ms": holds.as_dict()["p99_ms"] if holds else None,
        "holds": holds.requests if holds else 0,
        "failures": http.failures if http else 0,
        "reads_per_write": round(reads.requests / writes, 1) if reads and writes else None,
        "server_read_p99_le_ms": step.result.server.get(READ, {}).get("p99_le_ms"),
        "server_hold_p99_le_ms": step.result.server.get(HOLD, {}).get("p99_le_ms"),
        # The gateway's phases of a hold and of a seat-map read, and the hosts' decisions.
        "server_hold_phases": step.result.server.get("phases", {}).get("create_hold", {}),
        "server_seatmap_phases": step.result.server.get("phases", {}).get("seatmap", {}),
        "server_hold_decision": step.result.server.get("decision"),
    }


def figures(options: SuiteOptions, suite: Suite) -> dict[str, Any]:
    """What the report states, from the runs that were made (a missing scenario: None)."""
    cores = os.cpu_count() or 1
    out: dict[str, Any] = {}
    health = suite.runs.get("baseline")
    health_per_s = groups_of(health)[HTTP].per_s if health and HTTP in groups_of(health) else 0.0
    if health is not None:
        out["baseline"] = {"users": health.run.users, **groups_of(health)[HTTP].as_dict()}
    if (browse := suite.runs.get("browse")) is not None and HTTP in groups_of(browse):
        http = groups_of(browse)[HTTP]
        out["browse"] = {"users": browse.run.users, **http.as_dict()}
        out["browse"]["ratio_to_health"] = _ratio(http.per_s, health_per_s)
    if (watch := suite.runs.get("watchers")) is not None:
        out["watchers"] = _watchers(watch)
    if (funnel := suite.runs.get("funnel")) is not None:
        out["funnel"] = {
            "users": funnel.run.users,
            "completions": _journey(funnel, "booking (funnel)"),
            "hold": groups_of(funnel).get(HOLD, analysis.stats([], 1)).as_dict(),
            "counters": funnel.counters,
        }
    if (flash := suite.runs.get("flash")) is not None:
        out["flash"] = {
            "users": flash.run.users,
            "admission_per_min": options.admission_per_min,
            "admissions": _journey(flash, "flash admission (wait)"),
            "hold": groups_of(flash).get(HOLD, analysis.stats([], 1)).as_dict(),
            "counters": flash.counters,
        }
    if suite.steps:
        out["mixed"] = _mixed(suite, health_per_s, cores, options.gateways)
    return out


def _watchers(result: RunResult) -> dict[str, Any]:
    t0, t1 = measured(result)
    names = analysis.by_name(result.samples, t0, t1)
    empty = analysis.stats([], t1 - t0)
    changers = result.run.fixed.get("SeatChanger", 0)
    return {
        "watchers": result.run.users - changers,
        "changers": changers,
        "delta_latency": names.get("WS delta", empty).as_dict(),
        "connect": names.get("WS connect", empty).as_dict(),
        "counters": result.counters,
    }


def _mixed(suite: Suite, health_per_s: float, cores: int, gateways: int) -> dict[str, Any]:
    steps = [_step(s) for s in suite.steps]
    passing = [(s, step) for s, step in zip(steps, suite.steps, strict=True) if s["ok"]]
    failing = [
        (s, step)
        for s, step in zip(steps, suite.steps, strict=True)
        if not s["ok"] and not s["undecided"]
    ]
    reads = sum(groups_of(s.result).get(READ, _NONE).requests for s in suite.steps)
    writes = sum(
        groups_of(s.result).get(g, _NONE).requests for s in suite.steps for g in (HOLD, WRITE)
    )
    out: dict[str, Any] = {
        "steps": steps,
        "reads_per_write_goal": READS_PER_WRITE,
        # Bookings are rare at 100:1: a step's own ratio is noisy, all steps' less so.
        "reads_per_write_all_steps": round(reads / writes, 1) if writes else None,
    }
    if passing:
        best, step = max(passing, key=lambda pair: pair[0]["per_s"])
        cpu = mean_cores(step.result.cpu, *measured(step.result))
        out["sustained"] = {**best, "ratio_to_health": _ratio(best["per_s"], health_per_s)}
        out["bottleneck"] = analysis.bottleneck(cpu, cores, gateways) + _time(best)
        out["cpu"] = cpu
    if failing:
        first, step = min(failing, key=lambda pair: pair[0]["users"])
        cpu = mean_cores(step.result.cpu, *measured(step.result))
        out["first_missed"] = first
        out["bottleneck_missed"] = analysis.bottleneck(cpu, cores, gateways) + _time(first)
    return out


def _time(step: dict[str, Any]) -> str:
    """Where the reads' and holds' time went at a step, when the gateway's histograms say:
    outside the handlers or in them, and in which phase of a hold and of a seat-map read."""
    parts = [
        analysis.where_time_went("reads", step["read_p99_ms"], step["server_read_p99_le_ms"]),
        analysis.where_time_went("holds", step["hold_p99_ms"], step["server_hold_p99_le_ms"]),
        analysis.phase_at_p99(
            f"holds by phase ({analysis.rests_on(step['holds'])})",
            step["server_hold_phases"],
            step["server_hold_p99_le_ms"],
            step["server_hold_decision"],
        ),
        analysis.phase_at_p99("seat-map reads by phase", step["server_seatmap_phases"], None),
    ]
    return "".join(f". {part[0].upper()}{part[1:]}" for part in parts if part)


def _ratio(top: float, bottom: float) -> float | None:
    return round(top / bottom, 4) if bottom else None


def document(
    target: Target, options: SuiteOptions, suite: Suite, command: str = "python -m loadtest"
) -> dict[str, Any]:
    """Everything the report states, JSON-ready; ``command`` made it."""
    import datetime as dt
    import platform

    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "target": target.description,
        "command": command,
        "options": {
            "seconds": options.seconds,
            "scenarios": list(options.scenarios),
            "start_users": options.start_users,
            "max_users": options.max_users,
            "max_steps": options.max_steps,
            "gateways": options.gateways,
            "admission_per_min": options.admission_per_min,
        },
        "runs": [_stats(r) for r in suite.all_runs()],
        "figures": figures(options, suite),
    }
