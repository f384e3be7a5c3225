"""The middleware among others: gzip in either order, websockets, lifespan, TestClient, the
default cache, and stores that fail or hold garbage."""

from __future__ import annotations

import gzip
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from asgi_cache import Cache, CacheMiddleware, MemoryStore, Store, cached, invalidates
from asgi_cache.cache import SCOPE_KEY
from asgi_cache.entry import Entry, encode
from asgi_cache.status import Detail
from asgi_cache.stores.base import Fence
from tests.helpers import (
    STORED,
    BrokenStore,
    Calls,
    MakeCache,
    Recorded,
    asgi_request,
    bypassed,
    client_for,
    is_hit,
    not_stored,
)

BODY = b"asgi-cache keeps whole responses; " * 60  # about 2 KB, compresses well

GZIP = [(b"accept-encoding", b"gzip")]
IDENTITY = [(b"accept-encoding", b"identity")]
NO_ACCEPT_ENCODING: list[tuple[bytes, bytes]] = []

# Middleware added last is outermost.
GZIP_INSIDE = "gzip-inside-the-cache"
GZIP_OUTSIDE = "gzip-outside-the-cache"


def gzip_app(cache: Cache, order: str) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()

    @app.get("/page")
    @cached(ttl=60)
    async def page() -> Response:
        calls["page"] += 1
        return Response(BODY, media_type="text/plain")

    if order == GZIP_INSIDE:
        app.add_middleware(GZipMiddleware, minimum_size=10)
        app.add_middleware(CacheMiddleware, cache=cache)
    else:
        app.add_middleware(CacheMiddleware, cache=cache)
        app.add_middleware(GZipMiddleware, minimum_size=10)
    return app, calls


def assert_identity(response: Recorded) -> None:
    assert response.status == 200
    assert response.header(b"content-encoding") is None
    assert response.body == BODY


def assert_gzip(response: Recorded) -> None:
    assert response.status == 200
    assert response.header(b"content-encoding") == b"gzip"
    assert response.body[:2] == b"\x1f\x8b"
    assert gzip.decompress(response.body) == BODY


both_orders = pytest.mark.parametrize("order", [GZIP_INSIDE, GZIP_OUTSIDE])


@pytest.mark.anyio
@both_orders
@pytest.mark.parametrize("other", [IDENTITY, NO_ACCEPT_ENCODING], ids=["identity", "none"])
async def test_a_client_without_gzip_never_gets_a_gzip_body(
    make_cache: MakeCache, order: str, other: list[tuple[bytes, bytes]]
) -> None:
    app, _ = gzip_app(make_cache(), order)
    assert_gzip(await asgi_request(app, "/page", headers=GZIP))
    first = await asgi_request(app, "/page", headers=other)
    again = await asgi_request(app, "/page", headers=other)
    assert_identity(first)
    assert_identity(again)
    assert is_hit(again)


@pytest.mark.anyio
@both_orders
@pytest.mark.parametrize("before", [[], IDENTITY], ids=["first", "after-identity"])
async def test_a_gzip_client_gets_a_body_that_decompresses_to_the_original(
    make_cache: MakeCache, order: str, before: list[tuple[bytes, bytes]]
) -> None:
    app, _ = gzip_app(make_cache(), order)
    if before:
        assert_identity(await asgi_request(app, "/page", headers=before))
    first = await asgi_request(app, "/page", headers=GZIP)
    again = await asgi_request(app, "/page", headers=GZIP)
    assert_gzip(first)
    assert_gzip(again)
    assert is_hit(again)


@pytest.mark.anyio
async def test_with_gzip_inside_each_encoding_class_runs_the_endpoint_once(
    make_cache: MakeCache,
) -> None:
    app, calls = gzip_app(make_cache(), GZIP_INSIDE)
    for _ in range(3):
        for headers in (GZIP, IDENTITY, NO_ACCEPT_ENCODING):
            await asgi_request(app, "/page", headers=headers)
    assert calls["page"] == 2  # one gzip entry, one identity entry shared by "identity" and none


@pytest.mark.anyio
async def test_with_gzip_outside_one_identity_entry_serves_every_client(
    make_cache: MakeCache,
) -> None:
    # Below the compressor the application always answers with the identity body, so the
    # cache has only one variant to keep, whatever the client accepts.
    app, calls = gzip_app(make_cache(), GZIP_OUTSIDE)
    for _ in range(3):
        for headers in (GZIP, IDENTITY, NO_ACCEPT_ENCODING):
            await asgi_request(app, "/page", headers=headers)
    assert calls["page"] == 1


@pytest.mark.anyio
@both_orders
async def test_gzip_q_0_does_not_poison_the_entry_of_identity_clients(
    make_cache: MakeCache, order: str
) -> None:
    # Starlette's GZipMiddleware compresses whenever "gzip" appears, q=0 or not.
    app, _ = gzip_app(make_cache(), order)
    refused = [(b"accept-encoding", b"gzip;q=0")]
    await asgi_request(app, "/page", headers=refused)
    await asgi_request(app, "/page", headers=refused)
    assert_identity(await asgi_request(app, "/page", headers=IDENTITY))
    assert_identity(await asgi_request(app, "/page", headers=NO_ACCEPT_ENCODING))


@pytest.mark.anyio
async def test_with_gzip_inside_a_gzip_body_made_for_q_0_is_not_stored(
    make_cache: MakeCache,
) -> None:
    app, calls = gzip_app(make_cache(), GZIP_INSIDE)
    refused = [(b"accept-encoding", b"gzip;q=0")]
    first = await asgi_request(app, "/page", headers=refused)
    assert first.header(b"content-encoding") == b"gzip"
    assert first.header(b"cache-status") == not_stored(Detail.CONTENT_ENCODING).encode()
    assert_identity(await asgi_request(app, "/page", headers=IDENTITY))
    assert calls["page"] == 2


# Websockets


def test_a_websocket_passes_through_untouched_even_where_an_entry_exists() -> None:
    calls = Calls()
    scopes: list[dict[str, Any]] = []

    @cached(ttl=60)
    async def page(request: Request) -> PlainTextResponse:
        calls["page"] += 1
        return PlainTextResponse("page")

    async def echo(websocket: WebSocket) -> None:
        scopes.append(dict(websocket.scope))
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app = Starlette(routes=[Route("/live", page), WebSocketRoute("/live", echo)])
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    with TestClient(app) as client:
        client.get("/live")
        assert is_hit(client.get("/live"))
        for text in ("hello", "again"):
            with client.websocket_connect("/live") as websocket:
                websocket.send_text(text)
                assert websocket.receive_text() == text
    assert len(scopes) == 2
    assert all(SCOPE_KEY not in scope for scope in scopes)
    assert calls["page"] == 1


# Lifespan


def lifespan_app(events: list[str], store: Store) -> tuple[FastAPI, Calls]:
    calls = Calls()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append("startup")
        app.state.x = "set at startup"
        yield {"greeting": "from lifespan state"}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(CacheMiddleware, cache=Cache(store))

    @app.get("/state")
    @cached(ttl=60)
    async def state(request: Request) -> dict[str, object]:
        calls["state"] += 1
        return {"x": request.app.state.x, "greeting": request.state.greeting}

    return app, calls


def test_the_app_lifespan_runs_startup_and_shutdown_exactly_once() -> None:
    events: list[str] = []
    app, _ = lifespan_app(events, MemoryStore())
    with TestClient(app):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


def test_caching_works_inside_the_lifespan_and_sees_its_state() -> None:
    app, calls = lifespan_app([], MemoryStore())
    with TestClient(app) as client:
        first = client.get("/state")
        second = client.get("/state")
    assert first.json() == {"x": "set at startup", "greeting": "from lifespan state"}
    assert first.headers["cache-status"] == STORED
    assert second.json() == first.json()
    assert is_hit(second)
    assert calls["state"] == 1


class ClosingStore(MemoryStore):
    """Counts ``aclose`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1
        await super().aclose()


def test_the_store_is_closed_once_at_lifespan_shutdown() -> None:
    store = ClosingStore()
    app, _ = lifespan_app([], store)
    with TestClient(app) as client:
        client.get("/state")
        assert store.closed == 0
    assert store.closed == 1


# TestClient and the default cache


def counted_app(**middleware: Any) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, **middleware)

    @app.get("/items/{iid}")
    @cached(ttl=60)
    async def item(iid: int) -> dict[str, int]:
        calls["item"] += 1
        return {"iid": iid, "n": calls["item"]}

    return app, calls


def test_the_sync_test_client_sees_a_miss_then_a_hit() -> None:
    app, calls = counted_app(cache=Cache(MemoryStore()))
    client = TestClient(app)
    first = client.get("/items/1")
    second = client.get("/items/1")
    assert first.status_code == second.status_code == 200
    assert first.headers["cache-status"] == STORED
    assert is_hit(second)
    assert second.json() == first.json() == {"iid": 1, "n": 1}
    assert calls["item"] == 1


def test_without_a_cache_the_middleware_keeps_entries_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ASGI_CACHE_URL", raising=False)
    assert isinstance(CacheMiddleware(FastAPI()).cache.store, MemoryStore)
    app, calls = counted_app()
    with TestClient(app) as client:
        client.get("/items/1")
        hit = client.get("/items/1")
    assert is_hit(hit)
    assert calls["item"] == 1


def test_asgi_cache_url_memory_gives_an_in_memory_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASGI_CACHE_URL", "memory://")
    assert isinstance(CacheMiddleware(FastAPI()).cache.store, MemoryStore)
    app, calls = counted_app()
    with TestClient(app) as client:
        client.get("/items/2")
        hit = client.get("/items/2")
    assert is_hit(hit)
    assert calls["item"] == 1


def test_an_unknown_asgi_cache_url_scheme_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASGI_CACHE_URL", "ftp://x")
    with pytest.raises(ValueError, match="ftp"):
        CacheMiddleware(FastAPI())


# Stores that fail or hold garbage


def product_app(store: Store) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=Cache(store))
    products = {1: "apple"}

    @app.get("/products/{pid}")
    @cached(ttl=60, tags=("product:{pid}",))
    async def get_product(pid: int) -> dict[str, object]:
        calls["get"] += 1
        return {"pid": pid, "name": products.get(pid)}

    @app.put("/products/{pid}")
    @invalidates("product:{pid}")
    async def put_product(pid: int, name: str) -> dict[str, object]:
        products[pid] = name
        return {"pid": pid, "name": name}

    return app, calls


@pytest.mark.anyio
async def test_a_failing_store_turns_a_cached_get_into_a_bypass_not_an_error() -> None:
    app, calls = product_app(BrokenStore(RuntimeError))
    async with client_for(app) as client:
        first = await client.get("/products/1")
        second = await client.get("/products/1")
    for response in (first, second):
        assert response.status_code == 200
        assert response.json() == {"pid": 1, "name": "apple"}
        assert response.headers["cache-status"] == bypassed(Detail.STORE_UNAVAILABLE)
    assert calls["get"] == 2


@pytest.mark.anyio
async def test_a_failing_store_does_not_fail_an_invalidating_write() -> None:
    app, _ = product_app(BrokenStore(RuntimeError))
    async with client_for(app) as client:
        put = await client.put("/products/1", params={"name": "plum"})
        get = await client.get("/products/1")
    assert put.status_code == 200
    assert put.json() == {"pid": 1, "name": "plum"}
    assert get.json() == {"pid": 1, "name": "plum"}


class KeyRecordingStore(MemoryStore):
    """A memory store that remembers every key the middleware wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []

    async def set(
        self,
        key: str,
        value: bytes,
        ttl: float,
        tags: Sequence[str] = (),
        fence: Fence | None = None,
    ) -> bool:
        self.keys.append(key)
        return await super().set(key, value, ttl, tags, fence)


VALID = encode(Entry(200, [(b"content-type", b"text/plain")], b"stored", 1e9, 60.0))
GARBAGE = {
    "text": b"garbage",
    "empty": b"",
    "zeros": b"\x00" * 64,
    "truncated": VALID[:-3],
    "magic-then-junk": VALID[:3] + b"\xff" * 40,
    "extra-bytes": VALID + b"junk",
    # Decodes, but claims a lifetime no clock can reach the end of.
    "infinite-lifetime": encode(Entry(200, [], b"forever", 1e9, math.inf)),
}


@pytest.mark.anyio
@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_under_the_key_is_a_miss_that_stores_a_fresh_entry(garbage: bytes) -> None:
    store = KeyRecordingStore()
    app, calls = product_app(store)
    async with client_for(app) as client:
        await client.get("/products/1")
        assert store.keys
        for key in list(store.keys):
            await store.set(key, garbage, 60)
        miss = await client.get("/products/1")
        hit = await client.get("/products/1")
    assert miss.status_code == 200
    assert miss.json() == {"pid": 1, "name": "apple"}
    assert miss.headers["cache-status"] == STORED
    assert is_hit(hit)
    assert hit.json() == miss.json()
    assert calls["get"] == 2
