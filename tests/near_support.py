"""Helpers for the near cache tests: stores with a near tier, waiting for tracking, a proxy."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

from asgi_cache.stores.near import NearCache
from asgi_cache.stores.redis import RedisStore
from tests.fixtures_redis import FIXTURE_TIMEOUT

_prefixes = itertools.count()

#: How long a test waits for something that happens in the background (tracking coming up,
#: a message arriving).  A deadline for waiting, never a bound asserted on.
PATIENCE = 10.0


def fresh_prefix() -> str:
    return f"near{next(_prefixes)}:"


def near_store(
    url: str, prefix: str, *, cluster: bool = False, health_check: float = 1.0, **kwargs: object
) -> RedisStore:
    """A store with a near tier for keys under ``prefix``, as one process would have."""
    kwargs.setdefault("timeout", FIXTURE_TIMEOUT)
    return RedisStore.from_url(
        url,
        cluster=cluster,
        near_cache=NearCache(1 << 20, prefix=prefix, health_check=health_check),
        **kwargs,  # type: ignore[arg-type]
    )


async def eventually(condition: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Wait until ``condition`` holds; fail naming ``what`` if it never does."""
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


def near_of(store: RedisStore) -> NearCache:
    near = store.near_cache
    assert near is not None
    return near


async def tracking(store: RedisStore, key: str = "") -> None:
    """Wait until ``store``'s near tier is established (a first get starts its tracking)."""
    near = near_of(store)

    async def up() -> bool:
        await store.get(key or near.prefix + "probe")
        return near.active

    await eventually(up, "tracking established")


async def copy_held(store: RedisStore, key: str) -> None:
    """Read ``key`` through ``store`` until its near tier holds a copy."""
    await tracking(store)
    hits = near_of(store).hits

    async def held() -> bool:
        await store.get(key)
        return near_of(store).hits > hits

    await eventually(held, f"a near copy of {key}")


class DelayingProxy:
    """A TCP proxy to a Redis that holds back its replies (not its pub/sub messages) by
    ``delay`` seconds: a slow network path on the data connections only."""

    def __init__(self, port: int) -> None:
        self.port = 0
        self._target = port
        self.delay = 0.0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Future[object]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        task = asyncio.gather(
            self._pipe(reader, up_writer, delayed=False),
            self._pipe(up_reader, writer, delayed=True),
            return_exceptions=True,
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if delayed and self.delay and not data.startswith(b"*3\r\n$7\r\nmessage"):
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
