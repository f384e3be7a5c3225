"""Cache-Status, Age, ETag and conditional requests; Cache-Control passes through."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Response

from asgi_cache import Cache, CacheMiddleware, cached
from tests.helpers import Calls, Clock, MakeCache, client_for, hit_status, is_hit

pytestmark = pytest.mark.anyio


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/plain")
    @cached(ttl=30)
    async def plain() -> Response:
        calls["plain"] += 1
        return Response(b"hello", media_type="text/plain")

    @app.get("/own-etag")
    @cached(ttl=30)
    async def own_etag() -> Response:
        calls["own"] += 1
        return Response(b"v", headers={"etag": 'W/"v1"', "cache-control": "max-age=5"})

    @app.get("/public")
    @cached(ttl=30, cache_control="public, max-age=30")
    async def public() -> Response:
        return Response(b"p", headers={"cache-control": "max-age=1"})

    @app.get("/from-response")
    @cached()
    async def from_response() -> Response:
        calls["from"] += 1
        return Response(b"r", headers={"cache-control": "max-age=10, s-maxage=20"})

    return app, calls


async def test_age_counts_seconds_since_stored(make_cache: MakeCache) -> None:
    clock = Clock()
    app, _ = build(make_cache(clock=clock))
    async with client_for(app) as client:
        miss = await client.get("/plain")
        clock.advance(7.4)
        hit = await client.get("/plain")
    assert "age" not in miss.headers
    assert hit.headers["age"] == "7"
    assert hit.headers["cache-status"] == hit_status(22)


async def test_generated_etag_is_a_strong_digest_of_the_body(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        miss = await client.get("/plain")
        hit = await client.get("/plain")
    etag = miss.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 34
    assert hit.headers["etag"] == etag


async def test_matching_if_none_match_gets_304_without_body(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        etag = (await client.get("/plain")).headers["etag"]
        conditional = await client.get("/plain", headers={"if-none-match": f'"x", {etag}'})
        other = await client.get("/plain", headers={"if-none-match": '"nope"'})
    assert conditional.status_code == 304
    assert conditional.content == b""
    assert conditional.headers["etag"] == etag
    assert "content-type" not in conditional.headers
    assert other.status_code == 200 and other.content == b"hello"
    assert calls["plain"] == 1


async def test_applications_own_etag_and_cache_control_pass_through(
    make_cache: MakeCache,
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/own-etag")
        hit = await client.get("/own-etag")
        weak_match = await client.get("/own-etag", headers={"if-none-match": '"v1"'})
    assert hit.headers["etag"] == 'W/"v1"'
    assert hit.headers["cache-control"] == "max-age=5"
    assert weak_match.status_code == 304
    assert calls["own"] == 1


async def test_route_cache_control_sets_what_clients_get(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        miss = await client.get("/public")
        hit = await client.get("/public")
    assert miss.headers.get_list("cache-control") == ["public, max-age=30"]
    assert hit.headers.get_list("cache-control") == ["public, max-age=30"]


async def test_server_side_ttl_never_leaks_into_cache_control(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/plain")
        hit = await client.get("/plain")
    assert "cache-control" not in hit.headers


async def test_without_ttl_the_response_s_maxage_sets_freshness(make_cache: MakeCache) -> None:
    clock = Clock()
    app, calls = build(make_cache(clock=clock))
    async with client_for(app) as client:
        await client.get("/from-response")
        clock.advance(19)
        fresh = await client.get("/from-response")
        clock.advance(2)
        await client.get("/from-response")
    assert is_hit(fresh)
    assert calls["from"] == 2
