"""Redis scripts called by many requests at once, sent in pipelines: one pipeline in flight per
process, and every call that arrives meanwhile rides in the next one (DESIGN rule 8, applied to
Redis). A flash sale's joins, polls and rate-limit checks cost one round trip per batch, not
one per request, and one socket write instead of dozens.

    batch = ScriptBatcher(redis)
    script = batch.register(LUA)                  # loaded into Redis on first use
    answer = await batch.run(script, keys, args)  # as ``await script(keys, args)`` would

Each call gets its own answer or its own error; a script Redis has forgotten (a restart, a
``SCRIPT FLUSH``) is loaded again and its calls retried once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError, RedisError, ResponseError

MAX_BATCH = 1024


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


def _forgotten(error: BaseException) -> bool:
    return isinstance(error, NoScriptError) or (
        isinstance(error, ResponseError) and str(error).startswith("NOSCRIPT")
    )


class ScriptBatcher:
    def __init__(self, redis: Any, max_batch: int = MAX_BATCH) -> None:
        self._redis = redis
        self._max = max_batch
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
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in batch:
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            return list(await pipe.execute(raise_on_error=False))
