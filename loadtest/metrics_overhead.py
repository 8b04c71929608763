"""What the metrics and request ids cost: the host's bookkeeping per command, and the gateway's
per request, in-process (no I/O, so the figures are the code's own cost).

    python -m loadtest.metrics_overhead                 # 7 rounds of 5,000 holds + releases
    python -m loadtest.metrics_overhead --rounds 3 --json out/metrics.json --plot out/metrics.png

Host: one seat map of 600 seats takes hold/release pairs, each command carrying a
request id, through ``ShowHost._run`` (the baseline: the decision and its write-behind append)
and through ``ShowHost._observed`` (the same with the request id set on the context, the
decision timed into its histogram, the outcome counted and the show's load updated), in
alternating order (A B, B A, ...) so that the machine's drift falls on both alike. The figure:
microseconds a command, the best round of each (a shared machine's noise only ever adds), and
the ratio observed/baseline; and the bookkeeping alone (``_observed`` around a ``_run`` that
does nothing, less that nothing), which is steadier than the difference of two noisy figures.
Gateway: the microseconds the envelope adds to a request (request id in the context, the
request counted and timed) and that ``ShowClient`` adds to a command (the request id stamped
on it).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
import timeit
import types
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from seatserver.bootstrap import local_ray_environment

local_ray_environment()  # before anything imports Ray (``actors`` does): keep it on loopback

from actors import REQUEST_ID, HoldSeats, Layout, Release, SeatMap  # noqa: E402
from actors.host import HostConfig, ShowHost, _Slot  # noqa: E402
from actors.writebehind import ShowMeta, WriteBehind  # noqa: E402
from loadtest import report  # noqa: E402
from loadtest.workload import labels, plain_layout  # noqa: E402

PRICES = {"standard": 1200}


def _slot() -> _Slot:
    layout = plain_layout(600)
    seatmap = SeatMap.restore(
        "1", Layout.from_dict(layout), prices=PRICES, status="on_sale", version=0,
        holds=[], bookings=[], blocked=[], now=time.time(),
    )  # fmt: skip
    return _Slot(seatmap, ShowMeta(1, None, "USD"))


def _round(run: Callable[..., Any], writer: WriteBehind, pairs: int) -> float:
    """Microseconds a command through ``run`` (hold then release, ``pairs`` times)."""
    slot = _slot()
    seats = labels(plain_layout(600))
    commands = []
    for i in range(pairs):
        hold_id = str(uuid.uuid4())
        seat = (seats[i % len(seats)],)
        commands += [HoldSeats(hold_id, "7", seat, request_id="r-1"), Release(hold_id, "7", "r-1")]
    now = time.time()
    started = time.perf_counter()
    for command in commands:
        run(writer, slot, command, now)
    elapsed = time.perf_counter() - started
    writer._queue.clear()
    return elapsed / len(commands) * 1e6


def host_costs(rounds: int, pairs: int, say: Callable[[str], None]) -> dict[str, Any]:
    host = ShowHost("bench", HostConfig(database_url="unused", log_format=None))
    writer = WriteBehind(None, None, interval_s=0.01, batch_size=10**9, on_poisoned=print)
    base: list[float] = []
    observed: list[float] = []
    for i in range(rounds):
        sides = [(base, host._run), (observed, host._observed)]
        for found, run in sides if i % 2 == 0 else sides[::-1]:
            found.append(_round(run, writer, pairs))
        say(f"round {i + 1}/{rounds}: {base[-1]:.2f} us baseline, {observed[-1]:.2f} us observed")
    b, o = min(base), min(observed)
    return {
        "bookkeeping_us": round(_bookkeeping(), 2),
        "baseline_us": round(b, 2),
        "observed_us": round(o, 2),
        "ratio": round(o / b, 3),
        "median_baseline_us": round(statistics.median(base), 2),
        "median_observed_us": round(statistics.median(observed), 2),
    }


def _bookkeeping(number: int = 200_000) -> float:
    """Microseconds ``_observed`` adds around a ``_run`` that does nothing."""
    from actors.wire import Done

    host = ShowHost("bench", HostConfig(database_url="unused", log_format=None))
    done = Done(None)
    nothing = types.MethodType(lambda self, writer, slot, command, now: done, host)
    slot, command = _slot(), HoldSeats("h", "7", ("A1",), request_id="r-1")
    bare = timeit.timeit(lambda: nothing(None, slot, command, 0.0), number=number)
    host._run = nothing  # type: ignore[method-assign]
    wrapped = timeit.timeit(lambda: host._observed(None, slot, command, 0.0), number=number)  # type: ignore[arg-type]
    return (wrapped - bare) / number * 1e6


def gateway_costs(number: int = 200_000) -> dict[str, Any]:
    from gateway import metrics

    resource = types.SimpleNamespace(canonical="/api/v1/shows/{show_id}/holds")
    route = types.SimpleNamespace(resource=resource)
    request: Any = types.SimpleNamespace(
        method="POST", match_info=types.SimpleNamespace(route=route)
    )

    def envelope() -> None:
        REQUEST_ID.reset(REQUEST_ID.set("r-1"))
        metrics.observe_request(request, 201, 0.003, timed=True)

    command = HoldSeats("h", "7", ("A1",))
    per_request = timeit.timeit(envelope, number=number) / number * 1e6
    stamp = timeit.timeit(lambda: dataclasses.replace(command, request_id="r-1"), number=number)
    return {
        "per_request_us": round(per_request, 2),
        "per_command_us": round(stamp / number * 1e6, 2),
    }


def plot(path: Path, host: dict[str, Any], gateway: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    bars = {
        "host: command": host["baseline_us"],
        "host: command\n+ bookkeeping": host["observed_us"],
        "host: the\nbookkeeping": host["bookkeeping_us"],
        "gateway: a\nrequest's share": gateway["per_request_us"],
        "gateway: a\ncommand's stamp": gateway["per_command_us"],
    }
    ax.bar(list(bars), list(bars.values()), color=["#999", "#369", "#369", "#693", "#693"])
    for x, v in enumerate(bars.values()):
        ax.annotate(f"{v:.1f}", (x, v), ha="center", va="bottom")
    ax.set_ylim(0, max(bars.values()) * 1.15)
    ax.set_ylabel("microseconds")
    ax.set_title(f"metrics and request ids: host x{host['ratio']} per command")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=report.positive(int, 50), default=7)
    parser.add_argument("--pairs", type=report.positive(int, 100_000), default=5000)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG here")
    args = parser.parse_args(argv)
    host = host_costs(args.rounds, args.pairs, report.say)
    gateway = gateway_costs()
    print(
        f"host: {host['baseline_us']} us a command, {host['observed_us']} us with its "
        f"bookkeeping: observed/baseline x{host['ratio']} (best rounds); the bookkeeping "
        f"alone {host['bookkeeping_us']} us a command"
    )
    print(
        f"gateway: +{gateway['per_request_us']} us a request (request id, count, time), "
        f"+{gateway['per_command_us']} us a command (request id stamped)"
    )
    if args.json:
        report.write_json(args.json, {"host": host, "gateway": gateway})
    if args.plot:
        plot(args.plot, host, gateway)
    return 0


if __name__ == "__main__":
    sys.exit(main())
