"""A Redis that goes away, stalls or holds garbage costs requests the cache, nothing more.

Each test gets a ``redis-server`` of its own (it is stopped, put to sleep or
scribbled on) and a store with a short timeout and cooldown, as in production.
Requests go through the middleware in-process, under load from concurrent tasks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import anyio
import httpx
import pytest
import redis.asyncio as redis
from fastapi import FastAPI

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.status import Detail, parse
from asgi_cache.stores.redis import RedisStore
from tests.fixtures_redis import TEST_SERVER_ARGS
from tests.helpers import STORED, Calls, client_for, is_hit
from tests.redis_servers import RedisServer, resp_command

pytestmark = pytest.mark.anyio

PREFIX = "outage"
TIMEOUT = 0.05
COOLDOWN = 0.5
BODY = {"item": 1, "name": "apple"}
#: A request taking this long counts as hung.
HUNG = 2.0
#: The cache must serve hits again this soon after Redis is back.
RECOVERY = 2.0


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of this test's own: the test stops it or blocks it."""
    with RedisServer(*TEST_SERVER_ARGS) as server:
        yield server


@pytest.fixture
async def cache(server: RedisServer) -> AsyncIterator[Cache]:
    store = RedisStore.from_url(server.url, timeout=TIMEOUT, cooldown=COOLDOWN)
    cache = Cache(store, prefix=PREFIX)
    yield cache
    await cache.aclose()


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/item")
    @cached(ttl=60)
    async def item() -> dict[str, object]:
        calls["item"] += 1
        return BODY

    return app, calls


@dataclass
class Result:
    started: float
    latency: float
    status: int | None  # None: the request hit the HUNG timeout
    cache_status: str = ""
    body: object = None

    @property
    def hit(self) -> bool:
        status = parse(self.cache_status)
        return status is not None and status.hit

    @property
    def stored(self) -> bool:
        status = parse(self.cache_status)
        return status is not None and status.stored

    @property
    def detail(self) -> str | None:
        status = parse(self.cache_status)
        return None if status is None else status.detail


@dataclass
class Load:
    """GETs of ``/item`` from concurrent tasks, each recorded."""

    client: httpx.AsyncClient
    results: list[Result] = field(default_factory=list)

    async def one(self) -> Result:
        started = time.monotonic()
        try:
            with anyio.fail_after(HUNG):
                response = await self.client.get("/item")
        except TimeoutError:
            result = Result(started, time.monotonic() - started, None)
        else:
            result = Result(
                started,
                time.monotonic() - started,
                response.status_code,
                response.headers.get("cache-status", ""),
                response.json() if response.status_code == 200 else response.text,
            )
        self.results.append(result)
        return result

    async def loop(self, until: float) -> None:
        while time.monotonic() < until:
            await self.one()
            await anyio.sleep(0)  # let the other tasks and the controller run

    async def run(self, tasks: int, seconds: float) -> None:
        until = time.monotonic() + seconds
        async with anyio.create_task_group() as group:
            for _ in range(tasks):
                group.start_soon(self.loop, until)


async def test_an_outage_and_a_restart_under_load_fail_no_request(
    server: RedisServer, cache: Cache, record_property: Callable[[str, object], None]
) -> None:
    app, _ = build(cache)
    stopped_at = restarted_at = 0.0

    async def stop_then_restart(start: float) -> None:
        nonlocal stopped_at, restarted_at
        await anyio.sleep_until(start + 0.5)
        await anyio.to_thread.run_sync(server.stop)
        stopped_at = time.monotonic()
        await anyio.sleep_until(start + 1.5)
        await anyio.to_thread.run_sync(server.start)
        restarted_at = time.monotonic()

    async with client_for(app) as client:
        load = Load(client)
        assert (await load.one()).stored  # warm
        assert (await load.one()).hit
        load.results.clear()
        start = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(stop_then_restart, start)
            group.start_soon(load.run, 20, 3.0)
        # The load may end before the cache is back: keep asking, up to 2 s after the restart.
        while not any(r.started > restarted_at and r.hit for r in load.results):
            if time.monotonic() > restarted_at + RECOVERY:
                break
            await load.one()
            await anyio.sleep(0.01)

    results = load.results
    failed = [r for r in results if r.status is not None and r.status >= 500]
    hung = [r for r in results if r.status is None]
    bypassed = [r for r in results if r.detail == Detail.STORE_UNAVAILABLE]
    worst = max(r.latency for r in results)
    hits_after_restart = [
        r.started + r.latency - restarted_at for r in results if r.started > restarted_at and r.hit
    ]
    recovery = min(hits_after_restart, default=None)
    figures = {
        "requests": len(results),
        "5xx": len(failed),
        "hung": len(hung),
        "worst_latency_s": round(worst, 4),
        "bypassed": len(bypassed),
        "outage_s": round(restarted_at - stopped_at, 3),
        "hit_again_after_restart_s": None if recovery is None else round(recovery, 3),
    }
    print(f"\nredis outage under load: {figures}")
    for name, value in figures.items():
        record_property(name, value)

    assert not failed, failed[:5]
    assert not hung, f"{len(hung)} requests took over {HUNG} s"
    assert all(r.status == 200 and r.body == BODY for r in results)
    assert stopped_at < restarted_at
    assert [r for r in bypassed if stopped_at <= r.started <= restarted_at]
    assert recovery is not None, f"no hit within {RECOVERY} s of the restart"


async def test_a_stalled_redis_costs_a_request_the_timeout_not_the_stall(
    server: RedisServer, cache: Cache
) -> None:
    app, _ = build(cache)

    def stall() -> None:  # blocks the whole server, as a slow command or a fork would
        resp_command(server.host, server.port, "DEBUG", "SLEEP", "0.3", timeout=5)

    async with client_for(app) as client:
        load = Load(client)
        assert (await load.one()).stored  # warm: connections, entry
        load.results.clear()
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, stall)
            await anyio.sleep(0.02)  # DEBUG SLEEP has reached the server
            group.start_soon(load.run, 10, 0.3)

    results = load.results
    worst = max(r.latency for r in results)
    print(f"\nstalled redis: {len(results)} requests, worst latency {worst:.3f} s")
    assert all(r.status == 200 and r.body == BODY for r in results)
    assert any(r.detail == Detail.STORE_UNAVAILABLE for r in results)
    assert worst < 0.25


async def test_a_stalled_redis_costs_a_request_the_timeout_also_on_a_busy_event_loop(
    server: RedisServer,
) -> None:
    """The fail-open timeout must hold when other requests keep the event loop busy.

    Other requests' CPU work (serialising, rendering) is played by a task that
    holds the loop for ``busy`` seconds at a time.  A store call then gets its
    timeout late, by up to one such slice -- but it must not wait for Redis to
    wake up.  On Python < 3.12, redis-py writes every command through
    ``asyncio.wait_for``, which swallows a cancellation that lands as the write
    completes (CPython gh-86296); the store's ``asyncio.timeout`` then never
    fires and the call runs on until Redis answers, however long that takes.
    """
    stall = 0.6
    worst: dict[float, float] = {}
    for busy in (0.01, 0.015, 0.02):
        store = RedisStore.from_url(server.url, timeout=TIMEOUT, cooldown=COOLDOWN)
        cache = Cache(store, prefix=f"busy-{busy}")
        app, _ = build(cache)
        stalled = anyio.Event()

        def stall_redis() -> None:
            resp_command(server.host, server.port, "DEBUG", "SLEEP", str(stall), timeout=5)

        async def hog_the_loop(busy: float = busy, stalled: anyio.Event = stalled) -> None:
            while not stalled.is_set():
                time.sleep(busy)  # CPU work of other requests: nothing else runs meanwhile
                await anyio.sleep(0)

        try:
            async with client_for(app) as client:
                load = Load(client)
                assert (await load.one()).stored  # warm
                load.results.clear()
                async with anyio.create_task_group() as group:

                    async def stall_then_signal(stalled: anyio.Event = stalled) -> None:
                        await anyio.to_thread.run_sync(stall_redis)
                        stalled.set()

                    group.start_soon(stall_then_signal)
                    await anyio.sleep(0.02)  # DEBUG SLEEP has reached the server
                    group.start_soon(hog_the_loop)
                    while not stalled.is_set():
                        await load.one()
        finally:
            await cache.aclose()
        assert all(r.status == 200 and r.body == BODY for r in load.results)
        worst[busy] = max(r.latency for r in load.results)

    print(f"\nstalled redis ({stall} s) on a busy loop, worst latency per slice: {worst}")
    assert all(latency < 0.3 for latency in worst.values()), (
        f"a request waited for a {stall} s Redis stall despite timeout={TIMEOUT} s: "
        f"worst latency by busy-loop slice {worst}"
    )


async def test_garbage_under_an_entry_key_is_a_miss_that_stores_again(
    server: RedisServer, cache: Cache
) -> None:
    app, calls = build(cache)
    async with client_for(app) as client:
        first = await client.get("/item")
        assert first.headers["cache-status"] == STORED

        async with redis.Redis.from_url(server.url) as raw:
            keys = [key async for key in raw.scan_iter(match=f"{PREFIX}:page:*")]
            assert keys
            for key in keys:
                await raw.set(key, b"\x00\xffnot an entry\r\n" * 3, keepttl=True)

        after = await client.get("/item")
        again = await client.get("/item")

    assert after.status_code == 200
    assert after.json() == BODY
    assert after.headers["cache-status"] == STORED
    assert is_hit(again)
    assert again.json() == BODY
    assert calls["item"] == 2
