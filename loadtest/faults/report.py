"""A fault run's report: ``history.json`` (everything recorded, to check again later),
``report.json`` (the figures), ``timeline.png`` (customers' calls a second, faults shaded) and
``report.md``, one page for people: how to replay the run, what the clients did, the faults and
the longest outage a customer saw in each, the violations (none expected), the security checks.

    violations = checker.check(history)
    page = write_report(history, violations, Path("out"), security=[r.as_dict() for r in results])
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtest.faults import checker
from loadtest.faults.checker.downtime import FAULT_TAIL_S, customer_calls
from loadtest.faults.checker.figures import outcome
from loadtest.faults.model import FAULT_KINDS, History, Violation
from loadtest.report import write_json

# Each fault kind's shade on the timeline.
COLORS = {
    "host_kill": "tab:red",
    "gateway_kill": "tab:purple",
    "webhook_outage": "tab:olive",
    "postgres_restart": "tab:blue",
    "redis_restart": "tab:brown",
}


def write_report(
    history: History,
    violations: Sequence[Violation],
    out_dir: Path,
    *,
    security: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write the four files into ``out_dir`` (made if missing); returns ``report.md``'s path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    found = list(violations)
    figures = checker.summary(history, found)
    outages = checker.unavailability(history)
    (out_dir / "history.json").write_text(json.dumps(history.to_json()) + "\n")
    write_json(
        out_dir / "report.json",
        {
            "summary": figures,
            "unavailability": outages,
            "violations": [asdict(v) for v in found],
            "security": [dict(r) for r in security or ()],
        },
    )
    plot(out_dir / "timeline.png", history)
    page = out_dir / "report.md"
    page.write_text(markdown(history, figures, outages, found, security))
    return page


def replay_command(history: History) -> str:
    seconds = max(1, round(history.ended - history.started))
    return f"python -m loadtest.faults --seed {history.seed} --seconds {seconds}"


def markdown(
    history: History,
    figures: Mapping[str, Any],
    outages: Mapping[str, Mapping[str, Any]],
    violations: Sequence[Violation],
    security: Sequence[Mapping[str, Any]] | None,
) -> str:
    """The one-page report."""
    counts = figures["violations"]
    total = sum(counts.values())
    began = dt.datetime.fromtimestamp(history.started, dt.UTC).isoformat(timespec="seconds")
    calls = sum(row["total"] for row in figures["operations"].values())
    lines = [
        f"# Fault run, seed {history.seed}",
        "",
        f"{began} · {figures['seconds']:.0f} s of load · {calls} operations · "
        f"{len(history.faults)} faults · {len(history.watchers)} seat-map watchers · "
        f"**violations: {total}** (0 expected).",
        "",
        f"Replay it: `{replay_command(history)}` (the seed draws the faults and the clients' "
        "choices; timing on a busy machine still varies).",
        "",
        *_operations(figures["operations"]),
        *_faults(figures["faults"], outages),
        *_violations(violations, counts),
        *(_security(security) if security is not None else []),
        *_watchers(figures["watchers"]),
        *_webhooks(figures["webhooks"]),
        "![Customers' calls a second, ok and unavailable, with each fault's span](timeline.png)",
        "",
    ]
    if history.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in history.notes), ""]
    return "\n".join(lines)


def _operations(operations: Mapping[str, Mapping[str, int]]) -> list[str]:
    rows = [
        f"| {op} | {row['total']} | {row['ok']} | {row['4xx']} | {row['unavailable']} |"
        for op, row in operations.items()
    ]
    return [
        "## Operations",
        "",
        "| op | calls | ok | 4xx | unavailable (no answer, 5xx, 429, ask again) |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
    ]


def _faults(
    faults: Mapping[str, Mapping[str, float]], outages: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    rows = []
    for kind in (*FAULT_KINDS, "none"):
        fault, worst = faults.get(kind, {"count": 0, "seconds": 0.0}), outages.get(kind, {})
        who = worst.get("client")
        seen = f"{worst.get('longest_s', 0.0):.1f} s" + (
            f" ({who}, at {worst['at_s']:.0f} s{'' if worst['recovered'] else ', never back'})"
            if who
            else ""
        )
        count = "–" if kind == "none" else int(fault["count"])
        down = "–" if kind == "none" else f"{fault['seconds']:.1f} s"
        rows.append(f"| {kind} | {count} | {down} | {seen} | {worst.get('runs', 0)} |")
    return [
        "## Faults",
        "",
        "| kind | count | time in fault | longest unavailability a customer saw | outages |",
        "|---|---:|---:|---|---:|",
        *rows,
        "",
        f"An outage runs from a customer's first call that got no answer, a 5xx, a 429 or "
        f"an ask-again (the first request still running, a confirmation not yet durable) until "
        f"that customer's next other answer (a 2xx, or a 4xx such as a sold-out show: the "
        f"service answered); it counts for the latest fault it overlaps, from the fault's "
        f'start to {FAULT_TAIL_S:g} s after it was put back ("none": it overlaps no fault).',
        "",
    ]


def _violations(violations: Sequence[Violation], counts: Mapping[str, int]) -> list[str]:
    if not violations:
        return ["## Violations", "", "None: every check held.", ""]
    listed = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
    return [
        "## Violations",
        "",
        f"{sum(counts.values())} (0 expected): {listed}.",
        "",
        *(f"- **{v.check}**: {v.message}" for v in violations),
        "",
    ]


def _security(results: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [
        f"| {r.get('name', '?')} | {_request(r)} | {_answer(r, 'expected')} | "
        f"{_answer(r, 'got')} | {'yes' if r.get('changed') else 'no'} | "
        f"{'yes' if r.get('passed') else _failed(r)} |"
        for r in results
    ]
    passed = sum(bool(r.get("passed")) for r in results)
    return [
        "## Security checks",
        "",
        f"{passed} of {len(results)} refused as expected with nothing changed.",
        "",
        "| check | request | expected | got | changed? | passed |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _failed(result: Mapping[str, Any]) -> str:
    detail = str(result.get("detail") or "").replace("|", "/").replace("\n", " ")
    return "**no**" + (f": {detail}" if detail else "")


def _request(result: Mapping[str, Any]) -> str:
    method, path = result.get("method"), result.get("path")
    return f"`{method} {path}`" if method or path else "–"


def _answer(result: Mapping[str, Any], side: str) -> str:
    """ "401 token_expired" from ``{side}_status`` and ``{side}_code``, else ``side`` as is."""
    status, code = result.get(f"{side}_status"), result.get(f"{side}_code")
    if status is None and code is None:
        return str(result.get(side, "–"))
    return " ".join(str(part) for part in (status, code) if part is not None)


def _watchers(watchers: Mapping[str, int]) -> list[str]:
    return [
        "## Seat-map watchers",
        "",
        f"{watchers['total']} watchers: {watchers['stayed_connected']} stayed connected, "
        f"{watchers['reconnected']} reconnected; each ended checked against its show's final "
        "seat map.",
        "",
    ]


def _webhooks(hooks: Mapping[str, int]) -> list[str]:
    left = hooks["received"] - hooks["processed"]
    return [
        "## Webhooks",
        "",
        f"{hooks['received']} provider notifications received, {hooks['processed']} processed; "
        f"{left} failed while a store was down and were never sent again (the local provider "
        "does not resend, Stripe would): the reconciler settled their payments, as the "
        "payment checks above show.",
        "",
    ]


def per_second(history: History) -> tuple[list[int], dict[str, list[int]]]:
    """Customers' calls started in each second of the run, by outcome (ok, 4xx,
    unavailable); watchers left out."""
    span = max(1, int(history.ended - history.started) + 1)
    counts: dict[str, Counter[int]] = {k: Counter() for k in ("ok", "4xx", "unavailable")}
    for calls in customer_calls(history).values():
        for call in calls:
            kind = outcome(call)
            second = int(call.started - history.started)
            if kind in counts and 0 <= second < span:
                counts[kind][second] += 1
    seconds = list(range(span))
    return seconds, {k: [c[s] for s in seconds] for k, c in counts.items()}


def plot(path: Path, history: History) -> None:
    """Customers' calls a second over the run, ok and unavailable (4xx thin), with each
    fault's span shaded and labelled by its kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    seconds, counts = per_second(history)
    for kind, color, width, style, label in (
        ("ok", "tab:green", 1.5, "-", "ok"),
        ("unavailable", "tab:red", 1.5, "-", "unavailable (no answer, 5xx, 429, ask again)"),
        ("4xx", "tab:orange", 0.8, ":", "4xx"),
    ):  # each second's count drawn over that second
        ax.step(seconds, counts[kind], where="post", color=color, lw=width, ls=style, label=label)
    _shade_faults(ax, history)
    ax.set_xlim(0, max(seconds[-1], 1))
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel("customers' calls started / s")
    ax.set_title(f"Fault run, seed {history.seed}")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _shade_faults(ax: Any, history: History) -> None:
    """Each fault's span shaded in its kind's colour (in the legend once), its kind written
    along its left edge."""
    shaded: set[str] = set()
    for fault in sorted(history.faults, key=lambda f: f.started):
        start, end = fault.started - history.started, fault.ended - history.started
        color = COLORS.get(fault.kind, "grey")
        legend = None if fault.kind in shaded else fault.kind
        shaded.add(fault.kind)
        ax.axvspan(start, max(end, start + 0.2), color=color, alpha=0.18, lw=0, label=legend)
        ax.annotate(
            fault.kind,
            (start, 1),
            xycoords=("data", "axes fraction"),
            xytext=(2, -4),
            textcoords="offset points",
            rotation=90,
            va="top",
            fontsize=7,
            color=color,
        )
