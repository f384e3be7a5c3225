"""The near cache: its tier's rules, and what it changes for HTTP clients of two processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.stores.near import NearCache
from asgi_cache.stores.redis import RedisStore
from tests.helpers import Calls, client_for, is_hit
from tests.near_support import eventually, fresh_prefix, near_store, tracking
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.anyio


def _tier(max_bytes: int = 10_000) -> NearCache:
    near = NearCache(max_bytes, prefix="p:", clock=lambda: 100.0)
    near.active = True
    return near


# -- the tier ------------------------------------------------------------------


def test_a_read_is_kept_until_its_redis_ttl() -> None:
    near = _tier()
    near.insert("p:k", b"v", 5000, near.reading("p:k"))
    assert near.lookup("p:k") == b"v"
    near.clock = lambda: 105.0
    assert near.lookup("p:k") is None


def test_a_read_overtaken_by_an_invalidation_is_not_kept() -> None:
    near = _tier()
    started = near.reading("p:k")
    near.drop("p:k")  # its key's invalidation arrived while the read was in flight
    near.insert("p:k", b"v", 5000, started)
    assert near.lookup("p:k") is None


def test_a_read_is_kept_despite_invalidations_of_other_keys() -> None:
    near = _tier()
    started = near.reading("p:k")
    near.drop("p:other")
    near.insert("p:k", b"v", 5000, started)
    assert near.lookup("p:k") == b"v"


def test_a_read_overtaken_by_a_flush_is_not_kept() -> None:
    near = _tier()
    started = near.reading("p:k")
    near.flush()
    near.insert("p:k", b"v", 5000, started)
    assert near.lookup("p:k") is None


def test_nothing_is_kept_while_tracking_is_down() -> None:
    near = _tier()
    near.active = False
    assert not near.admits("p:k")
    near.insert("p:k", b"v", 5000, near.reading("p:k"))
    assert near.lookup("p:k") is None


def test_keys_outside_the_prefix_are_not_admitted() -> None:
    assert not _tier().admits("q:k")


def test_the_least_recently_used_copy_makes_room() -> None:
    near = _tier(max_bytes=800)
    near.insert("p:a", b"a" * 100, 5000, near.reading("p:a"))
    near.insert("p:b", b"b" * 100, 5000, near.reading("p:b"))
    assert near.lookup("p:a") is not None  # b is now the least recently used
    near.insert("p:c", b"c" * 100, 5000, near.reading("p:c"))
    assert near.lookup("p:b") is None
    assert near.lookup("p:a") is not None
    assert near.stats()["near_evictions"] == 1
    assert near.stats()["near_bytes"] <= 800


def test_a_copy_larger_than_the_tier_is_not_kept() -> None:
    near = _tier(max_bytes=300)
    near.insert("p:k", b"v" * 1000, 5000, near.reading("p:k"))
    assert near.stats()["near_entries"] == 0


@pytest.mark.parametrize("ttl_ms", [0, -2])
def test_a_key_already_gone_in_redis_is_not_kept(ttl_ms: int) -> None:
    near = _tier()
    near.insert("p:k", b"v", ttl_ms, near.reading("p:k"))
    assert near.lookup("p:k") is None


@pytest.mark.parametrize(
    "kwargs", [{"max_bytes": 0}, {"max_bytes": True}, {"health_check": 0}, {"prefix": b"p"}]
)
def test_a_bad_setting_is_refused_naming_it(kwargs: dict[str, object]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        NearCache(**kwargs)  # type: ignore[arg-type]


def test_a_redis_store_refuses_a_near_cache_of_another_type() -> None:
    with pytest.raises(ValueError, match="near_cache"):
        RedisStore.from_url("redis://127.0.0.1:1/0", near_cache=64)  # type: ignore[arg-type]


def test_the_url_parameter_turns_the_near_cache_on() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0?near_cache_bytes=4096")
    assert store.near_cache is not None
    assert store.near_cache.max_bytes == 4096
    assert RedisStore.from_url("redis://127.0.0.1:1/0").near_cache is None


def test_a_bad_url_parameter_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="near_cache_bytes"):
        RedisStore.from_url("redis://127.0.0.1:1/0?near_cache_bytes=lots")


# -- over HTTP, two processes' worth of caches on one Redis ----------------------


def _app(cache: Cache, calls: Calls) -> Starlette:
    @cached(ttl=60, tags=("page",))
    async def page(request: Request) -> PlainTextResponse:
        calls["page"] += 1
        return PlainTextResponse(f"v{calls['page']}")

    app = Starlette(routes=[Route("/page", page)])
    app.add_middleware(CacheMiddleware, cache=cache)
    return app


@pytest.fixture
async def two_caches(redis_server: RedisServer) -> AsyncIterator[tuple[Cache, Cache]]:
    prefix = fresh_prefix()
    stores = [near_store(redis_server.url, prefix) for _ in range(2)]
    yield Cache(stores[0], prefix=prefix), Cache(stores[1], prefix=prefix)
    for store in stores:
        await store.aclose()


async def _get(app: Starlette) -> httpx.Response:
    async with client_for(app) as client:
        return await client.get("/page")


async def test_repeated_hits_are_served_from_the_near_tier_and_counted_apart(
    two_caches: tuple[Cache, Cache],
) -> None:
    writer, reader = two_caches
    await tracking(reader.store)  # type: ignore[arg-type]
    calls = Calls()
    await _get(_app(writer, calls))
    app = _app(reader, calls)
    requests = 0

    async def near_hit() -> bool:
        nonlocal requests
        requests += 1
        assert is_hit(await _get(app))
        return reader.stats()["near_hits"] == 1

    await eventually(near_hit, "a hit from the near tier")  # once the writer's messages are in
    stats = reader.stats()
    assert stats["hits"] == requests >= 2  # a near hit is a hit, and also counted apart
    assert calls["page"] == 1


async def test_an_invalidation_in_one_process_reaches_the_other_near_tier(
    two_caches: tuple[Cache, Cache],
) -> None:
    writer, reader = two_caches
    await tracking(reader.store)  # type: ignore[arg-type]
    calls = Calls()
    await _get(_app(writer, calls))
    app = _app(reader, calls)
    await _get(app)
    assert (await _get(app)).text == "v1"
    await writer.invalidate("page")

    async def recomputed() -> bool:
        return (await _get(app)).text == "v2"

    await eventually(recomputed, "the page recomputed after the invalidation")
