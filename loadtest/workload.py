"""The contention workload, and the driver that runs it against any engine.

An *operation* is one hold attempt of ``per_hold`` random seats among the ``best`` seats of a
show, all or nothing, followed by the release of that hold when it was granted. Its latency runs
from sending the hold to the answer of the release (or of the refusal). Shows are skewed toward
one hot show: ``hot_share`` of the operations go to show 0, the rest spread evenly over all.

Every engine gets the same operations from the same driver: ``clients`` asyncio tasks in one
process, each doing one operation after the other. The driver also checks the one thing that
must never happen: a seat granted to a client while another client holds it (a double hold).

    >>> workload = Workload(shows=20, seats=400, clients=64, seconds=10.0)
    >>> result = await drive(engine, workload, progress=print)
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

ROW_LABELS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read as 1 and 0


@dataclass(frozen=True)
class Workload:
    shows: int = 20
    seats: int = 400
    clients: int = 64
    seconds: float = 10.0
    best: int = 60  # operations pick their seats among this many best seats of a show
    per_hold: int = 2
    hot_share: float = 0.5  # share of the operations that go to show 0
    warmup_s: float = 1.0  # run, but not counted, before the measured window
    seed: int = 1


class Engine(Protocol):
    """What the driver needs of a booking engine; ``show`` is an index 0 … shows-1."""

    name: str

    async def start(self, workload: Workload, layout: dict[str, Any]) -> None: ...

    async def hold(self, client: int, show: int, seats: tuple[str, ...]) -> Any | None:
        """A token for the granted hold, or None when a seat was taken (a conflict)."""

    async def release(self, client: int, show: int, token: Any) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Result:
    engine: str
    seconds: float
    ops: int = 0
    conflicts: int = 0
    double_holds: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    hold_latencies_ms: list[float] = field(default_factory=list, repr=False)  # the hold alone

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def percentile(self, q: float, *, holds_only: bool = False) -> float:
        """The q-th percentile latency (nearest rank) of an operation, or of its hold alone,
        in milliseconds."""
        samples = self.hold_latencies_ms if holds_only else self.latencies_ms
        if not samples:
            return math.nan
        ordered = sorted(samples)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1]

    def summary(self) -> dict[str, float | int]:
        return {
            "ops_per_s": round(self.ops_per_s, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "conflicts": self.conflicts,
            "double_holds": self.double_holds,
            "errors": self.errors,
        }


def plain_layout(seats: int) -> dict[str, Any]:
    """Rows of up to 25 standard seats with two aisles, in the JSON shape of ``screens.layout``.

    >>> len([s for row in plain_layout(400)["rows"] for s in row["seats"]])
    400
    """
    per_row = 25 if seats >= 25 else seats
    rows_needed = math.ceil(seats / per_row)
    if rows_needed > len(ROW_LABELS):
        raise ValueError(f"at most {len(ROW_LABELS) * per_row} seats")
    rows = []
    left = seats
    for r in range(rows_needed):
        label = ROW_LABELS[r]
        count = min(per_row, left)
        left -= count
        row = [
            {
                "label": f"{label}{n}",
                "category": "standard",
                "x": float(n + (n > 6) + (n > 19)),  # aisles after seats 6 and 19
                "y": float(r),
                "aisle_after": n in (6, 19),
            }
            for n in range(1, count + 1)
        ]
        rows.append({"label": label, "seats": row})
    sweet = {"x": (per_row + 2) / 2 + 0.5, "y": rows_needed * 0.6}
    return {"rows": rows, "sweet_spot": sweet}


def labels(layout: dict[str, Any]) -> list[str]:
    return [seat["label"] for row in layout["rows"] for seat in row["seats"]]


def best_seats(layout: dict[str, Any], count: int) -> tuple[str, ...]:
    """The ``count`` seats nearest the layout's sweet spot: the ones everybody wants."""
    spot = layout["sweet_spot"]
    seats = [seat for row in layout["rows"] for seat in row["seats"]]
    seats.sort(key=lambda s: ((s["x"] - spot["x"]) ** 2 + (s["y"] - spot["y"]) ** 2, s["label"]))
    return tuple(seat["label"] for seat in seats[:count])


def new_id() -> str:
    """A random 128-bit id in UUID form, without ``uuid.uuid4``'s system call (every engine's
    holds use it, so none pays more than another)."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def pick_show(rng: random.Random, workload: Workload) -> int:
    if rng.random() < workload.hot_share:
        return 0
    return rng.randrange(workload.shows)


async def drive(
    engine: Engine, workload: Workload, best: Sequence[str], say: Callable[[str], None]
) -> Result:
    """Run ``workload`` against a started engine; ``say`` gets a progress line a second."""
    result = Result(engine.name, workload.seconds)
    holders: dict[tuple[int, str], int] = {}  # (show, seat) -> the client the engine granted it
    start = time.perf_counter()
    counted_from = start + workload.warmup_s
    deadline = counted_from + workload.seconds

    async def client(index: int) -> None:
        rng = random.Random(workload.seed * 100_003 + index)
        while (began := time.perf_counter()) < deadline:
            show = pick_show(rng, workload)
            seats = tuple(rng.sample(best, workload.per_hold))
            conflict = False
            try:
                token = await engine.hold(index, show, seats)
                held = time.perf_counter()
                if token is None:
                    conflict = True
                else:
                    _granted(holders, result, index, show, seats)
                    _released(holders, index, show, seats)  # before the engine frees them
                    await engine.release(index, show, token)
            except Exception as exc:  # an engine failure is counted, not fatal to the run
                result.errors += 1
                if result.errors <= 3:
                    say(f"{engine.name}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.01)
                continue
            if began >= counted_from:
                result.ops += 1
                result.conflicts += conflict
                result.latencies_ms.append((time.perf_counter() - began) * 1000)
                result.hold_latencies_ms.append((held - began) * 1000)

    async def report() -> None:
        while True:
            await asyncio.sleep(1.0)
            elapsed = time.perf_counter() - start
            say(f"{engine.name}: {elapsed:5.1f} s, {result.ops} ops, {result.conflicts} conflicts")

    reporter = asyncio.create_task(report())
    try:
        await asyncio.gather(*(client(i) for i in range(workload.clients)))
    finally:
        reporter.cancel()
    return result


def _granted(
    holders: dict[tuple[int, str], int],
    result: Result,
    index: int,
    show: int,
    seats: tuple[str, ...],
) -> None:
    for seat in seats:
        other = holders.get((show, seat))
        if other is not None and other != index:
            result.double_holds += 1
        holders[(show, seat)] = index


def _released(
    holders: dict[tuple[int, str], int], index: int, show: int, seats: tuple[str, ...]
) -> None:
    for seat in seats:
        if holders.get((show, seat)) == index:
            del holders[(show, seat)]
