"""`seatserver up` runs the whole system on the embedded defaults, `doctor` finds it healthy,
and the data survives a restart of `up`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import storage
from seatserver.runtime import read_runtime

pytestmark = pytest.mark.slow

SEATSERVER = [sys.executable, "-m", "seatserver.cli"]


def _clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEATSERVER_")}
    env["SEATSERVER_DATA_DIR"] = str(data_dir)
    env["SEATSERVER_HTTP_PORT"] = "0"  # a free port; `up` writes it to runtime.json
    env["SEATSERVER_LOCALSTRIPE_PORT"] = "0"
    env["SEATSERVER_MAIL_CATCHER_PORT"] = "0"
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


async def _use_the_gateway(url: str) -> None:
    """The page, the API and a demo account's login through the gateway `up` started."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/") as resp:
            assert resp.status == 200 and "<html" in (await resp.text()).lower()
        async with session.get(f"{url}/api/v1/cities") as resp:
            assert resp.status == 200 and (await resp.json())["cities"]
        login = {"email": storage.ADMIN_EMAIL, "password": storage.DEMO_PASSWORD}
        async with session.post(f"{url}/api/v1/auth/login", json=login) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["user"]["role"] == "admin", body


async def _pay_for_a_seat(runtime: Any, data_dir: Path) -> None:
    """A demo customer holds a seat, pays with the local Stripe's test card, is booked, and
    the confirmation mail lands in the mail catcher."""
    conn = await storage.connect(runtime.database_url, schema=runtime.database_schema)
    try:
        show = await conn.fetchval(
            """SELECT id FROM shows WHERE status = 'on_sale' AND starts_at > now() + interval '3h'
               ORDER BY starts_at LIMIT 1"""
        )
    finally:
        await conn.close()
    url = runtime.http_url
    async with aiohttp.ClientSession() as session:
        login = {"email": "user1@example.com", "password": storage.DEMO_PASSWORD}
        async with session.post(f"{url}/api/v1/auth/login", json=login) as resp:
            token = (await resp.json())["access_token"]

        async def post(path: str, body: dict[str, Any]) -> Any:
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
            async with session.post(f"{url}/api/v1{path}", json=body, headers=headers) as resp:
                answer = await resp.json()
                assert resp.status in (200, 201), answer
                return answer

        hold = await post(f"/shows/{show}/holds", {"count": 1, "category": "standard"})
        payment = await post(f"/shows/{show}/holds/{hold['hold_id']}/checkout", {})
        paid = await post(
            f"/payments/{payment['payment_id']}/confirm", {"payment_method": "pm_card_visa"}
        )
        assert paid["status"] == "booked" and paid["booking_id"]
    deadline = time.monotonic() + 30
    while not any(m["subject"].startswith("Your tickets") for m in _mail(data_dir)):
        assert time.monotonic() < deadline, "no confirmation mail was caught"
        await asyncio.sleep(0.5)


async def _models_trained(data_dir: Path, timeout: float = 300) -> dict[str, Any]:
    """`up` trains each model in the background; the version of each, once all are done."""
    from ml.artifacts import KINDS, ArtifactStore

    store = ArtifactStore(data_dir / "models")
    deadline = time.monotonic() + timeout
    while True:
        found = {kind: store.list(kind) for kind in KINDS}
        if all(found.values()):
            return {kind: versions[0] for kind, versions in found.items()}
        assert time.monotonic() < deadline, f"models not trained in time: {found}"
        await asyncio.sleep(1)


async def _recommended_by_the_model(url: str, timeout: float = 120) -> None:
    async with aiohttp.ClientSession() as session:
        login = {"email": "user1@example.com", "password": storage.DEMO_PASSWORD}
        async with session.post(f"{url}/api/v1/auth/login", json=login) as resp:
            headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
        deadline = time.monotonic() + timeout
        while True:
            async with session.get(f"{url}/api/v1/recommendations", headers=headers) as resp:
                body = await resp.json()
                assert resp.status == 200, body
            if body["source"] == "model" or body.get("fallback_reason") == "cold_start":
                return
            assert time.monotonic() < deadline, f"the recommender never answered: {body}"
            await asyncio.sleep(1)


def _mail(data_dir: Path) -> list[dict[str, str]]:
    from notifications.catcher import messages

    return messages(data_dir / "mail") if (data_dir / "mail").exists() else []


async def _second_gateway(data_dir: Path) -> None:
    """`seatserver gateway` joins the running instance as one more process, as on another
    machine: by the settings alone (``SEATSERVER_RAY_ADDRESS`` and the stores' URLs), with a
    data directory of its own that holds no runtime file."""
    runtime = read_runtime(data_dir)
    assert runtime is not None
    elsewhere = data_dir.parent / "another-machine"
    env = _clean_env(elsewhere) | {
        "SEATSERVER_RAY_ADDRESS": runtime.ray_address,
        "SEATSERVER_DATABASE_URL": runtime.database_url,
        "SEATSERVER_REDIS_URL": runtime.redis_url,
    }
    process = subprocess.Popen(
        [*SEATSERVER, "gateway", "--data-dir", str(elsewhere), "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = ""
        deadline = time.monotonic() + 120
        while "gateway: http://" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                pytest.fail(f"seatserver gateway exited with {process.returncode}")
        url = line.split("gateway: ", 1)[1].split()[0]
        async with aiohttp.ClientSession() as session, session.get(f"{url}/api/v1/ready") as resp:
            assert resp.status == 200, await resp.text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


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
        assert "[ok] ray" in report.stdout and "[ok] gateway" in report.stdout
        runtime = read_runtime(data_dir)
        assert runtime is not None and runtime.http_url is not None
        await _use_the_gateway(runtime.http_url)
        await _pay_for_a_seat(runtime, data_dir)
        await _second_gateway(data_dir)
        trained = await _models_trained(data_dir)
    finally:
        output = _stop(process)
    for kind in trained:
        assert f"models: training {kind}" in output, output[-3000:]
    assert "loading demo data" in output
    assert not (data_dir / "runtime.json").exists()
    theaters = await _count_theaters(data_dir)
    assert theaters >= 2

    process = _start_up(data_dir)
    try:
        _wait_until_up(process, data_dir)
        if trained["recommender"].gate.passed:  # deployed at start: the model answers
            runtime = read_runtime(data_dir)
            assert runtime is not None and runtime.http_url is not None
            await _recommended_by_the_model(runtime.http_url)
    finally:
        output = _stop(process)
    for kind, artifact in trained.items():
        if artifact.gate.passed:  # the versions that passed serve from the start
            assert f"models: {kind} {artifact.version} serving" in output, output[-3000:]
    assert "loading demo data" not in output  # the data survived; nothing was reloaded
    assert await _count_theaters(data_dir) == theaters
