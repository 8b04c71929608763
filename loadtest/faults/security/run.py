"""Running the security checks: every check in turn on a quiet stack, and the failures in
words."""

from __future__ import annotations

from loadtest.faults import model
from loadtest.faults.security.catalog import all_checks
from loadtest.faults.security.probe import SecurityResult, open_probe
from loadtest.faults.security.victim import Victim, require_plan


async def run_security_checks(plan: model.Plan, victim: Victim) -> list[SecurityResult]:
    """Send every check in turn on a quiet stack; each result says what came back and whether
    anything changed.

    >>> results = await run_security_checks(plan, await make_victim(plan))
    """
    require_plan(plan, admins=2)
    shows = sorted(
        {victim.show_id, victim.booking_show_id, *(a.show_id for a in plan.theater_admins)}
    )
    async with open_probe(plan, shows) as probe:
        checks = await all_checks(probe, victim)
        before = await probe.settle()
        if victim.hold_id not in before.live_holds:
            raise RuntimeError(
                f"A's hold {victim.hold_id} is not live: make the victim just before the checks"
            )
        results = []
        for check in checks:
            result, before = await probe.run(check, before)
            results.append(result)
    return results


def describe_failures(results: list[SecurityResult]) -> str:
    """One line per failed check: what was sent, what was expected, what came back."""
    lines = []
    for r in results:
        if r.passed:
            continue
        line = (
            f"[{r.group}] {r.name}: {r.method} {r.path} expected {r.expected_status} "
            f"{r.expected_code}, got {r.got_status} {r.got_code}"
        )
        if r.changed:
            line += f"; changed: {r.detail}"
        if r.audited is False:
            line += "; no audit row"
        lines.append(line)
    return "\n".join(lines) or "every check passed"
