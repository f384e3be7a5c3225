"""A Redis that goes away, stalls or holds garbage costs requests the cache, nothing more.

Each test gets a ``redis-server`` of its own (it is stopped, put to sleep or
scribbled on) and a store with a short timeout and cooldown, as in production.
Requests go through the middleware in-process, under load from concurrent tasks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import anyio
import httpx
import pytest
import redis.asyncio as redis
from fastapi import FastAPI

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.stores.redis import RedisStore
from tests.fixtures_redis import TEST_SERVER_ARGS
from tests.helpers import Calls, client_for
from tests.redis_servers import RedisServer, resp_command

pytestmark = pytest.mark.anyio

PREFIX = "outage"
TIMEOUT = 0.05
COOLDOWN = 0.5
BODY = {"item": 1, "name": "apple"}
#: A request taking this long counts as hung.
HUNG = 2.0


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
    server: RedisServer, cache: Cache, record_property: pytest.RecordProperty
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
        assert "stored" in (await load.one()).cache_status  # warm
        assert "hit" in (await load.one()).cache_status
        load.results.clear()
        start = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(stop_then_restart, start)
            group.start_soon(load.run, 20, 3.0)
        after = await load.one()

    results = load.results
    failed = [r for r in results if r.status is not None and r.status >= 500]
    hung = [r for r in results if r.status is None]
    bypassed = [r for r in results if "detail=store-unavailable" in r.cache_status]
    worst = max(r.latency for r in results)
    first_hit_after_restart = min(
        (r.started + r.latency for r in results if r.started > restarted_at and "hit" in r.cache_status),
        default=None,
    )
    recovery = None if first_hit_after_restart is None else first_hit_after_restart - restarted_at
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
    assert recovery is not None and recovery < 2.0, "no hit within 2 s of the restart"
    assert "stored" in after.cache_status or "hit" in after.cache_status


async def test_a_stalled_redis_costs_a_request_the_timeout_not_the_stall(
    server: RedisServer, cache: Cache
) -> None:
    app, _ = build(cache)

    def stall() -> None:  # blocks the whole server, as a slow command or a fork would
        resp_command(server.host, server.port, "DEBUG", "SLEEP", "0.3", timeout=5)

    async with client_for(app) as client:
        load = Load(client)
        assert "stored" in (await load.one()).cache_status  # warm: connections, entry
        load.results.clear()
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, stall)
            await anyio.sleep(0.02)  # DEBUG SLEEP has reached the server
            group.start_soon(load.run, 10, 0.3)

    results = load.results
    worst = max(r.latency for r in results)
    print(f"\nstalled redis: {len(results)} requests, worst latency {worst:.3f} s")
    assert all(r.status == 200 and r.body == BODY for r in results)
    assert any("detail=store-unavailable" in r.cache_status for r in results)
    assert worst < 0.25


async def test_garbage_under_an_entry_key_is_a_miss_that_stores_again(
    server: RedisServer, cache: Cache
) -> None:
    app, calls = build(cache)
    async with client_for(app) as client:
        first = await client.get("/item")
        assert first.headers["cache-status"] == "asgi-cache; fwd=uri-miss; stored"

        async with redis.Redis.from_url(server.url) as raw:
            keys = [key async for key in raw.scan_iter(match=f"{PREFIX}:page:*")]
            assert keys
            for key in keys:
                await raw.set(key, b"\x00\xffnot an entry\r\n" * 3, keepttl=True)

        after = await client.get("/item")
        again = await client.get("/item")

    assert after.status_code == 200
    assert after.json() == BODY
    assert after.headers["cache-status"] == "asgi-cache; fwd=uri-miss; stored"
    assert again.headers["cache-status"].startswith("asgi-cache; hit")
    assert again.json() == BODY
    assert calls["item"] == 2
