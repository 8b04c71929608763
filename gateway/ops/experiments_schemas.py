"""Request and response shapes of the experiment endpoints (``gateway.ops.experiments``)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from gateway.schemas import Lenient, Strict

ExperimentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
ArmName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]
PRICING_ARMS = ("control", "dynamic")


class ExperimentPath(Lenient):
    name: ExperimentName


class ArmShare(Strict):
    arm: ArmName
    share: float = Field(ge=0, le=1, description="share of users hashed into this arm")


class ExperimentIn(Strict):
    name: ExperimentName
    kind: Literal["pricing", "generic"] = Field(
        default="generic",
        description="pricing: arms among control and dynamic, used by the pricing experiment "
        "the settings name; generic: any arms, decided by the same hash",
    )
    arms: list[ArmShare] = Field(min_length=2, max_length=10, description="in hash order")
    description: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _arms_make_sense(self) -> ExperimentIn:
        names = [a.arm for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names must differ")
        if not math.isclose(sum(a.share for a in self.arms), 1.0, abs_tol=1e-6):
            raise ValueError("the arms' shares must add up to 1")
        if self.kind == "pricing" and not set(names) <= set(PRICING_ARMS):
            raise ValueError("a pricing experiment's arms are control and dynamic")
        return self


class StopIn(Strict):
    arm: ArmName = Field(description="the arm everyone gets from now on")


class ExperimentOut(BaseModel):
    name: str
    kind: Literal["pricing", "generic"]
    arms: list[ArmShare]
    status: Literal["running", "stopped"]
    description: str
    started_at: dt.datetime
    stopped_at: dt.datetime | None
    stopped_by: int | None
    final_arm: str | None = Field(description="the arm everyone gets once stopped")


class ExperimentsOut(BaseModel):
    experiments: list[ExperimentOut]


class SignificanceOut(BaseModel):
    statistic: float
    p_value: float = Field(description="two-sided")
    df: float | None = Field(description="degrees of freedom (Welch); null for a z-test")


class LiftOut(BaseModel):
    absolute: float = Field(description="this arm minus control")
    absolute_ci: list[float] = Field(description="95 % interval of the difference")
    relative: float | None = Field(description="this arm / control − 1; null if control is 0")
    relative_ci: list[float] | None


class ArmResultOut(BaseModel):
    arm: str
    visitors: int
    converted: int = Field(description="visitors with a confirmed booking after exposure")
    bookings: int
    revenue: int = Field(description="minor units of the currency")
    revenue_per_visitor: float
    conversion: float
    conversion_lift: LiftOut | None = Field(description="against control; null for control")
    revenue_lift: LiftOut | None
    conversion_test: SignificanceOut | None = Field(
        description="two-proportion z-test against control"
    )
    revenue_test: SignificanceOut | None = Field(
        description="Welch's t-test on revenue per visitor"
    )


class CurrencyResultsOut(BaseModel):
    currency: str = Field(description="the currency of the visitors' first exposure")
    control: str
    arms: list[ArmResultOut]
    verdict: Literal["too_small", "significant", "not_significant"]
    note: str


class ExperimentDetailOut(ExperimentOut):
    computed_at: dt.datetime | None = Field(description="when the results were materialized")
    results: list[CurrencyResultsOut]
