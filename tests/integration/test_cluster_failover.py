"""A lost Ray node: its show hosts start again on the node left, and every show answers again
with nothing acknowledged lost (DESIGN rules 5 and 6).

A second Ray node joins the session's Ray on this machine (``ray start --address ... --block``,
loopback only, a temporary directory and a process group of its own). The directory places
its hosts over both nodes, evenly, the first time; shows of both take bookings while that
node's processes are killed, as a crashed machine's would be. Every show must answer again
through the same client, with every confirmation it acknowledged in Postgres and in its seat
map, no seat in two bookings, and a show that had moved to a host of its own refused by its
old shared host. The README's drain is tested the same way: ``ray drain-node`` as the README
gives it, then what ``ray stop`` does on that node, to that node's processes only.

Also: a directory whose hosts were ended (``seatserver up`` stopping) serves again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import ray
from ray.core.generated.common_pb2 import NodeDeathInfo

import actors
from actors import Confirm, HoldBest, ShowClient
from tests.conftest import random_ref
from tests.integration.shows import grid_layout, make_show, start_engine, stop_engine

RAY_CLI = shutil.which("ray", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

pytestmark = pytest.mark.slow
needs_ray_cli = pytest.mark.skipif(
    RAY_CLI is None, reason="the `ray` command line is not installed"
)

NODE_RESOURCE = "failover_test_node"  # what the second node advertises: it is found by it
JOIN_TIMEOUT_S = 40.0  # the second node must have joined by then
RECOVERY_TIMEOUT_S = 60.0  # every show must answer again this long after the node is killed
EXPECTED_TERMINATION = NodeDeathInfo.Reason.Value("EXPECTED_TERMINATION")  # not missed heartbeats
STOP_GRACE_S = 16 / 3  # `ray stop`: 16 s of grace over its three kinds of process
SHARED_HOSTS = 4
SHOWS = 2 * SHARED_HOSTS
PAUSE_S = 0.3  # between two bookings of one show's customer: the house lasts the test

# `ray start` turns a loopback GCS address into this machine's routable one (so that other
# machines could reach the head): here the head listens on 127.0.0.1 only, so the one function
# that does it is bypassed and the node joins over loopback. The rest is Ray's own CLI.
LAUNCH = (
    "import runpy, sys\n"
    "from ray._private import services\n"
    "services.resolve_ip_for_localhost = lambda host: host\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


@dataclass
class Node:
    """The second Ray node: its ``ray start`` process (leader of its own process group)."""

    process: subprocess.Popen[bytes]
    log: Path
    temp_dir: Path
    node_id: str = ""
    children: dict[int, psutil.Process] = field(default_factory=dict)
    killed: bool = False

    def collect(self) -> None:
        """Remember every process of the node; Ray's workers leave the process group."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.children.setdefault(child.pid, child)

    def kill(self) -> None:
        """SIGKILL the node's process group and each of its processes, by id; once."""
        if self.killed:
            return
        self.killed = True
        self.collect()
        if self.process.poll() is None:  # not reaped yet: the group id is still ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        for child in self.children.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()  # psutil checks first that the pid is still that process
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """What `ray stop` does on a node, to this node's processes only: SIGTERM to its
        raylet (which tells the GCS that it ends, and ends its workers), then to the rest, each
        killed after the grace; then the `ray start --block` process, which `ray stop` leaves."""
        self.collect()
        raylets = [p for p in self.children.values() if _name(p) == "raylet"]
        assert raylets, f"no raylet among the node's processes:\n{self.tail()}"
        _terminate(raylets)
        _terminate([p for p in self.children.values() if p not in raylets])
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_GRACE_S)
        self.kill()  # whatever is left, as `ray stop` does after the grace

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def _name(process: psutil.Process) -> str:
    try:
        return str(process.name())
    except psutil.NoSuchProcess:
        return ""


def _terminate(processes: list[psutil.Process]) -> None:
    """SIGTERM each process (psutil checks first that the pid is still that process), then
    SIGKILL those still running after the grace."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=STOP_GRACE_S)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def _alive_node_with(resource: str) -> str | None:
    for node in ray.nodes():
        if node["Alive"] and node["Resources"].get(resource):
            return str(node["NodeID"])
    return None


@ray.remote(num_cpus=0)
class _Probe:
    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())


async def _schedulable(node: Node, deadline: float) -> None:
    """Wait until Ray's actor scheduler places actors on the new node: a node in the node
    table (which the directory places hosts by) is not yet in the raylets' resource view, and
    a host pinned to it before it is would fall back (its affinity is soft) to the head."""
    while True:
        probe = _Probe.options(resources={NODE_RESOURCE: 0.01}).remote()  # type: ignore[attr-defined]
        try:
            if await asyncio.wait_for(probe.node.remote(), 5.0) == node.node_id:
                break
        except (TimeoutError, ray.exceptions.RayError):
            pass
        finally:
            ray.kill(probe)
        if time.monotonic() > deadline:
            pytest.fail(f"no actor placed on the second node in {JOIN_TIMEOUT_S} s:\n{node.tail()}")
    await asyncio.sleep(0.5)  # the head's raylet hears of the node's resources as well


@pytest.fixture
async def second_node(ray_session: None) -> AsyncIterator[Node]:
    """A second Ray node on this machine, joined to the session's Ray; killed at the end."""
    gcs = ray.get_runtime_context().gcs_address
    assert gcs.startswith("127.0.0.1:"), "the session's Ray must be on loopback"
    temp_dir = Path(tempfile.mkdtemp(prefix="raynode"))  # short: socket paths have a limit
    log = temp_dir / "ray-start.log"
    command = [
        sys.executable,
        "-c",
        LAUNCH,
        str(RAY_CLI),
        "start",
        f"--address={gcs}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        f"--resources={json.dumps({NODE_RESOURCE: 1})}",
        "--object-store-memory=100000000",
        f"--temp-dir={temp_dir}",  # its ray_current_cluster file too: no other ray.init finds it
        "--dashboard-agent-listen-port=0",
        "--include-log-monitor=false",
        "--disable-usage-stats",
        "--block",
    ]
    # Ray's CLI refuses to join a cluster while this variable (set for the local Ray) is off.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    node = Node(process, log, temp_dir)
    try:
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while not (node_id := _alive_node_with(NODE_RESOURCE)):
            if process.poll() is not None:
                pytest.fail(f"`ray start` ended with {process.returncode}:\n{node.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the second node did not join in {JOIN_TIMEOUT_S} s:\n{node.tail()}")
            await asyncio.sleep(0.25)
        node.node_id = node_id
        node.collect()
        await _schedulable(node, deadline)
        yield node
    finally:
        node.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)


@dataclass
class Ledger:
    """What the clients were told: only acknowledged outcomes count."""

    booked: dict[int, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def book(self, show: int, booking: actors.Booking) -> None:
        self.booked.setdefault(show, {})[booking.booking_id] = booking.seats

    def error(self, exc: BaseException) -> None:
        code = getattr(exc, "code", type(exc).__name__)
        self.errors[code] = self.errors.get(code, 0) + 1


async def book(client: ShowClient, show: int, user: str, ledger: Ledger) -> None:
    hold = await client.execute(
        show, HoldBest(str(uuid.uuid4()), user, 2, "standard", allow_split=True)
    )
    booking = await client.execute(show, Confirm(hold.hold_id, user, str(uuid.uuid4())))
    ledger.book(show, booking)


async def keep_booking(
    client: ShowClient, show: int, worker: int, ledger: Ledger, stop: asyncio.Event
) -> None:
    """Hold and confirm two seats again and again (a new customer each time) until told."""
    for n in range(1, 10_000):
        if stop.is_set():
            return
        try:
            await book(client, show, str(worker * 100_000 + n), ledger)
        except actors.BookingError as exc:
            ledger.error(exc)
        await asyncio.sleep(PAUSE_S)


async def host_nodes(hosts: list[Any]) -> list[str]:
    return [(await host.describe.remote())["node_id"] for host in hosts]


async def describe(hosts: list[Any]) -> list[dict[str, Any]]:
    return [await host.describe.remote() for host in hosts]


def per_node(nodes: list[str]) -> dict[str, int]:
    return dict(Counter(nodes))


async def end_directory(directory: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(directory.shutdown.remote(), 30)
    ray.kill(directory, no_restart=True)


async def restarted(directory: Any, timeout_s: float = 30.0) -> list[Any]:
    """Crash the directory actor (Ray starts it again) and return its hosts once it answers."""
    ray.kill(directory, no_restart=False)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return list(await asyncio.wait_for(directory.hosts.remote(), 5.0))
        except (TimeoutError, ray.exceptions.RayError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.25)


async def answers_again(client: ShowClient, show: int, deadline: float) -> actors.Snapshot:
    """The show's seat map, asked until it answers (its host may be starting again)."""
    while True:
        try:
            return await client.snapshot(show)
        except actors.ShowUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.25)


async def live_bookings(pool: Any, show: int) -> dict[str, tuple[str, ...]]:
    rows = await pool.fetch(
        "SELECT booking_id, seats FROM bookings WHERE show_id = $1 AND status = 'confirmed'", show
    )
    return {str(r["booking_id"]): tuple(r["seats"]) for r in rows}


async def assert_every_acknowledged_booking_kept(
    client: ShowClient, pool: Any, ledger: Ledger, on_node: dict[int, str]
) -> None:
    """Every confirmation a customer was told of is in Postgres and in its show's seat map,
    and no seat of a show is in two bookings."""
    for show, node in on_node.items():
        in_db = await live_bookings(pool, show)
        lost = set(ledger.booked.get(show, {})) - set(in_db)
        assert not lost, f"show {show} (node {node[:8]}) lost confirmations {lost}"
        seats = [seat for booked in in_db.values() for seat in booked]
        assert len(seats) == len(set(seats)), f"show {show}: a seat is in two bookings"
        snapshot = await client.snapshot(show)
        assert {b.booking_id for b in snapshot.bookings} == set(in_db)
        taken = {s for s, st in snapshot.seats.items() if st == actors.SeatState.BOOKED}
        assert taken == set(seats)


@needs_ray_cli
async def test_lost_node_every_show_answers_again_with_nothing_acknowledged_lost(
    second_node: Node, database_url: str, schema: str, redis_url: str, pool: Any
) -> None:
    config = actors.HostConfig(database_url=database_url, schema=schema, redis_url=redis_url)
    directory = actors.start_directory(
        config, shared_hosts=SHARED_HOSTS, namespace=random_ref("ns")
    )
    client = ShowClient(directory)
    try:
        shared = await directory.hosts.remote()
        nodes = await host_nodes(shared)
        head = ray.get_runtime_context().get_node_id()
        assert per_node(nodes) == {head: 2, second_node.node_id: 2}, "placed on both, evenly"
        shows = [
            await make_show(pool, layout=grid_layout(rows=20, per_row=20), name=str(i))
            for i in range(SHOWS)
        ]
        on_node = {show: nodes[show % SHARED_HOSTS] for show in shows}  # before any move
        # A show whose shared host is on the node to be lost moves to a host of its own first.
        moved = next(s for s in shows if on_node[s] == second_node.node_id)
        old_host = shared[moved % SHARED_HOSTS]
        await directory.prepare_flash_sale.remote(moved)

        ledger = Ledger()
        for show in shows:  # bookings and a hold on every show, all stored before the loss
            for user in ("1", "2"):
                await book(client, show, user, ledger)
        kept = {
            show: await client.execute(show, HoldBest(str(uuid.uuid4()), "3", 2, "standard"))
            for show in shows
        }
        for host in await directory.hosts.remote():
            await host.flush.remote()

        stop = asyncio.Event()
        workers = [
            asyncio.create_task(keep_booking(client, show, 10 + i, ledger, stop))
            for i, show in enumerate(shows)
        ]
        await asyncio.sleep(1.0)
        booked_before = sum(len(b) for b in ledger.booked.values())
        second_node.kill()
        killed_at = time.monotonic()
        deadline = killed_at + RECOVERY_TIMEOUT_S
        for show in shows:
            await answers_again(client, show, deadline)
        recovered_in = time.monotonic() - killed_at
        await asyncio.sleep(1.0)  # bookings go on everywhere
        stop.set()
        await asyncio.gather(*workers)
        assert sum(len(b) for b in ledger.booked.values()) > booked_before, ledger.errors
        print(f"every show answered again {recovered_in:.1f} s after the node was killed")

        # The lost node's hosts run on the head now; the old shared host refuses the show
        # that moved away, though it started again without being told.
        hosts = await directory.hosts.remote()
        assert set(await host_nodes(hosts)) == {ray.get_runtime_context().get_node_id()}
        with pytest.raises(actors.ShowMoved):
            await old_host.snapshot.remote(moved)
        for host in hosts:
            await host.flush.remote()

        await assert_every_acknowledged_booking_kept(client, pool, ledger, on_node)
        for show in shows:
            snapshot = await client.snapshot(show)
            assert kept[show].hold_id in {h.hold_id for h in snapshot.holds}, "a stored hold"
            hold = await client.execute(show, HoldBest(str(uuid.uuid4()), "4", 1, "standard"))
            assert hold.seats  # and it takes new holds
    finally:
        await end_directory(directory)


async def drain(node: Node) -> None:
    """The README's `ray drain-node`, word for word, for this node of the session's Ray
    (``RAY_ADDRESS``: on a node of a cluster the address is found by itself)."""
    command = [
        str(RAY_CLI),
        "drain-node",
        "--node-id",
        node.node_id,
        "--reason",
        "DRAIN_NODE_REASON_PREEMPTION",
        "--reason-message",
        "maintenance",
        "--deadline-remaining-seconds",
        "60",
    ]
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, f"`ray drain-node` failed:\n{out.decode(errors='replace')}"


@needs_ray_cli
async def test_a_drained_node_hands_its_shows_over_with_nothing_acknowledged_lost(
    second_node: Node, database_url: str, schema: str, redis_url: str, pool: Any
) -> None:
    """The README's drain under load: `ray drain-node`, the node's hosts serving on while it
    drains, then its Ray stopped; Ray hears of the end from the raylet itself, at once, so
    every show answers again well before a lost node's heartbeats would have run out."""
    config = actors.HostConfig(database_url=database_url, schema=schema, redis_url=redis_url)
    directory = actors.start_directory(
        config, shared_hosts=SHARED_HOSTS, namespace=random_ref("ns")
    )
    client = ShowClient(directory)
    try:
        nodes = await host_nodes(await directory.hosts.remote())
        head = ray.get_runtime_context().get_node_id()
        assert per_node(nodes) == {head: 2, second_node.node_id: 2}, "placed on both, evenly"
        shows = [
            await make_show(pool, layout=grid_layout(rows=20, per_row=20), name=str(i))
            for i in range(SHOWS)
        ]
        on_node = {show: nodes[show % SHARED_HOSTS] for show in shows}
        drained = [show for show in shows if on_node[show] == second_node.node_id]

        ledger = Ledger()
        stop = asyncio.Event()
        workers = [
            asyncio.create_task(keep_booking(client, show, 10 + i, ledger, stop))
            for i, show in enumerate(shows)
        ]
        await asyncio.sleep(1.0)
        await drain(second_node)
        assert second_node.node_id in ray._private.state.state.get_draining_nodes()
        booked_draining = sum(len(ledger.booked.get(show, {})) for show in drained)
        await asyncio.sleep(1.0)  # a draining node's hosts serve on
        assert sum(len(ledger.booked.get(show, {})) for show in drained) > booked_draining

        booked_before = sum(len(b) for b in ledger.booked.values())
        stopped_at = time.monotonic()
        stopping = asyncio.create_task(asyncio.to_thread(second_node.stop))
        for show in shows:
            await answers_again(client, show, stopped_at + RECOVERY_TIMEOUT_S)
        recovered_in = time.monotonic() - stopped_at
        await stopping
        await asyncio.sleep(1.0)  # bookings go on everywhere
        stop.set()
        await asyncio.gather(*workers)
        assert sum(len(b) for b in ledger.booked.values()) > booked_before, ledger.errors
        print(f"every show answered again {recovered_in:.1f} s after the drained node's stop")
        (ended,) = [n for n in ray.nodes() if n["NodeID"] == second_node.node_id]
        assert not ended["Alive"]
        assert ended["DeathReason"] == EXPECTED_TERMINATION, "the raylet said it ended"

        hosts = await directory.hosts.remote()
        assert set(await host_nodes(hosts)) == {head}
        for host in hosts:
            await host.flush.remote()
        await assert_every_acknowledged_booking_kept(client, pool, ledger, on_node)
    finally:
        await end_directory(directory)


@needs_ray_cli
async def test_hosts_split_evenly_over_the_nodes_and_a_restarted_directory_keeps_them(
    second_node: Node, database_url: str, schema: str, redis_url: str, pool: Any
) -> None:
    """Six shared hosts go round-robin over the nodes in id order, three to a node; two
    flash-sale hosts, each to the node with the fewest hosts (the first in order on a tie), one
    to a node. A directory that Ray starts again finds the same hosts, where they run, by name."""
    config = actors.HostConfig(database_url=database_url, schema=schema, redis_url=redis_url)
    directory = actors.start_directory(config, shared_hosts=6, namespace=random_ref("ns"))
    order = sorted([ray.get_runtime_context().get_node_id(), second_node.node_id])
    try:
        shared = await directory.hosts.remote()
        assert await host_nodes(shared) == order * 3
        for name in ("1", "2"):
            await directory.prepare_flash_sale.remote(await make_show(pool, name=name))
        hosts = await directory.hosts.remote()
        before = [(h["name"], h["pid"], h["node_id"]) for h in await describe(hosts)]
        assert [node for _, _, node in before] == order * 4

        again = await restarted(directory)
        found = [(h["name"], h["pid"], h["node_id"]) for h in await describe(again)]
        assert sorted(found) == sorted(before)  # Ray lists the named flash-sale hosts unordered
    finally:
        await end_directory(directory)


async def test_a_directory_whose_hosts_were_ended_starts_them_again(
    ray_session: None, database_url: str, schema: str, redis_url: str, pool: Any
) -> None:
    """`seatserver up` ends every host when it stops; a gateway still running, and `up`
    started again, find the directory serving, and each show as Postgres has it."""
    engine = await start_engine(database_url, schema, redis_url)
    try:
        show = await make_show(pool)
        hold = await engine.client.execute(show, HoldBest(str(uuid.uuid4()), "1", 2, "standard"))
        await engine.directory.shutdown.remote()
        snapshot = await engine.client.snapshot(show)  # the old host is gone: asks again
        assert [h.hold_id for h in snapshot.holds] == [hold.hold_id]
        again = actors.start_directory(engine.config, shared_hosts=2, namespace=engine.namespace)
        assert await again.host_for.remote(show) == await engine.directory.host_for.remote(show)
        later = await engine.client.execute(show, HoldBest(str(uuid.uuid4()), "2", 1, "standard"))
        assert later.seats
    finally:
        await stop_engine(engine)
