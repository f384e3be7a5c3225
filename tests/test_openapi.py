"""Cached routes described in FastAPI's generated OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached
from asgi_cache.openapi import EXTENSION, FROM_RESPONSE, annotate, describe, summary
from asgi_cache.routes import compile_routes
from tests.helpers import MakeCache, client_for, is_hit

DEFAULT_STATUSES = [200, 203, 204, 300, 301, 308, 404, 410]


class Product(BaseModel):
    pid: int
    name: str


def user_of(request: Request) -> str:
    return request.headers.get("x-user", "anon")


def shop_app() -> FastAPI:
    """Cached routes of every kind, an uncached one and an included router."""
    app = FastAPI()

    @app.get("/products/{pid}", response_model=Product)
    @cached(ttl=120, tags=("product:{pid}", "products"))
    async def get_product(pid: int) -> Product:
        """Read one product."""
        return Product(pid=pid, name="apple")

    @app.get("/greeting")
    @cached(ttl=30, vary=("accept-language",))
    async def greeting() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/dashboard")
    @cached(ttl=10, key=user_of, tags=("dashboard:{key}",))
    async def dashboard() -> dict[str, str]:
        return {"page": "dashboard"}

    @app.get("/news")
    @cached(stale_while_revalidate=15, stale_if_error=300)
    async def news() -> dict[str, str]:
        return {"news": "none"}

    @app.get("/hidden", include_in_schema=False)
    @cached(ttl=5)
    async def hidden() -> dict[str, str]:
        return {}

    @app.get("/uncached", response_model=Product)
    async def uncached() -> Product:
        """Always fresh."""
        return Product(pid=0, name="pear")

    router = APIRouter(prefix="/shops/{shop}")

    @router.get("/items/{iid}", response_model=Product)
    @cached(ttl=60, tags=("shop:{shop}", "item:{iid}"))
    async def get_item(shop: str, iid: int) -> Product:
        return Product(pid=iid, name=shop)

    app.include_router(router)
    return app


def document(app: FastAPI, cache: Cache | None = None, **options: Any) -> dict[str, Any]:
    """``/openapi.json`` of ``app`` behind the cache, fetched through a TestClient."""
    app.add_middleware(CacheMiddleware, cache=cache or Cache(MemoryStore()), **options)
    with TestClient(app) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def operation(schema: dict[str, Any], path: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][path]["get"]
    return found


def without_cache_notes(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the extension and the description line taken out again."""
    for item in schema["paths"].values():
        for op in item.values():
            if op.pop(EXTENSION, None) is not None:
                kept = op["description"].rsplit("\n\nCached: ", 1)
                if len(kept) == 2:
                    op["description"] = kept[0]
                else:
                    del op["description"]
    return schema


# --- through HTTP, on every store ---------------------------------------------------------


@pytest.mark.anyio
async def test_a_cached_route_has_the_extension_on_every_store(make_cache: MakeCache) -> None:
    async with client_for(CacheMiddleware(shop_app(), cache=make_cache())) as client:
        schema = (await client.get("/openapi.json")).json()
    assert operation(schema, "/products/{pid}")[EXTENSION]["ttl"] == 120


@pytest.mark.anyio
async def test_a_documented_route_is_still_served_from_the_cache(make_cache: MakeCache) -> None:
    async with client_for(CacheMiddleware(shop_app(), cache=make_cache())) as client:
        await client.get("/openapi.json")
        await client.get("/products/1")
        assert is_hit(await client.get("/products/1"))


@pytest.mark.anyio
async def test_the_document_is_annotated_once_however_often_it_is_fetched(
    make_cache: MakeCache,
) -> None:
    async with client_for(CacheMiddleware(shop_app(), cache=make_cache())) as client:
        first = (await client.get("/openapi.json")).json()
        second = (await client.get("/openapi.json")).json()
    assert second == first
    assert operation(second, "/products/{pid}")["description"].count("Cached:") == 1


# --- the extension's content --------------------------------------------------------------


def test_the_extension_gives_ttl_tags_key_headers_stale_windows_and_statuses() -> None:
    schema = document(shop_app())
    assert operation(schema, "/products/{pid}")[EXTENSION] == {
        "ttl": 120,
        "tags": ["product:{pid}", "products"],
        "key_headers": [],
        "stale_while_revalidate": FROM_RESPONSE,
        "stale_if_error": FROM_RESPONSE,
        "statuses": DEFAULT_STATUSES,
    }


def test_key_headers_join_the_cache_vary_and_the_route_vary() -> None:
    schema = document(shop_app(), Cache(MemoryStore(), vary=("x-tenant",)))
    extension = operation(schema, "/greeting")[EXTENSION]
    assert extension["key_headers"] == ["accept-language", "x-tenant"]


def test_a_key_function_is_named_and_its_route_said_private() -> None:
    extension = operation(document(shop_app()), "/dashboard")[EXTENSION]
    assert (extension["key"], extension["private"]) == ("user_of", True)
    assert extension["tags"] == ["dashboard:{key}"]


def test_a_route_without_ttl_takes_it_from_the_response() -> None:
    extension = operation(document(shop_app()), "/news")[EXTENSION]
    assert extension["ttl"] == FROM_RESPONSE


def test_the_route_stale_windows_are_given_in_seconds() -> None:
    extension = operation(document(shop_app()), "/news")[EXTENSION]
    assert (extension["stale_while_revalidate"], extension["stale_if_error"]) == (15, 300)


def test_the_cache_default_stale_window_is_named_behind_the_response() -> None:
    cache = Cache(MemoryStore(), stale_while_revalidate=30)
    extension = operation(document(shop_app(), cache), "/products/{pid}")[EXTENSION]
    assert extension["stale_while_revalidate"] == f"{FROM_RESPONSE}, else 30"


def test_route_statuses_replace_the_cache_statuses() -> None:
    app = FastAPI()

    @app.get("/only-ok")
    @cached(ttl=5, statuses=(200,))
    async def only_ok() -> dict[str, str]:
        return {}

    assert operation(document(app), "/only-ok")[EXTENSION]["statuses"] == [200]


def test_a_route_of_an_included_router_is_documented_under_its_prefix() -> None:
    extension = operation(document(shop_app()), "/shops/{shop}/items/{iid}")[EXTENSION]
    assert (extension["ttl"], extension["tags"]) == (60, ["shop:{shop}", "item:{iid}"])


def test_a_route_without_cached_has_no_extension() -> None:
    assert EXTENSION not in operation(document(shop_app()), "/uncached")


def test_a_route_without_cached_keeps_its_description() -> None:
    assert operation(document(shop_app()), "/uncached")["description"] == "Always fresh."


def test_a_mounted_application_keeps_its_own_document() -> None:
    app = FastAPI()
    app.mount("/sub", shop_app())
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    with TestClient(app) as client:
        schema = client.get("/sub/openapi.json").json()
    assert EXTENSION not in operation(schema, "/products/{pid}")


def test_a_route_left_out_of_the_schema_stays_out() -> None:
    assert "/hidden" not in document(shop_app())["paths"]


# --- the description line -----------------------------------------------------------------


def test_the_cached_line_follows_the_route_docstring() -> None:
    description = operation(document(shop_app()), "/products/{pid}")["description"]
    assert description == (
        "Read one product.\n\nCached: 120 s; tags product:{pid}, products; "
        "statuses 200 203 204 300 301 308 404 410."
    )


def test_a_route_without_docstring_gets_the_cached_line_as_description() -> None:
    description = operation(document(shop_app()), "/greeting")["description"]
    assert description == (
        "Cached: 30 s; keyed on accept-language; statuses 200 203 204 300 301 308 404 410."
    )


# --- what is left as FastAPI generates it -------------------------------------------------


def test_response_models_are_identical_with_and_without_the_cache() -> None:
    plain = shop_app().openapi()
    cached_schema = document(shop_app())
    assert cached_schema["components"] == plain["components"]
    for path in ("/products/{pid}", "/shops/{shop}/items/{iid}", "/uncached"):
        assert operation(cached_schema, path)["responses"] == operation(plain, path)["responses"]


def test_only_the_extension_and_the_description_line_are_added() -> None:
    plain = shop_app().openapi()
    assert without_cache_notes(document(shop_app())) == plain


def test_openapi_false_leaves_the_document_as_fastapi_generates_it() -> None:
    plain = shop_app().openapi()
    assert document(shop_app(), openapi=False) == plain


def test_openapi_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="CacheMiddleware: openapi must be True or False"):
        CacheMiddleware(shop_app(), openapi="no")  # type: ignore[arg-type]


def test_a_custom_openapi_function_keeps_its_own_additions() -> None:
    app = shop_app()

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title="Shop", version="2", routes=app.routes)
            schema["info"]["x-logo"] = {"url": "/logo.png"}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    schema = document(app)
    assert schema["info"]["x-logo"] == {"url": "/logo.png"}
    assert operation(schema, "/products/{pid}")[EXTENSION]["ttl"] == 120


def test_app_openapi_is_annotated_after_startup() -> None:
    app = shop_app()
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    with TestClient(app):
        schema = app.openapi()
    assert EXTENSION in operation(schema, "/products/{pid}")


def test_a_starlette_app_gains_no_openapi() -> None:
    async def page(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[Route("/page", cached(ttl=5)(page))])
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    with TestClient(app) as client:
        client.get("/page")
        assert is_hit(client.get("/page"))
    assert not hasattr(app, "openapi")


# --- the pure functions -------------------------------------------------------------------


def _read_routes(app: FastAPI, cache: Cache | None = None) -> dict[str, Any]:
    table = compile_routes(app.routes, cache or Cache(MemoryStore()))
    return dict(table.documented)


def test_describe_counts_keyed_codings_among_the_key_headers() -> None:
    routes = compile_routes(shop_app().routes, Cache(MemoryStore()), compressed=True).documented
    extension = describe(dict(routes)["/greeting"])
    assert extension["key_headers"] == ["accept-encoding", "accept-language"]


def test_describe_names_a_tag_function() -> None:
    app = FastAPI()

    def tags_of(request: Request) -> list[str]:
        return ["t"]

    @app.get("/t")
    @cached(ttl=5, tags=tags_of)
    async def tagged() -> dict[str, str]:
        return {}

    extension = describe(_read_routes(app)["/t"])
    assert extension["tags"] == f"from {tags_of.__qualname__}(request)"


def test_summary_lists_only_the_stale_windows_the_route_fixes() -> None:
    line = summary(describe(_read_routes(shop_app())["/news"]))
    assert line == (
        "Cached: ttl from the response; stale-while-revalidate 15 s; stale-if-error 300 s; "
        "statuses 200 203 204 300 301 308 404 410."
    )


def test_summary_names_the_key_function() -> None:
    line = summary(describe(_read_routes(shop_app())["/dashboard"]))
    assert "; key user_of(); " in line


def test_annotate_skips_a_path_the_document_lacks() -> None:
    routes = list(_read_routes(shop_app()).items())
    assert annotate({"paths": {}}, routes) == {"paths": {}}


def test_annotate_leaves_a_document_without_paths_alone() -> None:
    routes = list(_read_routes(shop_app()).items())
    assert annotate({"openapi": "3.1.0"}, routes) == {"openapi": "3.1.0"}
