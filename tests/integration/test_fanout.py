"""The websocket seat-map fan-out on real Redis, Postgres and Ray: snapshot then deltas in
order, one subscription per show, bounded slow clients, gaps, the REST read from the same
mirror, bad client messages, unknown shows and shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

import actors
import gateway.fanout as fanout_module
from gateway import GatewayConfig, keys
from gateway.fanout import WRITE_HIGH, Fanout, make_details_loader
from gateway.ws import fanout_ctx, show_socket
from tests.integration.shows import Engine, grid_layout, make_show, start_engine, stop_engine

Serve = Callable[..., Awaitable[tuple[Any, web.Application]]]


@pytest.fixture
async def engine(
    ray_session: None, database_url: str, schema: str, redis_url: str, config: GatewayConfig
) -> AsyncIterator[Engine]:
    """Hosts that publish under this test's channel prefix (that of ``config``)."""
    started = await start_engine(
        database_url, schema, redis_url, channel_prefix=config.redis_prefix
    )
    # Wait for the hosts to start, so that no first snapshot is a cold start.
    hosts = await started.directory.hosts.remote()
    await asyncio.gather(*(host.stats.remote() for host in hosts))
    yield started
    await stop_engine(started)


@pytest.fixture
def serve(
    config: GatewayConfig,
    engine: Engine,
    pool: Any,
    redis: Any,
    aiohttp_client: Any,  # last: its server (and the fan-out) stops before Redis and Ray do
) -> Serve:
    """``client, app = await serve(ws_queue_limit=4)``: the websocket route alone on a tiny
    app with the fan-out's cleanup context, served by a real aiohttp server."""

    async def start(**overrides: Any) -> tuple[Any, web.Application]:
        app = web.Application()
        app[keys.CONFIG] = dataclasses.replace(config, **overrides)
        app[keys.REDIS] = redis
        app[keys.ENGINE] = engine.client
        app[keys.POOL] = pool
        app[keys.SOCKETS] = set()
        app.cleanup_ctx.append(fanout_ctx)
        app.router.add_get("/ws/shows/{show_id}", show_socket)
        return await aiohttp_client(app), app

    return start


@pytest.fixture
def channel(config: GatewayConfig) -> Callable[[int], str]:
    """The delta channel of a show, under this test's prefix."""
    return lambda show: actors.channel(show, config.redis_prefix)


def new_id() -> str:
    return str(uuid.uuid4())


async def receive(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    body: dict[str, Any] = json.loads(msg.data)
    return body


async def receive_type(ws: Any, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message, skipping heartbeats; it must be of ``kind``."""
    while True:
        body = await receive(ws, timeout)
        if body["type"] != "heartbeat":
            assert body["type"] == kind, body
            return body


async def closed_with(ws: Any, timeout: float = 10.0) -> tuple[int | None, str]:
    """Read to the end; the close code and reason."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.CLOSE:
                return msg.data, msg.extra or ""
            if msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING):
                return ws.close_code, ""
            assert msg.type is WSMsgType.TEXT, (msg.type, msg.data)


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    """Wait for ``condition()`` to hold (an event we cannot await directly)."""
    async with asyncio.timeout(timeout):
        while not await _holds(condition):
            await asyncio.sleep(0.01)


async def _holds(condition: Callable[[], Any]) -> bool:
    value = condition()
    if asyncio.iscoroutine(value):
        value = await value
    return bool(value)


async def subscribers(redis: Any, channel: str) -> int:
    [(_, count)] = await redis.pubsub_numsub(channel)
    return int(count)


async def no_subscribers(redis: Any, channel: str) -> bool:
    return await subscribers(redis, channel) == 0


def without_type(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "type"}


async def test_snapshot_then_deltas_in_order_and_the_rest_read_follows(
    serve: Serve, engine: Engine, pool: Any
) -> None:
    show = await make_show(pool)
    client, app = await serve()
    fanout = app[keys.FANOUT]
    ws = await client.ws_connect(f"/ws/shows/{show}")
    snapshot = await receive_type(ws, "snapshot")
    v = snapshot["version"]
    assert snapshot["show_id"] == show and len(snapshot["seats"]) == 60
    assert set(snapshot["seats"].values()) == {"available"}
    assert snapshot["layout"]["rows"][0]["seats"][0]["category"] == "wheelchair"
    version, body = await fanout.seatmap(show)
    assert (version, json.loads(body)) == (v, without_type(snapshot))

    first = await engine.client.execute(show, actors.HoldSeats(new_id(), "1", ("A1", "A2")))
    await engine.client.execute(show, actors.HoldSeats(new_id(), "2", ("B3",)))
    await engine.client.execute(show, actors.Release(first.hold_id, "1"))
    deltas = [await receive_type(ws, "delta") for _ in range(3)]
    assert [d["version"] for d in deltas] == [v + 1, v + 2, v + 3]
    assert [d["kind"] for d in deltas] == ["HoldPlaced", "HoldPlaced", "HoldReleased"]
    assert sorted(deltas[0]["changes"]) == [["A1", "held"], ["A2", "held"]]
    assert deltas[1]["changes"] == [["B3", "held"]] and deltas[1]["show_id"] == show
    assert sorted(deltas[2]["changes"]) == [["A1", "available"], ["A2", "available"]]

    # The REST read answers from the same mirror, already at the last delta, and agrees with
    # the actor and with what a socket that connects now is sent.
    version, body = await fanout.seatmap(show)
    seats = json.loads(body)["seats"]
    assert version == v + 3 and seats["B3"] == "held" and seats["A1"] == "available"
    actor = await engine.client.snapshot(show)
    assert seats == {label: str(state) for label, state in actor.seats.items()}
    late = await client.ws_connect(f"/ws/shows/{show}")
    assert without_type(await receive_type(late, "snapshot")) == json.loads(body)
    assert (await fanout.seatmap(show))[1] is body  # encoded once per version


async def test_many_sockets_share_one_subscription(
    serve: Serve, engine: Engine, pool: Any, redis: Any, channel: Callable[[int], str]
) -> None:
    show = await make_show(pool)
    other = await make_show(pool, name="2")
    client, app = await serve()
    fanout = app[keys.FANOUT]
    sockets = await asyncio.gather(*(client.ws_connect(f"/ws/shows/{show}") for _ in range(30)))
    others = await asyncio.gather(*(client.ws_connect(f"/ws/shows/{other}") for _ in range(3)))
    versions = {(await receive_type(ws, "snapshot"))["version"] for ws in sockets}
    for ws in others:
        await receive_type(ws, "snapshot")
    await fanout.seatmap(show)
    assert len(versions) == 1
    [v] = versions
    assert (
        await subscribers(redis, channel(show)) == 1
        and await subscribers(redis, channel(other)) == 1
    )
    stats = fanout.stats()
    assert (stats["mirrors"], stats["subscriptions"], stats["sockets"]) == (2, 2, 33)

    await engine.client.execute(show, actors.HoldSeats(new_id(), "1", ("C5",)))
    got = await asyncio.gather(*(receive_type(ws, "delta") for ws in sockets))
    assert {(d["version"], json.dumps(d["changes"])) for d in got} == {(v + 1, '[["C5", "held"]]')}
    for ws in sockets:
        await ws.close()
    await until(lambda: fanout.stats()["sockets"] == 3)
    # Without sockets the mirror lingers (30 s by default), still the one subscription.
    assert fanout.stats()["mirrors"] == 2 and await subscribers(redis, channel(show)) == 1


async def test_first_reads_share_one_load_and_an_unwatched_mirror_lingers_then_goes(
    engine: Engine, pool: Any, redis: Any, config: GatewayConfig, channel: Callable[[int], str]
) -> None:
    show = await make_show(pool)
    calls = 0

    async def snapshot(show_id: int) -> actors.Snapshot:
        nonlocal calls
        calls += 1
        return await engine.client.snapshot(show_id)

    loader = make_details_loader(pool)
    fanout = Fanout(redis, snapshot, loader, linger_s=0.3, channel_prefix=config.redis_prefix)
    try:
        reads = await asyncio.gather(*(fanout.seatmap(show) for _ in range(20)))
        assert calls == 1 and len({body for _, body in reads}) == 1
        assert await subscribers(redis, channel(show)) == 1
        await until(lambda: fanout.stats()["mirrors"] == 0, timeout=5)
        await until(lambda: no_subscribers(redis, channel(show)), timeout=5)
        await fanout.seatmap(show)  # a later read loads it again
        assert calls == 2 and await subscribers(redis, channel(show)) == 1
    finally:
        await fanout.close()
    assert await subscribers(redis, channel(show)) == 0


async def test_a_gap_in_versions_or_a_status_change_sends_a_fresh_snapshot(
    serve: Serve, engine: Engine, pool: Any, redis: Any, channel: Callable[[int], str]
) -> None:
    show = await make_show(pool)
    client, app = await serve()
    ws = await client.ws_connect(f"/ws/shows/{show}")
    v = (await receive_type(ws, "snapshot"))["version"]
    # A delta from the future: the ones between were missed.
    missed = {"show_id": show, "version": v + 5, "kind": "HoldPlaced", "changes": [["A9", "held"]]}
    await redis.publish(channel(show), json.dumps(missed))
    fresh = await receive_type(ws, "snapshot")
    assert fresh["version"] == v and fresh["seats"]["A9"] == "available"  # the actor's truth
    assert app[keys.FANOUT].stats()["reloads"] == 1

    await engine.client.execute(show, actors.HoldSeats(new_id(), "1", ("A9",)))
    delta = await receive_type(ws, "delta")
    assert delta["version"] == v + 1 and delta["changes"] == [["A9", "held"]]
    await engine.client.execute(show, actors.SetStatus("scheduled"))
    changed = await receive_type(ws, "snapshot")
    assert changed["version"] == v + 2 and changed["status"] == "scheduled"
    assert changed["seats"]["A9"] == "held"


async def test_a_lost_redis_connection_resubscribes_and_sends_a_fresh_snapshot(
    serve: Serve, engine: Engine, pool: Any, redis: Any, channel: Callable[[int], str]
) -> None:
    show = await make_show(pool)
    client, app = await serve()
    ws = await client.ws_connect(f"/ws/shows/{show}")
    v = (await receive_type(ws, "snapshot"))["version"]
    # Cut the fan-out's subscription connection (found by its port) and change a seat at once:
    # its delta may be lost with the connection.
    subscription = app[keys.FANOUT]._pubsub.connection
    sockname = subscription._writer.get_extra_info("sockname")
    if isinstance(sockname, tuple):  # TCP: this very connection
        await redis.execute_command("CLIENT", "KILL", "ADDR", f"127.0.0.1:{sockname[1]}")
    else:  # the embedded Redis's unix socket gives no address: every subscriber of this run
        await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    await engine.client.execute(show, actors.HoldSeats(new_id(), "1", ("A5",)))
    fresh = await receive_type(ws, "snapshot")  # after the resubscription
    while fresh["seats"]["A5"] != "held":  # the snapshot came before the delta
        delta = await receive_type(ws, "delta")
        fresh["seats"].update(dict(delta["changes"]))
        fresh["version"] = delta["version"]
    assert fresh["version"] == v + 1 and await subscribers(redis, channel(show)) == 1
    await engine.client.execute(show, actors.HoldSeats(new_id(), "2", ("A6",)))
    assert (await receive_type(ws, "delta"))["version"] == v + 2


async def test_a_client_that_falls_behind_is_told_to_resync(
    serve: Serve,
    engine: Engine,
    pool: Any,
    slow_session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout_module, "SEND_TIMEOUT_S", 60.0)  # only the queue decides here
    show = await make_show(pool, layout=grid_layout(rows=20, per_row=30))
    client, app = await serve(ws_queue_limit=4)
    fanout = app[keys.FANOUT]
    slow = await _backed_up_socket(slow_session, client, show, fanout)
    seen = fanout.stats()["deltas"]
    for n in range(1, 10):  # a delta that finds the queue of 4 full: resync instead
        await engine.client.execute(show, actors.HoldSeats(new_id(), str(n), (f"D{n}",)))
        await until(lambda n=n: fanout.stats()["deltas"] == seen + n)
        if fanout.stats()["resyncs"]:
            break
    stats = fanout.stats()
    assert stats["resyncs"] == 1 and stats["drops"] == 0 and stats["queued_max"] <= 4

    # Now it reads: the snapshots it asked for, then the resync and a snapshot at the current
    # version, then deltas again.
    kinds = []
    while (body := await receive(slow))["type"] != "resync":
        kinds.append(body["type"])
    assert set(kinds) <= {"snapshot", "delta"} and body["reason"] == "fell_behind"
    current = await receive_type(slow, "snapshot")
    assert current["version"] == (await fanout.seatmap(show))[0]
    assert current["seats"]["D1"] == "held"
    await engine.client.execute(show, actors.HoldSeats(new_id(), "99", ("E1",)))
    assert (await receive_type(slow, "delta"))["version"] == current["version"] + 1


async def test_a_client_that_never_reads_is_dropped_and_nothing_grows_without_bound(
    serve: Serve,
    engine: Engine,
    pool: Any,
    redis: Any,
    slow_session: aiohttp.ClientSession,
    channel: Callable[[int], str],
) -> None:
    show = await make_show(pool, layout=grid_layout(rows=20, per_row=30))
    client, app = await serve(ws_queue_limit=4)
    fanout = app[keys.FANOUT]
    healthy = await client.ws_connect(f"/ws/shows/{show}")
    start = (await receive_type(healthy, "snapshot"))["version"]
    slow = await _backed_up_socket(slow_session, client, show, fanout)
    frame_bytes = len(fanout_module.text_frame((await fanout.seatmap(show))[1])) + 64
    held = 0
    while fanout.stats()["drops"] == 0 and held < 60:
        held += 1
        await engine.client.execute(show, actors.HoldSeats(new_id(), str(held), (f"F{held}",)))
        await until(lambda held=held: fanout.stats()["deltas"] >= held)
        stats = fanout.stats()
        assert stats["queued_max"] <= 4, stats
        assert stats["buffered_max"] <= WRITE_HIGH + frame_bytes, stats
    stats = fanout.stats()
    assert stats["drops"] == 1 and stats["resyncs"] == 1 and stats["sockets"] == 1, stats
    assert await closed_with(slow) == (1013, "too slow")
    # The other socket of the show got every delta, in order.
    versions = [(await receive_type(healthy, "delta"))["version"] for _ in range(held)]
    assert versions == list(range(start + 1, start + held + 1))
    assert await subscribers(redis, channel(show)) == 1


@pytest.fixture
async def slow_session() -> AsyncIterator[aiohttp.ClientSession]:
    """Client sockets with a small receive buffer, so that a reader that stops backs up soon."""

    def small_buffer(addr_info: Any) -> socket.socket:
        family, kind, proto, _, _ = addr_info
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return sock

    connector = aiohttp.TCPConnector(socket_factory=small_buffer)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def _backed_up_socket(
    session: aiohttp.ClientSession, client: Any, show: int, fanout: Fanout
) -> Any:
    """A socket that reads nothing and asked for snapshots until its transport on the server
    is backed up (frames wait in its queue)."""
    ws = await session.ws_connect(client.make_url(f"/ws/shows/{show}"))
    await until(lambda: fanout.stats()["sockets"] >= 1)
    for _ in range(100):
        for _ in range(20):
            await ws.send_str('{"type": "resync"}')
        if await _queued(fanout):
            return ws
    raise AssertionError("the socket never backed up")


async def _queued(fanout: Fanout) -> bool:
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        if fanout.stats()["queued"]:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_bad_client_messages_get_invalid_message_then_1008(serve: Serve, pool: Any) -> None:
    show = await make_show(pool)
    client, _ = await serve()
    ws = await client.ws_connect(f"/ws/shows/{show}")
    snapshot = await receive_type(ws, "snapshot")
    await ws.send_str('{"type": "ping"}')
    assert await receive_type(ws, "pong") == {"type": "pong"}
    await ws.send_str('{"type": "resync"}')
    assert await receive_type(ws, "snapshot") == snapshot
    for bad in ("not json", '{"type": "book"}', "[1]", '{"type": "ping", "x": "' + "y" * 5000):
        await ws.send_str(bad)
        error = (await receive_type(ws, "error"))["error"]
        assert error["code"] == "invalid_message" and set(error) == {"code", "message", "details"}
    await ws.send_bytes(b"\x00\x01")
    assert (await receive_type(ws, "error"))["error"]["code"] == "invalid_message"
    await ws.send_str("{}")  # the sixth: answered, then the socket is closed
    assert (await receive_type(ws, "error"))["error"]["details"]["left"] == 0
    assert await closed_with(ws) == (1008, "too many invalid messages")


async def test_an_unknown_or_malformed_show_gets_an_error_then_a_close(
    serve: Serve, redis: Any, channel: Callable[[int], str]
) -> None:
    client, app = await serve()
    ws = await client.ws_connect("/ws/shows/987654321")
    error = (await receive_type(ws, "error"))["error"]
    assert error["code"] == "not_found" and error["details"]["id"] == 987654321
    assert (await closed_with(ws))[0] == 4404
    for bad in ("0", "abc", "-3", "1" * 30):
        ws = await client.ws_connect(f"/ws/shows/{bad}")
        assert (await receive_type(ws, "error"))["error"]["code"] == "validation_failed"
        assert (await closed_with(ws))[0] == 4400
    stats = app[keys.FANOUT].stats()
    assert (stats["mirrors"], stats["subscriptions"]) == (0, 0)
    assert await subscribers(redis, channel(987654321)) == 0


async def test_heartbeats_carry_the_version(serve: Serve, pool: Any) -> None:
    show = await make_show(pool)
    client, _ = await serve(ws_heartbeat_s=1.0)
    ws = await client.ws_connect(f"/ws/shows/{show}")
    version = (await receive_type(ws, "snapshot"))["version"]
    beat = await receive(ws, timeout=5)
    assert beat["type"] == "heartbeat" and beat["version"] == version
    assert abs(beat["at"] - time.time()) < 5


async def test_close_closes_every_socket_with_1001(
    serve: Serve, pool: Any, redis: Any, channel: Callable[[int], str]
) -> None:
    show = await make_show(pool)
    client, app = await serve()
    sockets = [await client.ws_connect(f"/ws/shows/{show}") for _ in range(3)]
    for ws in sockets:
        await receive_type(ws, "snapshot")
    fanout = app[keys.FANOUT]
    await fanout.close()
    for ws in sockets:
        assert await closed_with(ws) == (1001, "server shutting down")
    assert fanout.stats()["sockets"] == 0 and await subscribers(redis, channel(show)) == 0
    late = await client.ws_connect(f"/ws/shows/{show}")
    assert (await closed_with(late))[0] == 1001
    await until(lambda: not app[keys.SOCKETS])
