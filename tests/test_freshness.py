"""Freshness through real HTTP (RFC 9111 §4.2, §5.1, §5.3; RFC 9213), on every store."""

from __future__ import annotations

from email.utils import formatdate

import httpx
import pytest
from fastapi import FastAPI, Response

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.status import Detail
from tests.helpers import (
    STORED,
    Calls,
    Clock,
    MakeCache,
    client_for,
    detail_of,
    hit_status,
    is_hit,
    not_stored,
)

pytestmark = pytest.mark.anyio


def http_date(seconds: float) -> str:
    return formatdate(seconds, usegmt=True)


def build(cache: Cache, calls: Calls, headers: dict[str, str], status: int = 200) -> FastAPI:
    """An app whose ``/page`` answers ``status`` with ``headers`` (``{now}`` filled in)."""
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/page")
    @cached(statuses=(200, 203, 403))
    async def page() -> Response:
        calls["page"] += 1
        return Response("page", status_code=status, headers=headers)

    @app.get("/routed")
    @cached(ttl=30, statuses=(403,))
    async def routed() -> Response:
        calls["routed"] += 1
        return Response("routed", status_code=status, headers=headers)

    return app


async def get_twice(
    app: FastAPI, clock: Clock, after: float, path: str = "/page"
) -> tuple[httpx.Response, httpx.Response]:
    """``path`` fetched, then fetched again ``after`` seconds later."""
    async with client_for(app) as client:
        first = await client.get(path)
        clock.advance(after)
        second = await client.get(path)
    return first, second


async def test_a_response_older_than_its_lifetime_is_not_stored(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    app = build(make_cache(clock=clock), calls, {"age": "7200", "cache-control": "max-age=3600"})
    first, second = await get_twice(app, clock, 1)
    assert first.headers["cache-status"] == not_stored(Detail.NOT_STORED)
    assert not is_hit(second)
    assert calls["page"] == 2


async def test_a_hit_counts_the_age_the_response_arrived_with(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    app = build(make_cache(clock=clock), calls, {"age": "100", "cache-control": "max-age=3600"})
    _, hit = await get_twice(app, clock, 10)
    assert hit.headers["age"] == "110"
    assert hit.headers["cache-status"] == hit_status(3490)


async def test_a_hit_sends_one_age_field(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    app = build(make_cache(clock=clock), calls, {"Age": "5", "cache-control": "max-age=60"})
    _, hit = await get_twice(app, clock, 1)
    assert hit.headers.get_list("age") == ["6"]


@pytest.mark.parametrize("age", ["abc", "-5", "1.5", "1 0"])
async def test_an_invalid_age_is_ignored(make_cache: MakeCache, age: str) -> None:
    clock, calls = Clock(), Calls()
    app = build(make_cache(clock=clock), calls, {"age": age, "cache-control": "max-age=60"})
    _, hit = await get_twice(app, clock, 3)
    assert hit.headers["age"] == "3"
    assert hit.headers["cache-status"] == hit_status(57)


async def test_a_date_in_the_past_counts_as_age(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    headers = {"date": http_date(clock.now - 20), "cache-control": "max-age=60"}
    _, hit = await get_twice(build(make_cache(clock=clock), calls, headers), clock, 0)
    assert hit.headers["age"] == "20"
    assert hit.headers["cache-status"] == hit_status(40)


async def test_expires_minus_date_is_the_lifetime(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    headers = {"date": http_date(clock.now), "expires": http_date(clock.now + 30)}
    app = build(make_cache(clock=clock, default_ttl=600), calls, headers)
    _, hit = await get_twice(app, clock, 10)
    assert hit.headers["cache-status"] == hit_status(20)


async def test_expires_without_date_counts_from_receipt(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    app = build(make_cache(clock=clock), calls, {"expires": http_date(clock.now + 30)})
    first, late = await get_twice(app, clock, 31)
    assert first.headers["cache-status"] == STORED
    assert not is_hit(late)


@pytest.mark.parametrize("expires", ["0", "tomorrow", "Sun, 06 Nov 2094 08:49:37 UTC"])
async def test_an_invalid_expires_means_already_expired(
    make_cache: MakeCache, expires: str
) -> None:
    clock, calls = Clock(), Calls()
    app = build(make_cache(clock=clock), calls, {"expires": expires})
    first, _ = await get_twice(app, clock, 0)
    assert detail_of(first) == Detail.NOT_STORED
    assert calls["page"] == 2


async def test_max_age_beats_expires(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    headers = {"expires": http_date(clock.now + 1000), "cache-control": "max-age=50"}
    _, hit = await get_twice(build(make_cache(clock=clock), calls, headers), clock, 0)
    assert hit.headers["cache-status"] == hit_status(50)


async def test_without_heuristic_freshness_a_response_without_lifetime_is_not_stored(
    make_cache: MakeCache,
) -> None:
    clock, calls = Clock(), Calls()
    app = build(make_cache(clock=clock, heuristic_freshness=False), calls, {})
    first, _ = await get_twice(app, clock, 0)
    assert detail_of(first) == Detail.NOT_STORED
    assert calls["page"] == 2


async def test_without_heuristic_freshness_explicit_freshness_is_stored(
    make_cache: MakeCache,
) -> None:
    clock, calls = Clock(), Calls()
    app = build(
        make_cache(clock=clock, heuristic_freshness=False), calls, {"cache-control": "max-age=9"}
    )
    _, hit = await get_twice(app, clock, 0)
    assert hit.headers["cache-status"] == hit_status(9)


async def test_last_modified_gives_a_tenth_of_its_age(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    headers = {"date": http_date(clock.now), "last-modified": http_date(clock.now - 1000)}
    _, hit = await get_twice(
        build(make_cache(clock=clock, default_ttl=600), calls, headers), clock, 0
    )
    assert hit.headers["cache-status"] == hit_status(100)


async def test_the_last_modified_heuristic_is_capped_by_the_default_ttl(
    make_cache: MakeCache,
) -> None:
    clock, calls = Clock(), Calls()
    headers = {"last-modified": http_date(clock.now - 100_000)}
    _, hit = await get_twice(
        build(make_cache(clock=clock, default_ttl=60), calls, headers), clock, 0
    )
    assert hit.headers["cache-status"] == hit_status(60)


async def test_a_widened_status_is_not_stored_without_explicit_freshness(
    make_cache: MakeCache,
) -> None:
    clock, calls = Clock(), Calls()
    first, _ = await get_twice(build(make_cache(clock=clock), calls, {}, status=403), clock, 0)
    assert detail_of(first) == Detail.NOT_STORED
    assert calls["page"] == 2


async def test_a_widened_status_is_stored_with_explicit_freshness(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    app = build(make_cache(clock=clock), calls, {"cache-control": "max-age=20"}, status=403)
    _, hit = await get_twice(app, clock, 0)
    assert hit.status_code == 403
    assert hit.headers["cache-status"] == hit_status(20)


async def test_a_widened_status_is_stored_for_an_explicit_route_ttl(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    _, hit = await get_twice(build(make_cache(clock=clock), calls, {}, 403), clock, 0, "/routed")
    assert hit.headers["cache-status"] == hit_status(30)


async def test_a_route_ttl_counts_from_receipt_and_age_stays_truthful(
    make_cache: MakeCache,
) -> None:
    clock, calls = Clock(), Calls()
    app = build(make_cache(clock=clock), calls, {"age": "500"}, status=403)
    _, hit = await get_twice(app, clock, 10, "/routed")
    assert hit.headers["age"] == "510"
    assert hit.headers["cache-status"] == hit_status(20)


@pytest.mark.parametrize("status", [206, 304])
def test_a_never_stored_status_is_refused_in_the_cache_settings(status: int) -> None:
    with pytest.raises(ValueError, match=f"Cache: status {status} is never stored"):
        Cache(statuses=(200, status))


@pytest.mark.parametrize("status", [206, 304])
def test_a_never_stored_status_is_refused_on_a_route(status: int) -> None:
    with pytest.raises(ValueError, match=f"@cached on .*ranged: status {status} is never stored"):

        @cached(statuses=(200, status))
        async def ranged() -> None: ...


async def test_cdn_cache_control_overrides_cache_control_and_is_forwarded(
    make_cache: MakeCache,
) -> None:
    clock, calls = Clock(), Calls()
    headers = {"cache-control": "no-store", "cdn-cache-control": "max-age=600"}
    first, hit = await get_twice(build(make_cache(clock=clock), calls, headers), clock, 0)
    assert first.headers["cache-status"] == STORED
    assert hit.headers["cache-status"] == hit_status(600)
    assert hit.headers["cdn-cache-control"] == "max-age=600"
    assert hit.headers["cache-control"] == "no-store"


async def test_a_targeted_field_overrides_expires(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    headers = {"expires": "0", "cdn-cache-control": "max-age=600"}
    _, hit = await get_twice(build(make_cache(clock=clock), calls, headers), clock, 0)
    assert hit.headers["cache-status"] == hit_status(600)


async def test_the_caches_own_field_comes_first_on_the_target_list(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    cache = make_cache(
        clock=clock, targeted_cache_control=("asgi-cache-control", "cdn-cache-control")
    )
    headers = {"asgi-cache-control": "max-age=5", "cdn-cache-control": "max-age=600"}
    _, hit = await get_twice(build(cache, calls, headers), clock, 0)
    assert hit.headers["cache-status"] == hit_status(5)


async def test_an_invalid_targeted_field_falls_back_on_cache_control(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    headers = {"cache-control": "no-store", "cdn-cache-control": "Max-Age=600"}
    first, _ = await get_twice(build(make_cache(clock=clock), calls, headers), clock, 0)
    assert detail_of(first) == Detail.NO_STORE


async def test_an_empty_target_list_ignores_cdn_cache_control(make_cache: MakeCache) -> None:
    clock, calls = Clock(), Calls()
    headers = {"cache-control": "no-store", "cdn-cache-control": "max-age=600"}
    cache = make_cache(clock=clock, targeted_cache_control=())
    first, _ = await get_twice(build(cache, calls, headers), clock, 0)
    assert detail_of(first) == Detail.NO_STORE


async def test_must_understand_lets_an_understood_status_be_stored_despite_no_store(
    make_cache: MakeCache,
) -> None:
    clock, calls = Clock(), Calls()
    headers = {"cache-control": "must-understand, no-store, max-age=30"}
    _, hit = await get_twice(build(make_cache(clock=clock), calls, headers), clock, 0)
    assert hit.headers["cache-status"] == hit_status(30)


async def test_must_understand_refuses_a_status_the_cache_does_not_understand(
    make_cache: MakeCache,
) -> None:
    clock, calls = Clock(), Calls()
    cache = make_cache(clock=clock, statuses=(200, 299))
    headers = {"cache-control": "must-understand, max-age=30"}
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/odd")
    @cached()
    async def odd() -> Response:
        calls["odd"] += 1
        return Response("odd", status_code=299, headers=headers)

    first, _ = await get_twice(app, clock, 0, "/odd")
    assert detail_of(first) == Detail.STATUS
    assert calls["odd"] == 2


async def test_an_s_maxage_entry_is_not_served_stale_by_the_cache_defaults(
    make_cache: MakeCache,
) -> None:
    clock, calls = Clock(), Calls()
    cache = make_cache(clock=clock, stale_while_revalidate=300)
    app = build(cache, calls, {"cache-control": "s-maxage=10"})
    _, late = await get_twice(app, clock, 20)
    assert not is_hit(late)
    assert calls["page"] == 2


async def test_an_s_maxage_entry_is_served_stale_when_the_response_allows_it(
    make_cache: MakeCache,
) -> None:
    clock, calls = Clock(), Calls()
    app = build(
        make_cache(clock=clock),
        calls,
        {"cache-control": "s-maxage=10, stale-while-revalidate=300"},
    )
    _, late = await get_twice(app, clock, 20)
    assert late.headers["cache-status"] == hit_status(-10, Detail.STALE_WHILE_REVALIDATE)
