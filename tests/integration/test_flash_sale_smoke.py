"""The flash-sale scenario, small, through its main function: locust's visitors in a process of
their own against one gateway, a local Stripe and show hosts on the session's Ray; the house
sells exactly out, no seat twice, nobody admitted twice, at about the configured rate; and
nothing is left behind."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest import flash_sale
from tests.gateway_support import leftovers


@pytest.mark.slow
def test_a_small_flash_sale_sells_exactly_out_at_the_rate(
    ray_session: None,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--visitors", "60", "--seats", "40", "--rate", "600", "--seconds", "45"]
    argv += ["--sale-lead", "3", "--database-url", database_url, "--redis-url", redis_url]
    argv += ["--out", str(tmp_path), "--json", str(tmp_path / "out.json")]
    argv += ["--plot", str(tmp_path / "out.png")]
    assert flash_sale.main(argv) == 0  # 1 when a check failed
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["checks"] == dict.fromkeys(out["checks"], True)
    seats, visitors = out["seats"], out["visitors"]
    assert (seats["sold"], seats["bookings"], seats["booked_twice"]) == (40, 20, [])
    assert visitors["got_seats"] == 20 and visitors["house_full"] == 40, visitors["outcomes"]
    assert 20 <= visitors["admitted"] == visitors["admitted_by_the_queue"] <= 60
    assert visitors["before_sale"] > 0  # some drew their place by lot
    assert out["errors"] == {}
    # Six seconds of admissions, sampled every half second: about the rate, not exactly.
    assert 0.75 <= out["admission"]["ratio"] <= 1.25, out["admission"]
    waits = out["wait_s"]["all"]
    assert 0 < waits["p50"] <= waits["p90"] <= waits["p99"] <= waits["max"] < 45
    assert (tmp_path / "out.png").stat().st_size > 0
    assert "checks: all passed" in capsys.readouterr().out
    assert asyncio.run(leftovers(database_url, redis_url, out["run"])) == ([], 0)


@pytest.mark.parametrize(
    "argv",
    [
        ["--visitors", "0"],
        ["--visitors", "5001"],
        ["--rate", "0"],
        ["--seats", "41"],
        ["--seats", "602"],
        ["--seconds", "1801"],
        ["--poll", "0.1"],
        ["--visitors", "1000", "--seats", "400", "--rate", "60", "--seconds", "180"],
    ],
)
def test_flags_are_validated(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        flash_sale.parse_args(argv)


def test_the_driver_leaves_gevent_to_the_visitors_process() -> None:
    """Locust patches the standard library as it loads: only the visitors' process may."""
    check = "import sys, loadtest.flash_sale; print(sorted({'locust', 'gevent'} & {*sys.modules}))"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
