"""Redis scripts called by many requests at once, sent in pipelines: one pipeline in flight per
process, and every call that arrives meanwhile rides in the next one (DESIGN rule 8, applied to
Redis). A flash sale's joins, polls and rate-limit checks cost one round trip per batch, not
one per request, and one socket write instead of dozens.

    batch = ScriptBatcher(redis)
    script = batch.register(LUA)                  # loaded into Redis on first use
    answer = await batch.run(script, keys, args)  # as ``await script(keys, args)`` would

Each call gets its own answer or its own error; a script Redis has forgotten (a restart, a
``SCRIPT FLUSH``) is loaded again and its calls retried once.

The batches go over a connection of the batcher's own (``_Wire``), to the server of ``redis``'s
pool: commands are packed by hiredis and the replies read by hiredis, in C, since redis-py's
asyncio pipelines pack every argument in Python (a sixth of a gateway's time at 5,000 joins a
second). A wire that fails or times out is closed, its batch fails with redis-py's
``ConnectionError`` or ``TimeoutError`` (answered 503), and the next batch connects again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

MAX_BATCH = 1024
READ_SIZE = 1 << 16


@dataclass(frozen=True)
class Script:
    source: str
    sha: str


@dataclass
class _Call:
    script: Script
    keys: Sequence[Any]
    args: Sequence[Any]
    future: asyncio.Future[Any]


def _forgotten(error: object) -> bool:
    return isinstance(error, NoScriptError) or (
        isinstance(error, ResponseError) and str(error).startswith("NOSCRIPT")
    )


class _Wire:
    """One Redis connection that sends a batch of commands at once and reads their replies."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = settings
        self._timeout = float(settings.get("socket_timeout") or 5.0)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        s = self._settings
        connect_timeout = float(s.get("socket_connect_timeout") or self._timeout)
        async with asyncio.timeout(connect_timeout):
            if s.get("path"):
                self._reader, self._writer = await asyncio.open_unix_connection(s["path"])
            else:
                self._reader, self._writer = await asyncio.open_connection(s["host"], s["port"])
        hello: list[tuple[Any, ...]] = []
        if s.get("password"):
            user = s.get("username")
            hello.append(("AUTH", user, s["password"]) if user else ("AUTH", s["password"]))
        if s.get("db"):
            hello.append(("SELECT", s["db"]))
        for answer in await self._exchange(hello):
            if isinstance(answer, Exception):
                raise answer

    async def execute(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        try:
            if self._writer is None:
                await self._connect()
            return await self._exchange(commands)
        except TimeoutError as exc:
            self.close()
            raise RedisTimeoutError(f"Redis did not answer within {self._timeout:g} s") from exc
        except (OSError, hiredis.ProtocolError, RedisError) as exc:
            self.close()
            if isinstance(exc, RedisError) and not isinstance(exc, RedisConnectionError):
                raise
            raise RedisConnectionError(f"Redis connection failed: {exc}") from exc

    async def _exchange(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        if not commands:
            return []
        assert self._reader is not None and self._writer is not None
        parser = hiredis.Reader(replyError=ResponseError)
        self._writer.write(b"".join(hiredis.pack_command(c) for c in commands))
        answers: list[Any] = []
        async with asyncio.timeout(self._timeout):
            await self._writer.drain()
            while len(answers) < len(commands):
                data = await self._reader.read(READ_SIZE)
                if not data:
                    raise ConnectionResetError("Redis closed the connection")
                parser.feed(data)
                while (answer := parser.gets()) is not False:
                    answers.append(answer)
        return answers

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _settings(redis: Any) -> dict[str, Any]:
    """Where ``redis``'s pool connects, and how."""
    kwargs = dict(redis.connection_pool.connection_kwargs)
    keep = ("host", "port", "path", "db", "username", "password")
    keep += ("socket_timeout", "socket_connect_timeout")
    return {k: kwargs[k] for k in keep if kwargs.get(k) is not None}


class ScriptBatcher:
    def __init__(self, redis: Any, max_batch: int = MAX_BATCH) -> None:
        self._redis = redis
        self._max = max_batch
        self._wire = _Wire(_settings(redis))
        self._pending: list[_Call] = []
        self._flushing = False

    def register(self, source: str) -> Script:
        return Script(source, hashlib.sha1(source.encode()).hexdigest())

    async def run(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Call(script, keys, args, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    def close(self) -> None:
        self._wire.close()

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                await self._send(batch)
        finally:
            self._flushing = False

    async def _send(self, batch: list[_Call]) -> None:
        try:
            answers = await self._execute(batch)
            forgotten = [(call, a) for call, a in zip(batch, answers, strict=True) if _forgotten(a)]
            if forgotten:
                for source in {call.script.source for call, _ in forgotten}:
                    await self._redis.script_load(source)
                again = await self._execute([call for call, _ in forgotten])
                retried = {id(call): a for (call, _), a in zip(forgotten, again, strict=True)}
                answers = [retried.get(id(call), a) for call, a in zip(batch, answers, strict=True)]
        except (RedisError, OSError) as exc:
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(exc)
            return
        except BaseException as exc:  # cancelled: nobody may wait forever
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(exc)
            raise
        for call, answer in zip(batch, answers, strict=True):
            if call.future.done():  # its caller gave up
                continue
            if isinstance(answer, BaseException):
                call.future.set_exception(answer)
            else:
                call.future.set_result(answer)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        return await self._wire.execute(
            [("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args) for call in batch]
        )
