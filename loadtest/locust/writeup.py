"""The one-page report (the driver's side): ``report.md`` with its PNGs and ``results.json``.

paths = write_report(out_dir, doc, suite)    # doc: ``suite.document(...)``
print(headline(doc))                         # the figures, a few lines for the terminal
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadtest.locust import analysis, plots
from loadtest.locust.analysis import rests_on
from loadtest.locust.scenarios import (
    HOLD_P99_GOAL_MS,
    READ_P99_GOAL_MS,
    SCENARIOS,
)
from loadtest.locust.suite import Suite, measured

CPU_COLUMNS = ("gateway", "show hosts", "postgres", "locust", "other")
HOW_TO_RUN = (
    "`python -m loadtest` runs it (`--quick`: 10 s a run; `--host URL`: against a running "
    "server; `--help` for the rest)"
)


def _ms(value: Any) -> str:
    return "–" if value is None else f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _num(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _title(label: str, scenario: str) -> str:
    title = SCENARIOS[scenario].title if scenario in SCENARIOS else label
    return title if label == scenario else f"{title}: {label}"


def write_report(out_dir: Path, doc: Mapping[str, Any], suite: Suite) -> dict[str, Path]:
    """PNGs, ``report.md`` and ``results.json`` in ``out_dir``; their paths by name."""
    paths = _plots(out_dir, doc, suite)
    paths["results"] = out_dir / "results.json"
    paths["results"].write_text(json.dumps(doc, indent=1) + "\n")
    paths["report"] = out_dir / "report.md"
    files = {k: v.name for k, v in paths.items()}
    paths["report"].write_text(markdown(doc, files, out_dir.resolve()))
    return paths


def _plots(out_dir: Path, doc: Mapping[str, Any], suite: Suite) -> dict[str, Path]:
    shown: list[plots.Shown] = []
    figures = doc["figures"]
    keep = {figures.get("mixed", {}).get("sustained", {}).get("label")}
    keep.add(figures.get("mixed", {}).get("first_missed", {}).get("label"))
    for result in suite.all_runs():
        origin = float(result.summary.get("marks", {}).get("started", 0.0))
        points = analysis.timeline(result.samples, origin)
        title = f"{_title(result.run.label, result.run.scenario)} ({result.run.users} users)"
        one = (title, points, measured(result)[0] - origin)
        plots.run_plot(out_dir / f"{result.run.label}.png", one)
        if result.run.scenario != "mixed" or result.run.label in keep:
            shown.append(one)
    paths: dict[str, Path] = {}
    if shown:
        paths["scenarios"] = out_dir / "scenarios.png"
        plots.overview_plot(paths["scenarios"], shown)
    if "mixed" in figures:
        paths["steps"] = out_dir / "mixed_steps.png"
        plots.steps_plot(paths["steps"], figures["mixed"]["steps"])
    cpu = {run["label"]: run["cpu"]["cores"] for run in doc["runs"] if run["cpu"]["cores"]}
    if cpu:
        paths["cpu"] = out_dir / "cpu.png"
        plots.cpu_plot(paths["cpu"], cpu, int(doc["machine"]["cores"] or 1))
    return paths


# -- the text -------------------------------------------------------------------------------


def headline(doc: Mapping[str, Any]) -> list[str]:
    """The figures the issue asks for, one line each."""
    f = doc["figures"]
    lines = []
    mixed = f.get("mixed", {})
    if "sustained" in mixed:
        s = mixed["sustained"]
        holds = (
            f"hold p99 {_ms(s['hold_p99_ms'])} < {HOLD_P99_GOAL_MS:g} over {rests_on(s['holds'])}"
            if s["holds"]
            else "no hold in the window"
        )
        lines.append(
            f"mixed day: {_num(s['per_s'])} requests/s sustained at {s['users']} users (read p99 "
            f"{_ms(s['read_p99_ms'])} < {READ_P99_GOAL_MS:g}, {holds}; "
            f"{_num(s['reads_per_write'])} reads per write); x{_num(s['ratio_to_health'], 3)} "
            "of GET /health's rate"
        )
    elif mixed:
        lines.append("mixed day: no step met both goals (see the steps)")
    if "first_missed" in mixed:
        m = mixed["first_missed"]
        lines.append(
            f"mixed day, next step: {m['users']} users, {_num(m['per_s'])} requests/s, hold p99 "
            f"{_ms(m['hold_p99_ms'])} over {rests_on(m['holds'])}; missed: "
            + "; ".join(m["reasons"])
        )
    if mixed.get("reads_per_write_all_steps"):
        lines.append(
            f"mixed day, all steps: {mixed['reads_per_write_all_steps']} reads per write "
            f"(aimed at {mixed['reads_per_write_goal']:g})"
        )
    if "bottleneck" in mixed:
        lines.append(f"bottleneck at the sustained load: {mixed['bottleneck']}")
    if "bottleneck_missed" in mixed:
        lines.append(f"at the step that missed: {mixed['bottleneck_missed']}")
    if "funnel" in f:
        c = f["funnel"]["completions"]
        lines.append(
            f"booking funnel: {_num(c['per_s'], 2)} completions/s at {f['funnel']['users']} users "
            f"(login to booked: p50 {_ms(c['p50_ms'])}, p99 {_ms(c['p99_ms'])})"
        )
    if "baseline" in f:
        b = f["baseline"]
        lines.append(
            f"baseline GET /health: {_num(b['per_s'])} requests/s at {b['users']} users, p99 "
            f"{_ms(b['p99_ms'])}"
        )
    if "browse" in f:
        b = f["browse"]
        lines.append(
            f"browse and search: {_num(b['per_s'])} requests/s at {b['users']} users, p99 "
            f"{_ms(b['p99_ms'])}; x{_num(b['ratio_to_health'], 3)} of GET /health's rate"
        )
    if "watchers" in f:
        w, c = f["watchers"], f["watchers"]["counters"]
        d = w["delta_latency"]
        lines.append(
            f"seat-map watchers: {w['watchers']} on websockets, {c.get('ws_messages', 0)} "
            f"messages, {c.get('ws_deltas', 0)} deltas, {c.get('ws_gaps', 0)} gaps; a seat change "
            f"to a watcher's screen p50 {_ms(d['p50_ms'])}, p99 {_ms(d['p99_ms'])}"
        )
    if "flash" in f:
        fl, a = f["flash"], f["flash"]["admissions"]
        lines.append(
            f"flash sale: {_num(a['per_s'], 2)} admissions/s (configured "
            f"{fl['admission_per_min'] / 60:.1f}/s), wait p50 {_ms(a['p50_ms'])}, p99 "
            f"{_ms(a['p99_ms'])}; hold with the admission token p99 {_ms(fl['hold']['p99_ms'])}"
        )
    return lines


def _where(out_dir: Path | None) -> str:
    return "" if out_dir is None else f" (`{out_dir}`)"


def _runs_table(doc: Mapping[str, Any]) -> list[str]:
    rows = [
        "| run | users | requests/s | failed | read p99 | hold p99 | write p99 | CPU: machine"
        " (gateway, hosts, postgres, locust, other) | counters |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for run in doc["runs"]:
        g = run["groups"]
        http = g.get("http", {})
        cores = run["cpu"]["cores"]
        shares = ", ".join(f"{cores.get(k, 0):.2f}" for k in CPU_COLUMNS)
        cpu = f"{run['cpu']['machine']:.2f} ({shares})"
        counters = ", ".join(f"{k} {v}" for k, v in sorted(run["counters"].items()))
        rows.append(
            f"| {run['label']} | {run['users']} | {_num(http.get('per_s'))} | "
            f"{http.get('failures', 0)} | {_ms(g.get('read', {}).get('p99_ms'))} | "
            f"{_ms(g.get('hold', {}).get('p99_ms'))} | {_ms(g.get('write', {}).get('p99_ms'))} | "
            f"{cpu} | {counters} |"
        )
    return rows


def markdown(doc: Mapping[str, Any], files: Mapping[str, str], out_dir: Path | None = None) -> str:
    """The report's text; ``out_dir``: where the run wrote its files (its ``--out``)."""
    o = doc["options"]
    lines = [
        "# Load test report",
        "",
        f"{doc['generated_at']} · {doc['machine']['cores']} cores · {doc['target']}. Each run "
        f"lasts {o['seconds']:g} s; its figures come from the window after every user has "
        "started. Goals of the mixed day: p99 of reads "
        f"< {READ_P99_GOAL_MS:g} ms and of holds < {HOLD_P99_GOAL_MS:g} ms, at most 1 % failed.",
        "",
        "## Figures",
        "",
        *[f"- {line}" for line in headline(doc)],
        "",
    ]
    for key, caption in (
        ("scenarios", "Throughput and latency over time, per scenario"),
        ("steps", "The mixed day's steps"),
        ("cpu", "CPU by process group"),
    ):
        if key in files:
            lines += [f"![{caption}]({files[key]})", ""]
    lines += ["## Runs", "", *_runs_table(doc), ""]
    lines += [
        "CPU is in cores busy on average during the window; `other` is the rest of the "
        "machine (other work on a shared machine). A plot per run (`<run>.png`) and "
        "`results.json` (every figure) go with this file; locust's CSVs (`<run>_stats.csv`, "
        "`_stats_history.csv`, `_failures.csv`) and every request (`<run>_samples.csv`) stay "
        f"in the run's `--out` directory{_where(out_dir)}, not in a copy of the report kept "
        "elsewhere.",
        "",
        f"Made by `{doc.get('command', 'python -m loadtest')}`. {HOW_TO_RUN}.",
        "",
    ]
    return "\n".join(lines)
