"""The statistics of an experiment, in plain Python (no numpy or scipy in the gateway).

    normal_cdf(1.96)                         # 0.975…
    student_t_cdf(2.0, df=10)                # 0.963…
    two_proportion_z(120, 1000, 150, 1000)   # Significance(statistic=…, p_value=…)
    welch_t(control, treatment)              # from each arm's count, sum and sum of squares

The normal CDF comes from ``math.erfc``; Student's t CDF from the regularized incomplete beta
function, evaluated by its continued fraction (modified Lentz, as in Numerical Recipes §6.4).
The tests check every function against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 500


@dataclass(frozen=True)
class Significance:
    statistic: float
    p_value: float  # two-sided
    df: float | None = None  # degrees of freedom (Welch), None for a z-test


@dataclass(frozen=True)
class Moments:
    """A sample summarized as its count, sum and sum of squares (what SQL gives per arm)."""

    n: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The unbiased sample variance (0 with fewer than two values)."""
        if self.n < 2:
            return 0.0
        spread = self.total_sq - self.total * self.total / self.n
        return max(spread, 0.0) / (self.n - 1)


def normal_cdf(x: float) -> float:
    """P(Z <= x) for a standard normal Z."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_quantile(p: float) -> float:
    """The x with ``normal_cdf(x) == p`` (bisection on the lower tail; 0 < p < 1)."""
    if p > 0.5:
        return -normal_quantile(1.0 - p)
    return _invert(normal_cdf, p, -40.0, 40.0)


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS + 1):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    t2 = t * t
    if t2 < df:  # near the centre: the complement, whose argument keeps its precision
        tail = 0.5 - 0.5 * incomplete_beta(0.5, df / 2.0, t2 / (df + t2))
    else:
        tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t2))
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The t with ``student_t_cdf(t, df) == p`` (bisection on the lower tail; 0 < p < 1)."""
    if p > 0.5:
        return -student_t_quantile(1.0 - p, df)
    return _invert(lambda t: student_t_cdf(t, df), p, -1e6, 1e6)


def _invert(cdf: Callable[[float], float], p: float, low: float, high: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError("p must be within (0, 1)")
    for _ in range(200):
        mid = (low + high) / 2.0
        if cdf(mid) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, abs(mid)):
            break
    return (low + high) / 2.0


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> Significance:
    """Two-sided z-test of p1 == p2 with the pooled proportion (``x`` successes of ``n``)."""
    if n1 <= 0 or n2 <= 0:
        return Significance(0.0, 1.0)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return Significance(0.0, 1.0)
    z = (x2 / n2 - x1 / n1) / se
    return Significance(z, min(1.0, 2.0 * normal_cdf(-abs(z))))


def welch_t(a: Moments, b: Moments) -> Significance:
    """Two-sided Welch's t-test of mean(a) == mean(b); the statistic is b's mean minus a's."""
    if a.n < 2 or b.n < 2:
        return Significance(0.0, 1.0, None)
    va, vb = a.variance / a.n, b.variance / b.n
    se2 = va + vb
    if se2 <= 0.0:
        return Significance(0.0, 1.0, None)
    t = (b.mean - a.mean) / math.sqrt(se2)
    df = se2 * se2 / (va * va / (a.n - 1) + vb * vb / (b.n - 1))
    return Significance(t, min(1.0, 2.0 * student_t_cdf(-abs(t), df)), df)


@dataclass(frozen=True)
class Lift:
    """``arm − control``, absolute and relative to control, each with a 95 % interval."""

    absolute: float
    absolute_ci: tuple[float, float]
    relative: float | None  # None when control's mean is 0
    relative_ci: tuple[float, float] | None


def lift(control: Moments, arm: Moments, *, level: float = 0.95) -> Lift:
    """The difference of the means with a Welch interval (normal when a variance is missing),
    and the ratio to control's mean with a delta-method interval."""
    diff = arm.mean - control.mean
    va = arm.variance / arm.n if arm.n else 0.0
    vc = control.variance / control.n if control.n else 0.0
    se = math.sqrt(va + vc)
    test = welch_t(control, arm)
    q = 0.5 + level / 2.0
    crit = student_t_quantile(q, test.df) if test.df else normal_quantile(q)
    absolute_ci = (diff - crit * se, diff + crit * se)
    if control.mean == 0.0:
        return Lift(diff, absolute_ci, None, None)
    m_c, m_a = control.mean, arm.mean
    ratio = m_a / m_c - 1.0
    se_ratio = math.sqrt(va / m_c**2 + vc * m_a**2 / m_c**4)
    z = normal_quantile(q)
    return Lift(diff, absolute_ci, ratio, (ratio - z * se_ratio, ratio + z * se_ratio))


def proportion_moments(successes: int, n: int) -> Moments:
    """A 0/1 sample as ``Moments`` (its sum of squares is its sum)."""
    return Moments(n, float(successes), float(successes))
