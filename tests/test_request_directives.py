"""Clients' request directives, with ``honor_request_cache_control`` (RFC 9111 §5.2.1)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Response

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.status import Detail, Forward, forwarded, unanswered
from tests.helpers import (
    REQUEST_STORED,
    Calls,
    Clock,
    MakeCache,
    client_for,
    hit_status,
    not_stored,
)

pytestmark = pytest.mark.anyio

ONLY_IF_CACHED = unanswered(Detail.ONLY_IF_CACHED).decode()


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/page")
    @cached(ttl=60, stale_if_error=120)
    async def page() -> Response:
        calls["page"] += 1
        return Response(f"v{calls['page']}", media_type="text/plain")

    return app, calls


def honouring(make_cache: MakeCache, clock: Clock | None = None) -> Cache:
    return make_cache(honor_request_cache_control=True, clock=clock or Clock())


async def test_an_entry_within_max_age_is_a_hit(make_cache: MakeCache) -> None:
    clock = Clock()
    app, calls = build(honouring(make_cache, clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(10)
        answer = await client.get("/page", headers={"cache-control": "max-age=10"})
    assert answer.headers["cache-status"] == hit_status(50)
    assert calls["page"] == 1


async def test_an_entry_older_than_max_age_is_fetched_anew_and_stored(
    make_cache: MakeCache,
) -> None:
    clock = Clock()
    app, calls = build(honouring(make_cache, clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(11)
        answer = await client.get("/page", headers={"cache-control": "max-age=10"})
        after = await client.get("/page")
    assert answer.headers["cache-status"] == REQUEST_STORED
    assert after.text == "v2"
    assert calls["page"] == 2


async def test_an_entry_fresh_for_less_than_min_fresh_is_fetched_anew(
    make_cache: MakeCache,
) -> None:
    clock = Clock()
    app, calls = build(honouring(make_cache, clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(50)
        answer = await client.get("/page", headers={"cache-control": "min-fresh=20"})
    assert answer.headers["cache-status"] == REQUEST_STORED
    assert calls["page"] == 2


async def test_an_entry_fresh_for_min_fresh_is_a_hit(make_cache: MakeCache) -> None:
    clock = Clock()
    app, calls = build(honouring(make_cache, clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(40)
        answer = await client.get("/page", headers={"cache-control": "min-fresh=20"})
    assert answer.headers["cache-status"] == hit_status(20)
    assert calls["page"] == 1


@pytest.mark.parametrize("directive", ["max-stale=30", "max-stale"])
async def test_max_stale_accepts_a_stale_entry(make_cache: MakeCache, directive: str) -> None:
    clock = Clock()
    app, calls = build(honouring(make_cache, clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(90)
        answer = await client.get("/page", headers={"cache-control": directive})
    assert answer.text == "v1"
    assert answer.headers["cache-status"] == hit_status(-30, Detail.MAX_STALE)
    assert calls["page"] == 1


async def test_an_entry_staler_than_max_stale_goes_to_the_application(
    make_cache: MakeCache,
) -> None:
    clock = Clock()
    app, _ = build(honouring(make_cache, clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(90)
        answer = await client.get("/page", headers={"cache-control": "max-stale=29"})
    assert answer.text == "v2"
    assert answer.headers["cache-status"] == forwarded(Forward.STALE, stored=True).decode()


@pytest.mark.parametrize("directive", ["max-age=abc", "max-age=-1", "min-fresh=1.5"])
async def test_a_directive_with_an_invalid_value_is_ignored(
    make_cache: MakeCache, directive: str
) -> None:
    clock = Clock()
    app, calls = build(honouring(make_cache, clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(30)
        answer = await client.get("/page", headers={"cache-control": directive})
    assert answer.headers["cache-status"] == hit_status(30)
    assert calls["page"] == 1


async def test_only_if_cached_is_answered_from_a_stored_entry(make_cache: MakeCache) -> None:
    app, calls = build(honouring(make_cache))
    async with client_for(app) as client:
        await client.get("/page")
        answer = await client.get("/page", headers={"cache-control": "only-if-cached"})
    assert answer.status_code == 200 and answer.text == "v1"
    assert calls["page"] == 1


async def test_only_if_cached_without_an_entry_gets_504_and_never_calls_the_app(
    make_cache: MakeCache,
) -> None:
    app, calls = build(honouring(make_cache))
    async with client_for(app) as client:
        answer = await client.get("/page", headers={"cache-control": "only-if-cached"})
        after = await client.get("/page")
    assert answer.status_code == 504
    assert answer.headers["cache-status"] == ONLY_IF_CACHED
    assert after.text == "v1"  # the 504 was not stored
    assert calls["page"] == 1


async def test_only_if_cached_with_a_stale_entry_gets_504(make_cache: MakeCache) -> None:
    clock = Clock()
    app, calls = build(honouring(make_cache, clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(90)
        answer = await client.get("/page", headers={"cache-control": "only-if-cached"})
    assert answer.status_code == 504
    assert calls["page"] == 1


async def test_only_if_cached_with_max_stale_is_answered_stale(make_cache: MakeCache) -> None:
    clock = Clock()
    app, calls = build(honouring(make_cache, clock))
    async with client_for(app) as client:
        await client.get("/page")
        clock.advance(90)
        headers = {"cache-control": "only-if-cached, max-stale"}
        answer = await client.get("/page", headers=headers)
    assert answer.status_code == 200 and answer.text == "v1"
    assert calls["page"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"cache-control": "only-if-cached, no-cache"},
        {"cache-control": "only-if-cached", "authorization": "Bearer alice"},
        {"cache-control": "only-if-cached", "if-match": '"x"'},
    ],
)
async def test_only_if_cached_that_no_entry_may_answer_gets_504(
    make_cache: MakeCache, headers: dict[str, str]
) -> None:
    app, calls = build(honouring(make_cache))
    async with client_for(app) as client:
        await client.get("/page")
        answer = await client.get("/page", headers=headers)
    assert answer.status_code == 504
    assert calls["page"] == 1


async def test_only_if_cached_on_a_head_without_an_entry_gets_504(make_cache: MakeCache) -> None:
    app, calls = build(honouring(make_cache))
    async with client_for(app) as client:
        answer = await client.head("/page", headers={"cache-control": "only-if-cached"})
    assert answer.status_code == 504
    assert calls["page"] == 0


async def test_only_if_cached_is_ignored_unless_honoured(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        answer = await client.get("/page", headers={"cache-control": "only-if-cached"})
    assert answer.status_code == 200
    assert calls["page"] == 1


async def test_no_store_is_answered_from_a_stored_entry(make_cache: MakeCache) -> None:
    app, calls = build(honouring(make_cache))
    async with client_for(app) as client:
        await client.get("/page")
        answer = await client.get("/page", headers={"cache-control": "no-store"})
    assert answer.headers["cache-status"] == hit_status(60)
    assert calls["page"] == 1


async def test_a_no_store_miss_is_not_stored(make_cache: MakeCache) -> None:
    app, calls = build(honouring(make_cache))
    async with client_for(app) as client:
        answer = await client.get("/page", headers={"cache-control": "no-store"})
        after = await client.get("/page")
    assert answer.headers["cache-status"] == not_stored(Detail.REQUEST_NO_STORE)
    assert after.text == "v2"
    assert calls["page"] == 2


async def test_no_cache_with_no_store_fetches_anew_without_storing(
    make_cache: MakeCache,
) -> None:
    app, calls = build(honouring(make_cache))
    async with client_for(app) as client:
        await client.get("/page")
        answer = await client.get("/page", headers={"cache-control": "no-cache, no-store"})
        after = await client.get("/page")
    assert (
        answer.headers["cache-status"]
        == forwarded(Forward.REQUEST, Detail.REQUEST_NO_STORE).decode()
    )
    assert after.text == "v1"
    assert calls["page"] == 2
