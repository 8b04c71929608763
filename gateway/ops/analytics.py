"""(to be written)"""

from __future__ import annotations

from gateway.endpoint import Endpoint
from gateway.ops.jobs import Job

ENDPOINTS: tuple[Endpoint, ...] = ()
JOBS: tuple[Job, ...] = ()
