"""A run's figures: operations by op and outcome, faults by kind, watchers, violations by
check."""

from __future__ import annotations

from collections import Counter
from typing import Any

from loadtest.faults.checker.verdict import check, violation_counts
from loadtest.faults.model import FAULT_KINDS, OPS, Call, History, Violation


def outcome(call: Call) -> str:
    """ "ok", "4xx", "unavailable" (no answer, 5xx, 429) or "other" (1xx, 3xx)."""
    if call.ok:
        return "ok"
    if call.unavailable:
        return "unavailable"
    return "4xx" if call.status is not None and 400 <= call.status < 500 else "other"


def summary(history: History, violations: list[Violation] | None = None) -> dict[str, Any]:
    """Operations by op and outcome, faults by kind (count, total seconds), watchers (stayed
    connected / reconnected), webhooks (received, processed), violations by check
    (``check(history)`` when not given)."""
    if violations is None:
        violations = check(history)
    operations: dict[str, Counter[str]] = {op: Counter() for op in OPS}
    for call in history.calls:
        operations.setdefault(call.op, Counter())[outcome(call)] += 1
    faults = {kind: {"count": 0, "seconds": 0.0} for kind in FAULT_KINDS}
    for fault in history.faults:
        row = faults.setdefault(fault.kind, {"count": 0, "seconds": 0.0})
        row["count"] += 1
        row["seconds"] = round(row["seconds"] + fault.ended - fault.started, 3)
    stayed = sum(w.stayed_connected for w in history.watchers)
    hooks = [] if history.final is None else history.final.webhooks
    processed = sum(hook.get("outcome") is not None for hook in hooks)
    return {
        "seed": history.seed,
        "seconds": round(history.ended - history.started, 3),
        "operations": {
            op: {"total": sum(c.values()), **{k: c[k] for k in ("ok", "4xx", "unavailable")}}
            | ({"other": c["other"]} if c["other"] else {})
            for op, c in operations.items()
            if c
        },
        "faults": faults,
        "watchers": {
            "total": len(history.watchers),
            "stayed_connected": stayed,
            "reconnected": len(history.watchers) - stayed,
        },
        # Events whose processing failed (a store down) stay unprocessed until the provider
        # sends them again; localstripe never does, so the reconciler settles their payments.
        "webhooks": {"received": len(hooks), "processed": processed},
        "violations": violation_counts(violations),
    }
