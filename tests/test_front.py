"""What cached responses say to the cache in front: surrogate keys and CDN freshness."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from asgi_cache import Cache, CacheConfigError, CacheMiddleware, MemoryStore, cached, get_cache
from tests.helpers import BrokenStore, Calls, cache_status, detail_of, is_hit

calls = Calls()


@cached(ttl=60, tags=("product:{pid}", "products"))
async def product(request: Request) -> JSONResponse:
    calls["product"] += 1
    return JSONResponse({"pid": request.path_params["pid"]})


@cached(tags=("product:{pid}",), cdn_cache_control="max-age=600")
async def own_freshness(request: Request) -> JSONResponse:
    return JSONResponse(
        {}, headers={"cdn-cache-control": "max-age=5", "cache-control": "max-age=5"}
    )


@cached(key=lambda request: request.headers.get("x-user", ""), tags=("user:{key}",), ttl=60)
async def me(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.headers.get("x-user")})


@cached(ttl=60, vary=("authorization",))
async def account(request: Request) -> JSONResponse:
    return JSONResponse({})


async def request_tags(request: Request) -> list[str]:
    if request.query_params.get("fail"):
        raise RuntimeError("no tags today")
    return ["seller:7", "with space"]


@cached(ttl=60, tags=request_tags)
async def tagged(request: Request) -> JSONResponse:
    return JSONResponse({})


@cached(ttl=60, tags=("product:{pid}",))
async def raced(request: Request) -> JSONResponse:
    # A write of this product lands while the page is computed.
    await get_cache(request).invalidate(f"product:{request.path_params['pid']}")
    return JSONResponse({})


@cached(tags=("doc:{name}",))
async def validated(request: Request) -> Response:
    """Validated at every reuse: a second request gets the 304 path."""
    headers = {"etag": '"v1"', "cache-control": "no-cache"}
    if request.headers.get("if-none-match") == '"v1"':
        return Response(status_code=304, headers=headers)
    return JSONResponse({"v": 1}, headers=headers)


ROUTES = [
    Route("/docs/{name}", validated),
    Route("/raced/{pid:int}", raced),
    Route("/products/{pid:int}", product),
    Route("/own/{pid:int}", own_freshness),
    Route("/me", me),
    Route("/account", account),
    Route("/tagged", tagged),
]


@pytest.fixture
def client_with() -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        app = Starlette(routes=ROUTES)
        app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore(), prefix="shop", **options))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_nothing_is_added_unless_asked_for(client_with: Any) -> None:
    response = client_with().get("/products/1")
    assert "surrogate-key" not in response.headers
    assert "cdn-cache-control" not in response.headers
    assert "cache-control" not in response.headers  # the ttl never goes out


def test_a_miss_and_its_hits_carry_the_same_keys(client_with: Any) -> None:
    client = client_with(surrogate_keys=True)
    miss, hit = client.get("/products/1"), client.get("/products/1")
    assert is_hit(hit)
    assert miss.headers["surrogate-key"] == "shop product:1 products /products/1"
    assert hit.headers["surrogate-key"] == miss.headers["surrogate-key"]


def test_an_alias_of_a_path_carries_both_paths(client_with: Any) -> None:
    response = client_with(surrogate_keys=True).get("/products/01")
    assert response.headers["surrogate-key"] == "shop product:1 products /products/1 /products/01"


def test_cloudflare_and_akamai_get_their_own_headers_and_spelling(client_with: Any) -> None:
    cloudflare = client_with(surrogate_keys="Cache-Tag").get("/products/1")
    assert cloudflare.headers["cache-tag"] == "shop,product:1,products,/products/1"
    akamai = client_with(surrogate_keys="Edge-Cache-Tag").get("/products/1")
    assert akamai.headers["edge-cache-tag"] == "shop,product%3A1,products,%2Fproducts%2F1"
    assert "surrogate-key" not in akamai.headers


def test_the_keys_of_a_tags_callable_are_its_tags(client_with: Any) -> None:
    response = client_with(surrogate_keys=True).get("/tagged")
    assert response.headers["surrogate-key"] == "shop /tagged seller:7 with%20space"


def test_a_response_whose_tags_are_unknown_is_not_stored_in_front(client_with: Any) -> None:
    response = client_with(surrogate_keys=True).get("/tagged?fail=1")
    assert detail_of(response) == "key-error"
    assert "surrogate-key" not in response.headers
    assert response.headers["cdn-cache-control"] == "no-store"


def test_the_cache_sets_cdn_freshness_apart_from_cache_control(client_with: Any) -> None:
    response = client_with(cdn_cache_control="max-age=300").get("/products/1")
    assert response.headers["cdn-cache-control"] == "max-age=300"
    assert "cache-control" not in response.headers


def test_surrogate_control_is_the_other_field(client_with: Any) -> None:
    client = client_with(cdn_cache_control="max-age=300", cdn_field="Surrogate-Control")
    response = client.get("/products/1")
    assert response.headers["surrogate-control"] == "max-age=300"
    assert "cdn-cache-control" not in response.headers


def test_a_routes_cdn_freshness_replaces_the_applications_and_not_its_own(
    client_with: Any,
) -> None:
    client = client_with(cdn_cache_control="max-age=300")
    response = client.get("/own/1")
    assert response.headers.get_list("cdn-cache-control") == ["max-age=600"]
    assert response.headers["cache-control"] == "max-age=5"  # what browsers get
    # This cache keeps it by the application's Cache-Control (5 s), not by 600.
    status = cache_status(client.get("/own/1"))
    assert status is not None and status.ttl is not None and status.ttl <= 5


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/me", {"x-user": "alice"}), ("/account", {"authorization": "Bearer alice"})],
)
def test_a_per_user_route_gets_neither_keys_nor_cdn_freshness(
    client_with: Any, path: str, headers: dict[str, str]
) -> None:
    client = client_with(surrogate_keys=True, cdn_cache_control="max-age=300")
    for response in (client.get(path, headers=headers), client.get(path, headers=headers)):
        assert "surrogate-key" not in response.headers
        assert "cdn-cache-control" not in response.headers
    assert "private" in client.get("/me", headers={"x-user": "bob"}).headers["cache-control"]


def test_keys_go_only_to_the_cache_in_front_when_it_is_marked(client_with: Any) -> None:
    client = client_with(surrogate_keys=True, surrogate_keys_for="surrogate-capability")
    marked = {"surrogate-capability": "varnish"}
    assert "surrogate-key" not in client.get("/products/1").headers  # miss
    assert client.get("/products/1", headers=marked).headers["surrogate-key"]  # hit
    assert "surrogate-key" not in client.get("/products/1").headers  # hit


def test_a_bypassed_response_carries_its_keys_too() -> None:
    app = Starlette(routes=ROUTES)
    app.add_middleware(
        CacheMiddleware, cache=Cache(BrokenStore(), prefix="shop", surrogate_keys=True)
    )
    with TestClient(app) as client:
        response = client.get("/products/2")
        tagged = client.get("/tagged")
    assert detail_of(response) == "store-unavailable"
    assert response.headers["surrogate-key"] == "shop product:2 products /products/2"
    assert "surrogate-key" not in tagged.headers  # its tags= callable did not run
    assert tagged.headers["cdn-cache-control"] == "no-store"


def test_a_page_computed_across_an_invalidation_is_kept_by_neither_tier(
    client_with: Any,
) -> None:
    client = client_with(surrogate_keys=True, cdn_cache_control="max-age=300")
    response = client.get("/raced/1")
    assert detail_of(response) == "not-stored"
    assert response.headers["cdn-cache-control"] == "no-store"
    assert "surrogate-key" not in response.headers


def test_a_head_and_a_validated_entry_carry_the_keys_too(client_with: Any) -> None:
    client = client_with(surrogate_keys=True)
    assert detail_of(head := client.head("/products/4")) == "head"
    assert head.headers["surrogate-key"] == "shop product:4 products /products/4"
    client.get("/docs/a")
    again = client.get("/docs/a")  # the application answered 304 to the cache
    assert again.status_code == 200 and again.json() == {"v": 1}
    status = cache_status(again)
    assert status is not None and status.fwd == "stale"
    assert again.headers["surrogate-key"] == "shop doc:a /docs/a"


def test_without_keys_unknown_tags_do_not_keep_a_page_from_the_tier_in_front(
    client_with: Any,
) -> None:
    response = client_with(cdn_cache_control="max-age=300").get("/tagged?fail=1")
    assert response.headers["cdn-cache-control"] == "max-age=300"
    raced = client_with(cdn_cache_control="max-age=300").get("/raced/2")
    assert raced.headers["cdn-cache-control"] == "no-store"


def test_misuse_is_refused_early() -> None:
    with pytest.raises(ValueError, match="cdn_field"):
        Cache(cdn_field="X-Freshness")
    with pytest.raises(TypeError, match="cdn_cache_control"):
        Cache(cdn_cache_control="")
    with pytest.raises(TypeError, match="cdn_cache_control"):
        cached(cdn_cache_control=600)(product)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="surrogate_keys"):
        Cache(surrogate_keys="x-tags")
    assert CacheConfigError  # the route errors keep their type
