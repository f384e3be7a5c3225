"""A failed invalidation is kept, retried and applied before anything is served again.

Against a real redis-server of each test's own, frozen (SIGSTOP) or out of
memory (``maxmemory`` with ``noeviction``) while a write route invalidates: the
store keeps its data, so an old page is really there to be served by mistake.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
import redis.asyncio
from fastapi import FastAPI

from asgi_cache import Cache, CacheMiddleware, InvalidationPending, cached, invalidates
from asgi_cache.status import Detail
from asgi_cache.stores.redis import RedisStore
from tests.fixtures_redis import TEST_SERVER_ARGS
from tests.helpers import STORED, Calls, client_for, detail_of, is_hit
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.anyio

TIMEOUT = 0.05
COOLDOWN = 0.2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of this test's own: the test freezes it or fills its memory."""
    with RedisServer(*TEST_SERVER_ARGS) as server:
        yield server


def new_cache(server: RedisServer, **kwargs: object) -> Cache:
    store = RedisStore.from_url(server.url, timeout=TIMEOUT, cooldown=COOLDOWN)
    kwargs.setdefault("invalidation_wait", 0.1)  # these tests' stalls outlast it
    return Cache(store, prefix="consistency", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def cache(server: RedisServer) -> AsyncIterator[Cache]:
    cache = new_cache(server)
    yield cache
    await cache.aclose()


class Products:
    """The application's data: a version per product, bumped by every PUT."""

    def __init__(self) -> None:
        self.version = {1: 1, 2: 1}


def build(cache: Cache, products: Products) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/products/{pid}")
    @cached(ttl=600, tags=("product:{pid}",))
    async def read(pid: int) -> dict[str, int]:
        calls["read"] += 1
        return {"pid": pid, "version": products.version[pid]}

    @app.put("/products/{pid}")
    @invalidates("product:{pid}")
    async def write(pid: int) -> dict[str, int]:
        products.version[pid] += 1
        return {"pid": pid, "version": products.version[pid]}

    return app, calls


async def wait_until(condition: object, seconds: float = 5.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():  # type: ignore[operator]
            await anyio.sleep(0.01)


async def fill_memory(server: RedisServer) -> None:
    """Make every write fail with OOM while reads still work."""
    client = redis.asyncio.Redis.from_url(server.url)
    used = int((await client.info("memory"))["used_memory"])
    await client.config_set("maxmemory-policy", "noeviction")
    await client.config_set("maxmemory", str(used))
    await client.aclose()


async def free_memory(server: RedisServer) -> None:
    client = redis.asyncio.Redis.from_url(server.url)
    await client.config_set("maxmemory", "0")
    await client.aclose()


async def test_a_write_during_a_stall_is_answered_and_its_invalidation_kept(
    server: RedisServer, cache: Cache
) -> None:
    products = Products()
    app, _ = build(cache, products)
    async with client_for(app) as client:
        assert (await client.get("/products/1")).headers["cache-status"] == STORED
        with server.paused():
            put = await client.put("/products/1")
            pending = cache.stats()["invalidations_pending"]
    assert put.status_code == 200
    assert put.json()["version"] == 2
    assert pending == 2  # the product's tag and its path's
    assert cache.stats()["invalidations_failed"] == 1


async def test_while_an_invalidation_is_pending_nothing_is_served_from_the_store(
    server: RedisServer, cache: Cache
) -> None:
    products = Products()
    app, calls = build(cache, products)
    async with client_for(app) as client:
        await client.get("/products/2")  # stored: an entry the write does not concern
        await client.get("/products/1")
        await fill_memory(server)  # reads work, invalidations fail
        try:
            put = await client.put("/products/1")
            reads = [await client.get(f"/products/{pid}") for pid in (1, 2, 1)]
        finally:
            await free_memory(server)
        after = await client.get("/products/1")
    assert put.status_code == 200
    assert [r.json()["version"] for r in reads] == [2, 1, 2]  # never the old page
    assert [detail_of(r) for r in reads] == [Detail.INVALIDATION_PENDING] * 3
    assert calls["read"] == 2 + 3 + 1  # the two stored, the application each time, a refill
    assert after.json()["version"] == 2
    assert after.headers["cache-status"] == STORED
    assert cache.stats()["invalidations_pending"] == 0


async def test_a_kept_invalidation_reaches_every_process_once_the_store_is_back(
    server: RedisServer, cache: Cache
) -> None:
    products = Products()
    app, _ = build(cache, products)
    other = new_cache(server)  # another worker, sharing the store, that wrote nothing
    other_app, other_calls = build(other, products)
    try:
        async with client_for(app) as client, client_for(other_app) as other_client:
            await client.get("/products/1")
            assert is_hit(await other_client.get("/products/1"))
            with server.paused():
                await client.put("/products/1")
            # No request to the writer: its background retry applies it.
            await wait_until(lambda: cache.stats()["invalidations_pending"] == 0)
            seen = await other_client.get("/products/1")
    finally:
        await other.aclose()
    assert seen.json()["version"] == 2
    assert seen.headers["cache-status"] == STORED
    assert other_calls["read"] == 1


async def test_invalidate_raises_invalidation_pending_and_keeps_it(
    server: RedisServer, cache: Cache
) -> None:
    products = Products()
    app, _ = build(cache, products)
    async with client_for(app) as client:
        await client.get("/products/1")
        products.version[1] = 7  # changed by a job, which then invalidates
        with server.paused(), pytest.raises(InvalidationPending, match="kept and retried"):
            await cache.invalidate("product:1")
        await wait_until(lambda: cache.stats()["invalidations_pending"] == 0)
        assert (await client.get("/products/1")).json()["version"] == 7


async def test_a_failed_clear_is_kept_and_applied(server: RedisServer, cache: Cache) -> None:
    products = Products()
    app, calls = build(cache, products)
    async with client_for(app) as client:
        await client.get("/products/1")
        await client.get("/products/2")
        with server.paused(), pytest.raises(InvalidationPending):
            await cache.clear()
        assert cache.stats()["invalidations_pending"] == 1
        await wait_until(lambda: cache.stats()["invalidations_pending"] == 0)
        again = [await client.get(f"/products/{pid}") for pid in (1, 2)]
    assert [r.headers["cache-status"] for r in again] == [STORED, STORED]
    assert calls["read"] == 4


async def test_with_invalidation_failure_fail_the_write_is_answered_503(
    server: RedisServer,
) -> None:
    cache = new_cache(server, invalidation_failure="fail")
    products = Products()
    app, _ = build(cache, products)
    try:
        async with client_for(app) as client:
            await client.get("/products/1")
            with server.paused():
                put = await client.put("/products/1")
            await wait_until(lambda: cache.stats()["invalidations_pending"] == 0)
            after = await client.get("/products/1")
    finally:
        await cache.aclose()
    assert put.status_code == 503
    assert put.headers["retry-after"] == "1"
    assert put.headers["cache-control"] == "no-store"
    assert products.version[1] == 2  # the application did make the change
    assert after.json()["version"] == 2


async def test_a_failed_invalidation_is_logged_once_as_a_warning(
    server: RedisServer, cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = build(cache, Products())
    async with client_for(app) as client:
        await client.get("/products/1")
        with caplog.at_level(logging.WARNING, logger="asgi_cache"), server.paused():
            await client.put("/products/1")
    failures = [r for r in caplog.records if "kept, and retried" in r.getMessage()]
    assert len(failures) == 1


async def test_too_many_pending_tags_become_one_clear(server: RedisServer, cache: Cache) -> None:
    cache.pending.MAX_TAGS = 3
    app, calls = build(cache, Products())
    async with client_for(app) as client:
        await client.get("/products/2")
        with server.paused():
            for tag in ("a", "b", "c", "d"):
                with pytest.raises(InvalidationPending):
                    await cache.invalidate(tag)
            pending = cache.stats()["invalidations_pending"]
        await wait_until(lambda: cache.stats()["invalidations_pending"] == 0)
        again = await client.get("/products/2")  # no tag named it, the clear removed it
    assert pending == 1
    assert again.headers["cache-status"] == STORED
    assert calls["read"] == 2


def test_invalidation_failure_must_be_retry_or_fail() -> None:
    with pytest.raises(ValueError, match="invalidation_failure must be one of"):
        Cache(invalidation_failure="ignore")


async def test_out_of_memory_no_process_serves_the_old_page_while_the_write_is_pending(
    server: RedisServer, cache: Cache
) -> None:
    products = Products()
    app, _ = build(cache, products)
    other = new_cache(server)  # another worker, sharing the store, that wrote nothing
    other_app, _ = build(other, products)
    try:
        async with client_for(app) as client, client_for(other_app) as other_client:
            await client.get("/products/1")
            assert is_hit(await other_client.get("/products/1"))
            await fill_memory(server)  # the invalidation script is refused, reads still work
            try:
                await client.put("/products/1")
                pending = cache.stats()["invalidations_pending"]
                seen = await other_client.get("/products/1")
            finally:
                await free_memory(server)
    finally:
        await other.aclose()
    assert pending == 2
    assert seen.json()["version"] == 2
    assert not is_hit(seen)


async def test_a_write_during_a_short_stall_is_answered_once_its_invalidation_is_done(
    server: RedisServer,
) -> None:
    cache = new_cache(server, invalidation_wait=2.0)
    products = Products()
    app, _ = build(cache, products)
    other = new_cache(server)  # another worker, sharing the store
    other_app, _ = build(other, products)
    blocker = redis.asyncio.Redis.from_url(server.url)
    try:
        async with client_for(app) as client, client_for(other_app) as other_client:
            await client.get("/products/1")
            assert is_hit(await other_client.get("/products/1"))
            async with anyio.create_task_group() as group:
                group.start_soon(blocker.execute_command, "DEBUG", "SLEEP", "0.4")
                await anyio.sleep(0.05)  # Redis is asleep: the invalidation times out
                started = anyio.current_time()
                put = await client.put("/products/1")
                waited = anyio.current_time() - started
            seen = await other_client.get("/products/1")
    finally:
        await blocker.aclose()
        await other.aclose()
        await cache.aclose()
    assert put.status_code == 200
    assert waited > 0.2  # answered only once Redis had run the invalidation
    assert cache.stats()["invalidations_pending"] == 0
    assert seen.json()["version"] == 2
    assert not is_hit(seen)


async def test_a_store_that_refuses_is_not_waited_for(server: RedisServer) -> None:
    cache = new_cache(server, invalidation_wait=5.0)
    app, _ = build(cache, Products())
    try:
        async with client_for(app) as client:
            await client.get("/products/1")
            await fill_memory(server)
            try:
                started = anyio.current_time()
                put = await client.put("/products/1")
                waited = anyio.current_time() - started
            finally:
                await free_memory(server)
    finally:
        await cache.aclose()
    assert put.status_code == 200
    assert waited < 1.0
