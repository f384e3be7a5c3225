"""Store URLs: a store registers its scheme; ``Cache.from_url`` and ``ASGI_CACHE_URL`` open it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from asgi_cache import Cache, CacheMiddleware, MemoryStore, RedisStore, cached, register_scheme
from asgi_cache.stores import registry
from asgi_cache.stores.registry import open_url
from tests.redis_servers import RedisServer


class URLStore(MemoryStore):
    """A store that remembers the URL it was opened with."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url


@pytest.fixture(autouse=True)
def own_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Schemes registered by a test are forgotten after it, so no test sees another's."""
    monkeypatch.setattr(registry, "_openers", dict(registry._openers))
    yield


def test_cache_from_url_opens_a_registered_scheme_with_the_whole_url() -> None:
    register_scheme("teststore", URLStore)
    cache = Cache.from_url("teststore://host:1/db?option=1", prefix="shop")
    assert isinstance(cache.store, URLStore)
    assert cache.store.url == "teststore://host:1/db?option=1"
    assert cache.prefix == "shop"


def test_schemes_are_case_insensitive() -> None:
    register_scheme("TestStore", URLStore)
    assert isinstance(open_url("TESTSTORE://x"), URLStore)
    assert isinstance(open_url("teststore://x"), URLStore)


def test_registering_a_scheme_again_replaces_its_opener() -> None:
    register_scheme("memory", URLStore)
    assert isinstance(Cache.from_url("memory://").store, URLStore)


def test_the_middleware_caches_in_the_store_asgi_cache_url_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_scheme("teststore", URLStore)
    monkeypatch.setenv("ASGI_CACHE_URL", "teststore://env")
    app = FastAPI()

    @app.get("/")
    @cached(ttl=60)
    async def index() -> dict[str, str]:
        return {"hello": "world"}

    middleware = CacheMiddleware(app)
    store = middleware.cache.store
    assert isinstance(store, URLStore)
    assert store.url == "teststore://env"
    with TestClient(middleware) as client:
        client.get("/")
        hit = client.get("/")
        assert store.entries == 1
    assert hit.headers["cache-status"].startswith("asgi-cache; hit")


def test_an_unknown_scheme_raises_value_error_naming_it_the_url_and_the_known_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"unsupported URL scheme 'ftp' in 'ftp://x'; known schemes: memory, redis, "
        r"rediss, unix",
    ):
        Cache.from_url("ftp://x")


def test_a_url_without_a_scheme_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unsupported URL scheme 'localhost:6379'"):
        Cache.from_url("localhost:6379")


@pytest.mark.parametrize(
    "scheme",
    ["", "1redis", "redis://", "my_store", "my store", "ü", pytest.param(3, id="int")],
)
def test_registering_a_malformed_scheme_raises_value_error(scheme: str) -> None:
    with pytest.raises(ValueError, match="is not a URL scheme"):
        register_scheme(scheme, URLStore)


def test_registering_an_opener_that_is_not_callable_raises_type_error() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        register_scheme("teststore", URLStore("teststore://"))  # type: ignore[arg-type]


def test_an_opener_that_returns_no_store_raises_type_error() -> None:
    register_scheme("teststore", lambda url: url)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="returned 'teststore://x', not a Store"):
        Cache.from_url("teststore://x")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0",
        "rediss://127.0.0.1:1/0",
        "unix:///nonexistent/redis.sock",
        "redis://127.0.0.1:1?cluster=true",
    ],
)
async def test_the_redis_schemes_open_a_redis_store_without_connecting(url: str) -> None:
    store = open_url(url)
    try:
        assert isinstance(store, RedisStore)
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_a_redis_url_opens_a_working_redis_store(redis_server: RedisServer) -> None:
    cache = Cache.from_url(redis_server.url, prefix="registry-test")
    try:
        assert isinstance(cache.store, RedisStore)
        assert await cache.store.set("registry-test:k", b"v", 60) is True
        assert await cache.store.get("registry-test:k") == b"v"
        await cache.clear()
    finally:
        await cache.aclose()


def test_importing_asgi_cache_and_opening_memory_never_imports_redis() -> None:
    code = (
        "import sys, asgi_cache\n"
        "asgi_cache.Cache.from_url('memory://')\n"
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"
