"""Misuse fails loudly and early, with a message naming the route or setting to fix."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached, get_cache, invalidates
from asgi_cache.status import Detail
from asgi_cache.stores.redis import RedisStore
from tests.fixtures_redis import TEST_SERVER_ARGS
from tests.helpers import Clock, MakeCache, client_for, detail_of, is_hit
from tests.redis_servers import RedisServer
from tests.test_routes import startup_failure

pytestmark = pytest.mark.anyio

# -- markers used without parentheses --------------------------------------------


def test_cached_used_bare_fails_at_import_naming_the_function() -> None:
    app = FastAPI()
    bare = r"@cached on .*listing is used without parentheses: write @cached\(\)"
    with pytest.raises(TypeError, match=bare):

        @app.get("/listing")
        @cached  # type: ignore[arg-type]
        async def listing() -> dict[str, str]:
            return {}


def test_invalidates_used_bare_fails_at_import_naming_the_function() -> None:
    app = FastAPI()
    bare = r"@invalidates on .*update is used without parentheses: write @invalidates\(\)"
    with pytest.raises(TypeError, match=bare):

        @app.put("/items")
        @invalidates  # type: ignore[arg-type]
        async def update() -> dict[str, str]:
            return {}


# -- arguments of other caching libraries ---------------------------------------


@pytest.mark.parametrize(
    ("argument", "hint"),
    [
        ("expire", "asgi-cache calls it ttl="),
        ("timeout", "asgi-cache calls it ttl="),
        ("key_builder", "asgi-cache calls it key="),
        ("namespace", "Cache\\(prefix=...\\)"),
        ("key_prefix", "Cache\\(prefix=...\\)"),
        ("coder", "no coder to choose"),
        ("query_string", "query string is always part of the key"),
    ],
)
def test_an_argument_of_another_library_is_answered_with_what_to_write(
    argument: str, hint: str
) -> None:
    with pytest.raises(TypeError, match=rf"@cached: unexpected keyword argument '{argument}'; "):
        cached(**{argument: 60})
    with pytest.raises(TypeError, match=hint):
        cached(**{argument: 60})


def test_an_unknown_argument_lists_the_accepted_ones() -> None:
    with pytest.raises(TypeError, match=r"'tll'.*accepted: ttl, tags, vary, key"):
        cached(tll=60)


def _endpoint() -> None:
    pass


def test_a_duration_string_ttl_is_refused_with_its_seconds() -> None:
    with pytest.raises(TypeError, match=r"not a duration string: write ttl=3600 for '1h'"):
        cached("1h")(_endpoint)  # type: ignore[arg-type]


def test_a_duration_string_in_minutes_gives_its_seconds() -> None:
    with pytest.raises(TypeError, match=r"write ttl=300 for '5m'"):
        cached(ttl="5m")(_endpoint)  # type: ignore[arg-type]


# -- the store argument ----------------------------------------------------------


def test_a_url_as_store_fails_at_construction_pointing_at_from_url() -> None:
    with pytest.raises(TypeError, match=r"not a URL; open one with Cache.from_url\('redis://"):
        Cache(store="redis://localhost:6390/0")  # type: ignore[arg-type]


def test_a_url_as_store_is_named_without_its_password() -> None:
    with pytest.raises(TypeError) as raised:
        Cache(store="redis://user:secret@localhost:6390/0")  # type: ignore[arg-type]
    assert "secret" not in str(raised.value)
    assert "redis://user:***@localhost:6390/0" in str(raised.value)


def test_an_object_that_is_not_a_store_fails_at_construction_naming_its_type() -> None:
    with pytest.raises(TypeError, match=r"store must be a Store .*got dict"):
        Cache(store={})  # type: ignore[arg-type]


# -- store options through from_url --------------------------------------------------


def test_from_url_passes_redis_client_options_such_as_a_password(
    redis_server: RedisServer,
) -> None:
    cache = Cache.from_url(redis_server.url, password="x", socket_timeout=0.5, prefix="p")
    assert isinstance(cache.store, RedisStore)
    assert cache.store.client.get_connection_kwargs()["password"] == "x"
    assert cache.prefix == "p"


def test_from_url_refuses_an_unknown_option_naming_the_accepted_ones() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'pasword'.*password"):
        Cache.from_url("redis://localhost:6390/0", pasword="x")


def test_from_url_passes_memory_options_to_the_memory_store() -> None:
    cache = Cache.from_url("memory://", max_bytes=4096)
    assert isinstance(cache.store, MemoryStore)
    assert cache.store.stats()["bytes"] == 0
    with pytest.raises(TypeError, match=r"'password'.*max_bytes, max_entries"):
        Cache.from_url("memory://", password="x")


# -- the memory store's clock and lifespans ------------------------------------------


def _counting_app(cache: Cache) -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    calls: list[int] = []

    @app.get("/page")
    @cached(ttl=60)
    async def page() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    app.add_middleware(CacheMiddleware, cache=cache)
    return app, calls


@pytest.mark.parametrize("given", [False, True], ids=["made-by-the-cache", "passed-in"])
def test_a_memory_store_expires_entries_by_the_cache_clock(given: bool) -> None:
    clock = Clock()
    cache = Cache(MemoryStore(), clock=clock) if given else Cache(clock=clock)
    app, calls = _counting_app(cache)
    with TestClient(app) as client:
        client.get("/page")
        clock.advance(61)
        client.get("/page")
    assert len(calls) == 2
    assert cache.store.stats()["entries"] == 1  # the expired entry was dropped, then refilled


def test_a_memory_store_with_its_own_clock_keeps_to_it() -> None:
    store_clock, cache_clock = Clock(), Clock()
    cache = Cache(MemoryStore(clock=store_clock), clock=cache_clock)
    app, _ = _counting_app(cache)
    with TestClient(app) as client:
        client.get("/page")
        store_clock.advance(3600)
        assert client.get("/page").json() == {"n": 2}  # expired for the store: computed anew


def test_memory_entries_outlive_a_lifespan() -> None:
    app, calls = _counting_app(Cache(MemoryStore()))
    with TestClient(app) as client:
        client.get("/page")
    with TestClient(app) as client:
        second = client.get("/page")
    assert is_hit(second)
    assert len(calls) == 1


def test_a_memory_store_told_to_clear_on_close_starts_each_lifespan_empty() -> None:
    app, calls = _counting_app(Cache(MemoryStore(clear_on_close=True)))
    with TestClient(app) as client:
        client.get("/page")
    with TestClient(app) as client:
        client.get("/page")
    assert len(calls) == 2


# -- @cached on a route that serves no GET -------------------------------------------


def test_cached_on_a_post_route_fails_startup_naming_the_route() -> None:
    app = FastAPI()

    @app.post("/orders")
    @cached(ttl=60)
    async def create_order() -> dict[str, str]:
        return {}

    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    error = startup_failure(app)
    assert "route POST /orders (" in error
    assert "create_order" in error
    assert "@cached only caches GET (and HEAD) responses, not POST" in error


def test_cached_on_an_http_endpoint_post_handler_fails_startup_naming_the_route() -> None:
    class Orders(HTTPEndpoint):
        async def get(self, request: Request) -> PlainTextResponse:
            return PlainTextResponse("list")

        @cached(ttl=60)
        async def post(self, request: Request) -> PlainTextResponse:
            return PlainTextResponse("made")

    app = Starlette(routes=[Route("/orders", Orders)])
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    error = startup_failure(app)
    assert "route POST /orders (" in error
    assert "Orders)" in error


def test_cached_on_a_function_served_by_get_and_post_routes_is_accepted() -> None:
    app = FastAPI()
    calls: list[int] = []

    @cached(ttl=60)
    async def orders() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    app.get("/orders")(orders)
    app.post("/orders")(orders)
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    with TestClient(app) as client:
        client.get("/orders")
        assert is_hit(client.get("/orders"))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- markers in an app without the middleware: one warning per route ------------------


def _fastapi_app(calls: list[str]) -> FastAPI:
    """Marked routes of every kind FastAPI has; ``calls`` records each run."""
    app = FastAPI()

    @app.get("/items/{iid}")
    @cached(ttl=60, tags=("item:{iid}",))
    async def item(iid: int, q: str = "") -> dict[str, object]:
        calls.append("item")
        return {"iid": iid, "q": q}

    @app.get("/report")
    @cached(ttl=60)
    def report() -> dict[str, str]:
        calls.append("report")
        return {"report": "ready"}

    @app.put("/items/{iid}")
    @invalidates("item:{iid}")
    async def put_item(iid: int) -> dict[str, int]:
        calls.append("put")
        return {"iid": iid}

    return app


def _starlette_app(calls: list[str]) -> Starlette:
    @cached(ttl=60)
    async def page(request: Request) -> PlainTextResponse:
        calls.append("page")
        return PlainTextResponse(f"page {request.path_params['name']}")

    @cached(ttl=60)
    def legacy(request: Request) -> PlainTextResponse:
        calls.append("legacy")
        return PlainTextResponse("legacy")

    class Board(HTTPEndpoint):
        @cached(ttl=60)
        async def get(self, request: Request) -> PlainTextResponse:
            calls.append("board")
            return PlainTextResponse("board")

    return Starlette(
        routes=[Route("/pages/{name}", page), Route("/legacy", legacy), Route("/board", Board)]
    )


def test_a_fastapi_app_without_the_middleware_warns_once_per_marked_route_and_still_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    app = _fastapi_app(calls)
    with caplog.at_level(logging.WARNING, logger="asgi_cache"), TestClient(app) as client:
        items = [client.get("/items/1", params={"q": q}).json() for q in ("a", "b", "a")]
        reports = [client.get("/report").json() for _ in range(3)]
        puts = [client.put("/items/1").status_code for _ in range(2)]
        other = client.get("/items/2").json()
    assert items == [{"iid": 1, "q": "a"}, {"iid": 1, "q": "b"}, {"iid": 1, "q": "a"}]
    assert reports == [{"report": "ready"}] * 3
    assert (puts, other) == ([200, 200], {"iid": 2, "q": ""})
    assert calls.count("item") == 4 and calls.count("report") == 3  # nothing cached
    first, second, third = _warnings(caplog)
    assert first.startswith("asgi-cache: route GET /items/{iid} (tests.test_misuse.")
    assert "item) is marked @cached but no CacheMiddleware is installed" in first
    assert "add app.add_middleware(CacheMiddleware)" in first
    # A def endpoint runs in a worker thread, away from the request: named by its function.
    assert second.startswith("asgi-cache: endpoint tests.test_misuse._fastapi_app.<locals>.report")
    assert "is marked @cached but no CacheMiddleware is installed" in second
    assert third.startswith("asgi-cache: route PUT /items/{iid} (")
    assert "is marked @invalidates" in third
    assert "its writes invalidate nothing" in third


def test_a_starlette_app_without_the_middleware_warns_once_per_marked_route_and_still_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    app = _starlette_app(calls)
    with caplog.at_level(logging.WARNING, logger="asgi_cache"), TestClient(app) as client:
        bodies = [client.get(path).text for path in ["/pages/a", "/pages/b"] * 2]
        bodies += [client.get(path).text for path in ["/legacy", "/board"] * 2]
    assert bodies == ["page a", "page b"] * 2 + ["legacy", "board"] * 2
    assert len(calls) == 8
    warnings = _warnings(caplog)
    assert [w.split(" (")[0] for w in warnings] == [
        "asgi-cache: route GET /pages/{name}",
        "asgi-cache: route GET /legacy",
        "asgi-cache: route GET /board",
    ]
    assert all("is marked @cached but no CacheMiddleware is installed" in w for w in warnings)


@pytest.mark.parametrize("make", [_fastapi_app, _starlette_app], ids=["fastapi", "starlette"])
def test_marked_routes_under_the_middleware_do_not_warn(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    app = make(calls)
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    paths = ["/items/1", "/report"] if isinstance(app, FastAPI) else ["/pages/a", "/legacy"]
    paths += [] if isinstance(app, FastAPI) else ["/board"]
    with caplog.at_level(logging.WARNING, logger="asgi_cache"), TestClient(app) as client:
        misses = [client.get(path) for path in paths]
        hits = [client.get(path) for path in paths]
        if isinstance(app, FastAPI):
            assert client.put("/items/1").status_code == 200
        bypassed = client.get(paths[0], headers={"cache-control": "no-store"})
    assert all(r.status_code == 200 for r in [*misses, *hits, bypassed])
    assert all(is_hit(hit) for hit in hits)
    assert _warnings(caplog) == []


def test_a_disabled_cache_is_still_an_installed_middleware(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _fastapi_app([])
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore(), enabled=False))
    with caplog.at_level(logging.WARNING, logger="asgi_cache"), TestClient(app) as client:
        assert client.get("/report").status_code == 200
        assert client.put("/items/1").status_code == 200
    assert _warnings(caplog) == []


# -- get_cache without the middleware --------------------------------------------------


def test_get_cache_without_the_middleware_names_what_to_add() -> None:
    app = FastAPI()

    @app.post("/refresh")
    async def refresh(request: Request) -> dict[str, int]:
        return {"removed": await get_cache(request).invalidate("products")}

    with (
        TestClient(app) as client,
        pytest.raises(LookupError, match=r"app.add_middleware\(CacheMiddleware"),
    ):
        client.post("/refresh")


# -- a Redis that is down: said at startup, once per outage ---------------------------


def _redis_app(url: str) -> FastAPI:
    app = FastAPI()

    @app.get("/item")
    @cached(ttl=60)
    async def item() -> dict[str, int]:
        return {"n": 1}

    app.add_middleware(CacheMiddleware, cache=Cache(RedisStore.from_url(url, cooldown=60)))
    return app


def test_a_redis_down_at_startup_is_one_warning_naming_its_url_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RedisServer(*TEST_SERVER_ARGS) as server:
        app = _redis_app(server.url.replace("redis://", "redis://:hunter2@"))
        server.stop()
        with caplog.at_level(logging.WARNING, logger="asgi_cache"), TestClient(app) as client:
            statuses = [client.get("/item").status_code for _ in range(8)]
    assert statuses == [200] * 8
    [warning] = _warnings(caplog)
    assert "does not answer at startup" in warning
    assert f"redis://:***@127.0.0.1:{server.port}/0" in warning
    assert "hunter2" not in caplog.text


def test_a_wrong_redis_password_is_one_warning_at_startup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = ("--user", "alice", "on", ">right", "~*", "&*", "+@all")  # default user stays
    with RedisServer(*TEST_SERVER_ARGS, *user) as server:
        app = _redis_app(server.url.replace("redis://", "redis://alice:wrong@"))
        with caplog.at_level(logging.WARNING, logger="asgi_cache"), TestClient(app) as client:
            statuses = [client.get("/item").status_code for _ in range(8)]
    assert statuses == [200] * 8
    [warning] = _warnings(caplog)
    assert "does not answer at startup" in warning
    assert "alice:***@" in warning


def test_an_outage_after_startup_is_one_warning_however_many_requests_fail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RedisServer(*TEST_SERVER_ARGS) as server:
        app = _redis_app(server.url)
        with TestClient(app) as client:
            client.get("/item")
            server.stop()
            with caplog.at_level(logging.WARNING, logger="asgi_cache"):
                statuses = [client.get("/item").status_code for _ in range(12)]
    assert statuses == [200] * 12
    [warning] = _warnings(caplog)
    assert "circuit breaker open" in warning


# -- a failing key= function ----------------------------------------------------------


def _key_app(key: Any, *middleware: tuple[Any, dict[str, Any]]) -> FastAPI:
    """A ``key=`` route behind ``middleware``, added in this order (the last runs first)."""
    app = FastAPI()

    @app.get("/dashboard")
    @cached(ttl=30, key=key)
    async def dashboard() -> dict[str, str]:
        return {"page": "dashboard"}

    for cls, options in middleware:
        app.add_middleware(cls, **options)
    return app


async def test_a_failing_key_function_is_logged_once_with_its_traceback(
    make_cache: MakeCache, caplog: pytest.LogCaptureFixture
) -> None:
    def key(request: Request) -> str:
        raise RuntimeError("no tenant")

    app = _key_app(key, (CacheMiddleware, {"cache": make_cache()}))
    with caplog.at_level(logging.DEBUG, logger="asgi_cache"):
        async with client_for(app) as client:
            answers = [await client.get("/dashboard") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert all(detail_of(a) == Detail.KEY_ERROR for a in answers)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "key function of GET /dashboard" in warnings[0].getMessage()
    assert warnings[0].exc_info is not None


async def test_a_key_function_that_fails_again_after_working_is_logged_again(
    make_cache: MakeCache, caplog: pytest.LogCaptureFixture
) -> None:
    def key(request: Request) -> str:
        if request.query_params.get("fail"):
            raise RuntimeError("no tenant")
        return "tenant"

    app = _key_app(key, (CacheMiddleware, {"cache": make_cache()}))
    with caplog.at_level(logging.WARNING, logger="asgi_cache"):
        async with client_for(app) as client:
            for query in ("?fail=1", "?fail=1", "", "?fail=1"):
                await client.get(f"/dashboard{query}")
    assert sum("failed" in r.getMessage() for r in caplog.records) == 2


async def test_a_session_key_without_session_middleware_outside_is_one_warning_naming_the_fix(
    make_cache: MakeCache, caplog: pytest.LogCaptureFixture
) -> None:
    app = _key_app(
        lambda request: request.session.get("user_id", "anon"),
        (SessionMiddleware, {"secret_key": "s"}),  # added first: runs inside the cache
        (CacheMiddleware, {"cache": make_cache()}),
    )
    with caplog.at_level(logging.DEBUG, logger="asgi_cache"):
        async with client_for(app) as client:
            answers = [await client.get("/dashboard") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    message = warning.getMessage()
    assert "request.session needs SessionMiddleware outside CacheMiddleware" in message
    assert (
        "app.add_middleware(SessionMiddleware, ...) after app.add_middleware(CacheMiddleware"
        in (message)
    )
    assert warning.exc_info is None


async def test_a_session_key_with_session_middleware_outside_is_cached_per_session(
    make_cache: MakeCache,
) -> None:
    app = _key_app(
        lambda request: request.session.get("user_id", "anon"),
        (CacheMiddleware, {"cache": make_cache()}),
        (SessionMiddleware, {"secret_key": "s"}),  # added last: runs first
    )
    async with client_for(app) as client:
        await client.get("/dashboard")
        assert is_hit(await client.get("/dashboard"))
