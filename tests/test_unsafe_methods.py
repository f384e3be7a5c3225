"""Requests of any method but the safe ones invalidate, and so do the URIs their
response names (RFC 9111 §4.4)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Response

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.invalidation import (
    SAFE_METHODS,
    invalidates,
    related_paths,
    request_authority,
    request_target,
)
from tests.helpers import Calls, MakeCache, client_for, is_hit

pytestmark = pytest.mark.anyio


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/products/{pid}")
    @cached(ttl=60)
    async def product(pid: int) -> dict[str, int]:
        calls[f"get{pid}"] += 1
        return {"pid": pid}

    @app.api_route("/products/{pid}", methods=["PURGE", "REPORT", "OPTIONS"])
    async def other_method(pid: int, status: int = 200) -> Response:
        return Response(status_code=status)

    @app.post("/shop/orders")
    async def order(
        location: str | None = None, content_location: str | None = None, status: int = 201
    ) -> Response:
        headers = {}
        if location is not None:
            headers["location"] = location
        if content_location is not None:
            headers["content-location"] = content_location
        return Response(status_code=status, headers=headers)

    return app, calls


async def second_get_is_hit(client: httpx.AsyncClient, request: httpx.Request) -> bool:
    """Store /products/2, send ``request``, and say whether /products/2 is still stored."""
    await client.get("/products/2")
    await client.send(request)
    return is_hit(await client.get("/products/2"))


@pytest.mark.parametrize("method", ["PURGE", "REPORT"])
async def test_a_method_of_unknown_safety_invalidates_its_target(
    make_cache: MakeCache, method: str
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        kept = await second_get_is_hit(client, client.build_request(method, "/products/2"))
    assert not kept
    assert calls["get2"] == 2


async def test_an_unknown_method_answered_with_an_error_invalidates_nothing(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        request = client.build_request("PURGE", "/products/2", params={"status": 409})
        assert await second_get_is_hit(client, request)


async def test_options_is_safe_and_invalidates_nothing(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        assert await second_get_is_hit(client, client.build_request("OPTIONS", "/products/2"))


@pytest.mark.parametrize(
    "location",
    [
        "/products/2",
        "http://testserver/products/2",
        "HTTP://TestServer:80/products/2?tab=reviews",
        "../products/2",
        "//testserver/products/2",
    ],
)
async def test_a_same_origin_location_is_invalidated(make_cache: MakeCache, location: str) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        request = client.build_request("POST", "/shop/orders", params={"location": location})
        assert not await second_get_is_hit(client, request)


async def test_a_same_origin_content_location_is_invalidated(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        params = {"content_location": "/products/2", "status": 200}
        request = client.build_request("POST", "/shop/orders", params=params)
        assert not await second_get_is_hit(client, request)


async def test_a_redirect_location_of_a_write_is_invalidated(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        params = {"location": "/products/2", "status": 303}
        request = client.build_request("POST", "/shop/orders", params=params)
        assert not await second_get_is_hit(client, request)


@pytest.mark.parametrize(
    "location",
    [
        "http://other.example/products/2",
        "https://testserver/products/2",
        "http://testserver:8080/products/2",
    ],
)
async def test_a_location_on_another_origin_is_not_invalidated(
    make_cache: MakeCache, location: str
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        request = client.build_request("POST", "/shop/orders", params={"location": location})
        assert await second_get_is_hit(client, request)


async def test_the_location_of_a_failed_write_is_not_invalidated(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        params = {"location": "/products/2", "status": 422}
        request = client.build_request("POST", "/shop/orders", params=params)
        assert await second_get_is_hit(client, request)


@pytest.mark.parametrize("location", ["http://[::1", "http://testserver:99999/products/2"])
async def test_a_location_that_is_not_a_uri_is_ignored(
    make_cache: MakeCache, location: str
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/products/2")
        answer = await client.post("/shop/orders", params={"location": location})
        after = await client.get("/products/2")
    assert answer.status_code == 201
    assert is_hit(after)


# invalidates


@pytest.mark.parametrize("method", sorted(SAFE_METHODS))
def test_safe_methods_never_invalidate(method: str) -> None:
    assert not invalidates(method, 200)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "PURGE", "MKCOL", "LINK"])
@pytest.mark.parametrize("status", [200, 204, 301, 303, 399])
def test_any_other_method_invalidates_on_a_non_error_status(method: str, status: int) -> None:
    assert invalidates(method, status)


@pytest.mark.parametrize("status", [100, 400, 404, 409, 500, 503])
def test_an_error_status_never_invalidates(status: int) -> None:
    assert not invalidates("PURGE", status)


# related_paths


def related(*headers: tuple[bytes, bytes], raw_path: bytes = b"/a/b", root: str = "") -> list[str]:
    return related_paths(list(headers), "https", "shop.example", raw_path, root)


def test_a_relative_location_resolves_against_the_request_uri() -> None:
    assert related((b"location", b"c/d")) == ["/a/c/d"]


def test_the_query_and_fragment_of_a_location_are_dropped() -> None:
    assert related((b"Location", b"/x?y=1#z")) == ["/x"]


def test_a_location_path_is_percent_decoded_like_a_request_path() -> None:
    assert related((b"location", b"/caf%C3%A9")) == ["/café"]


def test_both_fields_count_once_each_path() -> None:
    headers = ((b"location", b"/x"), (b"content-location", b"/x"), (b"content-location", b"/y"))
    assert related(*headers) == ["/x", "/y"]


def test_the_default_port_of_the_scheme_is_the_same_origin() -> None:
    assert related((b"location", b"https://SHOP.example:443/x")) == ["/x"]


@pytest.mark.parametrize(
    "value", [b"http://shop.example/x", b"https://shop.example:8443/x", b"https://evil.example/x"]
)
def test_another_scheme_host_or_port_is_another_origin(value: bytes) -> None:
    assert related((b"location", value)) == []


def test_a_path_outside_the_root_path_is_not_the_applications() -> None:
    headers = ((b"location", b"/api/x"), (b"location", b"/apix"), (b"location", b"/other"))
    assert related(*headers, raw_path=b"/api/orders", root="/api") == ["/x"]


def test_other_fields_are_not_read() -> None:
    assert related((b"link", b"</x>; rel=next"), (b"refresh", b"0; url=/y")) == []


def test_an_unusable_request_authority_gives_no_paths() -> None:
    assert related_paths([(b"location", b"/x")], "http", "[::1", b"/", "") == []


def test_the_authority_is_the_host_header() -> None:
    assert request_authority([(b"host", b"shop.example:8000")], ("10.0.0.1", 80)) == (
        "shop.example:8000"
    )


def test_without_host_the_authority_is_the_server_address() -> None:
    assert request_authority([], ("10.0.0.1", 8000)) == "10.0.0.1:8000"


def test_the_request_target_is_the_raw_path_when_the_server_gives_one() -> None:
    assert request_target("/a b", b"/a%20b") == b"/a%20b"
    assert request_target("/a b", None) == b"/a%20b"
