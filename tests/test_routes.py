"""Which requests the middleware answers from the cache, resolved from the app's routing table.

Everything goes through real HTTP (Starlette's ``TestClient``, lifespan included).  Endpoints count
their executions in a dict, so "served from the cache" means the endpoint did not run.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import traceback
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx2
import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Host, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached, get_cache, invalidates
from tests.helpers import is_hit, sync_client_for


def cache_status(response: httpx2.Response) -> str | None:
    value: str | None = response.headers.get("cache-status")
    return value


def was_stored(response: httpx2.Response) -> bool:
    return (cache_status(response) or "").endswith("; stored")


def get_twice(client: TestClient, path: str) -> tuple[httpx2.Response, httpx2.Response]:
    return client.get(path), client.get(path)


def startup_failure(app: Starlette) -> str:
    """The error text of entering ``TestClient(app)``; fails if startup succeeds or hangs."""
    raised: list[BaseException] = []

    def enter() -> None:
        try:
            with TestClient(app):
                pass
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=enter, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive(), "entering TestClient(app) hangs instead of raising"
    assert raised, "startup succeeded"
    return "".join(traceback.format_exception(raised[0]))


# Decorator order and endpoint kinds (FastAPI)


def test_cached_above_app_get_serves_the_second_request_from_the_cache() -> None:
    calls: Counter[str] = Counter()
    app = FastAPI()

    @cached(60)
    @app.get("/products/{pid}")
    async def product(pid: int) -> dict[str, int]:
        calls["product"] += 1
        return {"pid": pid}

    with sync_client_for(app) as client:
        first, second = get_twice(client, "/products/1")
    assert was_stored(first)
    assert is_hit(second)
    assert second.json() == first.json() == {"pid": 1}
    assert calls["product"] == 1


def test_cached_below_app_get_serves_the_second_request_from_the_cache() -> None:
    calls: Counter[str] = Counter()
    app = FastAPI()

    @app.get("/products/{pid}")
    @cached(60)
    async def product(pid: int) -> dict[str, int]:
        calls["product"] += 1
        return {"pid": pid}

    with sync_client_for(app) as client:
        first, second = get_twice(client, "/products/1")
    assert is_hit(second)
    assert second.json() == first.json()
    assert calls["product"] == 1


def test_a_sync_def_endpoint_is_served_from_the_cache() -> None:
    calls: Counter[str] = Counter()
    app = FastAPI()

    @app.get("/products/{pid}")
    @cached(60)
    def product(pid: int) -> dict[str, int]:
        calls["product"] += 1
        return {"pid": pid}

    with sync_client_for(app) as client:
        first, second = get_twice(client, "/products/1")
    assert is_hit(second)
    assert second.json() == first.json()
    assert calls["product"] == 1


def test_each_path_is_cached_apart() -> None:
    calls: Counter[str] = Counter()
    app = FastAPI()

    @app.get("/products/{pid}")
    @cached(60)
    async def product(pid: int) -> dict[str, int]:
        calls[f"product {pid}"] += 1
        return {"pid": pid}

    with sync_client_for(app) as client:
        responses = [client.get(f"/products/{pid}") for pid in (1, 2, 1, 2)]
    assert [r.json()["pid"] for r in responses] == [1, 2, 1, 2]
    assert [is_hit(r) for r in responses] == [False, False, True, True]
    assert calls == {"product 1": 1, "product 2": 1}


# Starlette routes and HTTPEndpoint


def test_a_starlette_route_endpoint_is_served_from_the_cache() -> None:
    calls: Counter[str] = Counter()

    @cached(60)
    async def product(request: Request) -> JSONResponse:
        calls["product"] += 1
        return JSONResponse({"pid": request.path_params["pid"]})

    app = Starlette(routes=[Route("/products/{pid}", product)])
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/products/7")
    assert is_hit(second)
    assert second.json() == first.json() == {"pid": "7"}
    assert calls["product"] == 1


def test_a_sync_starlette_route_endpoint_is_served_from_the_cache() -> None:
    calls: Counter[str] = Counter()

    @cached(60)
    def product(request: Request) -> JSONResponse:
        calls["product"] += 1
        return JSONResponse({"pid": request.path_params["pid"]})

    app = Starlette(routes=[Route("/products/{pid}", product)])
    with sync_client_for(app) as client:
        _, second = get_twice(client, "/products/7")
    assert is_hit(second)
    assert calls["product"] == 1


class ProductPage(HTTPEndpoint):
    calls: ClassVar[Counter[str]] = Counter()

    @cached(60)
    async def get(self, request: Request) -> PlainTextResponse:
        self.calls["get"] += 1
        return PlainTextResponse(f"product {request.path_params['pid']}")

    async def put(self, request: Request) -> PlainTextResponse:
        self.calls["put"] += 1
        return PlainTextResponse("updated")


def test_an_http_endpoint_with_a_marked_get_is_served_from_the_cache() -> None:
    ProductPage.calls.clear()
    app = Starlette(routes=[Route("/products/{pid}", ProductPage)])
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/products/3")
    assert is_hit(second)
    assert second.text == first.text == "product 3"
    assert ProductPage.calls["get"] == 1


def test_a_write_to_an_http_endpoint_path_invalidates_its_cached_get() -> None:
    ProductPage.calls.clear()
    app = Starlette(routes=[Route("/products/{pid}", ProductPage)])
    with sync_client_for(app) as client:
        client.get("/products/3")
        assert client.put("/products/3").text == "updated"
        after = client.get("/products/3")
    assert not is_hit(after)
    assert ProductPage.calls == {"get": 2, "put": 1}


# FastAPI routers


def test_a_route_of_an_api_router_with_a_prefix_is_served_from_the_cache() -> None:
    calls: Counter[str] = Counter()
    router = APIRouter(prefix="/products")

    @router.get("/{pid}")
    @cached(60)
    async def product(pid: int) -> dict[str, int]:
        calls["product"] += 1
        return {"pid": pid}

    app = FastAPI()
    app.include_router(router, prefix="/api")
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/api/products/4")
    assert first.json() == {"pid": 4}
    assert is_hit(second)
    assert calls["product"] == 1


def test_a_route_of_a_router_included_in_a_router_is_served_from_the_cache() -> None:
    calls: Counter[str] = Counter()
    items = APIRouter(prefix="/items")

    @items.get("/{pid}")
    @cached(60)
    async def item(pid: int) -> dict[str, int]:
        calls["item"] += 1
        return {"pid": pid}

    shop = APIRouter(prefix="/shop")

    @shop.get("/items/{name}")
    async def sibling(name: str) -> dict[str, str]:
        calls["sibling"] += 1
        return {"name": name}

    shop.include_router(items, prefix="/v1")
    app = FastAPI()
    app.include_router(shop, prefix="/api")
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/api/shop/v1/items/5")
        other = client.get("/api/shop/items/5")
    assert first.json() == {"pid": 5}
    assert is_hit(second)
    assert calls["item"] == 1
    assert other.json() == {"name": "5"}
    assert cache_status(other) is None


def test_an_unmarked_route_of_a_router_gets_no_cache_status() -> None:
    calls: Counter[str] = Counter()
    router = APIRouter(prefix="/products")

    @router.get("/{pid}")
    async def product(pid: int) -> dict[str, int]:
        calls["product"] += 1
        return {"pid": pid}

    app = FastAPI()
    app.include_router(router)
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/products/1")
    assert cache_status(first) is cache_status(second) is None
    assert calls["product"] == 2


# Mounts


def test_a_route_inside_a_mount_is_served_from_the_cache() -> None:
    calls: Counter[str] = Counter()

    @cached(60)
    async def product(request: Request) -> PlainTextResponse:
        calls["product"] += 1
        return PlainTextResponse(request.path_params["pid"])

    app = Starlette(routes=[Mount("/api", routes=[Route("/products/{pid}", product)])])
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/api/products/8")
    assert first.text == "8"
    assert is_hit(second)
    assert calls["product"] == 1


def test_a_route_inside_nested_mounts_is_served_from_the_cache() -> None:
    calls: Counter[str] = Counter()

    @cached(60)
    async def product(request: Request) -> PlainTextResponse:
        calls["product"] += 1
        return PlainTextResponse(request.path_params["pid"])

    inner = Mount("/v1", routes=[Route("/products/{pid}", product)])
    app = Starlette(routes=[Mount("/api", routes=[inner])])
    with sync_client_for(app) as client:
        _, second = get_twice(client, "/api/v1/products/8")
    assert is_hit(second)
    assert calls["product"] == 1


def test_a_route_of_a_mounted_starlette_application_is_served_from_the_cache() -> None:
    calls: Counter[str] = Counter()

    @cached(60)
    async def product(request: Request) -> PlainTextResponse:
        calls["product"] += 1
        return PlainTextResponse(request.path_params["pid"])

    shop = Starlette(routes=[Route("/products/{pid}", product)])
    app = Starlette(routes=[Mount("/shop", app=shop)])
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/shop/products/9")
    assert first.text == "9"
    assert is_hit(second)
    assert calls["product"] == 1


def test_a_route_of_a_mounted_fastapi_application_is_served_from_the_cache() -> None:
    calls: Counter[str] = Counter()
    shop = FastAPI()

    @shop.get("/products/{pid}")
    @cached(60)
    async def product(pid: int) -> dict[str, int]:
        calls["product"] += 1
        return {"pid": pid}

    app = FastAPI()
    app.mount("/shop", shop)
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/shop/products/9")
    assert first.json() == {"pid": 9}
    assert is_hit(second)
    assert calls["product"] == 1


# Path parameter convertors


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/products/{pid:int}", "/products/12"),
        ("/products/{pid:float}", "/products/1.5"),
        ("/products/{pid:uuid}", "/products/0b4e8c9a-6f0e-4c7e-9a51-2d6f3f0a9b11"),
        ("/products/{pid:path}", "/products/a/b/c"),
        ("/products/{pid:str}", "/products/abc"),
    ],
)
def test_a_route_with_a_convertor_is_served_from_the_cache(template: str, path: str) -> None:
    calls: Counter[str] = Counter()

    @cached(60)
    async def product(request: Request) -> PlainTextResponse:
        calls["product"] += 1
        return PlainTextResponse(str(request.path_params["pid"]))

    app = Starlette(routes=[Route(template, product)])
    with sync_client_for(app) as client:
        first, second = get_twice(client, path)
    assert first.status_code == 200
    assert is_hit(second)
    assert calls["product"] == 1


def test_a_path_its_convertor_rejects_is_not_cached() -> None:
    calls: Counter[str] = Counter()

    @cached(60)
    async def product(request: Request) -> PlainTextResponse:
        calls["product"] += 1
        return PlainTextResponse("product")

    app = Starlette(routes=[Route("/products/{pid:int}", product)])
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/products/abc")
    assert first.status_code == second.status_code == 404
    assert cache_status(first) is cache_status(second) is None
    assert calls["product"] == 0


def float_route_app(calls: Counter[str]) -> Starlette:
    """A float-convertor route, then a marked route, then an unmarked one."""

    async def price(request: Request) -> PlainTextResponse:
        calls["price"] += 1
        return PlainTextResponse("price")

    @cached(60)
    async def product(request: Request) -> PlainTextResponse:
        calls["product"] += 1
        return PlainTextResponse("product")

    async def about(request: Request) -> PlainTextResponse:
        calls["about"] += 1
        return PlainTextResponse("about")

    return Starlette(
        routes=[
            Route("/prices/{amount:float}", price),
            Route("/products/{pid:int}", product),
            Route("/about", about),
        ]
    )


def test_a_marked_route_after_a_float_convertor_route_is_served_from_the_cache() -> None:
    calls: Counter[str] = Counter()
    with sync_client_for(float_route_app(calls)) as client:
        _, second = get_twice(client, "/products/1")
    assert is_hit(second)
    assert calls["product"] == 1


def test_an_unmarked_route_after_a_float_convertor_route_is_answered() -> None:
    calls: Counter[str] = Counter()
    with sync_client_for(float_route_app(calls)) as client:
        response = client.get("/about")
    assert response.text == "about"
    assert cache_status(response) is None


# Router order


def test_an_earlier_unmarked_route_matching_the_same_path_is_never_cached() -> None:
    calls: Counter[str] = Counter()
    app = FastAPI()

    @app.get("/items/special")
    async def special() -> dict[str, str]:
        calls["special"] += 1
        return {"item": "special"}

    @app.get("/items/{name}")
    @cached(60)
    async def item(name: str) -> dict[str, str]:
        calls["item"] += 1
        return {"item": name}

    with sync_client_for(app) as client:
        specials = [client.get("/items/special") for _ in range(3)]
        _, other = get_twice(client, "/items/other")
    assert [r.json() for r in specials] == [{"item": "special"}] * 3
    assert [cache_status(r) for r in specials] == [None, None, None]
    assert calls["special"] == 3
    assert is_hit(other)
    assert calls["item"] == 1


def test_an_earlier_post_only_route_on_the_same_path_does_not_block_caching_of_get() -> None:
    calls: Counter[str] = Counter()

    async def create(request: Request) -> PlainTextResponse:
        calls["create"] += 1
        return PlainTextResponse("created", status_code=201)

    @cached(60)
    async def listing(request: Request) -> PlainTextResponse:
        calls["listing"] += 1
        return PlainTextResponse("listing")

    app = Starlette(routes=[Route("/items", create, methods=["POST"]), Route("/items", listing)])
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/items")
    assert first.text == "listing"
    assert is_hit(second)
    assert calls == {"listing": 1}


def test_a_mounted_asgi_app_before_a_marked_route_prevents_caching_there() -> None:
    calls: Counter[str] = Counter()

    async def files(scope: Scope, receive: Receive, send: Send) -> None:
        calls["files"] += 1
        await PlainTextResponse("from files")(scope, receive, send)

    @cached(60)
    async def report(request: Request) -> PlainTextResponse:
        calls["report"] += 1
        return PlainTextResponse("report")

    app = Starlette(routes=[Mount("/files", app=files), Route("/files/report", report)])
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/files/report")
    assert first.text == second.text == "from files"
    assert cache_status(first) is cache_status(second) is None
    assert calls == {"files": 2}


def test_mounted_static_files_before_a_marked_route_prevent_caching_there(
    tmp_path: Path,
) -> None:
    (tmp_path / "report").write_text("static report")
    calls: Counter[str] = Counter()

    @cached(60)
    async def report(request: Request) -> PlainTextResponse:
        calls["report"] += 1
        return PlainTextResponse("report")

    app = Starlette(
        routes=[
            Mount("/files", app=StaticFiles(directory=tmp_path)),
            Route("/files/report", report),
        ]
    )
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/files/report")
    assert first.text == second.text == "static report"
    assert cache_status(first) is cache_status(second) is None
    assert calls["report"] == 0


def test_a_marked_route_before_a_mounted_asgi_app_is_still_cached() -> None:
    calls: Counter[str] = Counter()

    async def files(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("from files")(scope, receive, send)

    @cached(60)
    async def report(request: Request) -> PlainTextResponse:
        calls["report"] += 1
        return PlainTextResponse("report")

    app = Starlette(routes=[Route("/files/report", report), Mount("/files", app=files)])
    with sync_client_for(app) as client:
        _, second = get_twice(client, "/files/report")
        other = client.get("/files/other")
    assert is_hit(second)
    assert calls["report"] == 1
    assert other.text == "from files"
    assert cache_status(other) is None


# Unmarked routes


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE"])
def test_an_unmarked_route_gets_no_cache_status(method: str) -> None:
    async def page(request: Request) -> Response:
        return PlainTextResponse("page")

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/page", page, methods=methods)])
    with sync_client_for(app) as client:
        response = client.request(method, "/page")
    assert response.status_code == 200
    assert "cache-status" not in response.headers


def test_a_path_no_route_matches_gets_no_cache_status() -> None:
    app = Starlette(routes=[])
    with sync_client_for(app) as client:
        response = client.get("/nowhere")
    assert response.status_code == 404
    assert "cache-status" not in response.headers


# Many routes


def test_among_300_routes_the_marked_last_one_is_cached_and_the_others_are_not() -> None:
    calls: Counter[str] = Counter()

    def endpoint(name: str) -> Any:
        async def run(request: Request) -> PlainTextResponse:
            calls[name] += 1
            return PlainTextResponse(name)

        return run

    routes = []
    for i in range(299):
        if i % 2:
            routes.append(Route(f"/static/{i}", endpoint(f"static {i}")))
        else:
            routes.append(Route(f"/param/{i}/{{value}}", endpoint(f"param {i}")))
    routes.append(Route("/{section}/{item}", cached(60)(endpoint("marked"))))
    app = Starlette(routes=routes)

    with sync_client_for(app) as client:
        static = [client.get("/static/297") for _ in range(2)]
        param = [client.get("/param/148/x") for _ in range(2)]
        _, second = get_twice(client, "/shop/hat")
    assert [r.text for r in static] == ["static 297"] * 2
    assert [r.text for r in param] == ["param 148"] * 2
    assert [cache_status(r) for r in static + param] == [None] * 4
    assert second.text == "marked"
    assert is_hit(second)
    assert calls == {"static 297": 2, "param 148": 2, "marked": 1}


def test_routes_of_every_depth_keep_the_routers_order_among_many_routes() -> None:
    """Paths are matched against the routes their leading literal segments allow,
    in router order: a shallower or parameter-first route before a deeper one wins."""
    calls: Counter[str] = Counter()
    routes = [Route(f"/filler/{i}/{{value}}", text(f"filler {i}", calls)) for i in range(100)]
    routes += [
        Route("/{section}/{item}/edit", text("editor", calls)),
        Route("/shop/{item}/edit", cached(60)(text("shop edit", calls))),
        Route("/shop/v1.0/{item}", cached(60)(text("v1.0", calls))),
        Route("/shop/v1x0/{item}", text("v1x0", calls)),
        Route("/shop/{rest:path}", cached(60)(text("rest", calls))),
    ]
    app = Starlette(routes=routes)

    with sync_client_for(app) as client:
        edits = [client.get("/shop/hat/edit") for _ in range(2)]
        _, dotted = get_twice(client, "/shop/v1.0/hat")
        undotted = [client.get("/shop/v1x0/hat") for _ in range(2)]
        _, rest = get_twice(client, "/shop/v1.0/hat/extra")
        filler = [client.get("/filler/99/x") for _ in range(2)]
    assert [r.text for r in edits] == ["editor {'section': 'shop', 'item': 'hat'}"] * 2
    assert [cache_status(r) for r in edits + undotted + filler] == [None] * 6
    assert dotted.text == "v1.0 {'item': 'hat'}" and is_hit(dotted)
    assert [r.text for r in undotted] == ["v1x0 {'item': 'hat'}"] * 2
    assert rest.text == "rest {'rest': 'v1.0/hat/extra'}" and is_hit(rest)
    assert calls == {"editor": 2, "v1.0": 1, "v1x0": 2, "rest": 1, "filler 99": 2}


# Route shapes Starlette accepts, however odd: they never break the app


def text(name: str, calls: Counter[str]) -> Any:
    async def endpoint(request: Request) -> PlainTextResponse:
        calls[name] += 1
        return PlainTextResponse(f"{name} {request.path_params}")

    return endpoint


def repeated_id_app(calls: Counter[str], endpoint: Any = None) -> Starlette:
    """``/users/{id}/posts/{id}``: each level compiles, the joined path would not."""
    posts = endpoint or text("post", calls)
    return Starlette(routes=[Mount("/users/{id}", routes=[Route("/posts/{id}", posts)])])


def test_a_path_naming_a_parameter_at_two_levels_starts_up_and_answers() -> None:
    calls: Counter[str] = Counter()
    with sync_client_for(repeated_id_app(calls)) as client:
        response = client.get("/users/1/posts/2")
    assert response.status_code == 200
    assert response.text == "post {'id': '2'}"
    assert "cache-status" not in response.headers


def test_a_path_naming_a_parameter_at_two_levels_answers_without_a_lifespan() -> None:
    calls: Counter[str] = Counter()
    client = sync_client_for(repeated_id_app(calls))  # not entered: no lifespan runs
    response = client.get("/users/1/posts/2")
    assert response.status_code == 200
    assert response.text == "post {'id': '2'}"


def test_a_route_naming_a_parameter_twice_claims_its_paths_from_later_cached_routes() -> None:
    calls: Counter[str] = Counter()
    app = repeated_id_app(calls)
    app.router.routes.append(Route("/users/{uid}/posts/{pid}", cached(60)(text("later", calls))))
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/users/1/posts/2")
        elsewhere = client.get("/users/1/comments/2")
    assert first.text == second.text == "post {'id': '2'}"
    assert cache_status(first) is cache_status(second) is None
    assert calls == {"post": 2}
    assert elsewhere.status_code == 404


def test_a_cached_route_naming_a_parameter_twice_is_not_cached_and_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: Counter[str] = Counter()
    app = repeated_id_app(calls, cached(60)(text("post", calls)))
    with caplog.at_level(logging.WARNING, logger="asgi_cache"):
        with sync_client_for(app) as client:
            first, second = get_twice(client, "/users/1/posts/2")
    assert first.text == second.text == "post {'id': '2'}"
    assert cache_status(first) is cache_status(second) is None
    assert calls == {"post": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "GET /users/{id}/posts/{id}" in warnings[0]
    assert "not cached" in warnings[0]


def test_an_invalidates_tag_naming_a_parameter_given_twice_fails_startup_naming_the_route() -> None:
    @invalidates("post:{id}")
    async def edit(request: Request) -> PlainTextResponse:
        return PlainTextResponse("edited")

    routes = [Mount("/users/{id}", routes=[Route("/posts/{id}", edit, methods=["PUT"])])]
    app = Starlette(routes=routes)
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    error = startup_failure(app)
    assert "CacheConfigError" in error
    assert "PUT /users/{id}/posts/{id}" in error


def test_an_invalidates_tag_naming_a_parameter_given_once_still_invalidates() -> None:
    calls: Counter[str] = Counter()

    @invalidates("post:{pid}")
    async def edit(request: Request) -> PlainTextResponse:
        return PlainTextResponse("edited")

    app = Starlette(
        routes=[
            Mount("/users/{id}", routes=[Route("/posts/{id}/{pid}", edit, methods=["PUT"])]),
            Route("/posts/{pid}", cached(60, tags=("post:{pid}",))(text("post", calls))),
        ]
    )
    with sync_client_for(app) as client:
        _, hit = get_twice(client, "/posts/7")
        client.put("/users/1/posts/1/7")
        after = client.get("/posts/7")
    assert is_hit(hit)
    assert was_stored(after)
    assert calls == {"post": 2}


def test_mounts_repeating_their_own_names_at_every_level_answer() -> None:
    calls: Counter[str] = Counter()
    inner = Mount("/b/{id}", routes=[Route("/c/{id}/{x}", text("deep", calls))])
    app = Starlette(routes=[Mount("/a/{id}/{x}", routes=[inner])])
    with sync_client_for(app) as client:
        response = client.get("/a/1/2/b/3/c/4/5")
    assert response.text == "deep {'id': '4', 'x': '5'}"


class PatternRoute(Route):
    """A route class of an application's own, matching a regular expression."""

    def __init__(self, path: str, pattern: str, endpoint: Any) -> None:
        super().__init__("/", endpoint)
        self.path = path
        self.path_regex = re.compile(pattern)


@pytest.mark.parametrize(
    "path", ["^/files/.*[.]txt$", "/files/{name:filename}"], ids=["regex", "unknown-convertor"]
)
def test_a_route_with_a_path_that_cannot_be_compiled_claims_every_path_below_its_mount(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: Counter[str] = Counter()
    app = Starlette(
        routes=[
            Route("/before", cached(60)(text("before", calls))),
            Mount("/docs", routes=[PatternRoute(path, "^/files/.*[.]txt$", text("file", calls))]),
            Route("/docs/files/report.txt", cached(60)(text("report", calls))),
            Route("/after", cached(60)(text("after", calls))),
        ]
    )
    with caplog.at_level(logging.WARNING, logger="asgi_cache"):
        with sync_client_for(app) as client:
            files = get_twice(client, "/docs/files/report.txt")
            _, before = get_twice(client, "/before")
            _, after = get_twice(client, "/after")
    assert [r.text for r in files] == ["file {}"] * 2
    assert [cache_status(r) for r in files] == [None, None]
    assert is_hit(before)
    assert is_hit(after)
    assert calls == {"file": 2, "before": 1, "after": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "PatternRoute" in warnings[0]
    assert "/docs" in warnings[0]


def test_a_mounted_app_whose_routes_are_not_a_table_claims_its_mount() -> None:
    calls: Counter[str] = Counter()

    class Opaque:
        """An ASGI app with a ``routes`` method, not a routing table."""

        def routes(self) -> list[str]:
            return []

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await PlainTextResponse("opaque")(scope, receive, send)

    app = Starlette(
        routes=[
            Mount("/opaque", app=Opaque()),
            Route("/opaque/page", cached(60)(text("page", calls))),
            Route("/page", cached(60)(text("page", calls))),
        ]
    )
    with sync_client_for(app) as client:
        opaque = get_twice(client, "/opaque/page")
        _, page = get_twice(client, "/page")
    assert [r.text for r in opaque] == ["opaque"] * 2
    assert [cache_status(r) for r in opaque] == [None, None]
    assert is_hit(page)


def test_a_mount_given_both_an_app_and_routes_is_resolved_like_the_router_does() -> None:
    calls: Counter[str] = Counter()
    mounted = Starlette(routes=[Route("/page", cached(60)(text("from app", calls)))])
    ignored = [Route("/page", text("from routes", calls))]
    app = Starlette(routes=[Mount("/both", app=mounted, routes=ignored)])
    with sync_client_for(app) as client:
        first, second = get_twice(client, "/both/page")
    assert first.text == "from app {}"
    assert is_hit(second)
    assert calls == {"from app": 1}


def test_a_host_route_inside_a_mount_claims_only_the_paths_below_that_mount() -> None:
    calls: Counter[str] = Counter()
    app = Starlette(
        routes=[
            Mount("/tenants", routes=[Host("{tenant}.example.com", text("tenant", calls))]),
            Route("/tenants/page", cached(60)(text("tenant page", calls))),
            Route("/page", cached(60)(text("page", calls))),
        ]
    )
    with sync_client_for(app) as client:
        tenant = get_twice(client, "/tenants/page")
        _, page = get_twice(client, "/page")
    assert [cache_status(r) for r in tenant] == [None, None]
    assert is_hit(page)


# Bad configuration fails at startup, naming the route


def test_a_tag_placeholder_not_in_the_get_route_path_fails_startup_naming_the_route() -> None:
    app = FastAPI()

    @app.get("/products/{pid}")
    @cached(60, tags=("product:{product_id}",))
    async def show_product(pid: int) -> dict[str, int]:
        return {"pid": pid}

    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    error = startup_failure(app)
    assert "/products/{pid}" in error
    assert "show_product" in error
    assert "product_id" in error


def test_a_tag_placeholder_not_in_a_write_route_path_fails_startup_naming_the_route() -> None:
    app = FastAPI()

    @app.post("/products/{pid}")
    @invalidates("product:{product_id}")
    async def update_product(pid: int) -> dict[str, int]:
        return {"pid": pid}

    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    error = startup_failure(app)
    assert "/products/{pid}" in error
    assert "update_product" in error
    assert "product_id" in error


def test_a_tag_placeholder_that_is_a_path_parameter_starts_up() -> None:
    app = FastAPI()

    @app.get("/products/{pid}")
    @cached(60, tags=("product:{pid}",))
    async def show_product(pid: int) -> dict[str, int]:
        return {"pid": pid}

    with sync_client_for(app) as client:
        assert client.get("/products/1").json() == {"pid": 1}


# root_path


def products_app(calls: Counter[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/products/{pid}")
    @cached(60, tags=("products", "product:{pid}"))
    async def product(pid: int) -> dict[str, int]:
        calls[f"product {pid}"] += 1
        return {"pid": pid}

    return app


def test_a_cached_route_hits_under_a_root_path() -> None:
    calls: Counter[str] = Counter()
    with sync_client_for(products_app(calls), root_path="/prefix") as client:
        first, second = get_twice(client, "/products/1")
    assert first.json() == {"pid": 1}
    assert is_hit(second)
    assert calls["product 1"] == 1


def test_a_request_path_that_includes_the_root_path_shares_the_entry() -> None:
    calls: Counter[str] = Counter()
    with sync_client_for(products_app(calls), root_path="/prefix") as client:
        client.get("/products/1")
        second = client.get("/prefix/products/1")
    assert second.json() == {"pid": 1}
    assert is_hit(second)
    assert calls["product 1"] == 1


def test_invalidate_path_takes_the_path_the_routes_see_under_a_root_path() -> None:
    calls: Counter[str] = Counter()
    cache = Cache(MemoryStore())
    with sync_client_for(products_app(calls), cache, root_path="/prefix") as client:
        client.get("/products/1")
        assert anyio.run(cache.invalidate_path, "/products/1") == 1
        after = client.get("/products/1")
    assert not is_hit(after)
    assert calls["product 1"] == 2


# Invalidation from outside requests, from the lifespan and from inside a route


INVALIDATIONS = [
    pytest.param("invalidate", ("product:1",), {"product 1"}, id="invalidate-one-tag"),
    pytest.param("invalidate", ("products",), {"product 1", "product 2"}, id="invalidate-shared"),
    pytest.param("invalidate_path", ("/products/1",), {"product 1"}, id="invalidate_path"),
    pytest.param("clear", (), {"product 1", "product 2"}, id="clear"),
]


@pytest.mark.parametrize(("operation", "args", "refreshed"), INVALIDATIONS)
def test_invalidation_between_requests_refreshes_exactly_the_affected_paths(
    operation: str, args: tuple[str, ...], refreshed: set[str]
) -> None:
    calls: Counter[str] = Counter()
    cache = Cache(MemoryStore())
    with sync_client_for(products_app(calls), cache) as client:
        client.get("/products/1")
        client.get("/products/2")
        anyio.run(getattr(cache, operation), *args)
        after = {f"product {pid}": client.get(f"/products/{pid}") for pid in (1, 2)}
    assert {name for name, response in after.items() if not is_hit(response)} == refreshed
    assert {name for name, count in calls.items() if count == 2} == refreshed


def test_invalidate_returns_how_many_entries_it_removed() -> None:
    cache = Cache(MemoryStore())
    with sync_client_for(products_app(Counter()), cache) as client:
        client.get("/products/1")
        client.get("/products/2")
        assert anyio.run(cache.invalidate, "products") == 2
        assert anyio.run(cache.invalidate, "products") == 0


def test_invalidation_on_the_app_event_loop_between_requests_refreshes_the_entry() -> None:
    calls: Counter[str] = Counter()
    cache = Cache(MemoryStore())
    with sync_client_for(products_app(calls), cache) as client:
        client.get("/products/1")
        assert client.portal is not None
        client.portal.call(cache.invalidate, "product:1")
        after = client.get("/products/1")
    assert not is_hit(after)
    assert calls["product 1"] == 2


def test_clear_in_the_lifespan_removes_entries_of_this_prefix_only() -> None:
    store = MemoryStore()
    cache = Cache(store, prefix="shop")
    anyio.run(store.set, "shop:page:left-over", b"old", 60)
    anyio.run(store.set, "blog:page:other-app", b"other", 60)
    cleared: list[int] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        cleared.append(await cache.clear())
        yield

    app = Starlette(routes=[], lifespan=lifespan)
    with sync_client_for(app, cache):
        assert cleared == [1]
        assert anyio.run(store.get, "shop:page:left-over") is None
        assert anyio.run(store.get, "blog:page:other-app") == b"other"


@pytest.mark.parametrize(("operation", "args", "refreshed"), INVALIDATIONS)
def test_invalidation_from_inside_a_route_refreshes_exactly_the_affected_paths(
    operation: str, args: tuple[str, ...], refreshed: set[str]
) -> None:
    calls: Counter[str] = Counter()
    app = products_app(calls)

    @app.post("/admin/purge")
    async def purge(request: Request) -> dict[str, int]:
        return {"removed": await getattr(get_cache(request), operation)(*args)}

    with sync_client_for(app) as client:
        client.get("/products/1")
        client.get("/products/2")
        assert client.post("/admin/purge").json() == {"removed": len(refreshed)}
        after = {f"product {pid}": client.get(f"/products/{pid}") for pid in (1, 2)}
    assert {name for name, response in after.items() if not is_hit(response)} == refreshed
    assert {name for name, count in calls.items() if count == 2} == refreshed


def test_get_cache_returns_the_cache_of_the_middleware() -> None:
    cache = Cache(MemoryStore())
    seen: list[Cache] = []

    async def page(request: Request) -> PlainTextResponse:
        seen.append(get_cache(request))
        return PlainTextResponse("page")

    with sync_client_for(Starlette(routes=[Route("/page", page)]), cache) as client:
        client.get("/page")
    assert seen == [cache]


def test_get_cache_on_a_request_that_did_not_pass_the_middleware_raises_lookup_error() -> None:
    async def page(request: Request) -> PlainTextResponse:
        get_cache(request)
        return PlainTextResponse("page")

    app = Starlette(routes=[Route("/page", page)])
    with TestClient(app) as client, pytest.raises(LookupError, match="CacheMiddleware"):
        client.get("/page")
