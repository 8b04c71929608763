"""The fault-injection suite's short form: a mixed load on a stack of its own while every kind
of fault hits it once, at moments drawn from a seed; then the history checker finds no
violation, the security checks are all refused rightly, and the report says so.

The seed is printed (and is in the report): ``SEATSERVER_FAULT_SEED=N`` replays a run, as does
``python -m loadtest.faults --short --seed N --seconds S``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loadtest.faults.model import FAULT_KINDS
from loadtest.faults.runner import RunOptions, new_seed, run_faults

pytestmark = pytest.mark.slow

SECONDS = 36.0  # of load: room for each kind of fault once, the service back between them
HOLD_TTL_S = 8.0  # short: holds expire during the run, some while their payment is on the way


def _seed() -> int:
    given = os.environ.get("SEATSERVER_FAULT_SEED")
    if given is None:
        return new_seed()
    if not given.isdigit() or int(given) < 1:
        raise pytest.UsageError(f"SEATSERVER_FAULT_SEED={given!r}: a positive integer, please")
    return int(given)


async def test_every_fault_once_under_load_and_the_history_holds(
    ray_session: None, tmp_path: Path
) -> None:
    seed = _seed()
    print(f"fault seed {seed} (replay: SEATSERVER_FAULT_SEED={seed})")
    options = RunOptions(
        seed=seed, seconds=SECONDS, out_dir=tmp_path / "report", short=True, hold_ttl_s=HOLD_TTL_S
    )
    outcome = await run_faults(options, print)

    history = outcome.history
    injected = {fault.kind for fault in history.faults}
    assert injected == set(FAULT_KINDS), f"seed {seed}: faults injected {sorted(injected)}"
    ops = {call.op for call in history.calls if call.ok}
    assert {"hold", "checkout", "pay", "cancel", "queue_join", "queue_hold"} <= ops, sorted(ops)
    assert history.final is not None and history.final.bookings, "nothing was booked"
    assert history.watchers and all(w.messages for w in history.watchers)

    listed = "\n".join(f"  {v.check}: {v.message}" for v in outcome.violations[:30])
    assert not outcome.violations, f"seed {seed}: {len(outcome.violations)} violations\n{listed}"
    failed = "\n".join(str(s) for s in outcome.security_failures)
    assert not outcome.security_failures, f"security checks not refused rightly:\n{failed}"
    assert outcome.security, "no security check ran"

    text = outcome.report.read_text()
    assert f"--seed {seed}" in text and "timeline.png" in text
    assert (outcome.report.parent / "timeline.png").stat().st_size > 0
