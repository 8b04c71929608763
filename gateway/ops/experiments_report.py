"""An experiment's results as operators read them: per currency, per arm, the visitors,
conversions and revenue per visitor, each arm's lift against control with a 95 % interval, a
two-proportion z-test on conversion and Welch's t-test on revenue per visitor (zeros included),
and whether the sample is large enough to conclude anything.

Pure: it takes the rows ``storage.experiments.results`` gives and returns plain dicts.
"""

from __future__ import annotations

from typing import Any

from gateway.ops import stats
from storage.experiments import ArmResult, Experiment

ALPHA = 0.05
MIN_EVENTS = 5  # converted and not converted per arm, for the normal approximation


def experiment_out(e: Experiment) -> dict[str, Any]:
    return {
        "name": e.name,
        "kind": e.kind,
        "arms": [{"arm": arm, "share": share} for arm, share in e.arms],
        "status": e.status,
        "description": e.description,
        "started_at": e.started_at.isoformat(),
        "stopped_at": None if e.stopped_at is None else e.stopped_at.isoformat(),
        "stopped_by": e.stopped_by,
        "final_arm": e.final_arm,
    }


def _revenue(r: ArmResult) -> stats.Moments:
    return stats.Moments(r.visitors, float(r.revenue), r.revenue_sq)


def _lift(control: stats.Moments, arm: stats.Moments) -> dict[str, Any]:
    found = stats.lift(control, arm)
    return {
        "absolute": found.absolute,
        "absolute_ci": list(found.absolute_ci),
        "relative": found.relative,
        "relative_ci": None if found.relative_ci is None else list(found.relative_ci),
    }


def _test(found: stats.Significance) -> dict[str, Any]:
    return {"statistic": found.statistic, "p_value": found.p_value, "df": found.df}


def _arm(r: ArmResult, control: ArmResult | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "arm": r.arm,
        "visitors": r.visitors,
        "converted": r.converted,
        "bookings": r.bookings,
        "revenue": r.revenue,
        "revenue_per_visitor": r.revenue / r.visitors if r.visitors else 0.0,
        "conversion": r.converted / r.visitors if r.visitors else 0.0,
        "conversion_lift": None,
        "revenue_lift": None,
        "conversion_test": None,
        "revenue_test": None,
    }
    if control is None or control.visitors == 0 or r.visitors == 0:
        return out
    c_conv = stats.proportion_moments(control.converted, control.visitors)
    a_conv = stats.proportion_moments(r.converted, r.visitors)
    out["conversion_lift"] = _lift(c_conv, a_conv)
    out["revenue_lift"] = _lift(_revenue(control), _revenue(r))
    z = stats.two_proportion_z(control.converted, control.visitors, r.converted, r.visitors)
    out["conversion_test"] = _test(z)
    out["revenue_test"] = _test(stats.welch_t(_revenue(control), _revenue(r)))
    return out


def _too_small(rows: list[ArmResult], min_visitors: int) -> list[str]:
    reasons = []
    for r in rows:
        if r.visitors < min_visitors:
            reasons.append(f"{r.arm} has {r.visitors} visitors (fewer than {min_visitors})")
        elif min(r.converted, r.visitors - r.converted) < MIN_EVENTS:
            reasons.append(f"{r.arm} has fewer than {MIN_EVENTS} conversions or non-conversions")
    return reasons


def _verdict(arms: list[dict[str, Any]], reasons: list[str]) -> tuple[str, str]:
    if reasons:
        return "too_small", "too small to conclude: " + "; ".join(reasons)
    found = [
        f"{a['arm']} {what} (p = {a[key]['p_value']:.3g})"
        for a in arms
        for what, key in (("conversion", "conversion_test"), ("revenue", "revenue_test"))
        if a[key] is not None and a[key]["p_value"] < ALPHA
    ]
    if found:
        return "significant", "differs from control at the 5 % level: " + ", ".join(found)
    return "not_significant", "no difference from control at the 5 % level"


def currency_results(
    experiment: Experiment, rows: list[ArmResult], *, min_visitors: int
) -> list[dict[str, Any]]:
    """One block per currency of the visitors' first exposure; every arm of the experiment
    appears in each (with zeros where nobody was exposed)."""
    control_name = experiment.control
    blocks = []
    for currency in sorted({r.currency for r in rows}):
        by_arm = {r.arm: r for r in rows if r.currency == currency}
        arms = [
            by_arm.get(name) or ArmResult(name, currency, 0, 0, 0, 0, 0.0, rows[0].computed_at)
            for name in experiment.arm_names
        ]
        control = by_arm.get(control_name)
        out = [_arm(r, None if r.arm == control_name else control) for r in arms]
        verdict, note = _verdict(out, _too_small(arms, min_visitors))
        blocks.append(
            {
                "currency": currency,
                "control": control_name,
                "arms": out,
                "verdict": verdict,
                "note": note,
            }
        )
    return blocks


def detail_out(
    experiment: Experiment, rows: list[ArmResult], *, min_visitors: int
) -> dict[str, Any]:
    return {
        **experiment_out(experiment),
        "computed_at": rows[0].computed_at.isoformat() if rows else None,
        "results": currency_results(experiment, rows, min_visitors=min_visitors),
    }
