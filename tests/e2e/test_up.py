"""`seatserver up` runs the whole system on the embedded defaults, `doctor` finds it healthy,
and the data survives a restart of `up`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import storage

pytestmark = pytest.mark.slow

SEATSERVER = [sys.executable, "-m", "seatserver.cli"]


def _clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEATSERVER_")}
    env["SEATSERVER_DATA_DIR"] = str(data_dir)
    return env


def _start_up(data_dir: Path, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SEATSERVER, "up", "--data-dir", str(data_dir), *flags],
        env=_clean_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until_up(process: subprocess.Popen[str], data_dir: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not (data_dir / "runtime.json").exists():
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"seatserver up exited with {process.returncode}:\n{output}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("seatserver up did not come up in time")
        time.sleep(0.5)


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"seatserver up did not stop on SIGTERM:\n{output}")
    assert process.returncode == 0, output
    return output


def _doctor(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEATSERVER, "doctor", "--data-dir", str(data_dir)],
        env=_clean_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _count_theaters(data_dir: Path) -> int:
    server = storage.start_postgres(data_dir)
    try:
        conn = await storage.connect(server.url)
        try:
            count: int = await conn.fetchval("SELECT count(*) FROM theaters")
            return count
        finally:
            await conn.close()
    finally:
        server.stop()


async def test_up_answers_doctor_and_keeps_data_across_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    before = _doctor(data_dir)
    assert before.returncode == 1 and "seatserver up" in before.stdout

    process = _start_up(data_dir, "--demo-scale", "0.02")
    try:
        _wait_until_up(process, data_dir)
        report = _doctor(data_dir)
        assert report.returncode == 0, report.stdout + report.stderr
        assert "[ok] postgres" in report.stdout and "[ok] redis" in report.stdout
        assert "[ok] ray" in report.stdout
    finally:
        output = _stop(process)
    assert "loading demo data" in output
    assert not (data_dir / "runtime.json").exists()
    theaters = await _count_theaters(data_dir)
    assert theaters >= 2

    process = _start_up(data_dir)
    try:
        _wait_until_up(process, data_dir)
    finally:
        output = _stop(process)
    assert "loading demo data" not in output  # the data survived; nothing was reloaded
    assert await _count_theaters(data_dir) == theaters
