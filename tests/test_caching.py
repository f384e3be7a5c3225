"""What is stored and served: keys, statuses, response directives, sizes."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached
from asgi_cache.status import Detail
from tests.helpers import (
    STALE_STORED,
    STORED,
    Calls,
    Clock,
    MakeCache,
    asgi_request,
    client_for,
    is_hit,
    not_stored,
)

pytestmark = pytest.mark.anyio


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/items")
    @cached(ttl=60)
    async def items(request: Request) -> dict[str, object]:
        calls["items"] += 1
        return {"query": list(request.query_params.multi_items()), "n": calls["items"]}

    @app.get("/status/{code}")
    @cached(ttl=60)
    async def status(code: int) -> Response:
        calls[f"status{code}"] += 1
        return JSONResponse({"n": calls[f"status{code}"]}, status_code=code)

    @app.get("/only-200/{code}")
    @cached(ttl=60, statuses=(200,))
    async def only_200(code: int) -> Response:
        calls[f"only{code}"] += 1
        return JSONResponse({"n": calls[f"only{code}"]}, status_code=code)

    @app.get("/headers")
    @cached(ttl=60, vary=("accept-language",))
    async def with_headers(request: Request) -> Response:
        calls["headers"] += 1
        response = JSONResponse({"n": calls["headers"]})
        for name, value in request.query_params.multi_items():
            response.headers.append(name, value)
        return response

    @app.get("/big/{size}")
    @cached(ttl=60, max_body_size=1000)
    async def big(size: int) -> Response:
        calls["big"] += 1
        return Response(b"x" * size)

    @app.get("/uncached")
    async def uncached() -> dict[str, int]:
        calls["uncached"] += 1
        return {"n": calls["uncached"]}

    @app.post("/items")
    async def post_items() -> dict[str, bool]:
        return {"ok": True}

    return app, calls


async def test_second_get_is_a_hit_that_runs_nothing(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        first = await client.get("/items?a=1")
        second = await client.get("/items?a=1")
    assert first.headers["cache-status"] == STORED
    assert is_hit(second)
    assert second.json() == first.json()
    assert calls["items"] == 1


async def test_hit_keeps_status_headers_and_body_exactly(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        first = await client.get("/headers?link=%3C%2Fa%3E&link=%3C%2Fb%3E&x-thing=1")
        second = await client.get("/headers?link=%3C%2Fa%3E&link=%3C%2Fb%3E&x-thing=1")
    assert second.status_code == first.status_code == 200
    assert second.headers.get_list("link") == ["</a>", "</b>"]
    assert second.headers["x-thing"] == "1"
    assert second.content == first.content


async def test_query_parameter_order_does_not_split_the_cache(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/items?a=1&b=2")
        hit = await client.get("/items?b=2&a=1")
    assert is_hit(hit)
    assert calls["items"] == 1


async def test_repeated_parameter_order_is_part_of_the_key(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        first = await client.get("/items?t=1&t=2")
        second = await client.get("/items?t=2&t=1")
    assert first.json()["query"] == [["t", "1"], ["t", "2"]]
    assert second.json()["query"] == [["t", "2"], ["t", "1"]]
    assert calls["items"] == 2


@pytest.mark.parametrize(("stored", "same"), [("?q=A", "?q=%41"), ("?q=a+b", "?q=a%20b")])
async def test_equivalent_percent_encodings_share_an_entry(
    make_cache: MakeCache, stored: str, same: str
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/items" + stored)
        hit = await client.get("/items" + same)
    assert is_hit(hit)
    assert calls["items"] == 1


async def test_different_query_values_are_different_entries(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        one = await client.get("/items?q=1")
        two = await client.get("/items?q=2")
    assert one.json()["query"] != two.json()["query"]
    assert calls["items"] == 2


async def test_names_read_alike_with_values_in_another_order_are_different_entries(
    make_cache: MakeCache,
) -> None:
    app, calls = build(make_cache())
    await asgi_request(app, "/items", query_string=b"%FF=1&%FE=2")
    second = await asgi_request(app, "/items", query_string=b"%FE=2&%FF=1")
    assert not is_hit(second)
    assert json.loads(second.body)["query"] == [["\ufffd", "2"], ["\ufffd", "1"]]
    assert calls["items"] == 2


@pytest.mark.parametrize(
    "query", [b"q=%FF%FE", b"q=\xff\xfe", b"%zz=%", b"&&&=&=", b"q=" + b"x" * 100_000]
)
async def test_malformed_or_huge_query_strings_are_served(
    make_cache: MakeCache, query: bytes
) -> None:
    app, calls = build(make_cache())
    first = await asgi_request(app, "/items", query_string=query)
    second = await asgi_request(app, "/items", query_string=query)
    assert first.status == second.status == 200
    assert second.body == first.body
    assert is_hit(second)
    assert calls["items"] == 1


async def test_cache_level_vary_header_splits_entries(make_cache: MakeCache) -> None:
    app, calls = build(make_cache(vary=("accept-language",)))
    async with client_for(app) as client:
        await client.get("/items", headers={"accept-language": "fr"})
        await client.get("/items", headers={"accept-language": "en"})
        hit = await client.get("/items", headers={"accept-language": "fr"})
    assert is_hit(hit)
    assert calls["items"] == 2


async def test_head_is_answered_from_the_get_entry_without_body(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        get = await client.get("/items")
        head = await client.head("/items")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert is_hit(head)
    assert calls["items"] == 1


async def test_a_head_miss_is_not_stored(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        head = await client.head("/status/200")
        get = await client.get("/status/200")
    assert head.headers["cache-status"] == not_stored(Detail.HEAD)
    assert get.headers["cache-status"] == STORED


async def test_not_found_is_cached_by_default(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/status/404")
        hit = await client.get("/status/404")
    assert hit.status_code == 404
    assert is_hit(hit)
    assert calls["status404"] == 1


@pytest.mark.parametrize("code", [500, 502, 503, 201, 302, 401, 403])
async def test_statuses_outside_the_default_set_are_never_stored(
    make_cache: MakeCache, code: int
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        first = await client.get(f"/status/{code}")
        await client.get(f"/status/{code}")
    assert first.headers["cache-status"] == not_stored(Detail.STATUS)
    assert calls[f"status{code}"] == 2


async def test_a_route_can_narrow_the_stored_statuses(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/only-200/404")
        await client.get("/only-200/404")
        await client.get("/only-200/200")
        await client.get("/only-200/200")
    assert calls["only404"] == 2
    assert calls["only200"] == 1


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("set-cookie=session%3Dabc", "set-cookie"),
        ("Set-Cookie=a%3Db", "set-cookie"),
        ("cache-control=no-store", "no-store"),
        ("cache-control=private", "private"),
        ("cache-control=private%3D%22x%22%2C%20max-age%3D60", "private"),
        ("cache-control=no-cache", "no-cache"),
        ("vary=*", "vary"),
        ("vary=x%20user", "vary"),
    ],
)
async def test_responses_that_forbid_storing_are_not_stored(
    make_cache: MakeCache, query: str, detail: str
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        first = await client.get(f"/headers?{query}")
        second = await client.get(f"/headers?{query}")
    assert first.headers["cache-status"] == not_stored(detail)
    assert not is_hit(second)
    assert calls["headers"] == 2


async def test_vary_on_a_key_header_is_stored_per_value(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/headers?vary=Accept-Language", headers={"accept-language": "fr"})
        hit = await client.get("/headers?vary=Accept-Language", headers={"accept-language": "fr"})
        other = await client.get("/headers?vary=Accept-Language", headers={"accept-language": "de"})
    assert is_hit(hit)
    assert not is_hit(other)
    assert calls["headers"] == 2


async def test_over_size_body_is_passed_through_and_not_stored(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        first = await client.get("/big/5000")
        second = await client.get("/big/5000")
        small = await client.get("/big/10")
        small_hit = await client.get("/big/10")
    assert first.content == second.content == b"x" * 5000
    assert first.headers["cache-status"] == not_stored(Detail.TOO_LARGE)
    assert is_hit(small_hit)
    assert small.content == b"x" * 10
    assert calls["big"] == 3


async def test_post_is_never_cached(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        response = await client.post("/items")
    assert response.json() == {"ok": True}
    assert "cache-status" not in response.headers


async def test_unmarked_route_is_untouched(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        first = await client.get("/uncached")
        second = await client.get("/uncached")
    assert "cache-status" not in first.headers
    assert second.json() == {"n": 2}
    assert calls["uncached"] == 2


async def test_entry_expires_after_its_ttl(make_cache: MakeCache) -> None:
    clock = Clock()
    cache = make_cache(clock=clock)
    app, calls = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
        clock.advance(59)
        fresh = await client.get("/items")
        clock.advance(2)
        expired = await client.get("/items")
    assert is_hit(fresh)
    # A memory store keeps to the cache's clock and has dropped the expired entry;
    # Redis expires by its own clock and still holds it, stale.
    dropped = isinstance(cache.store, MemoryStore)
    assert expired.headers["cache-status"] == (STORED if dropped else STALE_STORED)
    assert calls["items"] == 2
