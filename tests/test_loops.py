"""A cache works from any event loop and from sync code (``cache.sync``).

Starlette's ``TestClient`` runs the application on an event loop of its own in
another thread; jobs and scripts run ``asyncio.run``; sync ``def`` endpoints and
job runners run in threads.  Each of them invalidates, over memory, a real
Redis and a real Redis Cluster.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from starlette.testclient import TestClient

from asgi_cache import Cache, CacheMiddleware, cached, get_cache
from tests.fixtures_redis import FIXTURE_TIMEOUT
from tests.helpers import STORED, is_hit

_prefixes = itertools.count()


@pytest.fixture(params=["memory", "redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    """A cache made from a URL outside any event loop, as an application module makes it."""
    if request.param == "memory":
        url = "memory://"
    elif request.param == "redis":
        url = request.getfixturevalue("redis_server").url
    else:
        url = request.getfixturevalue("redis_cluster").url + "?cluster=true"
    from asgi_cache.stores.redis import RedisStore

    store = RedisStore.from_url(url, timeout=FIXTURE_TIMEOUT) if url != "memory://" else None
    cache = Cache(store, prefix=f"loops{next(_prefixes)}") if store else Cache.from_url(url)
    yield cache


class Products:
    def __init__(self) -> None:
        self.version = 1


def build(cache: Cache, products: Products) -> FastAPI:
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/products/{pid}")
    @cached(ttl=600, tags=("product:{pid}",))
    async def read(pid: int) -> dict[str, int]:
        return {"pid": pid, "version": products.version}

    @app.post("/jobs/refresh/{pid}")
    def refresh(pid: int, request: Request) -> dict[str, int]:
        """A sync endpoint: it runs in a worker thread."""
        products.version += 1
        return {"removed": get_cache(request).sync.invalidate(f"product:{pid}")}

    return app


def test_a_sync_endpoint_invalidates_with_cache_sync(cache: Cache) -> None:
    products = Products()
    with TestClient(build(cache, products)) as client:
        assert client.get("/products/1").headers["cache-status"] == STORED
        assert is_hit(client.get("/products/1"))
        refreshed = client.post("/jobs/refresh/1")
        after = client.get("/products/1")
    assert refreshed.json() == {"removed": 1}
    assert after.json()["version"] == 2
    assert after.headers["cache-status"] == STORED


def test_a_job_thread_invalidates_with_cache_sync_while_the_app_serves(cache: Cache) -> None:
    products = Products()
    removed: list[int] = []
    with TestClient(build(cache, products)) as client:
        client.get("/products/1")
        products.version = 5

        def job() -> None:
            removed.append(cache.sync.invalidate("product:1"))

        thread = threading.Thread(target=job)
        thread.start()
        thread.join(10)
        after = client.get("/products/1")
    assert removed == [1]
    assert after.json()["version"] == 5


def test_asyncio_run_in_the_test_invalidates_what_the_test_client_stored(cache: Cache) -> None:
    products = Products()
    with TestClient(build(cache, products)) as client:
        client.get("/products/1")
        products.version = 3

        async def job() -> int:
            try:
                return await cache.invalidate("product:1")
            finally:
                await cache.store.detach()

        removed = asyncio.run(job())
        after = client.get("/products/1")
    assert removed == 1
    assert after.json()["version"] == 3


def test_a_thread_with_a_loop_of_its_own_invalidates_while_the_app_serves(cache: Cache) -> None:
    products = Products()
    removed: list[int] = []
    with TestClient(build(cache, products)) as client:
        client.get("/products/1")
        client.get("/products/2")
        products.version = 9

        async def job() -> None:
            try:
                removed.append(await cache.invalidate("product:1"))
                removed.append(await cache.invalidate("product:2"))
            finally:
                await cache.store.detach()

        thread = threading.Thread(target=asyncio.run, args=(job(),))
        thread.start()
        thread.join(10)
        after = [client.get(f"/products/{pid}").json()["version"] for pid in (1, 2)]
    assert removed == [1, 1]
    assert after == [9, 9]


def test_cache_sync_without_a_running_app_runs_a_loop_of_its_own(cache: Cache) -> None:
    assert cache.home_loop is None  # no application has started on this cache
    assert cache.sync.set("greeting", {"fr": "bonjour"}, ttl=60) is True
    assert cache.sync.get("greeting") == {"fr": "bonjour"}
    assert cache.sync.delete("greeting") is True
    assert cache.sync.get("greeting", "gone") == "gone"


@pytest.mark.anyio
async def test_cache_sync_from_async_code_says_to_await() -> None:
    cache = Cache()
    with pytest.raises(RuntimeError, match=r"use await cache\.invalidate\(\.\.\.\) here"):
        cache.sync.invalidate("x")
