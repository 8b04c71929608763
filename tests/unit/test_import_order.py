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
