"""The applications the end-to-end benchmark serves: one contender per server process.

A server imports ``benchmarks.contenders:app``; which contender it builds, with which body size
and which Redis, comes from the environment, so that every worker of a multi-worker server
builds the same one:

- ``BENCH_CONTENDER``: a name from :data:`CONTENDERS`;
- ``BENCH_BODY_SIZE``: the JSON body's length in bytes (default 1024);
- ``BENCH_REDIS_URL``: the private Redis the harness started, for the Redis contenders.

Every contender answers the same request, ``GET /items?b=2&a=1``, with the same JSON list
(:func:`items_for`).  Each library is imported inside its own builder, so a contender whose
library is missing is reported by :func:`unavailable` rather than breaking the others.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

#: The one request every contender is measured on: a query whose order the caches canonicalise.
PATH = "/items"
QUERY = "b=2&a=1"
TARGET = f"{PATH}?{QUERY}"
#: Longer than any run: no entry expires while it is measured.
TTL = 3600

Headers = list[tuple[bytes, bytes]]


def items_for(size: int) -> list[dict[str, Any]]:
    """A list of small product records whose compact JSON is ``size`` bytes (at least ~50).

    Records are added while they fit, and the first one gets a ``note`` padding the rest, so
    every body size is one realistic list rather than one long string.
    """
    items: list[dict[str, Any]] = []
    length = 2  # the brackets
    while True:
        i = len(items)
        item = {"id": i, "sku": f"SKU-{i:04d}", "price": 4.75 + i * 1.5}
        grown = length + len(render(item)) + (1 if items else 0)
        if items and grown > size - 12:
            break
        items.append(item)
        length = grown
    missing = size - length - len(',"note":""')
    if missing >= 0:
        items[0]["note"] = "x" * missing
    return items


def render(items: object) -> bytes:
    """The bytes Starlette's ``JSONResponse`` renders for ``items``."""
    return json.dumps(items, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def body_size() -> int:
    return int(os.environ.get("BENCH_BODY_SIZE", "1024"))


def redis_url() -> str:
    url = os.environ.get("BENCH_REDIS_URL")
    if not url:
        raise RuntimeError("BENCH_REDIS_URL is not set: this contender needs the harness's Redis")
    return url


# --- the builders -------------------------------------------------------------------------------


def bare(items: list[dict[str, Any]]) -> ASGIApp:
    """A raw ASGI app sending the rendered bytes: what the server itself can do."""
    body = render(items)
    headers: Headers = [
        (b"content-length", b"%d" % len(body)),
        (b"content-type", b"application/json"),
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class AnswerItself:
    """A pure ASGI middleware answering every HTTP request with constant bytes.

    Added to a FastAPI app it measures FastAPI's own shell (its ``__call__`` and outer
    middleware) on top of the server: the floor a cache inside FastAPI can approach.
    """

    def __init__(self, app: ASGIApp, *, items: list[dict[str, Any]]) -> None:
        self.app = app
        self.answer = bare(items)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.answer(scope, receive, send)


def fastapi_app(
    items: list[dict[str, Any]],
    *,
    decorate: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
    lifespan: Callable[[Any], Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """A FastAPI app whose ``/items`` route returns ``items``, optionally decorated."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI(lifespan=lifespan)

    if headers is None:

        async def endpoint(a: str = "", b: str = ""):  # type: ignore[no-untyped-def]
            return items  # no return annotation: FastAPI uses no response model

    else:

        async def endpoint(a: str = "", b: str = ""):  # type: ignore[no-untyped-def]
            return JSONResponse(items, headers=headers)

    app.add_api_route(PATH, decorate(endpoint) if decorate else endpoint, methods=["GET"])
    return app


def build_floor(items: list[dict[str, Any]]) -> ASGIApp:
    app = fastapi_app(items)
    app.add_middleware(AnswerItself, items=items)
    return app  # type: ignore[no-any-return]


def build_fastapi(items: list[dict[str, Any]]) -> ASGIApp:
    return fastapi_app(items)  # type: ignore[no-any-return]


def build_fastapi_cache2(items: list[dict[str, Any]], *, redis: bool) -> ASGIApp:
    from fastapi_cache import FastAPICache
    from fastapi_cache.decorator import cache

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if redis:
            from fastapi_cache.backends.redis import RedisBackend
            from redis.asyncio import Redis

            FastAPICache.init(RedisBackend(Redis.from_url(redis_url())), prefix="bench")
        else:
            from fastapi_cache.backends.inmemory import InMemoryBackend

            FastAPICache.init(InMemoryBackend(), prefix="bench")
        yield

    return fastapi_app(items, decorate=cache(expire=TTL), lifespan=lifespan)  # type: ignore[no-any-return]


def build_cashews(items: list[dict[str, Any]], *, redis: bool) -> ASGIApp:
    from cashews import cache

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        cache.setup(redis_url() if redis else "mem://")
        yield
        await cache.close()

    return fastapi_app(items, decorate=cache(ttl=TTL), lifespan=lifespan)  # type: ignore[no-any-return]


def build_hishel_redis(items: list[dict[str, Any]]) -> ASGIApp:
    """hishel's ASGI middleware over its Redis storage, following RFC 9111.

    hishel stores what the response's own ``Cache-Control`` allows, so the route says
    ``public, max-age`` (the other contenders are told the TTL by their decorators).
    """
    from hishel import AsyncRedisStorage
    from hishel.asgi import ASGICacheMiddleware
    from redis.asyncio import Redis

    inner = fastapi_app(items, headers={"cache-control": f"public, max-age={TTL}"})
    storage = AsyncRedisStorage(Redis.from_url(redis_url()), default_ttl=TTL)
    return ASGICacheMiddleware(inner, storage=storage)  # type: ignore[no-any-return]


def build_asgi_cache(items: list[dict[str, Any]], *, store: str, wrapped: bool = False) -> ASGIApp:
    from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached

    if store == "memory":
        cache = Cache(MemoryStore(), max_body_size=4 * 2**20)
    elif store == "redis":
        from asgi_cache.stores.redis import RedisStore

        cache = Cache(RedisStore.from_url(redis_url()), max_body_size=4 * 2**20)
    else:
        cache = near_cache()
    app = fastapi_app(items, decorate=cached(ttl=TTL))
    if wrapped:
        return CacheMiddleware(app, cache=cache)
    app.add_middleware(CacheMiddleware, cache=cache)
    return app  # type: ignore[no-any-return]


# --- the near cache ----------------------------------------------------------------------------

#: Where the near cache (a memory tier in front of Redis) lives: ``asgi-cache-near`` is skipped,
#: and says so, with an asgi-cache that has none.
NEAR_MODULE = "asgi_cache.stores.near"
#: The cache's prefix, which the near cache tracks.
NEAR_PREFIX = "bench-near"


def near_cache() -> Any:
    """A ``Cache`` over ``RedisStore`` with a ``NearCache`` in front of the harness's Redis.

    The one place the near cache is wired in; the tier tracks the cache's own prefix, as the
    project's README recommends.
    """
    from asgi_cache import Cache
    from asgi_cache.stores.near import NearCache
    from asgi_cache.stores.redis import RedisStore

    store = RedisStore.from_url(redis_url(), near_cache=NearCache(prefix=NEAR_PREFIX))
    return Cache(store, prefix=NEAR_PREFIX, max_body_size=4 * 2**20)


# --- the registry -------------------------------------------------------------------------------


class Contender:
    """One contender: how to build it, what it needs, and how its hits show."""

    def __init__(
        self,
        name: str,
        what: str,
        build: Callable[[list[dict[str, Any]]], ASGIApp],
        *,
        modules: tuple[str, ...] = ("fastapi",),
        redis: bool = False,
        hit_header: tuple[str, str] | None = None,
    ) -> None:
        self.name = name
        self.what = what
        self.build = build
        self.modules = modules
        self.redis = redis
        #: (header, substring) a cached response carries, to check a hit before measuring;
        #: ``None`` where the library marks nothing (cashews) or nothing is cached.
        self.hit_header = hit_header


ASGI_CACHE_HIT = ("cache-status", "hit")

CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in [
        Contender("bare", "raw ASGI app sending the bytes", bare, modules=()),
        Contender("floor", "FastAPI + pure-ASGI middleware answering constant bytes", build_floor),
        Contender("fastapi", "FastAPI route, uncached", build_fastapi),
        Contender(
            "fastapi-cache2-memory",
            "fastapi-cache2, InMemoryBackend",
            lambda items: build_fastapi_cache2(items, redis=False),
            modules=("fastapi", "fastapi_cache"),
            hit_header=("x-fastapi-cache", "HIT"),
        ),
        Contender(
            "fastapi-cache2-redis",
            "fastapi-cache2, RedisBackend",
            lambda items: build_fastapi_cache2(items, redis=True),
            modules=("fastapi", "fastapi_cache", "redis"),
            redis=True,
            hit_header=("x-fastapi-cache", "HIT"),
        ),
        Contender(
            "cashews-memory",
            "cashews @cache, mem://",
            lambda items: build_cashews(items, redis=False),
            modules=("fastapi", "cashews"),
        ),
        Contender(
            "cashews-redis",
            "cashews @cache, redis://",
            lambda items: build_cashews(items, redis=True),
            modules=("fastapi", "cashews", "redis"),
            redis=True,
        ),
        Contender(
            "hishel-redis",
            "hishel ASGICacheMiddleware, AsyncRedisStorage",
            build_hishel_redis,
            modules=("fastapi", "hishel", "redis"),
            redis=True,
            hit_header=("age", ""),  # hishel adds Age to what it serves from storage
        ),
        Contender(
            "asgi-cache-memory",
            "asgi-cache, add_middleware, MemoryStore",
            lambda items: build_asgi_cache(items, store="memory"),
            hit_header=ASGI_CACHE_HIT,
        ),
        Contender(
            "asgi-cache-wrapped",
            "asgi-cache, CacheMiddleware(app), MemoryStore",
            lambda items: build_asgi_cache(items, store="memory", wrapped=True),
            hit_header=ASGI_CACHE_HIT,
        ),
        Contender(
            "asgi-cache-redis",
            "asgi-cache, add_middleware, RedisStore",
            lambda items: build_asgi_cache(items, store="redis"),
            modules=("fastapi", "redis"),
            redis=True,
            hit_header=ASGI_CACHE_HIT,
        ),
        Contender(
            "asgi-cache-near",
            "asgi-cache, RedisStore with a NearCache",
            lambda items: build_asgi_cache(items, store="near"),
            modules=("fastapi", "redis", NEAR_MODULE),
            redis=True,
            hit_header=ASGI_CACHE_HIT,
        ),
    ]
}


def unavailable(name: str) -> str | None:
    """Why contender ``name`` cannot run in this environment, or ``None`` when it can."""
    contender = CONTENDERS.get(name)
    if contender is None:
        return f"unknown contender {name!r}; known: {', '.join(CONTENDERS)}"
    for module in contender.modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"module {module} is not installed"
    return None


def build(name: str, size: int) -> ASGIApp:
    """Contender ``name`` serving a ``size``-byte body."""
    return CONTENDERS[name].build(items_for(size))


def _from_environment() -> ASGIApp:
    name = os.environ.get("BENCH_CONTENDER")
    if name is None:
        raise RuntimeError(
            "BENCH_CONTENDER is not set; run the benchmark with python -m benchmarks.run"
        )
    reason = unavailable(name)
    if reason:
        raise RuntimeError(f"contender {name}: {reason}")
    return build(name, body_size())


_built: list[ASGIApp] = []


def __getattr__(attribute: str) -> ASGIApp:
    """``app`` is built on first access, so importing this module needs no environment."""
    if attribute != "app":
        raise AttributeError(attribute)
    if not _built:
        _built.append(_from_environment())
    return _built[0]
