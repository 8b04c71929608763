"""Reading the settings must not import Ray: the command line sets Ray's environment for a
local cluster (loopback, token auth) only after it has the settings, and Ray reads that
environment when it is first imported (a local `seatserver up` failed its token check so)."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import sys
from seatserver.settings import Settings
Settings()
heavy = sorted(m for m in ("ray", "actors", "gateway.app", "payments.saga") if m in sys.modules)
assert not heavy, heavy
"""


def test_reading_the_settings_imports_no_ray() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEATSERVER_", "RAY_"))}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


GATEWAY = """
import sys
import gateway.app, gateway.fraudcheck, gateway.pricing, gateway.risksignals, gateway.routes
# what the gateway loads on first use, inside its views and services:
import ml.artifacts, ml.fraud.rules, ml.pricing.arms, ml.pricing.facts, ml.pricing.optimizer
libraries = ("torch", "xgboost", "sklearn", "faiss", "matplotlib")
heavy = sorted(m for m in libraries if m in sys.modules)
assert not heavy, heavy
"""


def test_the_gateway_loads_no_model_library() -> None:
    """The gateway computes the models' inputs and falls back on their rules; the models
    themselves (torch, XGBoost, scikit-learn, faiss) load only in their Serve replicas."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEATSERVER_", "RAY_"))}
    done = subprocess.run(
        [sys.executable, "-c", GATEWAY], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
