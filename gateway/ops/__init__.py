"""What operators and the team see and steer: business figures and the booking funnel
(``analytics``), forecasts of every upcoming show (``forecasts``), experiments
(``experiments``) and the models' health with its alerts (``monitoring``).

Each module gives its endpoints (``ENDPOINTS``, joined into the gateway's one table) and its
periodic jobs (``JOBS``, run by ``gateway.ops.jobs`` in every gateway whose config enables
them, each job once per interval across all gateways).
"""

from __future__ import annotations

from gateway.endpoint import Endpoint
from gateway.ops import analytics, experiments, forecasts, monitoring
from gateway.ops.config import OpsConfig
from gateway.ops.jobs import Job, jobs_ctx

ENDPOINTS: tuple[Endpoint, ...] = (
    analytics.ENDPOINTS + forecasts.ENDPOINTS + experiments.ENDPOINTS + monitoring.ENDPOINTS
)
JOBS: tuple[Job, ...] = analytics.JOBS + forecasts.JOBS + experiments.JOBS + monitoring.JOBS

__all__ = ["ENDPOINTS", "JOBS", "Job", "OpsConfig", "jobs_ctx"]
