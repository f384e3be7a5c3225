"""Writes invalidate before their response reaches the client."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI, Request, Response

from asgi_cache import Cache, CacheMiddleware, cached, get_cache, invalidates
from tests.helpers import Calls, MakeCache, asgi_request, client_for, is_hit

pytestmark = pytest.mark.anyio


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)
    products = {1: "apple", 2: "pear"}

    @app.get("/products")
    @cached(ttl=60, tags=("products",))
    async def list_products() -> dict[int, str]:
        calls["list"] += 1
        return products

    @app.get("/products/{pid}")
    @cached(ttl=60, tags=("product:{pid}",))
    async def get_product(pid: int) -> dict[str, object]:
        calls[f"get{pid}"] += 1
        return {"pid": pid, "name": products.get(pid)}

    @app.put("/products/{pid}")
    @invalidates("product:{pid}", "products")
    async def put_product(pid: int, name: str) -> dict[str, object]:
        products[pid] = name
        return {"pid": pid, "name": name}

    @app.patch("/products/{pid}")
    async def patch_product(pid: int, name: str, fail: bool = False) -> Response:
        if fail:
            return Response(status_code=422)
        products[pid] = name
        return Response(status_code=204)

    @app.post("/admin/refresh/{pid}")
    async def refresh(pid: int, request: Request) -> dict[str, int]:
        removed = await get_cache(request).invalidate(f"product:{pid}")
        return {"removed": removed}

    @app.post("/admin/clear")
    async def clear(request: Request) -> dict[str, int]:
        return {"removed": await get_cache(request).clear()}

    return app, calls


async def test_write_route_invalidates_its_tags(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/products/1")
        await client.get("/products")
        await client.get("/products/2")
        await client.put("/products/1", params={"name": "cherry"})
        product = await client.get("/products/1")
        listing = await client.get("/products")
        other = await client.get("/products/2")
    assert product.json() == {"pid": 1, "name": "cherry"}
    assert listing.json()["1"] == "cherry"
    assert is_hit(other)
    assert calls["get1"] == calls["list"] == 2
    assert calls["get2"] == 1


async def test_invalidation_happens_before_the_response_start_is_sent(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    app, _ = build(cache)
    await asgi_request(app, "/products/1")
    seen_at_start: list[bool] = []
    messages = []

    async def client_send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            reread = await asgi_request(app, "/products/1")
            seen_at_start.append(is_hit(reread))
        messages.append(message)

    scope = {
        "type": "http",
        "method": "PUT",
        "path": "/products/1",
        "root_path": "",
        "query_string": b"name=fig",
        "headers": [],
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    await app(scope, receive, client_send)
    assert seen_at_start == [False]


async def test_any_successful_unsafe_request_invalidates_every_variant_of_its_path(
    make_cache: MakeCache,
) -> None:
    app, calls = build(make_cache(vary=("accept-language",)))
    async with client_for(app) as client:
        await client.get("/products/1?view=a")
        await client.get("/products/1?view=b", headers={"accept-language": "fr"})
        await client.patch("/products/1", params={"name": "plum"})  # unmarked write route
        first = await client.get("/products/1?view=a")
        second = await client.get("/products/1?view=b", headers={"accept-language": "fr"})
    assert first.json()["name"] == second.json()["name"] == "plum"
    assert calls["get1"] == 4


async def test_failed_write_invalidates_nothing(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/products/1")
        failed = await client.patch("/products/1", params={"name": "x", "fail": "true"})
        hit = await client.get("/products/1")
    assert failed.status_code == 422
    assert is_hit(hit)
    assert calls["get1"] == 1


async def test_invalidate_from_inside_a_route(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/products/2")
        removed = await client.post("/admin/refresh/2")
        await client.get("/products/2")
    assert removed.json() == {"removed": 1}
    assert calls["get2"] == 2


@pytest.mark.parametrize("write", ["tag", "path"])
async def test_a_response_computed_across_an_invalidation_is_not_stored(
    make_cache: MakeCache, write: str
) -> None:
    cache = make_cache()
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/stock/{sku}")
    @cached(ttl=60, tags=("stock:{sku}",))
    async def stock(sku: str) -> dict[str, int]:
        calls[sku] += 1
        if calls[sku] == 1:  # a write lands while this response is computed
            if write == "tag":
                await cache.invalidate(f"stock:{sku}")
            else:
                await cache.invalidate_path(f"/stock/{sku}")
        return {"count": calls[sku]}

    async with client_for(app) as client:
        raced = await client.get("/stock/a")
        second = await client.get("/stock/a")
        third = await client.get("/stock/a")
    assert "detail=not-stored" in raced.headers["cache-status"]
    assert second.json() == {"count": 2} and "stored" in second.headers["cache-status"]
    assert is_hit(third) and third.json() == {"count": 2}


async def test_invalidate_and_invalidate_path_from_outside_requests(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    app, calls = build(cache)
    async with client_for(app) as client:
        await client.get("/products")
        await client.get("/products/1?a=1")
        await client.get("/products/1?a=2")
        assert await cache.invalidate("products") == 1
        assert await cache.invalidate_path("/products/1") == 2
        assert await cache.invalidate("nothing-here") == 0
        await client.get("/products")
        await client.get("/products/1?a=1")
    assert calls["list"] == 2
    assert calls["get1"] == 3


async def test_clear_removes_only_this_caches_entries(store_factory: Callable[[], object]) -> None:
    store = store_factory()
    ours = Cache(store, prefix="shop:v1")  # type: ignore[arg-type]
    neighbour = Cache(store, prefix="shop:v10")  # type: ignore[arg-type]
    app, calls = build(ours)
    other_app, other_calls = build(neighbour)
    async with client_for(app) as client, client_for(other_app) as other:
        await client.get("/products/1")
        await other.get("/products/1")
        cleared = await client.post("/admin/clear")
        await client.get("/products/1")
        kept = await other.get("/products/1")
    assert cleared.json() == {"removed": 1}
    assert calls["get1"] == 2
    assert is_hit(kept)
    assert other_calls["get1"] == 1
    await ours.aclose()
