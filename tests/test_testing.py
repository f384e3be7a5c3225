"""Testing support: the enabled switch, ``disabled()``, ``isolated()`` and the pytest plugin."""

from __future__ import annotations

import textwrap

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached, invalidates
from asgi_cache.status import Detail, Forward, forwarded, hit
from asgi_cache.testing import (
    assert_bypassed,
    assert_hit,
    assert_miss,
    assert_not_stored,
    assert_stored,
    cache_status,
)
from tests.helpers import STORED, Calls, MakeCache, bypassed, client_for, is_hit

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.anyio

DISABLED = bypassed(Detail.DISABLED)


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/items")
    @cached(ttl=60, tags=("items",))
    async def items() -> dict[str, int]:
        calls["items"] += 1
        return {"n": calls["items"]}

    @app.post("/items")
    @invalidates("items")
    async def add_item() -> dict[str, bool]:
        return {"ok": True}

    return app, calls


# -- the switch ---------------------------------------------------------------


async def test_a_disabled_cache_sends_every_request_to_the_app(make_cache: MakeCache) -> None:
    app, calls = build(make_cache(enabled=False))
    async with client_for(app) as client:
        first = await client.get("/items")
        second = await client.get("/items")
    assert calls["items"] == 2
    assert second.json() == {"n": 2}
    assert first.headers["cache-status"] == second.headers["cache-status"] == DISABLED


async def test_a_disabled_cache_counts_its_requests_as_bypasses(make_cache: MakeCache) -> None:
    cache = make_cache(enabled=False)
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
    assert cache.stats()["bypasses"] == {"disabled": 1}


async def test_a_cache_switched_back_on_stores_again(make_cache: MakeCache) -> None:
    cache = make_cache(enabled=False)
    app, calls = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
        cache.enabled = True
        stored = await client.get("/items")
        again = await client.get("/items")
    assert stored.headers["cache-status"] == STORED
    assert is_hit(again)
    assert calls["items"] == 2


def test_enabled_must_be_true_or_false() -> None:
    with pytest.raises(TypeError, match="Cache: enabled must be True or False"):
        Cache(enabled="no")  # type: ignore[arg-type]


# -- disabled() ---------------------------------------------------------------


async def test_within_disabled_a_stored_page_is_not_served(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
        with cache.disabled():
            inside = await client.get("/items")
    assert inside.headers["cache-status"] == DISABLED
    assert inside.json() == {"n": 2}


async def test_within_disabled_nothing_is_stored(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        with cache.disabled():
            await client.get("/items")
        after = await client.get("/items")
    assert after.headers["cache-status"] == STORED


async def test_a_page_stored_before_disabled_is_served_after_it(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
        with cache.disabled():
            await client.get("/items")
        after = await client.get("/items")
    assert is_hit(after)
    assert after.json() == {"n": 1}


async def test_a_write_within_disabled_invalidates_nothing(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
        with cache.disabled():
            write = await client.post("/items")
        after = await client.get("/items")
    assert write.status_code == 200
    assert is_hit(after)


async def test_a_write_outside_disabled_still_invalidates(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
        with cache.disabled():
            pass
        await client.post("/items")
        after = await client.get("/items")
    assert after.headers["cache-status"] == STORED


async def test_invalidations_within_disabled_remove_nothing(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
        with cache.disabled():
            removed = [
                await cache.invalidate("items"),
                await cache.invalidate_path("/items"),
                await cache.clear(),
            ]
        after = await client.get("/items")
    assert removed == [0, 0, 0]
    assert is_hit(after)


def test_disabled_switches_the_cache_back_on_when_its_block_raises() -> None:
    cache = Cache()
    with pytest.raises(RuntimeError), cache.disabled():
        raise RuntimeError("in the block")
    assert cache.enabled is True


def test_disabled_leaves_a_cache_that_was_off_switched_off() -> None:
    cache = Cache(enabled=False)
    with cache.disabled():
        pass
    assert cache.enabled is False


# -- isolated() ---------------------------------------------------------------


async def test_within_isolated_a_page_stored_before_is_not_served(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
        with cache.isolated():
            inside = await client.get("/items")
    assert inside.headers["cache-status"] == STORED
    assert inside.json() == {"n": 2}


async def test_within_isolated_pages_are_cached(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, calls = build(cache)
    async with client_for(app) as client:
        with cache.isolated():
            await client.get("/items")
            second = await client.get("/items")
    assert is_hit(second)
    assert calls["items"] == 1


async def test_after_isolated_the_usual_store_answers_as_before(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
        with cache.isolated():
            await client.get("/items")
            await client.post("/items")
            await cache.clear()
        after = await client.get("/items")
    assert is_hit(after)
    assert after.json() == {"n": 1}


async def test_isolated_counts_only_what_happens_within_it(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/items")
        await client.get("/items")
        with cache.isolated():
            await client.get("/items")
            inside = cache.stats()
    assert (inside["hits"], inside["misses"]) == (0, 1)
    assert (cache.stats()["hits"], cache.stats()["misses"]) == (1, 1)


async def test_isolated_uses_the_store_it_is_given(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    store = MemoryStore()
    async with client_for(app) as client:
        with cache.isolated(store):
            await client.get("/items")
    assert store.entries == 1


def test_an_isolated_store_keeps_its_entries_across_lifespans_within_the_block() -> None:
    cache = Cache()
    app, calls = build(cache)
    with cache.isolated():
        with TestClient(app) as client:
            client.get("/items")
        with TestClient(app) as client:
            restarted = client.get("/items")
    assert is_hit(restarted)
    assert calls["items"] == 1


def test_isolated_refuses_what_is_not_a_store() -> None:
    cache = Cache()
    not_a_store: object = "memory://"
    with pytest.raises(TypeError, match=r"Cache\.from_url"), cache.isolated(not_a_store):  # type: ignore[arg-type]
        pass


# -- assertions ---------------------------------------------------------------


def response(cache_status_value: bytes | None) -> httpx.Response:
    headers = {} if cache_status_value is None else {"cache-status": cache_status_value.decode()}
    return httpx.Response(200, headers=headers)


def test_assert_hit_passes_on_a_hit_and_returns_its_status() -> None:
    assert assert_hit(response(hit(42))).ttl == 42


def test_assert_hit_fails_on_a_miss_showing_the_header() -> None:
    with pytest.raises(AssertionError, match=r"expected a cache hit.*fwd=uri-miss; stored"):
        assert_hit(response(forwarded(Forward.URI_MISS, stored=True)))


def test_assert_miss_passes_on_a_miss_whether_stored_or_not() -> None:
    assert_miss(response(forwarded(Forward.URI_MISS, stored=True)))
    assert_miss(response(forwarded(Forward.VARY_MISS, Detail.SET_COOKIE)))


def test_assert_miss_fails_on_a_hit() -> None:
    with pytest.raises(AssertionError, match="expected a cache miss"):
        assert_miss(response(hit(10)))


def test_assert_miss_fails_on_a_bypass() -> None:
    with pytest.raises(AssertionError, match="expected a cache miss"):
        assert_miss(response(forwarded(Forward.BYPASS, Detail.DISABLED)))


def test_assert_stored_fails_on_a_response_not_stored() -> None:
    with pytest.raises(AssertionError, match=r"expected a stored response.*set-cookie"):
        assert_stored(response(forwarded(Forward.URI_MISS, Detail.SET_COOKIE)))


def test_assert_not_stored_checks_the_reason_when_given() -> None:
    not_stored = response(forwarded(Forward.URI_MISS, Detail.SET_COOKIE))
    assert assert_not_stored(not_stored, "set-cookie").detail == "set-cookie"
    with pytest.raises(AssertionError, match="not stored for 'no-store'"):
        assert_not_stored(not_stored, "no-store")


def test_assert_bypassed_checks_the_reason_when_given() -> None:
    disabled = response(forwarded(Forward.BYPASS, Detail.DISABLED))
    assert_bypassed(disabled, "disabled")
    with pytest.raises(AssertionError, match="bypassed for 'authorization'"):
        assert_bypassed(disabled, "authorization")


def test_a_response_without_cache_status_fails_every_assertion_saying_why() -> None:
    with pytest.raises(AssertionError, match="is the route @cached"):
        cache_status(response(None))


def test_another_caches_status_alone_is_not_ours() -> None:
    with pytest.raises(AssertionError, match="expected a Cache-Status from asgi-cache"):
        assert_hit(response(b"ExampleCDN; hit"))


# -- the pytest plugin, in a real pytest run ------------------------------------

APP = """
    from fastapi import FastAPI

    from asgi_cache import Cache, CacheMiddleware, cached

    cache = Cache()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)
    runs = []


    @app.get("/page")
    @cached(ttl=60)
    async def page() -> dict[str, int]:
        runs.append(1)
        return {"n": len(runs)}
"""

CONFTEST = """
    import pytest

    import shop


    @pytest.fixture
    def asgi_cache_instance():
        return shop.cache
"""

FIRST_REQUEST_IS_A_MISS = """
    import pytest
    from starlette.testclient import TestClient

    from asgi_cache.testing import assert_hit, assert_miss, assert_stored
    from shop import app


    @pytest.mark.parametrize("run", [1, 2])
    def test_first_request_is_a_stored_miss(run, {fixtures}):
        with TestClient(app) as client:
            assert_stored(assert_miss_response(client))
            assert_hit(client.get("/page"))


    def assert_miss_response(client):
        response = client.get("/page")
        assert_miss(response)
        return response
"""


def write_project(pytester: pytest.Pytester, fixtures: str) -> None:
    pytester.makepyfile(shop=textwrap.dedent(APP))
    pytester.makeconftest(textwrap.dedent(CONFTEST))
    test = textwrap.dedent(FIRST_REQUEST_IS_A_MISS).replace("{fixtures}", fixtures)
    pytester.makepyfile(test_shop=test)


def test_the_isolated_fixture_gives_each_test_an_empty_cache(pytester: pytest.Pytester) -> None:
    write_project(pytester, "asgi_cache_isolated")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_without_the_isolated_fixture_the_next_test_finds_a_hit(
    pytester: pytest.Pytester,
) -> None:
    write_project(pytester, "tmp_path")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*expected a cache miss, got Cache-Status 'asgi-cache; hit*"])


def test_the_disabled_fixture_sends_every_request_to_the_app(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(shop=textwrap.dedent(APP))
    pytester.makeconftest(textwrap.dedent(CONFTEST))
    pytester.makepyfile(
        test_shop="""
        from starlette.testclient import TestClient

        from asgi_cache.testing import assert_bypassed
        from shop import app


        def test_every_request_runs_the_endpoint(asgi_cache_disabled):
            with TestClient(app) as client:
                client.get("/page")
                response = client.get("/page")
            assert_bypassed(response, "disabled")
            assert response.json() == {"n": 2}


        def test_the_cache_is_back_on_after_the_test(asgi_cache_instance):
            assert asgi_cache_instance.enabled
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_the_fixtures_say_how_to_name_the_apps_cache(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_shop="""
        def test_needs_the_cache(asgi_cache_isolated):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*define a fixture named asgi_cache_instance*"])
    assert result.ret != 0


def test_the_fixtures_refuse_something_that_is_not_a_cache(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def asgi_cache_instance():
            return "redis://localhost"
        """
    )
    pytester.makepyfile(
        test_shop="""
        def test_needs_the_cache(asgi_cache_disabled):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*must return an asgi_cache.Cache, got str*"])
    assert result.ret != 0
