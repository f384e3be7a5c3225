"""Cache-Status through HTTP (RFC 9211): each path of the middleware, read back with a
strict RFC 8941 parser."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Response

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached
from asgi_cache.entry import decode
from tests.helpers import Calls, Clock, MakeCache, Parameters, cache_status_member, client_for

pytestmark = pytest.mark.anyio


class Origin:
    failing = False


def build(cache: Cache, origin: Origin | None = None) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)
    origin = origin or Origin()

    @app.get("/page")
    @cached(ttl=10, stale_while_revalidate=30)
    async def page() -> Response:
        calls["page"] += 1
        return Response(b"page")

    @app.get("/sie")
    @cached(ttl=10, stale_if_error=60)
    async def sie() -> Response:
        calls["sie"] += 1
        if origin.failing:
            return Response(b"down", status_code=503)
        return Response(b"sie")

    @app.get("/cookie")
    @cached(ttl=10)
    async def cookie() -> Response:
        return Response(b"c", headers={"set-cookie": "a=1"})

    return app, calls


def member(response: httpx.Response) -> Parameters:
    return cache_status_member(response)


async def test_a_hit_says_hit_and_its_ttl(make_cache: MakeCache) -> None:
    app, _ = build(make_cache(clock=Clock()))
    async with client_for(app) as client:
        await client.get("/page")
        answer = await client.get("/page")
    assert member(answer) == {"hit": True, "ttl": 10}


async def test_a_stored_miss_says_uri_miss_and_stored(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        answer = await client.get("/page")
    assert member(answer) == {"fwd": "uri-miss", "stored": True}


async def test_an_unstorable_miss_says_why(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        answer = await client.get("/cookie")
    assert member(answer) == {"fwd": "uri-miss", "detail": "set-cookie"}


async def test_a_head_miss_says_it_was_not_stored(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        answer = await client.head("/page")
    assert member(answer) == {"fwd": "uri-miss", "detail": "head"}


async def test_a_stale_entry_served_while_revalidating_has_a_negative_ttl(
    make_cache: MakeCache,
) -> None:
    clock = Clock()
    app, _ = build(make_cache(clock=clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(15)
        answer = await client.get("/page")
    assert member(answer) == {"hit": True, "ttl": -5, "detail": "stale-while-revalidate"}


async def test_an_entry_too_stale_to_use_says_fwd_stale(make_cache: MakeCache) -> None:
    clock = Clock()
    cache = make_cache(clock=clock)
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(45)
        answer = await client.get("/page")
    # A memory store keeps to the cache's clock and has dropped the entry by now;
    # Redis expires by its own clock and still holds it, too stale to use.
    fwd = "uri-miss" if isinstance(cache.store, MemoryStore) else "stale"
    assert member(answer) == {"fwd": fwd, "stored": True}


async def test_a_stale_entry_standing_in_says_what_the_application_answered(
    make_cache: MakeCache,
) -> None:
    clock, origin = Clock(), Origin()
    app, _ = build(make_cache(clock=clock), origin)
    async with client_for(app) as client:
        await client.get("/sie")
        origin.failing = True
        clock.advance(30)
        answer = await client.get("/sie")
    assert answer.status_code == 200
    assert member(answer) == {
        "fwd": "stale",
        "fwd-status": 503,
        "ttl": -20,
        "detail": "stale-if-error",
    }


async def test_a_bypass_names_its_reason(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        answer = await client.get("/page", headers={"authorization": "Bearer a"})
    assert member(answer) == {"fwd": "bypass", "detail": "authorization"}


async def test_a_precondition_for_the_application_is_a_bypass(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        answer = await client.get("/page", headers={"if-match": '"x"'})
    assert member(answer) == {"fwd": "bypass", "detail": "precondition"}


async def test_a_request_no_cache_says_fwd_request(make_cache: MakeCache) -> None:
    app, _ = build(make_cache(honor_request_cache_control=True))
    async with client_for(app) as client:
        await client.get("/page")
        answer = await client.get("/page", headers={"cache-control": "no-cache"})
    assert member(answer) == {"fwd": "request", "stored": True}


async def test_an_entry_refused_by_max_age_says_fwd_request(make_cache: MakeCache) -> None:
    clock = Clock()
    app, _ = build(make_cache(honor_request_cache_control=True, clock=clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(5)
        answer = await client.get("/page", headers={"cache-control": "max-age=2"})
    assert member(answer) == {"fwd": "request", "stored": True}


async def test_a_stale_entry_accepted_by_max_stale_says_so(make_cache: MakeCache) -> None:
    clock = Clock()
    app, _ = build(make_cache(honor_request_cache_control=True, clock=clock))
    async with client_for(app) as client:
        await client.get("/sie")
        clock.advance(30)
        answer = await client.get("/sie", headers={"cache-control": "max-stale"})
    assert member(answer) == {"hit": True, "ttl": -20, "detail": "max-stale"}


async def test_the_only_if_cached_504_is_neither_hit_nor_forwarded(make_cache: MakeCache) -> None:
    app, _ = build(make_cache(honor_request_cache_control=True))
    async with client_for(app) as client:
        answer = await client.get("/page", headers={"cache-control": "only-if-cached"})
    assert answer.status_code == 504
    assert member(answer) == {"detail": "only-if-cached"}


async def test_the_key_is_not_shown_by_default(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/page")
        answer = await client.get("/page")
    assert "key" not in member(answer)


async def test_cache_status_key_shows_the_store_key_of_the_entry(make_cache: MakeCache) -> None:
    cache = make_cache(cache_status_key=True)
    app, _ = build(cache)
    async with client_for(app) as client:
        miss = await client.get("/page")
        answer = await client.get("/page")
    key = member(answer)["key"]
    assert isinstance(key, str) and member(miss)["key"] == key
    data = await cache.store.get(key)
    assert data is not None and decode(data).body == b"page"


async def test_cache_status_key_is_on_unstored_misses_too(make_cache: MakeCache) -> None:
    cache = make_cache(cache_status_key=True)
    app, _ = build(cache)
    async with client_for(app) as client:
        answer = await client.get("/cookie")
    assert member(answer)["detail"] == "set-cookie"
    assert str(member(answer)["key"]).startswith(f"{cache.prefix}:page:")


async def test_a_bypass_has_no_key(make_cache: MakeCache) -> None:
    app, _ = build(make_cache(cache_status_key=True))
    async with client_for(app) as client:
        answer = await client.get("/page", headers={"cookie": "s=1"})
    assert "key" not in member(answer)


def test_cache_status_key_needs_a_prefix_it_can_send() -> None:
    with pytest.raises(ValueError, match="cache_status_key"):
        Cache(prefix="café", cache_status_key=True)
