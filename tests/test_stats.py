"""Counters and logs: what the cache did, observable without a debugger."""

from __future__ import annotations

import logging

import anyio
import pytest
from fastapi import FastAPI, Response

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached, invalidates
from tests.helpers import BrokenStore, Clock, MakeCache, client_for

pytestmark = pytest.mark.anyio


def build(cache: Cache) -> FastAPI:
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/items/{pid}")
    @cached(ttl=10, tags=("item:{pid}",), stale_while_revalidate=30)
    async def item(pid: int) -> dict[str, int]:
        await anyio.sleep(0.05)
        return {"pid": pid}

    @app.get("/private")
    @cached(ttl=10)
    async def private() -> Response:
        return Response("x", headers={"set-cookie": "a=b"})

    @app.put("/items/{pid}")
    @invalidates("item:{pid}")
    async def put_item(pid: int) -> dict[str, int]:
        return {"pid": pid}

    return app


async def test_counters_follow_what_happened(make_cache: MakeCache) -> None:
    clock = Clock()
    cache = make_cache(clock=clock)
    app = build(cache)
    async with client_for(app) as client:
        async with anyio.create_task_group() as tasks:
            for _ in range(3):  # one miss, two collapsed
                tasks.start_soon(client.get, "/items/1")
        await client.get("/items/1")  # hit
        await client.get("/items/1", headers={"authorization": "Bearer x"})  # bypass
        clock.advance(15)
        await client.get("/items/1")  # stale, refreshed in the background
        with anyio.fail_after(5):
            while cache.stats()["refreshes"] == 0:
                await anyio.sleep(0.01)
        await client.put("/items/1")  # invalidates the entry
        await client.get("/private")  # miss, not stored (its cookie bypasses what follows)
    stats = cache.stats()
    assert stats["hits"] == 1
    assert stats["collapsed"] == 2
    assert stats["misses"] == 2  # /items/1 and /private
    assert stats["stores"] >= 1
    assert stats["not_stored"] >= 1
    assert stats["bypasses"] == {"authorization": 1}
    assert stats["stale_served"] == 1
    assert stats["refreshes"] == 1
    assert stats["invalidations"] >= 1
    assert stats["store_errors"] == 0


async def test_memory_store_reports_bytes_entries_and_evictions() -> None:
    store = MemoryStore(max_entries=1)
    cache = Cache(store)
    app = build(cache)
    async with client_for(app) as client:
        await client.get("/items/1")
        await client.get("/items/2")
    stats = cache.stats()
    assert stats["entries"] == 1
    assert stats["evictions"] == 1
    assert 0 < stats["bytes"] == store.bytes_used  # type: ignore[operator]


async def test_store_failures_are_counted_and_logged_as_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = Cache(BrokenStore(RuntimeError))
    app = build(cache)
    with caplog.at_level(logging.DEBUG, logger="asgi_cache"):
        async with client_for(app) as client:
            response = await client.get("/items/1")
    assert response.status_code == 200
    assert cache.stats()["store_errors"] == 1
    assert cache.stats()["bypasses"] == {"store-unavailable": 1}
    assert any(
        r.levelno == logging.WARNING and "store get failed" in r.message for r in caplog.records
    )


async def test_requests_log_at_debug_and_never_at_info(
    make_cache: MakeCache, caplog: pytest.LogCaptureFixture
) -> None:
    app = build(make_cache())
    with caplog.at_level(logging.DEBUG, logger="asgi_cache"):
        async with client_for(app) as client:
            await client.get("/items/1")
            await client.get("/items/1")
    mine = [r for r in caplog.records if r.name == "asgi_cache"]
    assert any("miss" in r.message for r in mine)
    assert any("hit" in r.message for r in mine)
    assert all(r.levelno == logging.DEBUG for r in mine)
